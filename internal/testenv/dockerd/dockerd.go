// Package dockerd starts a private, second Docker Engine for one test, which
// the test may stop, restart and kill at will — to see how PanelX behaves
// when "the Docker Engine itself is restarted, as a package upgrade does" —
// without disturbing the main daemon on /var/run/docker.sock or the other
// tests that use it in parallel.
//
//	e := dockerd.Start(t, dockerd.Options{})
//	cli := e.Client(t) // or DOCKER_HOST=e.Host()
//	... run containers with a restart policy ...
//	e.Restart(t)       // SIGTERM, wait, start again with the same state
//	e.Kill(t)          // SIGKILL, as a crash
//	e.Start(t)
//
// Everything of the engine lives under one short directory /tmp/pxdNNN
// (unix socket paths are limited to ~108 bytes, so not t.TempDir()):
//
//	docker.sock       the API (Host), unix socket only, no TCP
//	containerd.sock   the engine's own containerd (see below)
//	data/             --data-root: images, containers, volumes, networks
//	exec/             --exec-root: netns, runc state, libnetwork sockets
//	daemon.json       --config-file, rewritten by the harness
//	dockerd.log       output of every dockerd run, printed when the test fails
//	containerd.log    output of containerd
//
// The engine shares the host's network namespace, so it pulls from the
// in-process registry of package testimage on 127.0.0.1 (an insecure
// registry by default) and the test reaches containers over their IPs.
//
// # Keeping out of the main daemon's way
//
// Its own containerd. dockerd 20.10 without --containerd uses the system
// containerd whenever /run/containerd/containerd.sock exists (it starts a
// managed one under the exec-root only when that socket is absent), and two
// engines on one containerd share the namespace "moby". The harness starts
// containerd itself from a generated config (root, state and sockets under
// the directory, CRI disabled) and passes --containerd. containerd keeps
// running while dockerd is stopped or killed, as a separately packaged
// containerd does during a docker upgrade; it is stopped at cleanup.
//
// Its own default bridge: --bridge pxdNNN, a bridge the harness creates
// (dockerd insists that a bridge with a non-default name exist) and that
// dockerd addresses from the engine's pool. --bridge none is NOT an option:
// dockerd then deletes the interface named docker0 — the main daemon's
// bridge — at every start.
//
// Live restore on at every start. For the same reason: on every start after
// the first, when a default address pool is configured, dockerd (20.10 and
// current versions) deletes docker0 unless live restore is enabled
// ("Clear stale bridge network" in daemon/daemon_unix.go). So daemon.json
// says "live-restore": true while dockerd starts and, unless
// Options.LiveRestore, the harness then rewrites it to false and reloads it
// with SIGHUP (live-restore is reloadable) before Start returns. Stop
// therefore stops the containers as an engine without live restore does,
// and restart policies apply at the next start. After a crash (Kill, or a
// Stop that needed SIGKILL) containers still run in containerd; an engine
// without live restore stops them when it starts. The harness does that
// with dockerd itself: a recovery run on a socket nobody else knows
// (recover.sock) restores them, is reloaded to live-restore false and shut
// down, which stops them the way dockerd does; then the real start follows.
//
// Its own addresses: --default-address-pool base=10.X.0.0/16,size=24 with X
// in 200..250, chosen free of the host's addresses and routes, of the main
// daemon's networks and address pools, and of the other private engines
// (also in other test processes, through the "pool" file in their
// directories). dockerd also skips /24s that overlap host routes.
//
// No iptables: --iptables=false --ip-masq=false --ip6tables=false. With
// iptables, dockerd removes and recreates the DOCKER and DOCKER-ISOLATION-*
// chains at start, and those are the main daemon's. Without them, published
// ports work through the userland proxy (--userland-proxy=true) and the host
// reaches container IPs directly, but containers have no NAT to the outside,
// and on a host where the main daemon has set the FORWARD policy to DROP
// with br_netfilter loaded, containers cannot reach each other: see
// Options.InterContainer. --ip-forward=false leaves the host's ip_forward
// sysctl alone.
//
// Its own config and identity: --config-file points to the engine's
// daemon.json, so a host /etc/docker/daemon.json does not apply; for dockerd
// < 23 it sets "deprecated-key-path" under the directory, because 20.10
// otherwise reads /etc/docker/key.json and reports the main daemon's engine
// ID (or creates that file on a host without one).
//
// # Cleanup
//
// At the end of the test the harness removes every container and unused
// network through the API (starting dockerd once more if the test left it
// stopped), stops dockerd and containerd, force-deletes leftover runc
// containers, kills processes still using the directory (shims), deletes
// the engine's bridges and iptables rule, unmounts everything under the
// directory (deepest first, MNT_DETACH) and removes it.
//
// dockerd and containerd die with the test process (PR_SET_PDEATHSIG); what
// a killed test leaves behind (container shims, mounts, bridges in the
// private pool) cannot touch the main daemon, and is swept by the next Start
// in any test process: each directory holds a lock file that its owner keeps
// flock'ed, so a directory whose lock can be taken belongs to a dead test.
package dockerd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"github.com/panelx/panelx/internal/testenv"
)

