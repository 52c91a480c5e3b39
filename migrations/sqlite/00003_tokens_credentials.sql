-- Personal API tokens and registry credentials (see migrations/postgres/00003).

-- +goose Up
CREATE TABLE api_tokens (
    id           TEXT    PRIMARY KEY NOT NULL,
    user_id      TEXT    NOT NULL CHECK (user_id <> ''),
    name         TEXT    NOT NULL CHECK (length(name) <= 200),
    prefix       TEXT    NOT NULL,
    hash         BLOB    NOT NULL UNIQUE CHECK (length(hash) = 32),
    project      TEXT    REFERENCES projects (name) ON DELETE CASCADE,
    expires_at   INTEGER,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
) STRICT;
CREATE INDEX api_tokens_user ON api_tokens (user_id);

CREATE TABLE registry_credentials (
    project    TEXT    NOT NULL REFERENCES projects (name) ON DELETE CASCADE,
    registry   TEXT    NOT NULL CHECK (registry <> '' AND length(registry) <= 255),
    username   TEXT    NOT NULL,
    password   TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (project, registry)
) STRICT;

-- +goose Down
DROP TABLE registry_credentials;
DROP TABLE api_tokens;
