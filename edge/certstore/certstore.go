// Package certstore keeps certmagic's storage — certificates, private
// keys, the ACME account and locks — in PostgreSQL, so that several edges
// share them and never order the same certificate twice.
//
// Keys are certmagic's slash-separated paths, kept as opaque text in
// panelx.certmagic_data; "directories" exist only as prefixes of keys, and
// List, Stat, Exists and Delete treat them as certmagic.FileStorage does.
// Locks are rows of panelx.certmagic_locks with a lease that the holder
// keeps extending, so a crashed edge blocks the others for one lease at most.
package certstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Defaults for the locks: a crashed holder blocks the others for up to
// DefaultLease; a waiting Lock looks again every DefaultPollInterval.
const (
	DefaultLease        = 2 * time.Minute
	DefaultPollInterval = time.Second
)

// Storage is a certmagic.Storage in PostgreSQL. It is safe for concurrent
// use; every edge sharing the database sees the same keys and locks.
type Storage struct {
	pool  *pgxpool.Pool
	lease time.Duration
	poll  time.Duration

	mu   sync.Mutex
	held map[string]*heldLock // locks this Storage holds, by name
}

// heldLock is a lock this Storage holds and keeps alive.
type heldLock struct {
	// expires is the lease last written by us: the row is still ours while
	// it holds this value, so neither the refresher nor Unlock ever touch
	// a lock another edge took over after our lease ran out. Only the
	// refresher writes it while it runs; Unlock reads it once it stopped.
	expires time.Time
	stop    chan struct{}
	done    chan struct{}
}

var (
	_ certmagic.Storage   = (*Storage)(nil)
	_ certmagic.TryLocker = (*Storage)(nil)
	_ fmt.Stringer        = (*Storage)(nil)
)

// Option tunes a Storage.
type Option func(*Storage)

// WithLease sets how long a lock outlives a holder that stopped refreshing
// it (it is refreshed every quarter of the lease).
func WithLease(d time.Duration) Option { return func(s *Storage) { s.lease = d } }

// WithPollInterval sets how often a waiting Lock tries again.
func WithPollInterval(d time.Duration) Option { return func(s *Storage) { s.poll = d } }