// Timeouts are generous for slow CI machines; the happy path polls often
// and takes well under two seconds.
const (
	// StartTimeout bounds waiting for containerd's socket, for dockerd's
	// first answer to Ping and for a configuration reload.
	StartTimeout = 60 * time.Second
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL.
	StopTimeout = 30 * time.Second
)

// tmpRoot is where engine directories live, whatever TMPDIR says: socket
// paths under it must stay short.
const tmpRoot = "/tmp"

// Names inside an engine directory.
const (
	lockName    = "owner.lock"
	poolName    = "pool"
	dockerLog   = "dockerd.log"
	ctrdLog     = "containerd.log"
	dockerSock  = "docker.sock"
	recoverSock = "recover.sock"
	ctrdSock    = "containerd.sock"
	daemonJSON  = "daemon.json"
)

// Options configure Start.
type Options struct {
	// LiveRestore keeps live restore enabled: containers keep running while
	// dockerd is stopped or killed (containerd stays up), and dockerd
	// reattaches to them when it starts. Do not pass --live-restore in Args.
	LiveRestore bool
	// InterContainer lets containers of the engine reach each other. Without
	// it, on a host where the main daemon set the iptables FORWARD policy to
	// DROP and bridge traffic goes through iptables (br_netfilter), packets
	// between two containers of the private engine are dropped, even on the
	// same network. It inserts one rule at the top of FORWARD,
	//
	//	-s POOL -d POOL -m comment --comment panelx-testenv-dockerd:DIR -j ACCEPT
	//
	// which matches only the engine's own address pool and is removed at
	// cleanup. Networks of the engine are then not isolated from each other.
	InterContainer bool
	// LogLevel is dockerd's --log-level; default "warn".
	LogLevel string
	// Args are appended to dockerd's command line. Start rejects the flags
	// the harness sets itself (see reservedFlags): some of them decide
	// whether the engine keeps out of the main daemon's way.
	Args []string
}

// reservedFlags are the dockerd flags that Options.Args must not set.
var reservedFlags = map[string]bool{
	"--config-file": true, "-H": true, "--host": true, "--data-root": true, "-g": true, "--graph": true,
	"--exec-root": true, "-p": true, "--pidfile": true, "--containerd": true,
	"-b": true, "--bridge": true, "--bip": true, "--iptables": true, "--ip6tables": true,
	"--ip-masq": true, "--ip-forward": true, "--default-address-pool": true, "--live-restore": true,
}

// Engine is a private dockerd with its own containerd.
type Engine struct {
	dir     string
	bridge  string // the default bridge, named after dir
	pool    netip.Prefix
	opts    Options
	version int // dockerd major version
	lock    *os.File

	ctx    context.Context // processes are killed when it is canceled
	cancel context.CancelFunc

	mu         sync.Mutex
	dockerd    *process
	containerd *process
	apiVersion string
}

