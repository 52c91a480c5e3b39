package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/store"
)

type revisions struct{ r repo }

const revisionCols = `project, service, number, template_hash, spec, image_id, image_digest,
	secret_versions, cause, created_at, ready_at`

// currentRow selects the uid of the current row of a service (two
// arguments: project, name): revisions are read through it, never by name
// alone.
const currentRow = `(SELECT uid FROM services WHERE project = ? AND name = ?)`

func scanRevision(sc scanner) (api.Revision, error) {
	var (
		rev                   api.Revision
		spec, versions, cause []byte
		created               int64
		ready                 sql.NullInt64
	)
	err := sc.Scan(&rev.Project, &rev.Service, &rev.Number, &rev.TemplateHash, &spec, &rev.ImageID, &rev.ImageDigest,
		&versions, &cause, &created, &ready)
	if err != nil {
		return rev, err
	}
	// Rows edited by hand may hold anything; say which revision is broken.
	for _, f := range []struct {
		data []byte
		into any
		what string
	}{{spec, &rev.Spec, "spec"}, {versions, &rev.SecretVersions, "secret versions"}, {cause, &rev.Cause, "cause"}} {
		if err := json.Unmarshal(f.data, f.into); err != nil {
			return rev, fmt.Errorf("decode %s of revision %d of service %s/%s: %w", f.what, rev.Number, rev.Project, rev.Service, err)
		}
	}
	if len(rev.SecretVersions) == 0 {
		rev.SecretVersions = nil
	}
	rev.CreatedAt = fromMicros(created)
	if ready.Valid {
		r := fromMicros(ready.Int64)
		rev.ReadyAt = &r
	}
	return rev, nil
}

// revisionArgs encodes the JSON columns of a revision.
func revisionArgs(rev api.Revision) (spec, versions, cause string, err error) {
	if spec, err = jsonText(rev.Spec); err != nil {
		return
	}
	v := rev.SecretVersions
	if v == nil {
		v = map[string]int64{}
	}
	if versions, err = jsonText(v); err != nil {
		return
	}
	cause, err = jsonText(rev.Cause)
	return
}

// micros is t in microseconds, or def when t is zero.
func micros(t time.Time, def int64) int64 {
	if t.IsZero() {
		return def
	}
	return t.UnixMicro()
}

func (revs revisions) Record(ctx context.Context, uid string, rev api.Revision, keep int) (api.Revision, bool, error) {
	what := fmt.Sprintf("record a revision of service %s", uid)
	spec, versions, cause, err := revisionArgs(rev)
	if err != nil {
		return api.Revision{}, false, fmt.Errorf("%s: %w", what, err)
	}
	var ready any
	if rev.ReadyAt != nil {
		ready = rev.ReadyAt.UnixMicro()
	}
	var (
		out     api.Revision
		created bool
	)
	// Writes are serialised (one write connection, BEGIN IMMEDIATE), so
	// reading the newest number and inserting the next cannot race.
	err = revs.r.write(ctx, func(w *writer) error {
		var project, name string
		err := w.q.QueryRowContext(ctx, `SELECT project, name FROM services WHERE uid = ?`, uid).Scan(&project, &name)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%s: service: %w", what, store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		what = fmt.Sprintf("record a revision of service %s/%s", project, name)
		newest, err := scanRevision(w.q.QueryRowContext(ctx, `SELECT `+revisionCols+` FROM revisions
			WHERE service_uid = ? ORDER BY number DESC LIMIT 1`, uid))
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return fmt.Errorf("%s: read the newest: %w", what, err)
		case newest.TemplateHash == rev.TemplateHash:
			out = newest
			return prune(ctx, w, uid, keep, what)
		}
		out, err = scanRevision(w.q.QueryRowContext(ctx, `INSERT INTO revisions (service_uid, project, service, number,
				template_hash, spec, image_id, image_digest, secret_versions, cause, created_at, ready_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			RETURNING `+revisionCols, uid, project, name, newest.Number+1, rev.TemplateHash, spec, rev.ImageID, rev.ImageDigest,
			versions, cause, micros(rev.CreatedAt, now().UnixMicro()), ready))
		if err != nil {
			return mapErr(err, what)
		}
		created = true
		return prune(ctx, w, uid, keep, what)
	})
	if err != nil {
		return api.Revision{}, false, err
	}
	return out, created, nil
}

// prune keeps the newest keep (at least 1) revisions of a service.
func prune(ctx context.Context, w *writer, uid string, keep int, what string) error {
	if _, err := w.q.ExecContext(ctx, `DELETE FROM revisions WHERE service_uid = ? AND number IN (
		SELECT number FROM revisions WHERE service_uid = ? ORDER BY number DESC LIMIT -1 OFFSET ?)`,
		uid, uid, max(keep, 1)); err != nil {
		return fmt.Errorf("%s: prune: %w", what, err)
	}
	return nil
}

func (revs revisions) List(ctx context.Context, service api.Key) ([]api.Revision, error) {
	what := fmt.Sprintf("list revisions of service %s", service)
	rows, err := revs.r.reader().QueryContext(ctx, `SELECT `+revisionCols+` FROM revisions
		WHERE service_uid = `+currentRow+` ORDER BY number DESC`, service.Project, service.Name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []api.Revision
	for rows.Next() {
		rev, err := scanRevision(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, rev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

func (revs revisions) Get(ctx context.Context, service api.Key, number int64) (api.Revision, error) {
	what := fmt.Sprintf("get revision %d of service %s", number, service)
	return revs.one(ctx, what, `SELECT `+revisionCols+` FROM revisions
		WHERE service_uid = `+currentRow+` AND number = ?`, service.Project, service.Name, number)
}

func (revs revisions) Latest(ctx context.Context, service api.Key) (api.Revision, error) {
	what := fmt.Sprintf("get the latest revision of service %s", service)
	return revs.one(ctx, what, `SELECT `+revisionCols+` FROM revisions
		WHERE service_uid = `+currentRow+` ORDER BY number DESC LIMIT 1`, service.Project, service.Name)
}

func (revs revisions) one(ctx context.Context, what, query string, args ...any) (api.Revision, error) {
	out, err := scanRevision(revs.r.reader().QueryRowContext(ctx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return out, fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	if err != nil {
		return out, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

func (revs revisions) MarkReady(ctx context.Context, service api.Key, number int64, at time.Time) error {
	what := fmt.Sprintf("mark revision %d of service %s ready", number, service)
	return revs.r.write(ctx, func(w *writer) error {
		// The first time stays: a later call matches the row but keeps it.
		res, err := w.q.ExecContext(ctx, `UPDATE revisions SET ready_at = coalesce(ready_at, ?)
			WHERE service_uid = `+currentRow+` AND number = ?`,
			micros(at, now().UnixMicro()), service.Project, service.Name, number)
		if err != nil {
			return mapErr(err, what)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		} else if n == 0 {
			return fmt.Errorf("%s: %w", what, store.ErrNotFound)
		}
		return nil
	})
}
