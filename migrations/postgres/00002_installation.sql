-- The installation's identity: Docker objects carry it in their
-- dev.panelx.instance label, so every server sharing this database manages
-- the same objects, and two installations on one host never touch each
-- other's.

-- +goose Up
CREATE TABLE panelx.installation (
    id         text        PRIMARY KEY DEFAULT gen_random_uuid()::text,
    singleton  boolean     NOT NULL DEFAULT true UNIQUE CHECK (singleton),
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO panelx.installation DEFAULT VALUES;

-- +goose Down
DROP TABLE panelx.installation;
