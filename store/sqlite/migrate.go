package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/pressly/goose/v3"

	"github.com/panelx/panelx/migrations"
)

const versionTable = "goose_db_version"

func newProvider(db *sql.DB) (*goose.Provider, error) {
	p, err := goose.NewProvider(goose.DialectSQLite3, db, migrations.Sqlite(),
		goose.WithTableName(versionTable), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	return p, nil
}

// Migrate applies every pending migration and returns the versions it
// applied. In-process writers wait meanwhile; another process is kept out
// by SQLite's write lock (each migration runs in a BEGIN IMMEDIATE
// transaction) and, for a server, by LockDataDir.
func (s *Store) Migrate(ctx context.Context) ([]int64, error) {
	release, err := s.lockWriter(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	defer release()
	// goose holds one connection of its own for the whole run; a separate
	// handle keeps it off the store's single write connection.
	db, err := openDB(ctx, s.path, true)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	defer db.Close()
	p, err := newProvider(db)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate %s: %w", s.path, err)
	}
	applied := make([]int64, len(results))
	for i, r := range results {
		applied[i] = r.Source.Version
	}
	return applied, nil
}

// hasPending reports whether a migration is still to be applied. It only
// reads, on the reader pool.
func (s *Store) hasPending(ctx context.Context) (bool, error) {
	var n int
	if err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?`,
		versionTable).Scan(&n); err != nil {
		return false, err
	}
	if n == 0 {
		return true, nil
	}
	p, err := newProvider(s.rdb)
	if err != nil {
		return false, err
	}
	return p.HasPending(ctx)
}
