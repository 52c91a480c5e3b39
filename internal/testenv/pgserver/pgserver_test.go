package pgserver_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/panelx/panelx/internal/testenv"
	"github.com/panelx/panelx/internal/testenv/pgserver"
)

func timed(t *testing.T, what string, f func()) time.Duration {
	t.Helper()
	start := time.Now()
	f()
	d := time.Since(start)
	t.Logf("%s took %v", what, d.Round(time.Millisecond))
	return d
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func countRows(t *testing.T, conn *pgx.Conn, where string) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM items WHERE "+where).Scan(&n); err != nil {
		t.Fatalf("count rows: %v", err)
	}
	return n
}

// assertDown checks that nothing accepts connections on the server's port.
func assertDown(t *testing.T, s *pgserver.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.URL())
	if err == nil {
		conn.Close(ctx)
		t.Fatalf("the server on port %d accepts connections; it should be down", s.Port())
	}
	if !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("connect to the stopped server: %v; want connection refused", err)
	}
	if s.Running() {
		t.Errorf("Running() = true for a stopped server")
	}
}

func TestRestartKeepsData(t *testing.T) {
	t.Parallel()
	var s *pgserver.Server
	timed(t, "Start (initdb + first start)", func() { s = pgserver.Start(t) })
	if !strings.HasPrefix(s.URL(), "postgres://postgres@127.0.0.1:") || s.Port() == 0 {
		t.Fatalf("URL %q, Port %d", s.URL(), s.Port())
	}
	var url string
	timed(t, "NewDatabase", func() { url = s.NewDatabase(t) })
	if url == s.URL() || !strings.Contains(url, "/test_") {
		t.Fatalf("NewDatabase returned %q", url)
	}

	ctx := context.Background()
	conn := connect(t, url)
	if _, err := conn.Exec(ctx, "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO items VALUES (1, 'before restart')"); err != nil {
		t.Fatal(err)
	}
	var name string
	if err := conn.QueryRow(ctx, "SELECT name FROM items WHERE id = 1").Scan(&name); err != nil || name != "before restart" {
		t.Fatalf("read back: %q, %v", name, err)
	}

	port := s.Port()
	timed(t, "Restart", func() { s.Restart(t) })
	if s.Port() != port {
		t.Fatalf("port changed from %d to %d", port, s.Port())
	}
	// The old connection was closed by the shutdown.
	if err := conn.Ping(ctx); err == nil {
		t.Errorf("a connection from before the restart still works")
	} else {
		t.Logf("old connection after Restart: %v", err)
	}
	conn2 := connect(t, url)
	if err := conn2.QueryRow(ctx, "SELECT name FROM items WHERE id = 1").Scan(&name); err != nil || name != "before restart" {
		t.Fatalf("after restart: %q, %v", name, err)
	}
	if _, err := conn2.Exec(ctx, "INSERT INTO items VALUES (2, 'after restart')"); err != nil {
		t.Fatal(err)
	}

	timed(t, "Stop", func() { s.Stop(t) })
	assertDown(t, s)
	s.Stop(t) // stopping a stopped server does nothing
	timed(t, "Start (stopped server)", func() { s.Start(t) })
	conn3 := connect(t, url)
	if n := countRows(t, conn3, "true"); n != 2 {
		t.Fatalf("%d rows after stop and start, want 2", n)
	}
}

