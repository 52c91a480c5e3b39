package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/store"
)

// BackupRuns implements store.BackupStore.
func (s *Store) BackupRuns() store.BackupRuns { return backupRuns{q: s.repo.q} }

type backupRuns struct{ q querier }

const backupRunCols = `id, project, volume, op, trigger, phase, reason, requested_by, scheduled_at, created_at,
	started_at, finished_at, bytes, sha256, target, object_key, encrypted, pruned_at, restore, epoch, move`

func scanBackupRun(row pgx.Row) (api.BackupRun, error) {
	var (
		r             api.BackupRun
		restore, move []byte
	)
	err := row.Scan(&r.ID, &r.Project, &r.Volume, &r.Op, &r.Trigger, &r.Phase, &r.Reason, &r.RequestedBy, &r.ScheduledAt,
		&r.CreatedAt, &r.StartedAt, &r.FinishedAt, &r.Bytes, &r.SHA256, &r.Target, &r.Key, &r.Encrypted, &r.Pruned, &restore, &r.Epoch, &move)
	if err != nil {
		return r, err
	}
	if len(restore) > 0 {
		r.Restore = new(api.RestoreParams)
		if err := json.Unmarshal(restore, r.Restore); err != nil {
			return r, fmt.Errorf("run %s: restore: %w", r.ID, err)
		}
	}
	if len(move) > 0 {
		r.Move = new(api.MoveParams)
		if err := json.Unmarshal(move, r.Move); err != nil {
			return r, fmt.Errorf("run %s: move: %w", r.ID, err)
		}
	}
	return r, nil
}

// NewBackupRunID returns a new run ID: 16 hex digits.
func newRunID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// paramsJSON is the jsonb of a run's restore or move parameters: NULL
// when there are none.
func paramsJSON[T any](p *T) ([]byte, error) {
	if p == nil {
		return nil, nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode run parameters: %w", err)
	}
	return b, nil
}

// runParams encodes a run's restore and move parameters.
func runParams(in api.BackupRun) (restore, move []byte, err error) {
	if restore, err = paramsJSON(in.Restore); err != nil {
		return nil, nil, err
	}
	if move, err = paramsJSON(in.Move); err != nil {
		return nil, nil, err
	}
	return restore, move, nil
}

func (b backupRuns) Create(ctx context.Context, in api.BackupRun) (api.BackupRun, error) {
	what := fmt.Sprintf("create %s run of volume %s/%s", in.Op, in.Project, in.Volume)
	restore, move, err := runParams(in)
	if err != nil {
		return in, fmt.Errorf("%s: %w", what, err)
	}
	in.ID = newRunID()
	out, err := scanBackupRun(b.q.QueryRow(ctx, `INSERT INTO panelx.backup_runs (id, project, volume, op, trigger, phase, reason,
			requested_by, scheduled_at, started_at, finished_at, bytes, sha256, target, object_key, encrypted, pruned_at, restore, epoch, move)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
		RETURNING `+backupRunCols, in.ID, in.Project, in.Volume, in.Op, in.Trigger, in.Phase, in.Reason, in.RequestedBy,
		in.ScheduledAt, in.StartedAt, in.FinishedAt, in.Bytes, in.SHA256, in.Target, in.Key, in.Encrypted, in.Pruned, restore, in.Epoch, move))
	if err != nil {
		return out, runErr(err, what)
	}
	return out, nil
}

// runErr: a second Running run of a volume is a conflict, not a duplicate.
func runErr(err error, what string) error {
	err = mapErr(err, what)
	if errors.Is(err, store.ErrAlreadyExists) {
		return fmt.Errorf("%w: another run of the volume is running", store.ErrConflict)
	}
	return err
}

func (b backupRuns) Get(ctx context.Context, project, id string) (api.BackupRun, error) {
	out, err := scanBackupRun(b.q.QueryRow(ctx, `SELECT `+backupRunCols+` FROM panelx.backup_runs WHERE project = $1 AND id = $2`, project, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return out, fmt.Errorf("backup run %s of project %s: %w", id, project, store.ErrNotFound)
	}
	if err != nil {
		return out, mapErr(err, "get backup run "+id)
	}
	return out, nil
}

func runLimit(n int) int {
	switch {
	case n <= 0:
		return 100
	case n > 1000:
		return 1000
	}
	return n
}

func (b backupRuns) List(ctx context.Context, project string, f store.BackupRunFilter) ([]api.BackupRun, error) {
	rows, err := b.q.Query(ctx, `SELECT `+backupRunCols+` FROM panelx.backup_runs
		WHERE project = $1 AND ($2 = '' OR volume = $2) AND ($3 = '' OR op = $3) AND ($4 = '' OR phase = $4)
		ORDER BY created_at DESC, id DESC LIMIT $5`, project, f.Volume, string(f.Op), string(f.Phase), runLimit(f.Limit))
	if err != nil {
		return nil, mapErr(err, "list backup runs of project "+project)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (api.BackupRun, error) { return scanBackupRun(row) })
	if err != nil {
		return nil, mapErr(err, "list backup runs of project "+project)
	}
	return out, nil
}

func (b backupRuns) Update(ctx context.Context, in api.BackupRun, from api.BackupPhase) (api.BackupRun, error) {
	what := fmt.Sprintf("update backup run %s", in.ID)
	restore, move, err := runParams(in)
	if err != nil {
		return in, fmt.Errorf("%s: %w", what, err)
	}
	out, err := scanBackupRun(b.q.QueryRow(ctx, `UPDATE panelx.backup_runs SET phase = $4, reason = $5, scheduled_at = $6,
			started_at = $7, finished_at = $8, bytes = $9, sha256 = $10, target = $11, object_key = $12, encrypted = $13,
			pruned_at = $14, restore = $15, epoch = $16, move = $17
		WHERE project = $1 AND id = $2 AND phase = $3 RETURNING `+backupRunCols,
		in.Project, in.ID, from, in.Phase, in.Reason, in.ScheduledAt, in.StartedAt, in.FinishedAt, in.Bytes, in.SHA256,
		in.Target, in.Key, in.Encrypted, in.Pruned, restore, in.Epoch, move))
	if errors.Is(err, pgx.ErrNoRows) {
		return out, fmt.Errorf("%s: %w: it is no longer %s", what, store.ErrConflict, from)
	}
	if err != nil {
		return out, runErr(err, what)
	}
	return out, nil
}

func (b backupRuns) Open(ctx context.Context) ([]api.BackupRun, error) {
	rows, err := b.q.Query(ctx, `SELECT `+backupRunCols+` FROM panelx.backup_runs
		WHERE phase IN ('Pending', 'Running') ORDER BY created_at, id`)
	if err != nil {
		return nil, mapErr(err, "list open backup runs")
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (api.BackupRun, error) { return scanBackupRun(row) })
	if err != nil {
		return nil, mapErr(err, "list open backup runs")
	}
	return out, nil
}
