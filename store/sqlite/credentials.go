package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/panelx/panelx/store"
)

type credentials struct{ r repo }

const credentialCols = `project, registry, username, password, created_at, updated_at`

func scanCredential(sc scanner) (store.RegistryCredential, error) {
	var (
		c                store.RegistryCredential
		created, updated int64
	)
	if err := sc.Scan(&c.Project, &c.Registry, &c.Username, &c.Password, &created, &updated); err != nil {
		return c, err
	}
	c.CreatedAt, c.UpdatedAt = fromMicros(created), fromMicros(updated)
	return c, nil
}

func (c credentials) Put(ctx context.Context, in store.RegistryCredential) (store.RegistryCredential, error) {
	var out store.RegistryCredential
	what := fmt.Sprintf("store credentials of project %s for %s", in.Project, in.Registry)
	err := c.r.write(ctx, func(w *writer) error {
		ts := now().UnixMicro()
		var err error
		out, err = scanCredential(w.q.QueryRowContext(ctx, `INSERT INTO registry_credentials
			(project, registry, username, password, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (project, registry) DO UPDATE SET username = excluded.username, password = excluded.password,
				updated_at = excluded.updated_at
			RETURNING `+credentialCols, in.Project, in.Registry, in.Username, in.Password, ts, ts))
		if err != nil {
			return mapErr(err, what)
		}
		return nil
	})
	out.Password = ""
	return out, err
}

func (c credentials) Get(ctx context.Context, project, registry string) (store.RegistryCredential, error) {
	out, err := scanCredential(c.r.reader().QueryRowContext(ctx, `SELECT `+credentialCols+` FROM registry_credentials
		WHERE project = ? AND registry = ?`, project, registry))
	if errors.Is(err, sql.ErrNoRows) {
		return out, fmt.Errorf("credentials of project %s for %s: %w", project, registry, store.ErrNotFound)
	}
	if err != nil {
		return out, fmt.Errorf("get credentials of project %s for %s: %w", project, registry, err)
	}
	return out, nil
}

func (c credentials) List(ctx context.Context, project string) ([]store.RegistryCredential, error) {
	what := "list credentials of project " + project
	rows, err := c.r.reader().QueryContext(ctx, `SELECT `+credentialCols+` FROM registry_credentials WHERE project = ? ORDER BY registry`, project)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []store.RegistryCredential
	for rows.Next() {
		cred, err := scanCredential(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		cred.Password = ""
		out = append(out, cred)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

func (c credentials) Delete(ctx context.Context, project, registry string) error {
	what := fmt.Sprintf("delete credentials of project %s for %s", project, registry)
	return c.r.write(ctx, func(w *writer) error {
		res, err := w.q.ExecContext(ctx, `DELETE FROM registry_credentials WHERE project = ? AND registry = ?`, project, registry)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		} else if n == 0 {
			return fmt.Errorf("%s: %w", what, store.ErrNotFound)
		}
		return nil
	})
}
