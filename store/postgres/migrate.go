package postgres

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/panelx/panelx/migrations"
)

// migrateLockKey is the advisory lock that serialises migrations, so two
// servers starting together do not race. (Hash of "panelx.migrate".)
const migrateLockKey = 0x70616e656c78_01

const versionTable = "panelx.goose_db_version"

func newProvider(pool *pgxpool.Pool) (*goose.Provider, *sql.DB, error) {
	db := stdlib.OpenDBFromPool(pool)
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.Postgres(),
		goose.WithTableName(versionTable), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("load migrations: %w", err)
	}
	return p, db, nil
}

// Migrate applies every pending migration. It holds a session advisory lock
// on a dedicated connection for the whole run; a crash releases it.
// It returns the versions it applied.
func (s *Store) Migrate(ctx context.Context) ([]int64, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: acquire connection: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(migrateLockKey)); err != nil {
		return nil, fmt.Errorf("migrate: take lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(migrateLockKey)) //nolint:errcheck // the session ends soon anyway
	if _, err := conn.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS panelx`); err != nil {
		return nil, fmt.Errorf("migrate: create schema panelx: %w", err)
	}
	p, db, err := newProvider(s.pool)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	results, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	applied := make([]int64, len(results))
	for i, r := range results {
		applied[i] = r.Source.Version
	}
	return applied, nil
}

func hasPending(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, versionTable).Scan(&exists); err != nil {
		return false, err
	}
	if !exists {
		return true, nil
	}
	p, db, err := newProvider(pool)
	if err != nil {
		return false, err
	}
	defer db.Close()
	return p.HasPending(ctx)
}

// ApplySupabaseProfile applies migrations.SupabaseProfile: what a Supabase
// dashboard may read under its users' JWTs, and what Realtime publishes.
// Idempotent; serialised with migrations by the same advisory lock. A
// database without Supabase's auth schema and roles is refused.
func (s *Store) ApplySupabaseProfile(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("supabase profile: acquire connection: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(migrateLockKey)); err != nil {
		return fmt.Errorf("supabase profile: take lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(migrateLockKey)) //nolint:errcheck // the session ends soon anyway
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("supabase profile: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit it is a no-op
	// The simple protocol runs the whole script (several statements).
	if _, err := tx.Exec(ctx, migrations.SupabaseProfile, pgx.QueryExecModeSimpleProtocol); err != nil {
		return fmt.Errorf("supabase profile: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("supabase profile: %w", err)
	}
	return nil
}
