-- Volume moves (docs/architecture.md, "Runtimes"): a third op of the
-- backup runs, so the one-Running-run index also keeps a move from running
-- beside a backup or restore of the same volume. move holds api.MoveParams.
-- At most one move of a volume is open (Pending or Running): a move starts
-- from the node the volume was on when it was requested, which a second
-- queued move would make stale (the API checks first; this closes the race
-- of two requests at once).

-- +goose Up
ALTER TABLE panelx.backup_runs
    DROP CONSTRAINT backup_runs_op_check,
    ADD CONSTRAINT backup_runs_op_check CHECK (op IN ('backup', 'restore', 'move')),
    ADD COLUMN move jsonb;
CREATE UNIQUE INDEX backup_runs_one_open_move ON panelx.backup_runs (project, volume)
    WHERE op = 'move' AND phase IN ('Pending', 'Running');

-- +goose Down
DROP INDEX panelx.backup_runs_one_open_move;
DELETE FROM panelx.backup_runs WHERE op = 'move';
ALTER TABLE panelx.backup_runs
    DROP COLUMN move,
    DROP CONSTRAINT backup_runs_op_check,
    ADD CONSTRAINT backup_runs_op_check CHECK (op IN ('backup', 'restore'));