// Start starts a private engine and registers its cleanup with t. A missing
// dockerd, containerd, runc or ip, or a process that is not root, is
// reported through testenv.Missing (fails in CI, skips elsewhere).
func Start(t testing.TB, opts Options) *Engine {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Missing(t, "a private Docker Engine needs root (euid %d)", os.Geteuid())
	}
	bins := []string{"dockerd", "containerd", "runc", "ip"}
	if opts.InterContainer {
		bins = append(bins, "iptables")
	}
	for _, bin := range bins {
		if _, err := exec.LookPath(bin); err != nil {
			testenv.Missing(t, "%s is not installed: %v", bin, err)
		}
	}
	for _, arg := range opts.Args {
		if name, _, _ := strings.Cut(arg, "="); reservedFlags[name] {
			t.Fatalf("dockerd: Options.Args must not set %s: the harness sets it (see the package documentation)", name)
		}
	}
	major, err := dockerdMajor()
	if err != nil {
		t.Fatalf("dockerd: %v", err)
	}
	sweepOnce.Do(func() { sweepStale(t.Logf) })

	dir, lock, err := makeDir("pxd")
	if err != nil {
		t.Fatalf("dockerd: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Engine{dir: dir, bridge: filepath.Base(dir), lock: lock, opts: opts, version: major, ctx: ctx, cancel: cancel}
	if e.opts.LogLevel == "" {
		e.opts.LogLevel = "warn"
	}
	t.Cleanup(func() { e.cleanup(t) })

	if e.pool, err = pickPool(dir); err != nil {
		t.Fatalf("dockerd: %v", err)
	}
	if err := e.setup(); err != nil {
		t.Fatalf("dockerd: %v", err)
	}
	e.Start(t)
	return e
}

// Host is the DOCKER_HOST value of the engine, "unix:///tmp/pxdNNN/docker.sock".
func (e *Engine) Host() string { return e.host(dockerSock) }

func (e *Engine) host(sock string) string { return "unix://" + filepath.Join(e.dir, sock) }

// Dir is the engine's directory; it is gone after cleanup.
func (e *Engine) Dir() string { return e.dir }

// AddressPool is the engine's --default-address-pool base, a /16 that its
// default bridge and its user-defined networks are carved from in /24s.
func (e *Engine) AddressPool() netip.Prefix { return e.pool }

// Bridge is the name of the engine's default bridge (network "bridge").
func (e *Engine) Bridge() string { return e.bridge }

// Running reports whether dockerd is running (not whether it answers).
func (e *Engine) Running() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.dockerd != nil && !e.dockerd.exited()
}

// Output returns what dockerd and containerd printed so far, all runs.
func (e *Engine) Output() string { return daemonOutput(e.dir, "") }

// daemonOutput is what the dockerd and containerd whose files are in dir
// printed, each under a heading (prefixed with who, when not "").
func daemonOutput(dir, who string) string {
	var b strings.Builder
	for _, name := range []string{dockerLog, ctrdLog} {
		data, _ := os.ReadFile(filepath.Join(dir, name))
		fmt.Fprintf(&b, "----- %s%s -----\n%s", who, name, data)
	}
	return b.String()
}

// Client returns a client of the engine, its API version negotiated, closed
// when t ends. It works across restarts of the engine.
func (e *Engine) Client(t testing.TB) *client.Client {
	t.Helper()
	e.mu.Lock()
	v := e.apiVersion
	e.mu.Unlock()
	return testClient(t, e.Host(), v)
}

