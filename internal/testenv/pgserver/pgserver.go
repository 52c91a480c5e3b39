// Package pgserver starts a private PostgreSQL server for one test: its own
// initdb'd data directory, its own loopback port and unix socket directory,
// run as a child process of the test. The test may stop, restart and kill
// it at will — to see how PanelX answers while the database is down and
// right after it returns — without touching the system cluster on
// 127.0.0.1:5432 or any other test's server.
//
// It uses the server binaries of Debian's postgresql package (the newest
// /usr/lib/postgresql/*/bin, which scripts/services.sh installs), or
// initdb and postgres from PATH elsewhere. When they are missing the test
// is skipped, or fails in CI (see testenv.Missing).
//
// initdb and postgres refuse to run as root: when the test runs as root
// they run as the "postgres" system user (set as the child's credentials,
// not through runuser — see start), otherwise as the current user.
package pgserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/panelx/panelx/internal/testenv"
)

const (
	// readyTimeout bounds how long Start waits for the server to accept
	// connections (crash recovery included).
	readyTimeout = 60 * time.Second
	// stopTimeout bounds a fast shutdown before the server is killed.
	stopTimeout = 30 * time.Second
	// goneTimeout bounds the wait for killed processes to disappear.
	goneTimeout = 10 * time.Second
	// bindRetry is how long a restart waits for its port to become free.
	bindRetry = 10 * time.Second
)

// Server is one private PostgreSQL server. Its methods may be called from
// any goroutine; each returns only once the server is down, or up and
// accepting connections, as the method says.
type Server struct {
	binDir  string
	dir     string // temp dir: the unix socket directory, parent of data
	dataDir string
	port    int                 // set before Start returns, then fixed
	cred    *syscall.Credential // nil: run as the current user
	out     *logBuffer          // output of every incarnation of postgres
	lock    *os.File            // flock'ed while this process owns dir
	// settings are the caller's extra -c settings.
	settings []string

	op   sync.Mutex // serialises start, stop, kill and cleanup
	runs int        // starts so far; guarded by op

	mu   sync.Mutex // guards proc only, never held while waiting
	proc *process   // the running postmaster; nil while the server is down
}

// Start initialises a fresh cluster in a new temporary directory and starts
// a server on a free 127.0.0.1 port, returning once it accepts
// connections. At the end of the test the server is killed and the
// directory removed; if the test failed, the server's output is logged.
//
// settings are more server settings, "name=value" each (for example
// "wal_level=logical"), kept across restarts.
func Start(tb testing.TB, settings ...string) *Server {
	tb.Helper()
	binDir, err := findBinDir()
	if err != nil {
		testenv.Missing(tb, "PostgreSQL server binaries: %v (on Debian: apt-get install postgresql, as scripts/services.sh does)", err)
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		cred, err = postgresCredential()
		if err != nil {
			testenv.Missing(tb, "running as root, and initdb/postgres refuse root: %v", err)
		}
	}
	sweepOnce.Do(func() { sweepStale(tb.Logf) })
	dir, lock, err := makeDir(cred)
	if err != nil {
		tb.Fatalf("pgserver: %v", err)
	}
	s := &Server{
		binDir:   binDir,
		dir:      dir,
		lock:     lock,
		dataDir:  filepath.Join(dir, "data"),
		cred:     cred,
		out:      &logBuffer{},
		settings: settings,
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("pgserver: output of postgres (%s):\n%s", s.dataDir, s.Logs())
		}
		s.cleanup(tb)
	})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	initdb := s.command(ctx, filepath.Join(binDir, "initdb"),
		"-D", s.dataDir, "-U", "postgres", "--auth=trust", "--no-sync",
		"-E", "UTF8", "--locale=C", "--no-instructions")
	if out, err := initdb.CombinedOutput(); err != nil {
		tb.Fatalf("pgserver: %s: %v\n%s", strings.Join(initdb.Args, " "), err, out)
	}

	// A free port can be taken by someone else before postgres binds it:
	// try a few.
	s.op.Lock()
	defer s.op.Unlock()
	for attempt := 1; ; attempt++ {
		s.port = freePort(tb)
		err := s.start()
		if err == nil {
			return s
		}
		if !errors.Is(err, errBind) || attempt == 3 {
			tb.Fatalf("pgserver: %v\n--- postgres output ---\n%s", err, s.Logs())
		}
	}
}

// URL is a superuser ("postgres", trust authentication) URL of the
// database "postgres": postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable.
// It stays the same across Stop, Kill, Start and Restart.
func (s *Server) URL() string { return s.DatabaseURL("postgres") }

// DatabaseURL is the superuser URL of the database name on this server.
func (s *Server) DatabaseURL(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, name)
}

