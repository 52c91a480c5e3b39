-- Personal API tokens (only their SHA-256 hashes) and per-project registry
-- credentials for pulling private images.

-- +goose Up
CREATE TABLE panelx.api_tokens (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      text        NOT NULL CHECK (user_id <> ''),
    name         text        NOT NULL CHECK (length(name) <= 200),
    prefix       text        NOT NULL,
    hash         bytea       NOT NULL UNIQUE CHECK (length(hash) = 32),
    project      text        REFERENCES panelx.projects (name) ON DELETE CASCADE,
    expires_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz
);
CREATE INDEX api_tokens_user ON panelx.api_tokens (user_id);

CREATE TABLE panelx.registry_credentials (
    project    text        NOT NULL REFERENCES panelx.projects (name) ON DELETE CASCADE,
    registry   text        NOT NULL CHECK (registry <> '' AND length(registry) <= 255),
    username   text        NOT NULL,
    password   text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project, registry)
);

-- +goose Down
DROP TABLE panelx.registry_credentials;
DROP TABLE panelx.api_tokens;
