package certstore_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/panelx/panelx/edge/certstore"
	"github.com/panelx/panelx/internal/testenv"
	"github.com/panelx/panelx/store/postgres"
)

// newPool returns the pool of a migrated store on a fresh database.
func newPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	url := testenv.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(s.Close)
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return s.Pool()
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// fast is a Storage whose waiting Lock looks again often.
func fast(pool *pgxpool.Pool, opts ...certstore.Option) *certstore.Storage {
	return certstore.New(pool, append([]certstore.Option{certstore.WithPollInterval(20 * time.Millisecond)}, opts...)...)
}

func TestRoundTrip(t *testing.T) {
	ctx := ctxFor(t)
	s := certstore.New(newPool(t))
	if s.String() != "postgres" {
		t.Errorf("String() = %q", s.String())
	}
	for _, key := range []string{
		"certificates/acme-v02.api.letsencrypt.org-directory/a.com/a.com.crt",
		"acme/ca/users/me@example.com/me.key",
		"last_clean.json",
		`wild/100%_\done`,
		"empty",
	} {
		t.Run(key, func(t *testing.T) {
			before := time.Now().Add(-time.Minute)
			value := []byte("value of " + key)
			if key == "empty" {
				value = []byte{}
			}
			if err := s.Store(ctx, key, value); err != nil {
				t.Fatal(err)
			}
			got, err := s.Load(ctx, key)
			if err != nil || !bytes.Equal(got, value) {
				t.Fatalf("Load = %q, %v; want %q", got, err, value)
			}
			if !s.Exists(ctx, key) {
				t.Error("Exists = false after Store")
			}
			info, err := s.Stat(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if info.Key != key || !info.IsTerminal || info.Size != int64(len(value)) || info.Modified.Before(before) {
				t.Errorf("Stat = %+v", info)
			}

			// Store replaces the value and moves Modified.
			time.Sleep(5 * time.Millisecond)
			if err := s.Store(ctx, key, []byte("new")); err != nil {
				t.Fatal(err)
			}
			if got, _ := s.Load(ctx, key); string(got) != "new" {
				t.Errorf("Load after overwrite = %q", got)
			}
			if again, _ := s.Stat(ctx, key); !again.Modified.After(info.Modified) || again.Size != 3 {
				t.Errorf("Stat after overwrite = %+v, first %+v", again, info)
			}

			if err := s.Delete(ctx, key); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Load(ctx, key); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Load after Delete: %v, want fs.ErrNotExist", err)
			}
			if s.Exists(ctx, key) {
				t.Error("Exists = true after Delete")
			}
		})
	}
}

func TestMissingKeys(t *testing.T) {
	ctx := ctxFor(t)
	s := certstore.New(newPool(t))
	if err := s.Store(ctx, "a/b/c", []byte("x")); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"nope", "a/b/c/d", "a/b/x", "a/bb", "a/"} {
		t.Run(key, func(t *testing.T) {
			if _, err := s.Load(ctx, key); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Load: %v, want fs.ErrNotExist", err)
			}
			if _, err := s.Stat(ctx, key); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Stat: %v, want fs.ErrNotExist", err)
			}
			if _, err := s.List(ctx, key, true); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("List: %v, want fs.ErrNotExist", err)
			}
			if s.Exists(ctx, key) {
				t.Error("Exists = true")
			}
			// certmagic's contract: deleting what is not there is fine.
			if err := s.Delete(ctx, key); err != nil {
				t.Errorf("Delete: %v, want nil", err)
			}
		})
	}
	// A directory is not a file to Load.
	if _, err := s.Load(ctx, "a/b"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a directory: %v, want fs.ErrNotExist", err)
	}
}

// tree is a small certmagic storage, with the LIKE wildcards, a backslash
// and names where component order differs from string order ("a.com" <
// "a.com-x", but "a.com-x/" < "a.com/").
var tree = []string{
	"acme/ca.example/users/me@example.com/me.json",
	"acme/ca.example/users/me@example.com/me.key",
	"certificates/ca/a.com/a.com.crt",
	"certificates/ca/a.com/a.com.json",
	"certificates/ca/a.com/a.com.key",
	"certificates/ca/a.com-x/k",
	"certificates/ca/a.com2/a.com2.crt",
	"certificates/ca/a%b.com/k",
	"certificates/ca/a_b.com/k",
	"certificates/ca/aXb.com/k",
	`certificates/ca/a\b.com/k`,
	`certificates/ca/a\\b.com/k`,
	"certificates/ca/a/deep/er/k",
	"ocsp/a.com-123",
	"last_clean.json",
}