// Port is the server's TCP port on 127.0.0.1.
func (s *Server) Port() int { return s.port }

// Running reports whether the server is up: started, and neither stopped
// nor killed nor exited by itself.
func (s *Server) Running() bool {
	p := s.current()
	return p != nil && !p.exited()
}

func (s *Server) current() *process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc
}

// take returns the running postmaster, if any, and marks the server down.
func (s *Server) take() *process {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc
	s.proc = nil
	return p
}

// Logs returns the output of the server so far, over all its starts.
func (s *Server) Logs() string { return s.out.String() }

// NewDatabase creates an empty database on the running server and returns
// its URL. It is not dropped: it goes away with the server's directory.
func (s *Server) NewDatabase(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.URL())
	if err != nil {
		tb.Fatalf("pgserver: connect to create a database: %v", err)
	}
	defer conn.Close(context.Background())
	name := "test_" + randomHex(6)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("pgserver: create database %s: %v", name, err)
	}
	return s.DatabaseURL(name)
}

// Start starts the stopped (or killed) server again on the same data
// directory and the same port, and returns once it accepts connections —
// after crash recovery, if it was killed. Starting a running server fails
// the test.
func (s *Server) Start(tb testing.TB) {
	tb.Helper()
	s.op.Lock()
	defer s.op.Unlock()
	if s.Running() {
		tb.Fatalf("pgserver: Start: the server on port %d is already running", s.port)
	}
	// The port was ours until a moment ago, but anything on the machine
	// may have taken it since; wait a little for it to come back.
	deadline := time.Now().Add(bindRetry)
	for {
		err := s.start()
		if err == nil {
			return
		}
		if !errors.Is(err, errBind) || time.Now().After(deadline) {
			tb.Fatalf("pgserver: %v\n--- postgres output ---\n%s", err, s.Logs())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// Stop shuts the server down the fast way (SIGINT: abort open
// transactions, disconnect clients, write a shutdown checkpoint) and
// returns once it has exited. After 30 s it is killed instead. Stopping a
// server that is down does nothing.
func (s *Server) Stop(tb testing.TB) {
	tb.Helper()
	s.op.Lock()
	defer s.op.Unlock()
	p := s.take()
	if p == nil || p.exited() {
		return
	}
	_ = syscall.Kill(p.pid, syscall.SIGINT)
	select {
	case <-p.done:
		// The postmaster exits only after all its children have.
	case <-time.After(stopTimeout):
		tb.Errorf("pgserver: Stop: no fast shutdown within %v, killing the server", stopTimeout)
		if err := killTree(p); err != nil {
			tb.Fatalf("pgserver: Stop: %v", err)
		}
	}
}

// Kill crashes the server: SIGKILL to the postmaster and every process it
// started, and returns once they are all gone. The next Start runs crash
// recovery. Killing a server that is down does nothing.
func (s *Server) Kill(tb testing.TB) {
	tb.Helper()
	s.op.Lock()
	defer s.op.Unlock()
	p := s.take()
	if p == nil {
		return
	}
	if err := killTree(p); err != nil {
		tb.Fatalf("pgserver: Kill: %v", err)
	}
}

// Restart is Stop (fast shutdown) then Start on the same port.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.Stop(tb)
	s.Start(tb)
}

// errBind marks a start that failed because the port was taken.
var errBind = errors.New("port in use")

// start runs postgres in the foreground as a child of the test and waits
// until it accepts connections. The caller holds s.op.
func (s *Server) start() error {
	s.runs++
	mark := s.out.Len()
	fmt.Fprintf(s.out, "=== pgserver: start #%d on 127.0.0.1:%d at %s ===\n", s.runs, s.port, time.Now().Format(time.RFC3339Nano))
	args := []string{
		"-D", s.dataDir,
		"-p", strconv.Itoa(s.port),
		"-k", s.dir, // the socket directory; Debian's default is /var/run/postgresql, the system cluster's
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off",
		"-c", "full_page_writes=off",
		// synchronous_commit stays on: with it off a commit returns before
		// its WAL leaves shared memory, so Kill loses transactions that
		// were reported committed (all of them, within the WAL writer's
		// ~200 ms). With fsync off it costs only a write(2) per commit.
		"-c", "max_connections=100",
	}
	for _, kv := range s.settings {
		args = append(args, "-c", kv)
	}
	p, err := s.launch(filepath.Join(s.binDir, "postgres"), args)
	if err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	if err := waitReady(p, s.URL()); err != nil {
		// Leave nothing behind from a failed start.
		_ = killTree(p)
		if strings.Contains(s.out.Since(mark), "could not bind") {
			return fmt.Errorf("postgres on port %d: %w: %v", s.port, errBind, err)
		}
		return fmt.Errorf("postgres on port %d: %w", s.port, err)
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	return nil
}

// launch starts the postmaster.
//
// It runs the binary itself with the postgres user's credentials rather
// than through `runuser -u postgres --`: runuser stays as a parent that
// ignores SIGINT (so no fast shutdown reaches postgres) and turns SIGTERM
// into SIGTERM-then-SIGKILL-after-2s, and killing it leaves postgres
// running. With the credentials set by the fork itself the child we
// signal and wait for is the postmaster.
//
// The child gets its own process group (a ^C at the terminal reaches the
// test, not the server) and SIGKILL when the test process dies (no server
// outlives a crashed or timed-out test binary; its children notice the
// postmaster's death and exit). The parent-death signal belongs to the
// thread that forked, so the fork happens on a goroutine locked to its
// thread that lives until the postmaster has exited.
func (s *Server) launch(path string, args []string) (*process, error) {
	cmd := s.command(context.Background(), path, args...)
	cmd.Stdout = s.out
	cmd.Stderr = s.out
	cmd.SysProcAttr.Setpgid = true
	setPdeathsig(cmd.SysProcAttr)
	// Wait returns even if a straggler still holds the output pipe.
	cmd.WaitDelay = goneTimeout
	p := &process{done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		p.pid = cmd.Process.Pid
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// command prepares initdb or postgres: as the postgres user when the test
// runs as root, in the server's directory (postgres may not be able to
// enter the test's working directory), with a minimal environment so that
// no PG* variable of the test's changes what they do.
func (s *Server) command(ctx context.Context, path string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = s.dir
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + s.dir,
		"LC_ALL=C",
		"LANG=C",
	}
	if tz, ok := os.LookupEnv("TZ"); ok {
		cmd.Env = append(cmd.Env, "TZ="+tz)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	return cmd
}

// waitReady waits until the server accepts a connection and answers a
// ping, or until it exits or readyTimeout passes.
func waitReady(p *process, url string) error {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(readyTimeout)
	var last error
	for {
		if p.exited() {
			return fmt.Errorf("postgres exited while starting: %v", p.err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			err = conn.Ping(ctx)
			conn.Close(ctx)
		}
		cancel()
		if err == nil {
			return nil
		}
		last = err
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not accept connections within %v: %v", readyTimeout, last)
		}
		select {
		case <-p.done:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// cleanup kills the server and removes its directory.
func (s *Server) cleanup(tb testing.TB) {
	s.op.Lock()
	defer s.op.Unlock()
	if p := s.take(); p != nil {
		if err := killTree(p); err != nil {
			tb.Errorf("pgserver cleanup: %v", err)
		}
	}
	// A killed postmaster leaves its small System V shared memory segment
	// behind (the next postmaster on the same data directory would remove
	// it; there will be none).
	if err := removeShm(s.dataDir); err != nil {
		tb.Logf("pgserver cleanup: %v", err)
	}
	if err := os.RemoveAll(s.dir); err != nil {
		tb.Errorf("pgserver cleanup: %v", err)
	}
	s.lock.Close()
}

// dirPrefix starts the name of every server directory; lockName is the
// file in it that its test process keeps flock'ed.
const (
	dirPrefix = "pgsrv-"
	lockName  = "owner.lock"
)

var sweepOnce sync.Once

// sweepStale removes the server directories of test processes that died
// without cleaning up (a panic, a -timeout, a SIGKILL): their lock can be
// taken. Their postmaster died with them (its parent-death signal) and its
// children exit once they notice; any process still working in the data
// directory is killed, then the shared memory segment and the directory
// are removed.
func sweepStale(logf func(string, ...any)) {
	for _, base := range tempBases() {
		dirs, _ := filepath.Glob(filepath.Join(base, dirPrefix+"*"))
		for _, dir := range dirs {
			f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR, 0)
			if err != nil {
				continue // not a server directory, or being created
			}
			if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
				f.Close() // a live test's
				continue
			}
			logf("pgserver: removing %s, left by a test process that died", dir)
			dataDir := filepath.Join(dir, "data")
			if pids := processesIn(dataDir); len(pids) > 0 {
				for _, pid := range pids {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
				deadline := time.Now().Add(goneTimeout)
				for len(processesIn(dataDir)) > 0 && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
			}
			if err := removeShm(dataDir); err != nil {
				logf("pgserver: sweep %s: %v", dir, err)
			}
			if err := os.RemoveAll(dir); err != nil {
				logf("pgserver: sweep %s: %v", dir, err)
			}
			f.Close()
		}
	}
}

// process is one postmaster.
type process struct {
	pid  int
	done chan struct{} // closed once the postmaster has exited and been waited for
	err  error         // the result of Wait; read only after done is closed
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// killTree SIGKILLs the postmaster p and everything it started, and
// returns once they are all gone.
//
// Killing the process group is not enough: every child of the postmaster
// calls setsid() (InitPostmasterChild), so backends, the checkpointer and
// the rest each lead a session and group of their own, and they would
// outlive a SIGKILLed postmaster for a while — the next postmaster on the
// data directory refuses to start while they hold the old shared memory.
// So the postmaster is frozen with SIGSTOP (it forks no more), its
// descendants are found through /proc and frozen too until none is new,
// then all are SIGKILLed, and the wait lasts until none runs.
func killTree(p *process) error {
	var pids []int
	if !p.exited() {
		_ = syscall.Kill(p.pid, syscall.SIGSTOP)
		pids = stopDescendants(p.pid)
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		_ = syscall.Kill(-p.pid, syscall.SIGKILL) // the postmaster's group
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
	}
	select {
	case <-p.done:
	case <-time.After(goneTimeout):
		return fmt.Errorf("postmaster %d did not exit within %v", p.pid, goneTimeout)
	}
	// The killed children, reparented by now, are gone once they are
	// zombies (whoever reaps them).
	deadline := time.Now().Add(goneTimeout)
	for {
		left := slices.DeleteFunc(slices.Clone(pids), func(pid int) bool { return !running(pid) })
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres processes %v still run %v after SIGKILL", left, goneTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stopDescendants SIGSTOPs every descendant of pid (which must be stopped
// itself) until a scan finds no new one, and returns them.
func stopDescendants(pid int) []int {
	seen := map[int]bool{}
	var out []int
	for range 20 {
		added := false
		for _, d := range descendants(pid) {
			if !seen[d] {
				seen[d] = true
				out = append(out, d)
				_ = syscall.Kill(d, syscall.SIGSTOP)
				added = true
			}
		}
		if !added {
			break
		}
	}
	return out
}

// findBinDir returns the newest /usr/lib/postgresql/VERSION/bin that has
// initdb and postgres, or else the directory of initdb on PATH if postgres
// is next to it.
func findBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return compareVersions(versionOf(b), versionOf(a)) })
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	if initdb, err := exec.LookPath("initdb"); err == nil {
		d := filepath.Dir(initdb)
		if isExecutable(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", errors.New("no initdb and postgres under /usr/lib/postgresql/*/bin or on PATH")
}

func versionOf(binDir string) string { return filepath.Base(filepath.Dir(binDir)) }

// compareVersions compares dotted numeric versions ("15", "9.6").
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x - y
		}
	}
	return strings.Compare(a, b)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// postgresCredential returns the uid and gid of the postgres system user.
func postgresCredential() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("no postgres system user to run them as: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// tempBases are the directories server directories are made in, in order
// of preference.
func tempBases() []string {
	if t := os.TempDir(); t != "/tmp" {
		return []string{t, "/tmp"}
	}
	return []string{"/tmp"}
}

// makeDir creates the server's directory, mode 0700 and owned by the user
// postgres runs as, with its lock file taken. Its path must stay short:
// the socket path DIR/.s.PGSQL.PORT must fit in a sockaddr_un (107 bytes).
// When postgres runs as another user it must also be able to reach it,
// which a TMPDIR under /root would not let it.
func makeDir(cred *syscall.Credential) (string, *os.File, error) {
	var lastErr error
	for _, base := range tempBases() {
		if len(base) > 64 {
			lastErr = fmt.Errorf("temp directory %s: path too long for a unix socket directory", base)
			continue
		}
		if cred != nil && !searchableByOthers(base) {
			lastErr = fmt.Errorf("temp directory %s: not reachable by the postgres user", base)
			continue
		}
		dir, err := os.MkdirTemp(base, dirPrefix)
		if err != nil {
			lastErr = err
			continue
		}
		lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			err = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		}
		if err == nil && cred != nil {
			if err = os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
				err = fmt.Errorf("chown %s to postgres: %w", dir, err)
			}
		}
		if err != nil {
			if lock != nil {
				lock.Close()
			}
			os.RemoveAll(dir)
			return "", nil, err
		}
		return dir, lock, nil
	}
	return "", nil, lastErr
}

// searchableByOthers reports whether every directory from / to dir lets
// other users through.
func searchableByOthers(dir string) bool {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for {
		fi, err := os.Stat(dir)
		if err != nil || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return true
		}
		dir = parent
	}
}

func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("pgserver: pick a port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// logBuffer collects postgres's output; safe for the copying goroutines of
// exec.Cmd and the test's reads.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

// Since returns what was written after the first n bytes.
func (b *logBuffer) Since(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf.Bytes()[n:])
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
