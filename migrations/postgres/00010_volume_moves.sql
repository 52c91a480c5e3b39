-- Volume moves (docs/architecture.md, "Runtimes"): a third op of the
-- backup runs, so the one-Running-run index also keeps a move from running
-- beside a backup or restore of the same volume. move holds api.MoveParams.

-- +goose Up
ALTER TABLE panelx.backup_runs
    DROP CONSTRAINT backup_runs_op_check,
    ADD CONSTRAINT backup_runs_op_check CHECK (op IN ('backup', 'restore', 'move')),
    ADD COLUMN move jsonb;

-- +goose Down
DELETE FROM panelx.backup_runs WHERE op = 'move';
ALTER TABLE panelx.backup_runs
    DROP COLUMN move,
    DROP CONSTRAINT backup_runs_op_check,
    ADD CONSTRAINT backup_runs_op_check CHECK (op IN ('backup', 'restore'));
