// Package sqlite is the embedded backend of the store: one SQLite file,
// through the pure-Go driver modernc.org/sqlite (no cgo).
//
// It keeps the PostgreSQL backend's semantics in Go instead of triggers:
// every write runs in a BEGIN IMMEDIATE transaction on the single write
// connection, reads the current row, checks the preconditions, takes the
// next value of the one resource-version counter and writes. Writes are
// serialised, so these read-then-write steps cannot race; reads run on a
// small pool of WAL readers and never wait for writers. Each committed
// write's changes are published to the in-process Hub after the commit, in
// commit order.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/store"
)

// Options tune the backend. The zero value is usable.
type Options struct {
	Logger *zap.Logger
	// WatchQueue is how far a watcher may fall behind before it is sent a
	// Resync marker instead (0: store.DefaultWatchQueue).
	WatchQueue int
}

// Connection settings. busyTimeout only matters when another process (the
// sqlite3 shell, a backup tool) holds a lock: in-process writers queue on
// writeSem instead.
const (
	busyTimeout = 5 * time.Second
	maxReaders  = 4
)

// Store is the SQLite backend. It implements store.Store.
type Store struct {
	path string
	wdb  *sql.DB // one connection: every write goes through it
	rdb  *sql.DB // read-only pool
	log  *zap.Logger
	hub  *store.Hub
	// writeSem serialises write transactions, their commit and the publishing
	// of their changes, so watchers see changes in commit order. A channel,
	// not a mutex, so that waiting for it honours the context.
	writeSem chan struct{}
	closed   atomic.Bool
	// noSpace is set while writes fail for lack of disk space: Ready says
	// so (and probes), writes answer store.ErrNoSpace.
	noSpace atomic.Bool
	repo
}

var _ store.Store = (*Store)(nil)

// Open opens (creating it if needed) the database file at path. It does not
// migrate; call Migrate.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	abs, err := checkPath(path)
	if err != nil {
		return nil, err
	}
	// Create the file ourselves so that it is private from the start: specs
	// hold environment variables, which often are secrets. SQLite gives the
	// -wal and -shm files the same mode.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", abs, err)
	}
	f.Close()

	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	s := &Store{
		path:     abs,
		log:      log.Named("store"),
		hub:      store.NewHub(true, opts.WatchQueue),
		writeSem: make(chan struct{}, 1),
	}
	s.repo = repo{s: s}
	if s.wdb, err = openDB(ctx, abs, true); err != nil {
		return nil, err
	}
	if s.rdb, err = openDB(ctx, abs, false); err != nil {
		s.wdb.Close()
		return nil, err
	}
	return s, nil
}

// checkPath makes path absolute and refuses what the driver would misread.
func checkPath(path string) (string, error) {
	if path == "" {
		return "", errors.New("open database: no file name given")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("open database %s: %w", path, err)
	}
	// The driver splits the name at '?' to find its parameters.
	if strings.ContainsRune(abs, '?') {
		return "", fmt.Errorf("open database %s: the path must not contain '?'", abs)
	}
	if fi, err := os.Stat(filepath.Dir(abs)); err != nil {
		return "", fmt.Errorf("open database %s: %w", abs, err)
	} else if !fi.IsDir() {
		return "", fmt.Errorf("open database %s: %s is not a directory", abs, filepath.Dir(abs))
	}
	return abs, nil
}

// dsn returns the data source name of a write or read connection. Every
// connection gets foreign keys (SQLite's are off by default, per
// connection) and the busy timeout.
func dsn(path string, write bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	if write {
		// WAL (kept in the file once set) lets readers run beside the
		// writer; synchronous=FULL fsyncs the WAL at every commit, so an
		// acknowledged write survives a crash of the process or the host.
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(FULL)")
		// Take the write lock at BEGIN, not at the first write, so a
		// transaction never has to upgrade a read lock (which can fail
		// with SQLITE_BUSY instead of waiting).
		q.Set("_txlock", "immediate")
	} else {
		q.Set("_query_only", "1")
	}
	return path + "?" + q.Encode()
}

func openDB(ctx context.Context, path string, write bool) (*sql.DB, error) {
	db, err := sql.Open("sqlite", dsn(path, write))
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if write {
		db.SetMaxOpenConns(1)
	} else {
		db.SetMaxOpenConns(maxReaders)
	}
	// Keep connections: each one has its pragmas set when it opens.
	db.SetMaxIdleConns(maxReaders)
	db.SetConnMaxIdleTime(0)
	db.SetConnMaxLifetime(0)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	return db, nil
}

// Path returns the absolute path of the database file.
func (s *Store) Path() string { return s.path }