// TestConformsToFileStorage compares List, Stat and Exists, then Delete,
// with certmagic.FileStorage holding the same keys.
func TestConformsToFileStorage(t *testing.T) {
	ctx := ctxFor(t)
	db := certstore.New(newPool(t))
	file := &certmagic.FileStorage{Path: t.TempDir()}
	for _, k := range tree {
		for _, s := range []certmagic.Storage{db, file} {
			if err := s.Store(ctx, k, []byte("v:"+k)); err != nil {
				t.Fatal(err)
			}
		}
	}
	compare := func(t *testing.T, prefixes []string) {
		t.Helper()
		for _, p := range prefixes {
			for _, recursive := range []bool{false, true} {
				want, wantErr := file.List(ctx, p, recursive)
				got, err := db.List(ctx, p, recursive)
				if !slices.Equal(got, want) || errors.Is(err, fs.ErrNotExist) != errors.Is(wantErr, fs.ErrNotExist) || (err == nil) != (wantErr == nil) {
					t.Errorf("List(%q, %v)\n got %q, %v\nwant %q, %v", p, recursive, got, err, want, wantErr)
				}
			}
			want, wantErr := file.Stat(ctx, p)
			got, err := db.Stat(ctx, p)
			if errors.Is(err, fs.ErrNotExist) != errors.Is(wantErr, fs.ErrNotExist) || (err == nil) != (wantErr == nil) ||
				got.Key != want.Key || got.IsTerminal != want.IsTerminal || (want.IsTerminal && got.Size != want.Size) {
				t.Errorf("Stat(%q) = %+v, %v; want %+v, %v", p, got, err, want, wantErr)
			}
			if err == nil && got.Modified.IsZero() {
				t.Errorf("Stat(%q) has no Modified", p)
			}
			if g, w := db.Exists(ctx, p), file.Exists(ctx, p); g != w {
				t.Errorf("Exists(%q) = %v, want %v", p, g, w)
			}
		}
	}
	prefixes := []string{
		"", "acme", "acme/ca.example/users", "certificates", "certificates/ca",
		"certificates/ca/a.com", "certificates/ca/a.com/a.com.crt", "certificates/ca/a",
		"certificates/ca/a%b.com", "certificates/ca/a_b.com", `certificates/ca/a\b.com`, `certificates/ca/a\\b.com`,
		"certificates/ca/a%", "certificates/ca/a_", "certificates/c", "certificates/ca/a.co",
		"ocsp", "last_clean.json", "missing", "acme/ca.example/users/me@example.com/me.pem",
	}
	compare(t, prefixes)

	// Delete a file, directories (one of them a wildcard's lookalike, one
	// a prefix of sibling names), and keys that are not there.
	for _, k := range []string{
		"certificates/ca/a.com/a.com.json", "certificates/ca/a_b.com", `certificates/ca/a\b.com`,
		"certificates/ca/a.com", "certificates/ca/a%", "certificates/ca/a.co", "missing",
	} {
		for _, s := range []certmagic.Storage{db, file} {
			if err := s.Delete(ctx, k); err != nil {
				t.Errorf("%v: Delete(%q): %v", s, k, err)
			}
		}
	}
	compare(t, prefixes)
}

