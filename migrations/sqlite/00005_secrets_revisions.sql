-- Secrets and revisions (see migrations/postgres/00007). A secret's spec
-- must never hold plaintext data; a revision is immutable except for its
-- ready_at, set once, and goes with its service's row (foreign keys are on
-- for every connection: store/sqlite dsn).

-- +goose Up
CREATE TABLE secrets (
    uid                TEXT    PRIMARY KEY NOT NULL,
    project            TEXT    NOT NULL REFERENCES projects (name) ON DELETE CASCADE,
    name               TEXT    NOT NULL
                               CHECK (length(name) BETWEEN 1 AND 63 AND name NOT GLOB '*[^-a-z0-9]*'
                                      AND name NOT GLOB '-*' AND name NOT GLOB '*-'),
    labels             TEXT    NOT NULL DEFAULT '{}' CHECK (json_type(labels) = 'object'),
    annotations        TEXT    NOT NULL DEFAULT '{}' CHECK (json_type(annotations) = 'object'),
    spec               TEXT    NOT NULL DEFAULT '{}' CHECK (json_type(spec) = 'object'),
    status             TEXT    NOT NULL DEFAULT '{}' CHECK (json_type(status) = 'object'),
    generation         INTEGER NOT NULL DEFAULT 1,
    resource_version   INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL,
    deletion_timestamp INTEGER,
    UNIQUE (project, name),
    CONSTRAINT secrets_sealed_only CHECK (coalesce(json_extract(spec, '$.data'), '{}') = '{}')
) STRICT;

-- +goose StatementBegin
CREATE TRIGGER secrets_guard BEFORE UPDATE ON secrets
WHEN NEW.uid IS NOT OLD.uid OR NEW.project IS NOT OLD.project OR NEW.name IS NOT OLD.name
     OR NEW.created_at IS NOT OLD.created_at
     OR (OLD.deletion_timestamp IS NOT NULL AND NEW.deletion_timestamp IS NOT OLD.deletion_timestamp)
BEGIN
    SELECT RAISE(ABORT, 'uid, project, name and creation time of a PanelX resource cannot change, nor can a deletion be undone');
END;
-- +goose StatementEnd

CREATE TABLE revisions (
    service_uid     TEXT    NOT NULL REFERENCES services (uid) ON DELETE CASCADE,
    project         TEXT    NOT NULL,
    service         TEXT    NOT NULL,
    number          INTEGER NOT NULL CHECK (number > 0),
    template_hash   TEXT    NOT NULL,
    spec            TEXT    NOT NULL DEFAULT '{}' CHECK (json_type(spec) = 'object'),
    image_id        TEXT    NOT NULL DEFAULT '',
    image_digest    TEXT    NOT NULL DEFAULT '',
    secret_versions TEXT    NOT NULL DEFAULT '{}' CHECK (json_type(secret_versions) = 'object'),
    cause           TEXT    NOT NULL DEFAULT '{}' CHECK (json_type(cause) = 'object'),
    created_at      INTEGER NOT NULL,
    ready_at        INTEGER,
    PRIMARY KEY (service_uid, number)
) STRICT;

-- +goose StatementBegin
CREATE TRIGGER revisions_guard BEFORE UPDATE ON revisions
WHEN NEW.service_uid IS NOT OLD.service_uid OR NEW.project IS NOT OLD.project OR NEW.service IS NOT OLD.service
     OR NEW.number IS NOT OLD.number OR NEW.template_hash IS NOT OLD.template_hash OR NEW.spec IS NOT OLD.spec
     OR NEW.image_id IS NOT OLD.image_id OR NEW.image_digest IS NOT OLD.image_digest
     OR NEW.secret_versions IS NOT OLD.secret_versions OR NEW.cause IS NOT OLD.cause
     OR NEW.created_at IS NOT OLD.created_at
     OR (OLD.ready_at IS NOT NULL AND NEW.ready_at IS NOT OLD.ready_at)
BEGIN
    SELECT RAISE(ABORT, 'a revision cannot change, except to be marked ready once');
END;
-- +goose StatementEnd

-- +goose Down
DROP TABLE revisions;
DROP TABLE secrets;