// New returns a Storage on pool, whose database has the migrations applied.
func New(pool *pgxpool.Pool, opts ...Option) *Storage {
	s := &Storage{pool: pool, lease: DefaultLease, poll: DefaultPollInterval, held: map[string]*heldLock{}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// String names the storage in certmagic's logs.
func (s *Storage) String() string { return "postgres" }

// likeEscaper makes a key match itself only in a LIKE pattern.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// under is the LIKE pattern of the keys below the "directory" key; the
// empty key is the root, above every key.
func under(key string) string {
	if key == "" {
		return "%"
	}
	return likeEscaper.Replace(key) + "/%"
}

// Store writes value at key, replacing what was there.
func (s *Storage) Store(ctx context.Context, key string, value []byte) error {
	_, err := s.pool.Exec(ctx, `
		INSERT INTO panelx.certmagic_data (key, value, modified) VALUES ($1, $2, now())
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, modified = excluded.modified`,
		key, value)
	if err != nil {
		return fmt.Errorf("certmagic storage: store %s: %w", key, err)
	}
	return nil
}

// Load reads the value at key; fs.ErrNotExist if there is none.
func (s *Storage) Load(ctx context.Context, key string) ([]byte, error) {
	var value []byte
	err := s.pool.QueryRow(ctx, `SELECT value FROM panelx.certmagic_data WHERE key = $1`, key).Scan(&value)
	if errors.Is(err, pgx.ErrNoRows) {
		err = fs.ErrNotExist
	}
	if err != nil {
		return nil, fmt.Errorf("certmagic storage: load %s: %w", key, err)
	}
	return value, nil
}

// Delete removes key and, if it is a directory, every key below it. A
// missing key is not an error (certmagic deletes a site's files, then its
// by then empty directory).
func (s *Storage) Delete(ctx context.Context, key string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM panelx.certmagic_data WHERE key = $1 OR key LIKE $2 ESCAPE '\'`, key, under(key))
	if err != nil {
		return fmt.Errorf("certmagic storage: delete %s: %w", key, err)
	}
	return nil
}

// Exists reports whether key is a file or a directory; false on errors too.
func (s *Storage) Exists(ctx context.Context, key string) bool {
	var ok bool
	err := s.pool.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM panelx.certmagic_data WHERE key = $1 OR key LIKE $2 ESCAPE '\')`,
		key, under(key)).Scan(&ok)
	return err == nil && ok
}

// Stat describes key: a file (terminal) or a directory, whose Modified is
// the newest of its keys'; fs.ErrNotExist if it is neither.
func (s *Storage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	info := certmagic.KeyInfo{Key: key, IsTerminal: true}
	err := s.pool.QueryRow(ctx, `
		SELECT modified, octet_length(value) FROM panelx.certmagic_data WHERE key = $1`,
		key).Scan(&info.Modified, &info.Size)
	if errors.Is(err, pgx.ErrNoRows) {
		var newest *time.Time
		info.IsTerminal = false
		err = s.pool.QueryRow(ctx, `SELECT max(modified) FROM panelx.certmagic_data WHERE key LIKE $1 ESCAPE '\'`,
			under(key)).Scan(&newest)
		switch {
		case err == nil && newest == nil:
			err = fs.ErrNotExist
		case err == nil:
			info.Modified = *newest
		}
	}
	if err != nil {
		return certmagic.KeyInfo{}, fmt.Errorf("certmagic storage: stat %s: %w", key, err)
	}
	return info, nil
}

// List returns the files and directories below the directory prefix, as
// FileStorage walks them: all of them when recursive, else its direct
// children only; nothing for a file, fs.ErrNotExist for a missing prefix.
func (s *Storage) List(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	keys, err := s.list(ctx, prefix, recursive)
	if err != nil {
		return nil, fmt.Errorf("certmagic storage: list %s: %w", prefix, err)
	}
	return keys, nil
}

func (s *Storage) list(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT key FROM panelx.certmagic_data WHERE key LIKE $1 ESCAPE '\'`, under(prefix))
	if err != nil {
		return nil, err
	}
	all, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	dir := prefix + "/"
	if prefix == "" {
		dir = ""
	}
	// Every directory on the way to a key is listed too, once.
	seen := map[string]bool{}
	var keys []string
	for _, k := range all {
		parts := strings.Split(strings.TrimPrefix(k, dir), "/")
		if !recursive {
			parts = parts[:1]
		}
		for i := range parts {
			if p := dir + strings.Join(parts[:i+1], "/"); !seen[p] {
				seen[p] = true
				keys = append(keys, p)
			}
		}
	}
	if len(keys) == 0 && prefix != "" {
		var file bool
		if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM panelx.certmagic_data WHERE key = $1)`,
			prefix).Scan(&file); err != nil {
			return nil, err
		}
		if !file {
			return nil, fs.ErrNotExist
		}
	}
	// FileStorage's walk order: name by name, a directory before its keys.
	slices.SortFunc(keys, func(a, b string) int {
		return slices.CompareFunc(strings.Split(a, "/"), strings.Split(b, "/"), cmp.Compare[string])
	})
	return keys, nil
}

// Lock takes the lock name, waiting while another holder (this or another
// edge) has it and its lease runs; it gives up when ctx ends.
func (s *Storage) Lock(ctx context.Context, name string) error {
	for {
		ok, err := s.TryLock(ctx, name)
		if ok || err != nil {
			return err
		}
		t := time.NewTimer(s.poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("certmagic storage: lock %s: %w", name, ctx.Err())
		case <-t.C:
		}
	}
}

// TryLock takes the lock name if it is free or its holder's lease ran out,
// and reports whether it did. certmagic uses it where another edge already
// doing the work is as good as doing it (ARI updates).
func (s *Storage) TryLock(ctx context.Context, name string) (bool, error) {
	var expires time.Time
	err := s.pool.QueryRow(ctx, `
		INSERT INTO panelx.certmagic_locks (key, expires) VALUES ($1, now() + make_interval(secs => $2))
		ON CONFLICT (key) DO UPDATE SET expires = excluded.expires
		WHERE panelx.certmagic_locks.expires < now()
		RETURNING expires`, name, s.lease.Seconds()).Scan(&expires)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return false, nil
	case err != nil:
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return false, fmt.Errorf("certmagic storage: lock %s: %w", name, err)
	}
	h := &heldLock{expires: expires, stop: make(chan struct{}), done: make(chan struct{})}
	s.mu.Lock()
	s.held[name] = h
	s.mu.Unlock()
	go s.refresh(name, h)
	return true, nil
}

// refresh extends the lease of a held lock every quarter lease until
// Unlock stops it, or until the lock turns out to be lost. A failed
// refresh is tried again at the next tick: the lease still runs.
func (s *Storage) refresh(name string, h *heldLock) {
	defer close(h.done)
	t := time.NewTicker(s.lease / 4)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		// Not cancelled by Unlock, which waits for it: an update that went
		// through unseen would leave us a stale lease, and the row to
		// outlive Unlock. One that takes the whole lease is moot anyway.
		ctx, cancel := context.WithTimeout(context.Background(), s.lease)
		var expires time.Time
		err := s.pool.QueryRow(ctx, `
			UPDATE panelx.certmagic_locks SET expires = now() + make_interval(secs => $3)
			WHERE key = $1 AND expires = $2 RETURNING expires`,
			name, h.expires, s.lease.Seconds()).Scan(&expires)
		cancel()
		switch {
		case err == nil:
			h.expires = expires
		case errors.Is(err, pgx.ErrNoRows):
			return // our lease ran out and another holder took the lock
		}
	}
}

// Unlock releases the lock name taken by this Storage. It fails if the
// lock was lost meanwhile (its lease ran out and another edge took it),
// since the work it guarded was then not exclusive.
func (s *Storage) Unlock(ctx context.Context, name string) error {
	s.mu.Lock()
	h := s.held[name]
	delete(s.held, name)
	s.mu.Unlock()
	if h == nil {
		return fmt.Errorf("certmagic storage: unlock %s: not locked by this storage", name)
	}
	close(h.stop)
	<-h.done
	tag, err := s.pool.Exec(ctx, `DELETE FROM panelx.certmagic_locks WHERE key = $1 AND expires = $2`, name, h.expires)
	if err != nil {
		return fmt.Errorf("certmagic storage: unlock %s: %w", name, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("certmagic storage: unlock %s: lock lost: its lease ran out and another holder took it", name)
	}
	return nil
}
