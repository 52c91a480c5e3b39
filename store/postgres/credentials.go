package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/panelx/panelx/store"
)

type credentials struct{ q querier }

const credentialCols = `project, registry, username, password, created_at, updated_at`

func scanCredential(row pgx.Row) (store.RegistryCredential, error) {
	var c store.RegistryCredential
	err := row.Scan(&c.Project, &c.Registry, &c.Username, &c.Password, &c.CreatedAt, &c.UpdatedAt)
	return c, err
}

func (c credentials) Put(ctx context.Context, in store.RegistryCredential) (store.RegistryCredential, error) {
	what := fmt.Sprintf("store credentials of project %s for %s", in.Project, in.Registry)
	out, err := scanCredential(c.q.QueryRow(ctx, `INSERT INTO panelx.registry_credentials (project, registry, username, password)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (project, registry) DO UPDATE SET username = EXCLUDED.username, password = EXCLUDED.password, updated_at = now()
		RETURNING `+credentialCols, in.Project, in.Registry, in.Username, in.Password))
	if err != nil {
		return out, mapErr(err, what)
	}
	out.Password = ""
	return out, nil
}

func (c credentials) Get(ctx context.Context, project, registry string) (store.RegistryCredential, error) {
	out, err := scanCredential(c.q.QueryRow(ctx, `SELECT `+credentialCols+` FROM panelx.registry_credentials
		WHERE project = $1 AND registry = $2`, project, registry))
	if errors.Is(err, pgx.ErrNoRows) {
		return out, fmt.Errorf("credentials of project %s for %s: %w", project, registry, store.ErrNotFound)
	}
	if err != nil {
		return out, fmt.Errorf("get credentials of project %s for %s: %w", project, registry, err)
	}
	return out, nil
}

func (c credentials) List(ctx context.Context, project string) ([]store.RegistryCredential, error) {
	rows, err := c.q.Query(ctx, `SELECT `+credentialCols+` FROM panelx.registry_credentials WHERE project = $1 ORDER BY registry`, project)
	if err != nil {
		return nil, fmt.Errorf("list credentials of project %s: %w", project, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.RegistryCredential, error) {
		cred, err := scanCredential(row)
		cred.Password = ""
		return cred, err
	})
	if err != nil {
		return nil, fmt.Errorf("list credentials of project %s: %w", project, err)
	}
	return out, nil
}

func (c credentials) Delete(ctx context.Context, project, registry string) error {
	tag, err := c.q.Exec(ctx, `DELETE FROM panelx.registry_credentials WHERE project = $1 AND registry = $2`, project, registry)
	if err != nil {
		return fmt.Errorf("delete credentials of project %s for %s: %w", project, registry, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete credentials of project %s for %s: %w", project, registry, store.ErrNotFound)
	}
	return nil
}
