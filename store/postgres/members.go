package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/panelx/panelx/store"
)

type members struct{ q querier }

const memberCols = `project, user_id, role, created_at`

func scanMembers(rows pgx.Rows) ([]store.Member, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Member, error) {
		var m store.Member
		err := row.Scan(&m.Project, &m.UserID, &m.Role, &m.CreatedAt)
		return m, err
	})
}

func (m members) Get(ctx context.Context, project, userID string) (store.Member, error) {
	var out store.Member
	err := m.q.QueryRow(ctx, `SELECT `+memberCols+` FROM panelx.project_members WHERE project = $1 AND user_id = $2`,
		project, userID).Scan(&out.Project, &out.UserID, &out.Role, &out.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return out, fmt.Errorf("member %s of project %s: %w", userID, project, store.ErrNotFound)
	}
	if err != nil {
		return out, fmt.Errorf("get member %s of project %s: %w", userID, project, err)
	}
	return out, nil
}

func (m members) List(ctx context.Context, project string) ([]store.Member, error) {
	rows, err := m.q.Query(ctx, `SELECT `+memberCols+` FROM panelx.project_members WHERE project = $1 ORDER BY user_id`, project)
	if err != nil {
		return nil, fmt.Errorf("list members of project %s: %w", project, err)
	}
	out, err := scanMembers(rows)
	if err != nil {
		return nil, fmt.Errorf("list members of project %s: %w", project, err)
	}
	return out, nil
}

func (m members) Put(ctx context.Context, in store.Member) (store.Member, error) {
	var out store.Member
	if !in.Role.Valid() {
		return out, fmt.Errorf("put member %s of project %s: role %q: %w", in.UserID, in.Project, in.Role, store.ErrInvalid)
	}
	err := m.q.QueryRow(ctx, `INSERT INTO panelx.project_members (project, user_id, role) VALUES ($1, $2, $3)
		ON CONFLICT (project, user_id) DO UPDATE SET role = EXCLUDED.role
		RETURNING `+memberCols, in.Project, in.UserID, string(in.Role)).Scan(&out.Project, &out.UserID, &out.Role, &out.CreatedAt)
	if err != nil {
		return out, mapErr(err, fmt.Sprintf("put member %s of project %s", in.UserID, in.Project))
	}
	return out, nil
}

func (m members) Delete(ctx context.Context, project, userID string) error {
	tag, err := m.q.Exec(ctx, `DELETE FROM panelx.project_members WHERE project = $1 AND user_id = $2`, project, userID)
	if err != nil {
		return fmt.Errorf("delete member %s of project %s: %w", userID, project, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete member %s of project %s: %w", userID, project, store.ErrNotFound)
	}
	return nil
}

func (m members) ProjectsOf(ctx context.Context, userID string) ([]store.Member, error) {
	rows, err := m.q.Query(ctx, `SELECT `+memberCols+` FROM panelx.project_members WHERE user_id = $1 ORDER BY project`, userID)
	if err != nil {
		return nil, fmt.Errorf("list projects of %s: %w", userID, err)
	}
	out, err := scanMembers(rows)
	if err != nil {
		return nil, fmt.Errorf("list projects of %s: %w", userID, err)
	}
	return out, nil
}
