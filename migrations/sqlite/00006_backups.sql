-- Backup and restore runs of volumes (see migrations/postgres/00009).

-- +goose Up
CREATE TABLE backup_runs (
    id           TEXT    PRIMARY KEY NOT NULL,
    project      TEXT    NOT NULL REFERENCES projects (name) ON DELETE CASCADE,
    volume       TEXT    NOT NULL CHECK (length(volume) BETWEEN 1 AND 63),
    op           TEXT    NOT NULL CHECK (op IN ('backup', 'restore')),
    trigger      TEXT    NOT NULL CHECK (trigger IN ('schedule', 'manual')),
    phase        TEXT    NOT NULL CHECK (phase IN ('Pending', 'Running', 'Succeeded', 'Failed', 'Missed')),
    reason       TEXT    NOT NULL DEFAULT '',
    requested_by TEXT    NOT NULL DEFAULT '',
    scheduled_at INTEGER,
    created_at   INTEGER NOT NULL,
    started_at   INTEGER,
    finished_at  INTEGER,
    bytes        INTEGER NOT NULL DEFAULT 0,
    sha256       TEXT    NOT NULL DEFAULT '',
    target       TEXT    NOT NULL DEFAULT '',
    object_key   TEXT    NOT NULL DEFAULT '',
    encrypted    INTEGER NOT NULL DEFAULT 0,
    pruned_at    INTEGER,
    restore      TEXT,
    epoch        INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX backup_runs_by_volume ON backup_runs (project, volume, created_at DESC);
CREATE UNIQUE INDEX backup_runs_one_running ON backup_runs (project, volume) WHERE phase = 'Running';

-- +goose Down
DROP TABLE backup_runs;