// testClient is a client of the engine at host, closed when t ends. With
// the API version seen at start it negotiates without a request, so that
// it works while the engine is stopped and concurrent first requests do
// not race to negotiate.
func testClient(t testing.TB, host, apiVersion string) *client.Client {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.WithHost(host), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatalf("dockerd: client of %s: %v", host, err)
	}
	if apiVersion != "" {
		cli.NegotiateAPIVersionPing(types.Ping{APIVersion: apiVersion})
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// Start starts dockerd again (and containerd if it is not running) on the
// same directories and waits until it answers. Containers with a restart
// policy come back, as after a package upgrade. Start fails the test when
// dockerd is already running.
func (e *Engine) Start(t testing.TB) {
	t.Helper()
	if err := e.start(); err != nil {
		t.Fatalf("dockerd: %v", err)
	}
}

// Stop sends SIGTERM to dockerd and waits for it to exit, sending SIGKILL
// after StopTimeout. Without LiveRestore dockerd stops the containers first.
// containerd keeps running.
func (e *Engine) Stop(t testing.TB) {
	t.Helper()
	if err := e.stop(); errors.Is(err, errKilled) {
		t.Logf("dockerd: %v", err)
	} else if err != nil {
		t.Fatalf("dockerd: %v", err)
	}
}

// Kill sends SIGKILL to dockerd, as a crash, and waits for it to exit.
// Containers keep running in containerd until dockerd starts again, which
// stops them and applies their restart policies (unless LiveRestore).
func (e *Engine) Kill(t testing.TB) {
	t.Helper()
	if err := e.kill(); err != nil {
		t.Fatalf("dockerd: %v", err)
	}
}

// Restart is Stop then Start.
func (e *Engine) Restart(t testing.TB) {
	t.Helper()
	e.Stop(t)
	e.Start(t)
}

// setup writes the configuration, creates the default bridge and, for
// InterContainer, the iptables rule.
func (e *Engine) setup() error {
	for _, d := range []string{"data", "exec"} {
		if err := os.MkdirAll(filepath.Join(e.dir, d), 0o700); err != nil {
			return err
		}
	}
	ctrdTOML := containerdConfig(e.dir)
	if err := os.WriteFile(filepath.Join(e.dir, "containerd.toml"), []byte(ctrdTOML), 0o600); err != nil {
		return err
	}
	// dockerd addresses the bridge itself, from the pool, at first start.
	for _, args := range [][]string{
		{"link", "add", "name", e.bridge, "type", "bridge"},
		{"link", "set", e.bridge, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	if e.opts.InterContainer {
		spec := []string{"FORWARD", "-s", e.pool.String(), "-d", e.pool.String(),
			"-m", "comment", "--comment", ruleMarker(e.dir), "-j", "ACCEPT"}
		if out, err := exec.Command("iptables", append([]string{"-w", "-I"}, spec...)...).CombinedOutput(); err != nil {
			return fmt.Errorf("iptables -I %s: %v: %s", strings.Join(spec, " "), err, out)
		}
	}
	return nil
}

// containerdConfig is the configuration of a containerd of its own for the
// engine in dir: root, state and sockets under dir, CRI off.
func containerdConfig(dir string) string {
	q := func(elem ...string) string { return strconv.Quote(filepath.Join(append([]string{dir}, elem...)...)) }
	return fmt.Sprintf(`version = 2
root = %s
state = %s
disabled_plugins = ["io.containerd.grpc.v1.cri"]
oom_score = 0

[grpc]
  address = %s

[ttrpc]
  address = %s

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = %s
`, q("data", "containerd"), q("exec", "containerd"), q(ctrdSock), q(ctrdSock+".ttrpc"), q("data", "containerd", "opt"))
}

// writeDaemonJSON writes the engine's daemon.json.
func (e *Engine) writeDaemonJSON(liveRestore bool) error {
	cfg := map[string]any{"live-restore": liveRestore}
	if e.version < 23 {
		// dockerd < 23 derives its engine ID from a trust key, by default
		// /etc/docker/key.json: the main daemon's. Later versions keep
		// the ID under the data root and reject this key.
		cfg["deprecated-key-path"] = filepath.Join(e.dir, "key.json")
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(e.dir, daemonJSON), append(b, '\n'), 0o600)
}

func (e *Engine) dockerdArgs(sock string) []string {
	args := []string{
		"--config-file", filepath.Join(e.dir, daemonJSON),
		"--host", e.host(sock),
		"--data-root", filepath.Join(e.dir, "data"),
		"--exec-root", filepath.Join(e.dir, "exec"),
		"--pidfile", filepath.Join(e.dir, "docker.pid"),
		"--containerd", filepath.Join(e.dir, ctrdSock),
		"--bridge", e.bridge,
		"--iptables=false",
		"--ip6tables=false",
		"--ip-masq=false",
		"--ip-forward=false",
		"--userland-proxy=true",
		"--default-address-pool", "base=" + e.pool.String() + ",size=24",
		"--log-level", e.opts.LogLevel,
	}
	return append(args, e.opts.Args...)
}

func (e *Engine) start() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.dockerd != nil && !e.dockerd.exited() {
		return errors.New("start: dockerd is already running")
	}
	if e.containerd == nil || e.containerd.exited() {
		if err := e.startContainerd(); err != nil {
			return err
		}
	}
	if !e.opts.LiveRestore {
		n, err := e.runningContainers()
		if err != nil {
			return err
		}
		if n > 0 {
			if err := e.recoverContainers(); err != nil {
				return err
			}
		}
	}
	p, v, err := e.startDockerd(dockerSock)
	if err != nil {
		return err
	}
	e.dockerd, e.apiVersion = p, v
	if !e.opts.LiveRestore {
		if err := e.reloadLiveRestore(dockerSock, p, false); err != nil {
			return err
		}
	}
	return nil
}

// startDockerd starts dockerd serving on sock, live restore enabled, and
// waits until it answers. It returns the process and the API version.
func (e *Engine) startDockerd(sock string) (*process, string, error) {
	if err := e.writeDaemonJSON(true); err != nil {
		return nil, "", err
	}
	// The previous dockerd is known to be gone; the pidfile it left after
	// a SIGKILL would stop the new one if its PID had been reused.
	_ = os.Remove(filepath.Join(e.dir, "docker.pid"))
	p, err := spawn(e.ctx, filepath.Join(e.dir, dockerLog), "dockerd", e.dockerdArgs(sock)...)
	if err != nil {
		return nil, "", fmt.Errorf("start dockerd: %w", err)
	}
	v, err := e.waitPing(sock, p)
	if err != nil {
		_ = p.stop(5 * time.Second)
		return nil, "", fmt.Errorf("%w\n%s", err, tail(filepath.Join(e.dir, dockerLog), 8<<10))
	}
	return p, v, nil
}

// reloadLiveRestore rewrites daemon.json and makes dockerd reload it (SIGHUP),
// then waits until Info reports the new setting.
func (e *Engine) reloadLiveRestore(sock string, p *process, on bool) error {
	if err := e.writeDaemonJSON(on); err != nil {
		return err
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		return fmt.Errorf("reload dockerd: %w", err)
	}
	cli, err := client.NewClientWithOpts(client.WithHost(e.host(sock)), client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer cli.Close()
	deadline := time.Now().Add(StartTimeout)
	for {
		ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
		info, err := cli.Info(ctx)
		cancel()
		if err == nil && info.LiveRestoreEnabled == on {
			return nil
		}
		if time.Now().After(deadline) || p.exited() {
			return fmt.Errorf("dockerd did not reload live-restore=%v within %s (info: %v)\n%s", on, StartTimeout, err, tail(filepath.Join(e.dir, dockerLog), 8<<10))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// recoverContainers stops the containers that survived a crash of dockerd,
// the way dockerd without live restore does when it starts: a dockerd on a
// private socket restores them (live restore on, so it keeps docker0
// alone), is switched to live-restore false and shut down, which stops
// them. Their restart policies then apply at the real start.
func (e *Engine) recoverContainers() error {
	p, _, err := e.startDockerd(recoverSock)
	if err != nil {
		return fmt.Errorf("recovery run: %w", err)
	}
	if err := e.reloadLiveRestore(recoverSock, p, false); err != nil {
		_ = p.stop(StopTimeout)
		return fmt.Errorf("recovery run: %w", err)
	}
	if err := p.stop(StopTimeout); err != nil {
		return fmt.Errorf("recovery run: %w", err)
	}
	return nil
}

// runningContainers counts the containers that runc reports running or
// paused under the engine's runtime root.
func (e *Engine) runningContainers() (int, error) {
	root := filepath.Join(e.dir, "exec", "runtime-runc", "moby")
	if _, err := os.Stat(root); errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	out, err := exec.Command("runc", "--root", root, "list", "--format", "json").Output()
	if err != nil {
		return 0, fmt.Errorf("runc list: %w", err)
	}
	var list []struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(out, &list); err != nil {
		return 0, fmt.Errorf("runc list: %w: %s", err, out)
	}
	n := 0
	for _, c := range list {
		if c.Status == "running" || c.Status == "paused" {
			n++
		}
	}
	return n, nil
}

func (e *Engine) startContainerd() error {
	p, err := startContainerdIn(e.ctx, e.dir)
	if err != nil {
		return err
	}
	e.containerd = p
	return nil
}

// startContainerdIn starts containerd with dir's configuration and waits
// until it listens.
func startContainerdIn(ctx context.Context, dir string) (*process, error) {
	sock := filepath.Join(dir, ctrdSock)
	_ = os.Remove(sock)
	p, err := spawn(ctx, filepath.Join(dir, ctrdLog), "containerd",
		"--config", filepath.Join(dir, "containerd.toml"), "--log-level", "warn")
	if err != nil {
		return nil, fmt.Errorf("start containerd: %w", err)
	}
	deadline := time.Now().Add(StartTimeout)
	for {
		c, err := net.DialTimeout("unix", sock, time.Second)
		if err == nil {
			c.Close()
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("containerd exited during start: %v\n%s", p.err, tail(filepath.Join(dir, ctrdLog), 8<<10))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = p.stop(5 * time.Second)
			return nil, fmt.Errorf("containerd did not listen on %s within %s: %v\n%s", sock, StartTimeout, err, tail(filepath.Join(dir, ctrdLog), 8<<10))
		}
	}
}

// waitPing waits until dockerd answers Ping on sock and returns its API
// version.
func (e *Engine) waitPing(sock string, p *process) (string, error) {
	return pingUntil(e.ctx, e.host(sock), p)
}

// pingUntil waits until the dockerd p answers Ping on host and returns its
// API version.
func pingUntil(ctx context.Context, host string, p *process) (string, error) {
	cli, err := client.NewClientWithOpts(client.WithHost(host), client.WithAPIVersionNegotiation())
	if err != nil {
		return "", err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	go func() {
		select {
		case <-p.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	var last error
	for {
		pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
		ping, err := cli.Ping(pctx)
		pcancel()
		if err == nil {
			return ping.APIVersion, nil
		}
		last = err
		select {
		case <-p.done:
			return "", fmt.Errorf("dockerd exited during start: %v", p.err)
		case <-ctx.Done():
			return "", fmt.Errorf("dockerd did not answer on %s within %s: %v", host, StartTimeout, last)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (e *Engine) stop() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.dockerd == nil || e.dockerd.exited() {
		return errors.New("stop: dockerd is not running")
	}
	return e.dockerd.stop(StopTimeout)
}

func (e *Engine) kill() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.dockerd == nil || e.dockerd.exited() {
		return errors.New("kill: dockerd is not running")
	}
	_ = e.dockerd.cmd.Process.Signal(syscall.SIGKILL)
	if !e.dockerd.wait(StopTimeout) {
		return errors.New("kill: dockerd did not exit after SIGKILL")
	}
	return nil
}

// cleanup removes everything of the engine; see the package documentation.
func (e *Engine) cleanup(t testing.TB) {
	t.Helper()
	e.removeThroughAPI(t)
	e.mu.Lock()
	for _, p := range []*process{e.dockerd, e.containerd} {
		if p != nil && !p.exited() {
			if err := p.stop(StopTimeout); errors.Is(err, errKilled) {
				t.Logf("dockerd cleanup: %v", err)
			} else if err != nil {
				t.Errorf("dockerd cleanup: %v", err)
			}
		}
	}
	e.mu.Unlock()
	e.cancel()
	if t.Failed() {
		t.Logf("private Docker Engine %s output:\n%s", e.dir, e.Output())
	}
	for _, err := range reap(e.dir, e.bridge, e.pool, t.Logf) {
		t.Errorf("dockerd cleanup: %v", err)
	}
	e.lock.Close()
}

// removeThroughAPI force-removes every container and prunes the networks
// (dockerd leaves the bridges of its networks up when it stops). It starts
// dockerd for that when the test left it stopped.
func (e *Engine) removeThroughAPI(t testing.TB) {
	t.Helper()
	e.mu.Lock()
	running := e.dockerd != nil && !e.dockerd.exited()
	e.mu.Unlock()
	if !running {
		if err := e.start(); err != nil {
			t.Logf("dockerd cleanup: cannot start dockerd to remove its containers, removing them by force: %v", err)
			return
		}
	}
	cli, err := client.NewClientWithOpts(client.WithHost(e.Host()), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Errorf("dockerd cleanup: %v", err)
		return
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		t.Logf("dockerd cleanup: list containers: %v", err)
	}
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
				t.Logf("dockerd cleanup: remove container %.12s: %v", c.ID, err)
			}
		}()
	}
	wg.Wait()
	if _, err := cli.NetworksPrune(ctx, filters.NewArgs()); err != nil {
		t.Logf("dockerd cleanup: prune networks: %v", err)
	}
}

// ruleMarker is the iptables comment of an engine's InterContainer rule.
func ruleMarker(dir string) string { return "panelx-testenv-dockerd:" + dir }

// makeDir creates /tmp/<prefix>NNN and takes its lock. The lock file is locked
// under a temporary name and then renamed, so that a sweeping process never
// sees an unlocked owner.lock of a live engine.
func makeDir(prefix string) (string, *os.File, error) {
	dir, err := os.MkdirTemp(tmpRoot, prefix)
	if err != nil {
		return "", nil, err
	}
	if dir, err = filepath.EvalSymlinks(dir); err != nil {
		return "", nil, err
	}
	if n := len(filepath.Base(dir)); n > 15 {
		// The base name is the bridge's name: at most IFNAMSIZ-1 bytes.
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("directory name %s too long for an interface name", dir)
	}
	tmp := filepath.Join(dir, "."+lockName)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("lock %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, lockName)); err != nil {
		f.Close()
		os.RemoveAll(dir)
		return "", nil, err
	}
	return dir, f, nil
}

var (
	majorOnce sync.Once
	majorVer  int
	majorErr  error
	sweepOnce sync.Once
)

// dockerdMajor returns the major version of the dockerd binary.
func dockerdMajor() (int, error) {
	majorOnce.Do(func() {
		out, err := exec.Command("dockerd", "--version").CombinedOutput()
		if err != nil {
			majorErr = fmt.Errorf("dockerd --version: %v: %s", err, out)
			return
		}
		m := regexp.MustCompile(`version v?(\d+)\.`).FindSubmatch(out)
		if m == nil {
			majorErr = fmt.Errorf("dockerd --version: no version in %q", out)
			return
		}
		majorVer, majorErr = strconv.Atoi(string(m[1]))
	})
	return majorVer, majorErr
}

// process is a running dockerd or containerd.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // of Wait, valid after done
}

// spawn starts name with its output appended to logPath. The child gets
// SIGKILL when the test process dies (PR_SET_PDEATHSIG). The kernel sends
// that signal when the *thread* that forked exits, so the goroutine that
// starts the process stays locked to its thread until the process is gone:
// the Go runtime never ends a thread that a goroutine holds.
func spawn(ctx context.Context, logPath, name string, args ...string) (*process, error) {
	// A file, not a pipe into a buffer: nothing to copy, Wait never waits
	// for a grandchild that inherited the pipe, the output of all runs
	// accumulates in one place (Output, printed when the test fails), and
	// the log of a killed test stays in the directory until it is swept.
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	fmt.Fprintf(out, "===== %s: %s %s\n", time.Now().Format(time.RFC3339Nano), name, strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = childEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	p := &process{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// childEnv is the test's environment without what would make the daemons
// talk to a service manager that is not theirs.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES":
			continue
		}
		env = append(env, kv)
	}
	return env
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *process) wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// errKilled says that a process had to be killed after SIGTERM: it is
// stopped, but it took too long.
var errKilled = errors.New("killed after SIGTERM")

// stop sends SIGTERM, waits up to d, then SIGKILL. It returns an error
// wrapping errKilled when SIGKILL was needed.
func (p *process) stop(d time.Duration) error {
	name := filepath.Base(p.cmd.Path)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if p.wait(d) {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	if !p.wait(d) {
		return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", name, p.cmd.Process.Pid)
	}
	return fmt.Errorf("%s (pid %d) did not exit within %s: %w", name, p.cmd.Process.Pid, d, errKilled)
}

// tail returns the last n bytes of a file.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	off := max(st.Size()-n, 0)
	buf := make([]byte, st.Size()-off)
	_, _ = f.ReadAt(buf, off)
	prefix := ""
	if off > 0 {
		prefix = "...\n"
	}
	return fmt.Sprintf("----- %s -----\n%s%s", filepath.Base(path), prefix, buf)
}
