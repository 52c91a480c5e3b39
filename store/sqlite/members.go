package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/store"
)

type members struct{ r repo }

const memberCols = `project, user_id, role, created_at`

func scanMember(sc scanner) (store.Member, error) {
	var (
		m       store.Member
		created int64
	)
	if err := sc.Scan(&m.Project, &m.UserID, &m.Role, &created); err != nil {
		return m, err
	}
	m.CreatedAt = fromMicros(created)
	return m, nil
}

func (m members) list(ctx context.Context, what, where string, arg any) ([]store.Member, error) {
	rows, err := m.r.reader().QueryContext(ctx, `SELECT `+memberCols+` FROM project_members WHERE `+where, arg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []store.Member
	for rows.Next() {
		mem, err := scanMember(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, mem)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

func (m members) Get(ctx context.Context, project, userID string) (store.Member, error) {
	out, err := scanMember(m.r.reader().QueryRowContext(ctx,
		`SELECT `+memberCols+` FROM project_members WHERE project = ? AND user_id = ?`, project, userID))
	if errors.Is(err, sql.ErrNoRows) {
		return out, fmt.Errorf("member %s of project %s: %w", userID, project, store.ErrNotFound)
	}
	if err != nil {
		return out, fmt.Errorf("get member %s of project %s: %w", userID, project, err)
	}
	return out, nil
}

func (m members) List(ctx context.Context, project string) ([]store.Member, error) {
	return m.list(ctx, "list members of project "+project, `project = ? ORDER BY user_id`, project)
}

func (m members) Put(ctx context.Context, in store.Member) (store.Member, error) {
	var out store.Member
	what := fmt.Sprintf("put member %s of project %s", in.UserID, in.Project)
	if !in.Role.Valid() {
		return out, fmt.Errorf("%s: role %q: %w", what, in.Role, store.ErrInvalid)
	}
	err := m.r.write(ctx, func(w *writer) error {
		var err error
		out, err = scanMember(w.q.QueryRowContext(ctx, `INSERT INTO project_members (project, user_id, role, created_at)
			VALUES (?, ?, ?, ?)
			ON CONFLICT (project, user_id) DO UPDATE SET role = excluded.role
			RETURNING `+memberCols, in.Project, in.UserID, string(in.Role), now().UnixMicro()))
		if err != nil {
			return mapErr(err, what)
		}
		w.emit(authChange(store.ChangeUpsert, store.KindMember, in.Project, in.UserID))
		return nil
	})
	return out, err
}

func (m members) Delete(ctx context.Context, project, userID string) error {
	what := fmt.Sprintf("delete member %s of project %s", userID, project)
	return m.r.write(ctx, func(w *writer) error {
		res, err := w.q.ExecContext(ctx, `DELETE FROM project_members WHERE project = ? AND user_id = ?`, project, userID)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		} else if n == 0 {
			return fmt.Errorf("%s: %w", what, store.ErrNotFound)
		}
		w.emit(authChange(store.ChangeRemoved, store.KindMember, project, userID))
		return nil
	})
}

// authChange is a change of a membership or an API token, for the API's
// caches (the PostgreSQL backend's triggers send the same).
func authChange(t store.ChangeType, kind api.Kind, project, name string) store.Change {
	return store.Change{Type: t, Kind: kind, Key: api.Key{Project: project, Name: name}}
}

func (m members) ProjectsOf(ctx context.Context, userID string) ([]store.Member, error) {
	return m.list(ctx, "list projects of "+userID, `user_id = ? ORDER BY project`, userID)
}
