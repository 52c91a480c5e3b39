-- Volume moves (see migrations/postgres/00010). SQLite cannot alter a
-- CHECK, so the table is rebuilt: create the new one, copy the rows, drop
-- the old one, rename, recreate its indexes (they went with the old table).
-- Nothing references backup_runs, so foreign keys may stay on; goose runs
-- the whole file in one transaction. backup_runs_one_open_move: see the
-- PostgreSQL migration.

-- +goose Up
CREATE TABLE backup_runs_new (
    id           TEXT    PRIMARY KEY NOT NULL,
    project      TEXT    NOT NULL REFERENCES projects (name) ON DELETE CASCADE,
    volume       TEXT    NOT NULL CHECK (length(volume) BETWEEN 1 AND 63),
    op           TEXT    NOT NULL CHECK (op IN ('backup', 'restore', 'move')),
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
    epoch        INTEGER NOT NULL DEFAULT 0,
    move         TEXT
) STRICT;
INSERT INTO backup_runs_new (id, project, volume, op, trigger, phase, reason, requested_by, scheduled_at, created_at,
        started_at, finished_at, bytes, sha256, target, object_key, encrypted, pruned_at, restore, epoch)
    SELECT id, project, volume, op, trigger, phase, reason, requested_by, scheduled_at, created_at,
        started_at, finished_at, bytes, sha256, target, object_key, encrypted, pruned_at, restore, epoch
    FROM backup_runs;
DROP TABLE backup_runs;
ALTER TABLE backup_runs_new RENAME TO backup_runs;
CREATE INDEX backup_runs_by_volume ON backup_runs (project, volume, created_at DESC);
CREATE UNIQUE INDEX backup_runs_one_running ON backup_runs (project, volume) WHERE phase = 'Running';
CREATE UNIQUE INDEX backup_runs_one_open_move ON backup_runs (project, volume)
    WHERE op = 'move' AND phase IN ('Pending', 'Running');

-- +goose Down
CREATE TABLE backup_runs_old (
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
INSERT INTO backup_runs_old (id, project, volume, op, trigger, phase, reason, requested_by, scheduled_at, created_at,
        started_at, finished_at, bytes, sha256, target, object_key, encrypted, pruned_at, restore, epoch)
    SELECT id, project, volume, op, trigger, phase, reason, requested_by, scheduled_at, created_at,
        started_at, finished_at, bytes, sha256, target, object_key, encrypted, pruned_at, restore, epoch
    FROM backup_runs WHERE op <> 'move';
DROP TABLE backup_runs;
ALTER TABLE backup_runs_old RENAME TO backup_runs;
CREATE INDEX backup_runs_by_volume ON backup_runs (project, volume, created_at DESC);
CREATE UNIQUE INDEX backup_runs_one_running ON backup_runs (project, volume) WHERE phase = 'Running';
