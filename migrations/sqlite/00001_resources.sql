-- PanelX's desired state and status in an embedded SQLite file; the same
-- model as migrations/postgres. Timestamps are microseconds since the Unix
-- epoch (UTC), the precision PostgreSQL's timestamptz keeps. JSON columns
-- hold the text encoding/json writes.
--
-- The rules PostgreSQL keeps in before_write (resource_version from one
-- counter, generation only on spec changes) are kept by store/sqlite, which
-- is the only writer; the guard triggers below refuse what must never
-- happen, whoever writes: changing uid, project, name or creation time, and
-- undoing a deletion.

-- +goose Up
CREATE TABLE resource_version_seq (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    last_value INTEGER NOT NULL
) STRICT;
INSERT INTO resource_version_seq (id, last_value) VALUES (1, 0);

CREATE TABLE projects (
    uid                TEXT    PRIMARY KEY NOT NULL,
    name               TEXT    NOT NULL UNIQUE
                               CHECK (length(name) BETWEEN 1 AND 63 AND name NOT GLOB '*[^-a-z0-9]*'
                                      AND name NOT GLOB '-*' AND name NOT GLOB '*-'),
    labels             TEXT    NOT NULL DEFAULT '{}' CHECK (json_type(labels) = 'object'),
    annotations        TEXT    NOT NULL DEFAULT '{}' CHECK (json_type(annotations) = 'object'),
    spec               TEXT    NOT NULL DEFAULT '{}' CHECK (json_type(spec) = 'object'),
    status             TEXT    NOT NULL DEFAULT '{}' CHECK (json_type(status) = 'object'),
    generation         INTEGER NOT NULL DEFAULT 1,
    resource_version   INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL,
    deletion_timestamp INTEGER
) STRICT;

CREATE TABLE services (
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
    UNIQUE (project, name)
) STRICT;

CREATE TABLE volumes (
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
    UNIQUE (project, name)
) STRICT;

CREATE TABLE project_members (
    project    TEXT    NOT NULL REFERENCES projects (name) ON DELETE CASCADE,
    user_id    TEXT    NOT NULL CHECK (user_id <> ''),
    role       TEXT    NOT NULL CHECK (role IN ('owner', 'admin', 'editor', 'viewer')),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (project, user_id)
) STRICT;
CREATE INDEX project_members_user ON project_members (user_id);

-- AUTOINCREMENT: ids are never reused, as with PostgreSQL's bigserial.
CREATE TABLE events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    project         TEXT    NOT NULL REFERENCES projects (name) ON DELETE CASCADE,
    kind            TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    type            TEXT    NOT NULL CHECK (type IN ('Normal', 'Warning')),
    reason          TEXT    NOT NULL,
    message         TEXT    NOT NULL,
    count           INTEGER NOT NULL DEFAULT 1,
    first_timestamp INTEGER NOT NULL,
    last_timestamp  INTEGER NOT NULL
) STRICT;
-- Repeats of an event raise its count (see store/sqlite events.go). Messages
-- are cut to 1 KiB, so the message itself can be part of the key.
CREATE UNIQUE INDEX events_dedup ON events (project, kind, name, type, reason, message);
CREATE INDEX events_recent ON events (project, last_timestamp DESC);

-- +goose StatementBegin
CREATE TRIGGER projects_guard BEFORE UPDATE ON projects
WHEN NEW.uid IS NOT OLD.uid OR NEW.name IS NOT OLD.name OR NEW.created_at IS NOT OLD.created_at
     OR (OLD.deletion_timestamp IS NOT NULL AND NEW.deletion_timestamp IS NOT OLD.deletion_timestamp)
BEGIN
    SELECT RAISE(ABORT, 'uid, name and creation time of a PanelX resource cannot change, nor can a deletion be undone');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER services_guard BEFORE UPDATE ON services
WHEN NEW.uid IS NOT OLD.uid OR NEW.project IS NOT OLD.project OR NEW.name IS NOT OLD.name
     OR NEW.created_at IS NOT OLD.created_at
     OR (OLD.deletion_timestamp IS NOT NULL AND NEW.deletion_timestamp IS NOT OLD.deletion_timestamp)
BEGIN
    SELECT RAISE(ABORT, 'uid, project, name and creation time of a PanelX resource cannot change, nor can a deletion be undone');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER volumes_guard BEFORE UPDATE ON volumes
WHEN NEW.uid IS NOT OLD.uid OR NEW.project IS NOT OLD.project OR NEW.name IS NOT OLD.name
     OR NEW.created_at IS NOT OLD.created_at
     OR (OLD.deletion_timestamp IS NOT NULL AND NEW.deletion_timestamp IS NOT OLD.deletion_timestamp)
BEGIN
    SELECT RAISE(ABORT, 'uid, project, name and creation time of a PanelX resource cannot change, nor can a deletion be undone');
END;
-- +goose StatementEnd

-- +goose Down
DROP TABLE events;
DROP TABLE project_members;
DROP TABLE volumes;
DROP TABLE services;
DROP TABLE projects;
DROP TABLE resource_version_seq;
