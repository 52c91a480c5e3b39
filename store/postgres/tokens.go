package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/panelx/panelx/store"
)

type tokens struct{ q querier }

const tokenCols = `id::text, user_id, name, prefix, hash, COALESCE(project, ''), expires_at, created_at, last_used_at`

func scanToken(row pgx.Row) (store.APIToken, error) {
	var t store.APIToken
	err := row.Scan(&t.ID, &t.UserID, &t.Name, &t.Prefix, &t.Hash, &t.Project, &t.ExpiresAt, &t.CreatedAt, &t.LastUsedAt)
	return t, err
}

func (t tokens) Create(ctx context.Context, in store.APIToken) (store.APIToken, error) {
	what := fmt.Sprintf("create API token %q of %s", in.Name, in.UserID)
	var project *string
	if in.Project != "" {
		project = &in.Project
	}
	out, err := scanToken(t.q.QueryRow(ctx, `INSERT INTO panelx.api_tokens (user_id, name, prefix, hash, project, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+tokenCols, in.UserID, in.Name, in.Prefix, in.Hash, project, in.ExpiresAt))
	if err != nil {
		return out, mapErr(err, what)
	}
	return out, nil
}

func (t tokens) GetByHash(ctx context.Context, hash []byte) (store.APIToken, error) {
	out, err := scanToken(t.q.QueryRow(ctx, `SELECT `+tokenCols+` FROM panelx.api_tokens WHERE hash = $1`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return out, fmt.Errorf("API token: %w", store.ErrNotFound)
	}
	if err != nil {
		return out, fmt.Errorf("look up API token: %w", err)
	}
	return out, nil
}

func (t tokens) List(ctx context.Context, userID string) ([]store.APIToken, error) {
	rows, err := t.q.Query(ctx, `SELECT `+tokenCols+` FROM panelx.api_tokens WHERE user_id = $1 ORDER BY created_at, id`, userID)
	if err != nil {
		return nil, fmt.Errorf("list API tokens of %s: %w", userID, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.APIToken, error) { return scanToken(row) })
	if err != nil {
		return nil, fmt.Errorf("list API tokens of %s: %w", userID, err)
	}
	return out, nil
}

func (t tokens) Delete(ctx context.Context, userID, id string) error {
	tag, err := t.q.Exec(ctx, `DELETE FROM panelx.api_tokens WHERE user_id = $1 AND id::text = $2`, userID, id)
	if err != nil {
		return fmt.Errorf("revoke API token %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("revoke API token %s: %w", id, store.ErrNotFound)
	}
	return nil
}

func (t tokens) Touch(ctx context.Context, id string, at time.Time) error {
	if _, err := t.q.Exec(ctx, `UPDATE panelx.api_tokens SET last_used_at = $2 WHERE id::text = $1`, id, at); err != nil {
		return fmt.Errorf("record use of API token %s: %w", id, err)
	}
	return nil
}