// Close closes the database. Watchers end with their contexts.
func (s *Store) Close() {
	if s.closed.Swap(true) {
		return
	}
	if err := s.rdb.Close(); err != nil {
		s.log.Warn("close database readers", zap.Error(err))
	}
	if err := s.wdb.Close(); err != nil {
		s.log.Warn("close database", zap.Error(err))
	}
}

// spaceErr marks a write that failed for lack of disk space.
func (s *Store) spaceErr(err error) error {
	if !s.outOfSpace(err) {
		return err
	}
	s.noSpace.Store(true)
	if errors.Is(err, store.ErrNoSpace) {
		return err
	}
	return fmt.Errorf("%w: %w", store.ErrNoSpace, err)
}

// outOfSpace: SQLite says the disk is full (SQLITE_FULL), or an I/O error
// happened on a file system with (almost) no space left.
func (s *Store) outOfSpace(err error) bool {
	var se *sqlite.Error
	if errors.Is(err, syscall.ENOSPC) {
		return true
	}
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_FULL:
		return true
	case sqlite3.SQLITE_IOERR:
		free, ok := freeBytes(filepath.Dir(s.path))
		return ok && free < 1<<20
	}
	return false
}

// Ready reports whether the file answers, every migration is applied and
// it can write: after a write failed for lack of space, it probes with a
// real write until one succeeds.
func (s *Store) Ready(ctx context.Context) error {
	if s.closed.Load() {
		return errors.New("database is closed")
	}
	if s.noSpace.Load() {
		err := s.write(ctx, func(w *writer) error {
			_, err := w.q.ExecContext(ctx, `UPDATE installation SET id = id`)
			return err
		})
		if err != nil {
			return fmt.Errorf("database %s cannot write: %w", s.path, err)
		}
	}
	if err := s.rdb.PingContext(ctx); err != nil {
		return fmt.Errorf("database %s unreachable: %w", s.path, err)
	}
	pending, err := s.hasPending(ctx)
	if err != nil {
		return fmt.Errorf("read schema version of %s: %w", s.path, err)
	}
	if pending {
		return errors.New("database schema is not up to date: run `panelx migrate`")
	}
	return nil
}

// Watch delivers every change written through this Store, in commit order,
// until ctx ends. Its first item is a Resync marker.
func (s *Store) Watch(ctx context.Context) (<-chan store.Change, error) {
	if s.closed.Load() {
		return nil, errors.New("watch: database is closed")
	}
	return s.hub.Subscribe(ctx), nil
}

// InTx runs fn in one write transaction. Its changes are published only if
// it commits.
func (s *Store) InTx(ctx context.Context, fn func(store.Repo) error) error {
	return s.write(ctx, func(w *writer) error {
		return fn(repo{s: s, w: w})
	})
}

// lockWriter waits for the write slot, or for ctx to end.
func (s *Store) lockWriter(ctx context.Context) (release func(), err error) {
	select {
	case s.writeSem <- struct{}{}:
		return func() { <-s.writeSem }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for the write lock: %w", ctx.Err())
	}
}

// write runs fn in a write transaction, commits, and then publishes the
// changes fn recorded.
func (s *Store) write(ctx context.Context, fn func(w *writer) error) error {
	release, err := s.lockWriter(ctx)
	if err != nil {
		return err
	}
	defer release()
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	w := &writer{q: tx}
	if err := fn(w); err != nil {
		return s.spaceErr(err)
	}
	if w.broken != nil {
		return s.spaceErr(fmt.Errorf("transaction unusable: %w", w.broken))
	}
	if err := tx.Commit(); err != nil {
		// Whether it landed is unknown: make every watcher re-list.
		s.hub.Connected()
		return s.spaceErr(fmt.Errorf("commit: %w", err))
	}
	s.noSpace.Store(false)
	now := time.Now()
	for _, c := range w.changes {
		c.CommittedAt = now
		s.hub.Publish(c)
	}
	return nil
}

// querier is what the pools and a transaction offer.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// writer is one write transaction and the changes it has made so far.
type writer struct {
	q       querier
	changes []store.Change
	// broken is set when a savepoint could not be rolled back: the
	// transaction must not commit.
	broken error
}

func (w *writer) emit(c store.Change) { w.changes = append(w.changes, c) }

// savepoint runs fn so that, if it fails, its writes and changes are undone
// while the enclosing transaction goes on (as a failed statement inside a
// PostgreSQL savepoint).
func (w *writer) savepoint(ctx context.Context, fn func(w *writer) error) error {
	if _, err := w.q.ExecContext(ctx, `SAVEPOINT op`); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	n := len(w.changes)
	if err := fn(w); err != nil {
		w.changes = w.changes[:n]
		// ROLLBACK TO keeps the savepoint open; RELEASE ends it.
		bg := context.WithoutCancel(ctx)
		if _, rerr := w.q.ExecContext(bg, `ROLLBACK TO op`); rerr != nil {
			w.broken = rerr
		} else if _, rerr := w.q.ExecContext(bg, `RELEASE op`); rerr != nil {
			w.broken = rerr
		}
		return err
	}
	if _, err := w.q.ExecContext(ctx, `RELEASE op`); err != nil {
		w.broken = err
		return fmt.Errorf("release savepoint: %w", err)
	}
	return nil
}

