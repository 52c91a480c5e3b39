package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/panelx/panelx/store"
	"github.com/panelx/panelx/store/postgres"
	"github.com/panelx/panelx/store/sqlite"
)

// backendFlags choose where state lives: PostgreSQL when a URL is given,
// otherwise an embedded SQLite database in the data directory.
type backendFlags struct {
	databaseURL string
	dataDir     string
}

func (b *backendFlags) register(env *envFlags) {
	env.Secret(&b.databaseURL, "database-url", "PANELX_DATABASE_URL",
		"PostgreSQL URL, e.g. postgres://user:pass@host:5432/db; empty: the embedded SQLite database in --data-dir")
	env.String(&b.dataDir, "data-dir", "PANELX_DATA_DIR", defaultDataDir(),
		"directory of the embedded database (used when no database URL is set)")
}

// defaultDataDir is /var/lib/panelx for root (a system service), else the
// user's data directory ($XDG_DATA_HOME/panelx or ~/.local/share/panelx).
func defaultDataDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/panelx"
	}
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "panelx")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "panelx")
	}
	return "panelx-data"
}

// migrator is what both backends offer besides store.Store.
type migrator interface {
	store.Store
	Migrate(ctx context.Context) ([]int64, error)
	AdoptInstallation(ctx context.Context, id string) error
}

// supabaseProfiler is a store that can apply the Supabase profile
// (PostgreSQL).
type supabaseProfiler interface {
	ApplySupabaseProfile(ctx context.Context) error
}

// applySupabaseProfile applies the Supabase profile, or says why it cannot.
func applySupabaseProfile(ctx context.Context, st migrator) error {
	sp, ok := st.(supabaseProfiler)
	if !ok {
		return errors.New("the Supabase profile (--supabase, PANELX_SUPABASE) needs PostgreSQL: set PANELX_DATABASE_URL to the Supabase project's database")
	}
	return sp.ApplySupabaseProfile(ctx)
}

// openBackend opens the configured store. The returned close releases
// everything, including the data directory lock of the embedded backend.
func (b *backendFlags) open(ctx context.Context, log *zap.Logger) (migrator, func(), error) {
	if b.databaseURL != "" {
		s, err := postgres.Open(ctx, b.databaseURL, postgres.Options{Logger: log})
		if err != nil {
			return nil, nil, err
		}
		log.Info("using PostgreSQL")
		return s, s.Close, nil
	}
	if b.dataDir == "" {
		return nil, nil, errors.New("no database: set PANELX_DATABASE_URL, or PANELX_DATA_DIR for the embedded database")
	}
	release, err := sqlite.LockDataDir(b.dataDir)
	if err != nil {
		return nil, nil, err
	}
	path := filepath.Join(b.dataDir, "panelx.db")
	s, err := sqlite.Open(ctx, path, sqlite.Options{Logger: log})
	if err != nil {
		_ = release()
		return nil, nil, err
	}
	log.Info("using the embedded SQLite database", zap.String("path", path))
	return s, func() {
		s.Close()
		if err := release(); err != nil {
			log.Warn("release data directory lock", zap.Error(err))
		}
	}, nil
}

func describeBackend(b *backendFlags) string {
	if b.databaseURL != "" {
		return "PostgreSQL"
	}
	return fmt.Sprintf("SQLite in %s", b.dataDir)
}