// TestWildcardsAreLiteral checks that %, _ and \ in a key match only
// themselves in the prefix queries.
func TestWildcardsAreLiteral(t *testing.T) {
	ctx := ctxFor(t)
	s := certstore.New(newPool(t))
	// What each would match if it were not escaped (\b is a plain b).
	lookalikes := map[string]string{"%": "w/aZZb", "_": "w/aZb", `\`: "w/ab"}
	for c, lookalike := range lookalikes {
		t.Run(c, func(t *testing.T) {
			dir := "w/a" + c + "b"
			for _, k := range []string{dir + "/k", "w/aZb/k", lookalike + "/k"} {
				if err := s.Store(ctx, k, []byte("x")); err != nil {
					t.Fatal(err)
				}
			}
			if got, err := s.List(ctx, dir, true); err != nil || !slices.Equal(got, []string{dir + "/k"}) {
				t.Errorf("List(%q) = %q, %v", dir, got, err)
			}
			if s.Exists(ctx, "w/a"+c) {
				t.Errorf("Exists(%q) = true", "w/a"+c)
			}
			if err := s.Delete(ctx, dir); err != nil {
				t.Fatal(err)
			}
			if s.Exists(ctx, dir) || !s.Exists(ctx, "w/aZb/k") || !s.Exists(ctx, lookalike+"/k") {
				t.Errorf("Delete(%q) removed the wrong keys", dir)
			}
			if err := s.Delete(ctx, "w"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestLockExcludesUntilUnlock(t *testing.T) {
	ctx := ctxFor(t)
	pool := newPool(t)
	a, b := fast(pool), fast(pool)
	if err := a.Lock(ctx, "issue_cert_a.com"); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.TryLock(ctx, "issue_cert_a.com"); ok || err != nil {
		t.Fatalf("TryLock of a held lock = %v, %v", ok, err)
	}
	if ok, err := a.TryLock(ctx, "issue_cert_a.com"); ok || err != nil {
		t.Fatalf("TryLock by the holder itself = %v, %v", ok, err)
	}
	// Another name is another lock.
	if err := b.Lock(ctx, "issue_cert_b.com"); err != nil {
		t.Fatal(err)
	}

	got := make(chan error, 1)
	go func() { got <- b.Lock(ctx, "issue_cert_a.com") }()
	select {
	case err := <-got:
		t.Fatalf("second Lock returned while the lock is held: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := a.Unlock(ctx, "issue_cert_a.com"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("second Lock did not return promptly after Unlock")
	}
	for _, name := range []string{"issue_cert_a.com", "issue_cert_b.com"} {
		if err := b.Unlock(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := a.TryLock(ctx, "issue_cert_a.com"); !ok || err != nil {
		t.Fatalf("TryLock after Unlock = %v, %v", ok, err)
	}
	if err := a.Unlock(ctx, "issue_cert_a.com"); err != nil {
		t.Fatal(err)
	}
	if err := a.Unlock(ctx, "never_locked"); err == nil {
		t.Error("Unlock of a lock never taken succeeded")
	}
}

func TestLockTakesOverFromVanishedHolder(t *testing.T) {
	ctx := ctxFor(t)
	pool := newPool(t)
	if _, err := pool.Exec(ctx, `INSERT INTO panelx.certmagic_locks (key, expires) VALUES ('crashed', now() - interval '1 second')`); err != nil {
		t.Fatal(err)
	}
	s := fast(pool)
	lockCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.Lock(lockCtx, "crashed"); err != nil {
		t.Fatalf("Lock over an expired lock: %v", err)
	}
	var live bool
	if err := pool.QueryRow(ctx, `SELECT expires > now() FROM panelx.certmagic_locks WHERE key = 'crashed'`).Scan(&live); err != nil || !live {
		t.Fatalf("lock row after takeover: live=%v, %v", live, err)
	}
	if err := s.Unlock(ctx, "crashed"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM panelx.certmagic_locks`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("lock rows after Unlock: %d, %v", n, err)
	}
}

func TestLockHonoursContext(t *testing.T) {
	ctx := ctxFor(t)
	pool := newPool(t)
	holder, waiter := fast(pool), fast(pool)
	if err := holder.Lock(ctx, "held"); err != nil {
		t.Fatal(err)
	}
	defer holder.Unlock(ctx, "held")

	short, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := waiter.Lock(short, "held"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Lock past its deadline: %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Lock took %v to notice its deadline", d)
	}

	cancelled, cancel := context.WithCancel(ctx)
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	if err := waiter.Lock(cancelled, "held"); !errors.Is(err, context.Canceled) {
		t.Errorf("Lock when cancelled: %v, want context.Canceled", err)
	}
	if err := waiter.Lock(cancelled, "free"); !errors.Is(err, context.Canceled) {
		t.Errorf("Lock with a cancelled context: %v, want context.Canceled", err)
	}
}

