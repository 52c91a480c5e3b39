// Package postgres is the PostgreSQL backend of the store, through pgx/v5.
// Desired state and status live in the "panelx" schema; triggers keep
// resource versions and generations and NOTIFY every change, so rows written
// straight in SQL behave like rows written through PanelX.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/store"
)

// DefaultMaxConns is the pool size unless the URL's pool_max_conns or
// Options.MaxConns say otherwise.
const DefaultMaxConns = 16

// Options tune the backend. The zero value is usable.
type Options struct {
	Logger *zap.Logger
	// MaxConns caps the pool (0: the URL's pool_max_conns, else DefaultMaxConns).
	MaxConns int32
	// WatchQueue is how far a watcher may fall behind before it is sent a
	// Resync marker instead (0: store.DefaultWatchQueue).
	WatchQueue int
}

// Store is the PostgreSQL backend. It implements store.Store.
type Store struct {
	pool   *pgxpool.Pool
	connCf *pgx.ConnConfig
	log    *zap.Logger
	hub    *store.Hub
	holder string // this process in the lease table
	repo

	listenOnce sync.Once
	stop       context.CancelFunc
	done       chan struct{}
}

var _ store.Store = (*Store)(nil)

// Open connects to PostgreSQL. It does not migrate; call Migrate.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database URL: %w", redactErr(err))
	}
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "panelx"
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		// A database host that drops packets must not hang requests.
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	switch {
	case opts.MaxConns > 0:
		cfg.MaxConns = opts.MaxConns
	case !strings.Contains(url, "pool_max_conns"):
		// pgxpool's default (max(4, CPUs)) starves the API under load; 16
		// is far below PostgreSQL's default max_connections of 100.
		cfg.MaxConns = DefaultMaxConns
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	listenCf := cfg.ConnConfig.Copy()
	listenCf.RuntimeParams["application_name"] = cfg.ConnConfig.RuntimeParams["application_name"] + "-watch"
	s := &Store{
		pool:   pool,
		connCf: listenCf,
		log:    log.Named("store"),
		hub:    store.NewHub(false, opts.WatchQueue),
		done:   make(chan struct{}),
		holder: newHolder(),
	}
	s.repo = repo{q: pooled{pool}}
	return s, nil
}

// redactErr keeps a password out of URL parse errors.
func redactErr(err error) error {
	return errors.New("invalid connection string (check its syntax; the password is not shown)")
}

// Pool exposes the pool for tests and benchmarks of this backend.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close stops the change feed and closes the pool.
func (s *Store) Close() {
	if s.stop != nil {
		s.stop()
		<-s.done
	}
	s.pool.Close()
}

// Ready reports whether the database answers and every migration is applied.
func (s *Store) Ready(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("database unreachable: %w", err)
	}
	pending, err := hasPending(ctx, s.pool)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if pending {
		return errors.New("database schema is not up to date: run `panelx migrate`")
	}
	return nil
}

// InTx runs fn in one transaction.
func (s *Store) InTx(ctx context.Context, fn func(store.Repo) error) error {
	return withTx(ctx, pooled{s.pool}, func(q querier) error { return fn(repo{q: q}) })
}

// querier is what both the pool and a transaction offer.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Begin(ctx context.Context) (pgx.Tx, error)
}

// repo implements store.Repo over a pool or a transaction.
type repo struct{ q querier }

var (
	projectsTable = newTable[*api.Project](api.KindProject, "panelx.projects", false)
	servicesTable = newTable[*api.Service](api.KindService, "panelx.services", true)
	volumesTable  = newTable[*api.Volume](api.KindVolume, "panelx.volumes", true)
	secretsTable  = newTable[*api.Secret](api.KindSecret, "panelx.secrets", true)
)

func (r repo) Projects() store.Resources[*api.Project] {
	return &resources[*api.Project]{t: projectsTable, q: r.q}
}
func (r repo) Services() store.Resources[*api.Service] {
	return &resources[*api.Service]{t: servicesTable, q: r.q}
}
func (r repo) Volumes() store.Resources[*api.Volume] {
	return &resources[*api.Volume]{t: volumesTable, q: r.q}
}
func (r repo) Secrets() store.Resources[*api.Secret] {
	return &resources[*api.Secret]{t: secretsTable, q: r.q}
}
func (r repo) Members() store.Members { return members{q: r.q} }
func (r repo) Events() store.Events   { return events{q: r.q} }
func (r repo) Tokens() store.Tokens   { return tokens{q: r.q} }
func (r repo) RegistryCredentials() store.RegistryCredentials {
	return credentials{q: r.q}
}
func (r repo) Hostnames() store.Hostnames       { return hostnames{q: r.q} }
func (r repo) Edges() store.Edges               { return edges{q: r.q} }
func (r repo) Certificates() store.Certificates { return certificates{q: r.q} }
func (r repo) Revisions() store.Revisions       { return revisions{q: r.q} }

// withTx runs fn in a transaction, or in a savepoint when q already is one.
func withTx(ctx context.Context, q querier, fn func(querier) error) error {
	tx, err := q.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", classify(err))
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
	if err := fn(tx); err != nil {
		return classify(err)
	}
	if err := tx.Commit(ctx); err != nil {
		// Deferred constraints (a project keeps an owner) fail here.
		return mapErr(classify(err), "commit")
	}
	return nil
}

// mapErr turns constraint violations into the store's typed errors.
func mapErr(err error, what string) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505": // unique_violation
			if taken := hostnameTaken(err); taken != nil {
				return fmt.Errorf("%s: %w", what, taken)
			}
			return fmt.Errorf("%s: %w", what, store.ErrAlreadyExists)
		case "23503": // foreign_key_violation
			return fmt.Errorf("%s: project: %w", what, store.ErrNotFound)
		case "23514", "22P02", "22P05", "22021": // check_violation, invalid_text_representation, untranslatable_character, character_not_in_repertoire
			return fmt.Errorf("%s: %w: %s", what, store.ErrInvalid, pgErr.Message)
		case "P0001": // raise_exception from a guard trigger
			return fmt.Errorf("%s: %w: %s", what, store.ErrConflict, pgErr.Message)
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// InstallationID returns the ID of this installation, created with the schema.
func (s *Store) InstallationID(ctx context.Context) (string, error) {
	var id string
	if err := s.pool.QueryRow(ctx, `SELECT id FROM panelx.installation`).Scan(&id); err != nil {
		return "", fmt.Errorf("read installation id: %w", err)
	}
	return id, nil
}

// AdoptInstallation gives this database another installation's ID, so a
// server on it manages that installation's Docker objects (moving from the
// embedded store to PostgreSQL on the same host). Only an empty database
// may adopt: two installations must never claim the same objects.
func (s *Store) AdoptInstallation(ctx context.Context, id string) error {
	return withTx(ctx, s.pool, func(q querier) error {
		var projects int
		if err := q.QueryRow(ctx, `SELECT count(*) FROM panelx.projects`).Scan(&projects); err != nil {
			return fmt.Errorf("adopt installation: %w", err)
		}
		if projects > 0 {
			return fmt.Errorf("adopt installation: the database already has %d project(s): %w", projects, store.ErrConflict)
		}
		if _, err := q.Exec(ctx, `UPDATE panelx.installation SET id = $1`, id); err != nil {
			return mapErr(err, "adopt installation")
		}
		return nil
	})
}

// FeedLive reports whether the LISTEN connection is up (store.FeedState).
func (s *Store) FeedLive() bool { return s.hub.Live() }