// nextRV takes the next resource version.
func (w *writer) nextRV(ctx context.Context) (int64, error) {
	var rv int64
	err := w.q.QueryRowContext(ctx, `UPDATE resource_version_seq SET last_value = last_value + 1 WHERE id = 1
		RETURNING last_value`).Scan(&rv)
	if err != nil {
		return 0, fmt.Errorf("next resource version: %w", err)
	}
	return rv, nil
}

// repo implements store.Repo: outside a transaction (w == nil) each write
// is a transaction of its own and reads use the reader pool; inside InTx
// everything goes through w.
type repo struct {
	s *Store
	w *writer
}

func (r repo) Projects() store.Resources[*api.Project] {
	return &resources[*api.Project]{t: projectsTable, r: r}
}
func (r repo) Services() store.Resources[*api.Service] {
	return &resources[*api.Service]{t: servicesTable, r: r}
}
func (r repo) Volumes() store.Resources[*api.Volume] {
	return &resources[*api.Volume]{t: volumesTable, r: r}
}
func (r repo) Secrets() store.Resources[*api.Secret] {
	return &resources[*api.Secret]{t: secretsTable, r: r}
}
func (r repo) Members() store.Members { return members{r: r} }
func (r repo) Events() store.Events   { return events{r: r} }
func (r repo) Tokens() store.Tokens   { return tokens{r: r} }
func (r repo) RegistryCredentials() store.RegistryCredentials {
	return credentials{r: r}
}
func (r repo) Hostnames() store.Hostnames       { return hostnames{r: r} }
func (r repo) Edges() store.Edges               { return edges{r: r} }
func (r repo) Certificates() store.Certificates { return certificates{r: r} }
func (r repo) Revisions() store.Revisions       { return revisions{r: r} }

// InstallationID returns the ID of this installation, created with the schema.
func (s *Store) InstallationID(ctx context.Context) (string, error) {
	var id string
	if err := s.rdb.QueryRowContext(ctx, `SELECT id FROM installation`).Scan(&id); err != nil {
		return "", fmt.Errorf("read installation id: %w", err)
	}
	return id, nil
}

// write runs one write operation atomically: as its own transaction, or in
// a savepoint of the caller's.
func (r repo) write(ctx context.Context, fn func(w *writer) error) error {
	if r.w != nil {
		return r.w.savepoint(ctx, fn)
	}
	return r.s.write(ctx, fn)
}

// reader returns where single-statement reads go.
func (r repo) reader() querier {
	if r.w != nil {
		return r.w.q
	}
	return r.s.rdb
}

// read runs fn on one consistent snapshot.
func (r repo) read(ctx context.Context, fn func(q querier) error) error {
	if r.w != nil {
		return fn(r.w.q)
	}
	tx, err := r.s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("begin read: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a read-only transaction has nothing to keep
	return fn(tx)
}

// mapErr turns constraint violations into the store's typed errors.
func mapErr(err error, what string) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%s: %w", what, store.ErrAlreadyExists)
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return fmt.Errorf("%s: project: %w", what, store.ErrNotFound)
		case sqlite3.SQLITE_CONSTRAINT_CHECK, sqlite3.SQLITE_CONSTRAINT_TRIGGER, sqlite3.SQLITE_CONSTRAINT_NOTNULL:
			return fmt.Errorf("%s: %w: %s", what, store.ErrInvalid, se.Error())
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Timestamps are stored as microseconds since the epoch, like timestamptz.
func now() time.Time                { return time.Now().UTC().Truncate(time.Microsecond) }
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// AdoptInstallation gives this database another installation's ID (see the
// PostgreSQL backend); only an empty database may adopt.
func (s *Store) AdoptInstallation(ctx context.Context, id string) error {
	return s.write(ctx, func(w *writer) error {
		var projects int
		if err := w.q.QueryRowContext(ctx, `SELECT count(*) FROM projects`).Scan(&projects); err != nil {
			return fmt.Errorf("adopt installation: %w", err)
		}
		if projects > 0 {
			return fmt.Errorf("adopt installation: the database already has %d project(s): %w", projects, store.ErrConflict)
		}
		if _, err := w.q.ExecContext(ctx, `UPDATE installation SET id = ?`, id); err != nil {
			return mapErr(err, "adopt installation")
		}
		return nil
	})
}

// FeedLive reports whether the change feed is live: in process, always
// (store.FeedState).
func (s *Store) FeedLive() bool { return true }