// TestLeaseIsRefreshed holds a lock for several leases: the refresher
// keeps it from being taken over.
func TestLeaseIsRefreshed(t *testing.T) {
	ctx := ctxFor(t)
	pool := newPool(t)
	lease := certstore.WithLease(400 * time.Millisecond)
	a, b := fast(pool, lease), fast(pool, lease)
	if err := a.Lock(ctx, "long"); err != nil {
		t.Fatal(err)
	}
	var first time.Time
	if err := pool.QueryRow(ctx, `SELECT expires FROM panelx.certmagic_locks WHERE key = 'long'`).Scan(&first); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if ok, err := b.TryLock(ctx, "long"); ok || err != nil {
			t.Fatalf("lock taken over while its holder refreshes it: %v, %v", ok, err)
		}
	}
	var later time.Time
	if err := pool.QueryRow(ctx, `SELECT expires FROM panelx.certmagic_locks WHERE key = 'long'`).Scan(&later); err != nil {
		t.Fatal(err)
	}
	if !later.After(first.Add(time.Second)) {
		t.Errorf("lease not extended: first %v, now %v", first, later)
	}
	if err := a.Unlock(ctx, "long"); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.TryLock(ctx, "long"); !ok || err != nil {
		t.Fatalf("TryLock after Unlock = %v, %v", ok, err)
	}
	if err := b.Unlock(ctx, "long"); err != nil {
		t.Fatal(err)
	}
}

// TestLostLockIsNotReleased: a holder whose lease ran out and whose lock
// another edge took over must not release the new holder's lock.
func TestLostLockIsNotReleased(t *testing.T) {
	ctx := ctxFor(t)
	pool := newPool(t)
	stalled, next := fast(pool), fast(pool)
	if err := stalled.Lock(ctx, "job"); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE panelx.certmagic_locks SET expires = now() - interval '1 second' WHERE key = 'job'`); err != nil {
		t.Fatal(err)
	}
	if err := next.Lock(ctx, "job"); err != nil {
		t.Fatal(err)
	}
	if err := stalled.Unlock(ctx, "job"); err == nil {
		t.Error("Unlock of a lost lock succeeded")
	}
	if ok, err := fast(pool).TryLock(ctx, "job"); ok || err != nil {
		t.Fatalf("the new holder's lock was released: TryLock = %v, %v", ok, err)
	}
	if err := next.Unlock(ctx, "job"); err != nil {
		t.Fatal(err)
	}
}

// TestTwoEdges runs two Storage values on one database as two edges: they
// see each other's keys, and of many workers racing to obtain the same
// certificate under the lock, exactly one does.
func TestTwoEdges(t *testing.T) {
	ctx := ctxFor(t)
	pool := newPool(t)
	edges := []*certstore.Storage{fast(pool), fast(pool)}
	if err := edges[0].Store(ctx, "acme/ca/users/me/me.key", []byte("account")); err != nil {
		t.Fatal(err)
	}
	if got, err := edges[1].Load(ctx, "acme/ca/users/me/me.key"); err != nil || string(got) != "account" {
		t.Fatalf("other edge Load = %q, %v", got, err)
	}
	if err := edges[1].Delete(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if edges[0].Exists(ctx, "acme/ca/users/me/me.key") {
		t.Fatal("key deleted by one edge still exists for the other")
	}

	const cert = "certificates/ca/a.com/a.com.crt"
	var orders, inside atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		s := edges[i%2]
		wg.Go(func() {
			if err := s.Lock(ctx, "issue_cert_a.com"); err != nil {
				t.Error(err)
				return
			}
			if inside.Add(1) != 1 {
				t.Error("two workers inside the lock at once")
			}
			if !s.Exists(ctx, cert) {
				orders.Add(1)
				time.Sleep(50 * time.Millisecond) // the ACME order
				if err := s.Store(ctx, cert, []byte("cert")); err != nil {
					t.Error(err)
				}
			}
			inside.Add(-1)
			if err := s.Unlock(ctx, "issue_cert_a.com"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := orders.Load(); n != 1 {
		t.Errorf("certificate ordered %d times, want 1", n)
	}
}
