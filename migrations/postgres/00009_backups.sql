-- Backup and restore runs of volumes (docs/architecture.md, "Backups").
-- A run's state moves by compare-and-set on its phase; the partial unique
-- index keeps two runs of one volume from running at once, whichever
-- server (or stale leader) tries.

-- +goose Up
CREATE TABLE panelx.backup_runs (
    id           text        PRIMARY KEY,
    project      text        NOT NULL REFERENCES panelx.projects (name) ON DELETE CASCADE ON UPDATE CASCADE,
    volume       text        NOT NULL CHECK (length(volume) BETWEEN 1 AND 63),
    op           text        NOT NULL CHECK (op IN ('backup', 'restore')),
    trigger      text        NOT NULL CHECK (trigger IN ('schedule', 'manual')),
    phase        text        NOT NULL CHECK (phase IN ('Pending', 'Running', 'Succeeded', 'Failed', 'Missed')),
    reason       text        NOT NULL DEFAULT '',
    requested_by text        NOT NULL DEFAULT '',
    scheduled_at timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz,
    bytes        bigint      NOT NULL DEFAULT 0,
    sha256       text        NOT NULL DEFAULT '',
    target       text        NOT NULL DEFAULT '',
    object_key   text        NOT NULL DEFAULT '',
    encrypted    boolean     NOT NULL DEFAULT false,
    pruned_at    timestamptz,
    restore      jsonb,
    epoch        bigint      NOT NULL DEFAULT 0
);
CREATE INDEX backup_runs_by_volume ON panelx.backup_runs (project, volume, created_at DESC);
CREATE INDEX backup_runs_open ON panelx.backup_runs (created_at) WHERE phase IN ('Pending', 'Running');
CREATE UNIQUE INDEX backup_runs_one_running ON panelx.backup_runs (project, volume) WHERE phase = 'Running';

-- +goose Down
DROP TABLE panelx.backup_runs;
