package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/store"
)

// BackupRuns implements store.BackupStore.
func (s *Store) BackupRuns() store.BackupRuns { return backupRuns{r: repo{s: s}} }

type backupRuns struct{ r repo }

const backupRunCols = `id, project, volume, op, trigger, phase, reason, requested_by, scheduled_at, created_at,
	started_at, finished_at, bytes, sha256, target, object_key, encrypted, pruned_at, restore, epoch, move`

func microsOrNil(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UTC().UnixMicro()
}

func timeOrNil(us sql.NullInt64) *time.Time {
	if !us.Valid {
		return nil
	}
	t := fromMicros(us.Int64)
	return &t
}

func scanBackupRun(sc scanner) (api.BackupRun, error) {
	var (
		r                                   api.BackupRun
		scheduled, started, finished, prune sql.NullInt64
		created                             int64
		restore, move                       sql.NullString
		encrypted                           int64
	)
	err := sc.Scan(&r.ID, &r.Project, &r.Volume, &r.Op, &r.Trigger, &r.Phase, &r.Reason, &r.RequestedBy, &scheduled,
		&created, &started, &finished, &r.Bytes, &r.SHA256, &r.Target, &r.Key, &encrypted, &prune, &restore, &r.Epoch, &move)
	if err != nil {
		return r, err
	}
	r.CreatedAt, r.Encrypted = fromMicros(created), encrypted != 0
	r.ScheduledAt, r.StartedAt, r.FinishedAt, r.Pruned = timeOrNil(scheduled), timeOrNil(started), timeOrNil(finished), timeOrNil(prune)
	if restore.Valid && restore.String != "" {
		r.Restore = new(api.RestoreParams)
		if err := json.Unmarshal([]byte(restore.String), r.Restore); err != nil {
			return r, fmt.Errorf("run %s: restore: %w", r.ID, err)
		}
	}
	if move.Valid && move.String != "" {
		r.Move = new(api.MoveParams)
		if err := json.Unmarshal([]byte(move.String), r.Move); err != nil {
			return r, fmt.Errorf("run %s: move: %w", r.ID, err)
		}
	}
	return r, nil
}

// paramsText is the JSON text of a run's restore or move parameters: NULL
// when there are none.
func paramsText[T any](p *T) (any, error) {
	if p == nil {
		return nil, nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode run parameters: %w", err)
	}
	return string(b), nil
}

// runParams encodes a run's restore and move parameters.
func runParams(in api.BackupRun) (restore, move any, err error) {
	if restore, err = paramsText(in.Restore); err != nil {
		return nil, nil, err
	}
	if move, err = paramsText(in.Move); err != nil {
		return nil, nil, err
	}
	return restore, move, nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// runErr: a second Running run of a volume is a conflict, not a duplicate.
func runErr(err error, what string) error {
	err = mapErr(err, what)
	if errors.Is(err, store.ErrAlreadyExists) {
		return fmt.Errorf("%w: another run of the volume is running", store.ErrConflict)
	}
	return err
}

func (b backupRuns) Create(ctx context.Context, in api.BackupRun) (api.BackupRun, error) {
	what := fmt.Sprintf("create %s run of volume %s/%s", in.Op, in.Project, in.Volume)
	restore, move, err := runParams(in)
	if err != nil {
		return in, fmt.Errorf("%s: %w", what, err)
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	in.ID = hex.EncodeToString(id[:])
	var out api.BackupRun
	err = b.r.write(ctx, func(w *writer) error {
		var err error
		out, err = scanBackupRun(w.q.QueryRowContext(ctx, `INSERT INTO backup_runs (id, project, volume, op, trigger, phase, reason,
				requested_by, scheduled_at, created_at, started_at, finished_at, bytes, sha256, target, object_key, encrypted, pruned_at, restore, epoch, move)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			RETURNING `+backupRunCols, in.ID, in.Project, in.Volume, in.Op, in.Trigger, in.Phase, in.Reason, in.RequestedBy,
			microsOrNil(in.ScheduledAt), now().UnixMicro(), microsOrNil(in.StartedAt), microsOrNil(in.FinishedAt), in.Bytes, in.SHA256,
			in.Target, in.Key, boolInt(in.Encrypted), microsOrNil(in.Pruned), restore, in.Epoch, move))
		if err != nil {
			return runErr(err, what)
		}
		return nil
	})
	return out, err
}

func (b backupRuns) Get(ctx context.Context, project, id string) (api.BackupRun, error) {
	out, err := scanBackupRun(b.r.reader().QueryRowContext(ctx, `SELECT `+backupRunCols+` FROM backup_runs WHERE project = ? AND id = ?`, project, id))
	if errors.Is(err, sql.ErrNoRows) {
		return out, fmt.Errorf("backup run %s of project %s: %w", id, project, store.ErrNotFound)
	}
	if err != nil {
		return out, fmt.Errorf("get backup run %s: %w", id, err)
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

func (b backupRuns) list(ctx context.Context, what, query string, args ...any) ([]api.BackupRun, error) {
	rows, err := b.r.reader().QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []api.BackupRun
	for rows.Next() {
		r, err := scanBackupRun(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

func (b backupRuns) List(ctx context.Context, project string, f store.BackupRunFilter) ([]api.BackupRun, error) {
	return b.list(ctx, "list backup runs of project "+project, `SELECT `+backupRunCols+` FROM backup_runs
		WHERE project = ? AND (? = '' OR volume = ?) AND (? = '' OR op = ?) AND (? = '' OR phase = ?)
		ORDER BY created_at DESC, id DESC LIMIT ?`, project, f.Volume, f.Volume, string(f.Op), string(f.Op),
		string(f.Phase), string(f.Phase), runLimit(f.Limit))
}

func (b backupRuns) Update(ctx context.Context, in api.BackupRun, from api.BackupPhase) (api.BackupRun, error) {
	what := fmt.Sprintf("update backup run %s", in.ID)
	restore, move, err := runParams(in)
	if err != nil {
		return in, fmt.Errorf("%s: %w", what, err)
	}
	var out api.BackupRun
	err = b.r.write(ctx, func(w *writer) error {
		var err error
		out, err = scanBackupRun(w.q.QueryRowContext(ctx, `UPDATE backup_runs SET phase = ?, reason = ?, scheduled_at = ?,
				started_at = ?, finished_at = ?, bytes = ?, sha256 = ?, target = ?, object_key = ?, encrypted = ?,
				pruned_at = ?, restore = ?, epoch = ?, move = ?
			WHERE project = ? AND id = ? AND phase = ? RETURNING `+backupRunCols,
			in.Phase, in.Reason, microsOrNil(in.ScheduledAt), microsOrNil(in.StartedAt), microsOrNil(in.FinishedAt), in.Bytes,
			in.SHA256, in.Target, in.Key, boolInt(in.Encrypted), microsOrNil(in.Pruned), restore, in.Epoch, move, in.Project, in.ID, from))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%s: %w: it is no longer %s", what, store.ErrConflict, from)
		}
		if err != nil {
			return runErr(err, what)
		}
		return nil
	})
	return out, err
}

func (b backupRuns) Open(ctx context.Context) ([]api.BackupRun, error) {
	return b.list(ctx, "list open backup runs", `SELECT `+backupRunCols+` FROM backup_runs
		WHERE phase IN ('Pending', 'Running') ORDER BY created_at, id`)
}