func TestPoolAcrossStop(t *testing.T) {
	t.Parallel()
	s := pgserver.Start(t)
	url := s.NewDatabase(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url) // default settings, as PanelX would
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	query := func(timeout time.Duration) error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		var n int
		return pool.QueryRow(ctx, "SELECT 1").Scan(&n)
	}
	fill(t, pool)
	timed(t, "Stop", func() { s.Stop(t) })
	for i := range 6 {
		start := time.Now()
		err := query(2 * time.Second)
		if err == nil {
			t.Fatalf("query %d while the server is down succeeded", i)
		}
		t.Logf("while down, query %d failed after %v: %v", i, time.Since(start).Round(time.Millisecond), err)
	}
	// Each dead connection failed one query (57P01, the shutdown's
	// goodbye); then the pool dials and is refused. Nothing hangs.

	timed(t, "Start", func() { s.Start(t) })
	restarted := time.Now()
	var failures []error
	for {
		err := query(2 * time.Second)
		if err == nil {
			break
		}
		failures = append(failures, err)
		if time.Since(restarted) > 30*time.Second {
			t.Fatalf("the pool did not recover within 30 s of Start: %v", errors.Join(failures...))
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("pool worked again %v after Start returned, after %d failed queries %v",
		time.Since(restarted).Round(time.Millisecond), len(failures), failures)
	for i := range 10 {
		if err := query(5 * time.Second); err != nil {
			t.Fatalf("query %d after recovery: %v", i, err)
		}
	}

	// An outage nobody queried through: the pool's idle connections are
	// dead when the server is back. pgxpool pings a connection on Acquire
	// only if it was idle for more than a second, so after a quick restart
	// each dead one fails one query; after a longer one they are replaced
	// silently.
	for _, idle := range []time.Duration{0, 1500 * time.Millisecond} {
		fill(t, pool)
		n := int(pool.Stat().IdleConns())
		s.Restart(t)
		time.Sleep(idle)
		var failed []error
		for range 2 * n {
			if err := query(5 * time.Second); err != nil {
				failed = append(failed, err)
			}
		}
		t.Logf("Restart with %d idle connections, then %d queries %v later: %d failed %v",
			n, 2*n, idle, len(failed), failed)
		if len(failed) > n || (idle > time.Second && len(failed) > 0) {
			t.Errorf("%d queries failed, want at most one per dead connection, and none after a second", len(failed))
		}
		if err := query(5 * time.Second); err != nil {
			t.Fatalf("query after the restart: %v", err)
		}
	}
}

// fill leaves a few idle connections in the pool, as a busy server has.
func fill(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := pool.Exec(ctx, "SELECT pg_sleep(0.05)"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}

func TestKillRecovers(t *testing.T) {
	t.Parallel()
	s := pgserver.Start(t)
	url := s.NewDatabase(t)
	ctx := context.Background()
	conn := connect(t, url)
	if _, err := conn.Exec(ctx, "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO items SELECT g, 'committed' FROM generate_series(1, 1000) g"); err != nil {
		t.Fatal(err)
	}
	// A transaction still open at the crash must be gone afterwards.
	open := connect(t, url)
	tx, err := open.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO items VALUES (5000, 'uncommitted')"); err != nil {
		t.Fatal(err)
	}
	// The last commit right before the crash.
	if _, err := conn.Exec(ctx, "INSERT INTO items VALUES (1001, 'last commit')"); err != nil {
		t.Fatal(err)
	}

	timed(t, "Kill", func() { s.Kill(t) })
	assertDown(t, s)
	s.Kill(t) // killing a dead server does nothing
	timed(t, "Start after Kill (crash recovery)", func() { s.Start(t) })
	if logs := s.Logs(); !strings.Contains(logs, "not properly shut down; automatic recovery in progress") {
		t.Errorf("no crash recovery in the server's output:\n%s", logs)
	}
	conn2 := connect(t, url)
	if n := countRows(t, conn2, "name = 'committed'"); n != 1000 {
		t.Errorf("%d committed rows after crash recovery, want 1000", n)
	}
	if n := countRows(t, conn2, "id = 1001"); n != 1 {
		t.Errorf("the last commit before the crash is lost")
	}
	if n := countRows(t, conn2, "name = 'uncommitted'"); n != 0 {
		t.Errorf("an uncommitted row survived the crash")
	}
	if _, err := conn2.Exec(ctx, "INSERT INTO items VALUES (2000, 'after recovery')"); err != nil {
		t.Fatal(err)
	}

	// And a second crash, with a clean restart after it.
	timed(t, "Kill", func() { s.Kill(t) })
	timed(t, "Start after Kill (crash recovery)", func() { s.Start(t) })
	timed(t, "Restart", func() { s.Restart(t) })
	if n := countRows(t, connect(t, url), "true"); n != 1002 {
		t.Errorf("%d rows after the second crash and a restart, want 1002", n)
	}
}

// TestSystemClusterUntouched stops, kills and restarts a private server and
// checks the system cluster (PANELX_TEST_DATABASE_URL) did not restart.
func TestSystemClusterUntouched(t *testing.T) {
	t.Parallel()
	admin := testenv.AdminURL(t)
	ctx := context.Background()
	startTime := func() time.Time {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			testenv.Missing(t, "cannot connect to PANELX_TEST_DATABASE_URL: %v", err)
		}
		defer conn.Close(ctx)
		var ts time.Time
		if err := conn.QueryRow(ctx, "SELECT pg_postmaster_start_time()").Scan(&ts); err != nil {
			t.Fatal(err)
		}
		return ts
	}
	before := startTime()

	s := pgserver.Start(t)
	if s.Port() == 5432 {
		t.Fatalf("the private server got port 5432")
	}
	s.Stop(t)
	s.Start(t)
	s.Kill(t)
	s.Start(t)
	s.Restart(t)

	if after := startTime(); !after.Equal(before) {
		t.Fatalf("the system cluster restarted: pg_postmaster_start_time %v, then %v", before, after)
	}
	t.Logf("system cluster up since %v, untouched", before)
}

// TestTwoServers runs two private servers side by side: stopping one leaves
// the other alone.
func TestTwoServers(t *testing.T) {
	t.Parallel()
	a, b := pgserver.Start(t), pgserver.Start(t)
	if a.Port() == b.Port() {
		t.Fatalf("both servers on port %d", a.Port())
	}
	a.Kill(t)
	conn := connect(t, b.URL())
	if err := conn.Ping(context.Background()); err != nil {
		t.Fatalf("the other server after a Kill: %v", err)
	}
	a.Start(t)
}
