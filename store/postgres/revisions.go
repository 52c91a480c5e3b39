package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/store"
)

type revisions struct{ q querier }

const revisionCols = `project, service, number, template_hash, spec, image_id, image_digest,
	secret_versions, cause, created_at, ready_at`

// currentRow selects the uid of the current row of a service ($1, $2):
// revisions are read through it, never by name alone.
const currentRow = `(SELECT uid FROM panelx.services WHERE project = $1 AND name = $2)`

func scanRevision(row pgx.Row) (api.Revision, error) {
	var (
		rev                   api.Revision
		spec, versions, cause []byte
		created               time.Time
		ready                 *time.Time
	)
	err := row.Scan(&rev.Project, &rev.Service, &rev.Number, &rev.TemplateHash, &spec, &rev.ImageID, &rev.ImageDigest,
		&versions, &cause, &created, &ready)
	if err != nil {
		return rev, err
	}
	if err := decodeRevision(&rev, spec, versions, cause); err != nil {
		return rev, err
	}
	rev.CreatedAt = created.UTC()
	if ready != nil {
		r := ready.UTC()
		rev.ReadyAt = &r
	}
	return rev, nil
}

// decodeRevision fills the JSON columns; rows written straight in SQL may
// hold anything, so it says which revision is broken.
func decodeRevision(rev *api.Revision, spec, versions, cause []byte) error {
	for _, f := range []struct {
		data []byte
		into any
		what string
	}{{spec, &rev.Spec, "spec"}, {versions, &rev.SecretVersions, "secret versions"}, {cause, &rev.Cause, "cause"}} {
		if err := json.Unmarshal(f.data, f.into); err != nil {
			return fmt.Errorf("decode %s of revision %d of service %s/%s: %w", f.what, rev.Number, rev.Project, rev.Service, err)
		}
	}
	if len(rev.SecretVersions) == 0 {
		rev.SecretVersions = nil
	}
	return nil
}

// revisionArgs encodes the JSON columns of a revision.
func revisionArgs(rev api.Revision) (spec, versions, cause string, err error) {
	if spec, err = jsonArg(rev.Spec); err != nil {
		return
	}
	v := rev.SecretVersions
	if v == nil {
		v = map[string]int64{}
	}
	if versions, err = jsonArg(v); err != nil {
		return
	}
	cause, err = jsonArg(rev.Cause)
	return
}

// nullTime is t to the microsecond (as the other backend keeps it), or
// NULL (the database's time) when t is zero.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.Truncate(time.Microsecond)
	return &t
}

// readyAt is an optional time as nullTime passes it.
func readyAt(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	return nullTime(*t)
}

func (r revisions) Record(ctx context.Context, serviceUID string, rev api.Revision, keep int) (api.Revision, bool, error) {
	what := fmt.Sprintf("record a revision of service %s", serviceUID)
	var uid pgtype.UUID
	if err := uid.Scan(serviceUID); err != nil {
		// Not a uuid: no row can have it.
		return api.Revision{}, false, fmt.Errorf("%s: service: %w", what, store.ErrNotFound)
	}
	spec, versions, cause, err := revisionArgs(rev)
	if err != nil {
		return api.Revision{}, false, fmt.Errorf("%s: %w", what, err)
	}
	var (
		out     api.Revision
		created bool
	)
	err = withTx(ctx, r.q, func(q querier) error {
		// The row lock serialises Record calls of one service, so numbers
		// are never taken twice; it also holds the row against Remove.
		var project, name string
		err := q.QueryRow(ctx, `SELECT project, name FROM panelx.services WHERE uid = $1 FOR UPDATE`, uid).Scan(&project, &name)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%s: service: %w", what, store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		what = fmt.Sprintf("record a revision of service %s/%s", project, name)
		newest, err := scanRevision(q.QueryRow(ctx, `SELECT `+revisionCols+` FROM panelx.revisions
			WHERE service_uid = $1 ORDER BY number DESC LIMIT 1`, uid))
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return fmt.Errorf("%s: read the newest: %w", what, err)
		case newest.TemplateHash == rev.TemplateHash:
			out = newest
			return r.prune(ctx, q, uid, keep, what)
		}
		out, err = scanRevision(q.QueryRow(ctx, `INSERT INTO panelx.revisions (service_uid, project, service, number,
				template_hash, spec, image_id, image_digest, secret_versions, cause, created_at, ready_at)
			VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9::jsonb, $10::jsonb, COALESCE($11, now()), $12)
			RETURNING `+revisionCols, uid, project, name, newest.Number+1, rev.TemplateHash, spec, rev.ImageID, rev.ImageDigest,
			versions, cause, nullTime(rev.CreatedAt), readyAt(rev.ReadyAt)))
		if err != nil {
			return mapErr(err, what)
		}
		created = true
		return r.prune(ctx, q, uid, keep, what)
	})
	if err != nil {
		return api.Revision{}, false, err
	}
	return out, created, nil
}

// prune keeps the newest keep (at least 1) revisions of a service.
func (revisions) prune(ctx context.Context, q querier, uid pgtype.UUID, keep int, what string) error {
	if _, err := q.Exec(ctx, `DELETE FROM panelx.revisions WHERE service_uid = $1 AND number IN (
		SELECT number FROM panelx.revisions WHERE service_uid = $1 ORDER BY number DESC OFFSET $2)`,
		uid, max(keep, 1)); err != nil {
		return fmt.Errorf("%s: prune: %w", what, err)
	}
	return nil
}

func (r revisions) List(ctx context.Context, service api.Key) ([]api.Revision, error) {
	what := fmt.Sprintf("list revisions of service %s", service)
	rows, err := r.q.Query(ctx, `SELECT `+revisionCols+` FROM panelx.revisions
		WHERE service_uid = `+currentRow+` ORDER BY number DESC`, service.Project, service.Name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (api.Revision, error) { return scanRevision(row) })
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

func (r revisions) Get(ctx context.Context, service api.Key, number int64) (api.Revision, error) {
	what := fmt.Sprintf("get revision %d of service %s", number, service)
	return r.one(ctx, what, `SELECT `+revisionCols+` FROM panelx.revisions
		WHERE service_uid = `+currentRow+` AND number = $3`, service.Project, service.Name, number)
}

func (r revisions) Latest(ctx context.Context, service api.Key) (api.Revision, error) {
	what := fmt.Sprintf("get the latest revision of service %s", service)
	return r.one(ctx, what, `SELECT `+revisionCols+` FROM panelx.revisions
		WHERE service_uid = `+currentRow+` ORDER BY number DESC LIMIT 1`, service.Project, service.Name)
}

func (r revisions) one(ctx context.Context, what, query string, args ...any) (api.Revision, error) {
	out, err := scanRevision(r.q.QueryRow(ctx, query, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return out, fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	if err != nil {
		return out, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

func (r revisions) MarkReady(ctx context.Context, service api.Key, number int64, at time.Time) error {
	what := fmt.Sprintf("mark revision %d of service %s ready", number, service)
	// The first time stays: a later call matches the row but keeps it.
	tag, err := r.q.Exec(ctx, `UPDATE panelx.revisions SET ready_at = COALESCE(ready_at, $4, now())
		WHERE service_uid = `+currentRow+` AND number = $3`, service.Project, service.Name, number, nullTime(at))
	if err != nil {
		return mapErr(err, what)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return nil
}
