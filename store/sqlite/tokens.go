package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/panelx/panelx/store"
)

type tokens struct{ r repo }

const tokenCols = `id, user_id, name, prefix, hash, COALESCE(project, ''), expires_at, created_at, last_used_at`

func scanToken(sc scanner) (store.APIToken, error) {
	var (
		t                 store.APIToken
		expires, lastUsed sql.NullInt64
		created           int64
	)
	if err := sc.Scan(&t.ID, &t.UserID, &t.Name, &t.Prefix, &t.Hash, &t.Project, &expires, &created, &lastUsed); err != nil {
		return t, err
	}
	t.CreatedAt = fromMicros(created)
	if expires.Valid {
		e := fromMicros(expires.Int64)
		t.ExpiresAt = &e
	}
	if lastUsed.Valid {
		l := fromMicros(lastUsed.Int64)
		t.LastUsedAt = &l
	}
	return t, nil
}

func (t tokens) Create(ctx context.Context, in store.APIToken) (store.APIToken, error) {
	var out store.APIToken
	what := fmt.Sprintf("create API token %q of %s", in.Name, in.UserID)
	var project, expires any
	if in.Project != "" {
		project = in.Project
	}
	if in.ExpiresAt != nil {
		expires = in.ExpiresAt.UnixMicro()
	}
	err := t.r.write(ctx, func(w *writer) error {
		var err error
		out, err = scanToken(w.q.QueryRowContext(ctx, `INSERT INTO api_tokens (id, user_id, name, prefix, hash, project, expires_at, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING `+tokenCols,
			newUID(), in.UserID, in.Name, in.Prefix, in.Hash, project, expires, now().UnixMicro()))
		if err != nil {
			return mapErr(err, what)
		}
		w.emit(authChange(store.ChangeUpsert, store.KindAPIToken, "", out.ID))
		return nil
	})
	return out, err
}

func (t tokens) GetByHash(ctx context.Context, hash []byte) (store.APIToken, error) {
	out, err := scanToken(t.r.reader().QueryRowContext(ctx, `SELECT `+tokenCols+` FROM api_tokens WHERE hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return out, fmt.Errorf("API token: %w", store.ErrNotFound)
	}
	if err != nil {
		return out, fmt.Errorf("look up API token: %w", err)
	}
	return out, nil
}

func (t tokens) List(ctx context.Context, userID string) ([]store.APIToken, error) {
	what := "list API tokens of " + userID
	rows, err := t.r.reader().QueryContext(ctx, `SELECT `+tokenCols+` FROM api_tokens WHERE user_id = ? ORDER BY created_at, id`, userID)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []store.APIToken
	for rows.Next() {
		tok, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, tok)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

func (t tokens) Delete(ctx context.Context, userID, id string) error {
	what := "revoke API token " + id
	return t.r.write(ctx, func(w *writer) error {
		res, err := w.q.ExecContext(ctx, `DELETE FROM api_tokens WHERE user_id = ? AND id = ?`, userID, id)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		} else if n == 0 {
			return fmt.Errorf("%s: %w", what, store.ErrNotFound)
		}
		w.emit(authChange(store.ChangeRemoved, store.KindAPIToken, "", id))
		return nil
	})
}

func (t tokens) Touch(ctx context.Context, id string, at time.Time) error {
	return t.r.write(ctx, func(w *writer) error {
		if _, err := w.q.ExecContext(ctx, `UPDATE api_tokens SET last_used_at = ? WHERE id = ?`, at.UnixMicro(), id); err != nil {
			return fmt.Errorf("record use of API token %s: %w", id, err)
		}
		return nil
	})
}
