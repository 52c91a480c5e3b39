package dockerd

// A Docker Swarm of several engines on one machine, each engine in its own
// network namespace — the "more than one host" that issue 21's multi-node
// test needs, made of nothing but the kernel, iproute2 and dockerd.
//
//	c := dockerd.StartCluster(t, dockerd.ClusterOptions{Nodes: 3})
//	mgr := c.Manager().Client(t)   // node 1 is the manager
//	reg := registry listening on c.HostAddr() (nodes trust it as insecure)
//	c.Node(2).Kill(t)              // SIGKILL its dockerd: the node is lost
//	c.Node(2).Start(t)             // it comes back
//
// The wiring, all under one short name ID (the directory /tmp/pxsNNN):
//
//	host ──ID+"h" (HostAddr, .1)──┐ netns ID-sw: bridge br0 (the "switch")
//	netns ID-n1: eth0 (.11) ──────┤
//	netns ID-n2: eth0 (.12) ──────┤
//	...                           ┘
//
// The switch is a bridge in a namespace of its own, not on the host: on a
// host where the main daemon set the FORWARD policy to DROP with
// br_netfilter loaded, frames bridged on the host between two nodes would
// go through the host's iptables and be dropped (seen here: swarm join
// timed out). In its own namespace the bridge meets empty tables.
//
// Each node runs its own containerd and dockerd with their own directories
// under /tmp/pxsNNN/nI, dockerd entered into the node's network namespace
// (nsenter --net; `ip netns exec` would also remount /sys and hide the
// cgroup mounts dockerd needs) and into a UTS namespace of its own with
// the hostname px-node-I, which is the name Swarm gives the node. Inside
// its namespace a node's dockerd may do what it likes with iptables,
// bridges and ip_forward: none of it is the host's. Nodes trust the
// cluster's /24 as insecure registries, so an in-process registry
// listening on HostAddr serves them images over plain HTTP.
//
// The swarm: node 1 runs `swarm init` on its address with a dispatcher
// heartbeat of 1 s (Swarm's default is 5 s), so that a node whose daemon
// dies is marked down within seconds; the others join as workers.
//
// Cleanup kills the daemons, the container shims and anything else whose
// command line names the directory, deletes leftover runc containers,
// unmounts everything under the directory, deletes the namespaces (and so
// their interfaces) and the directory. Directories and namespaces left by
// a test process that died are swept by the next StartCluster.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/panelx/panelx/internal/testenv"
)

// clusterPrefix names cluster directories and namespaces: /tmp/pxsNNN,
// netns pxsNNN-sw and pxsNNN-nI.
const clusterPrefix = "pxs"

// ClusterOptions configure StartCluster.
type ClusterOptions struct {
	// Nodes is the number of engines (default 3): node 1 is the manager,
	// the others are workers.
	Nodes int
	// Heartbeat is the swarm's dispatcher heartbeat period (default 1 s).
	Heartbeat time.Duration
}

// Cluster is a swarm of engines in network namespaces.
type Cluster struct {
	id     string // base name of dir, and of the namespaces
	dir    string
	lock   *os.File
	subnet netip.Prefix // the nodes' /24
	nodes  []*Node
	ctx    context.Context
	cancel context.CancelFunc
}

// Node is one engine of a cluster.
type Node struct {
	c       *Cluster
	index   int // from 1
	dir     string
	netns   string
	addr    netip.Addr
	version int

	mu         sync.Mutex
	dockerd    *process
	containerd *process
	apiVersion string
	swarmID    string
}

// StartCluster starts the engines, makes the swarm and registers the
// cleanup with t. Missing root, ip, nsenter, unshare, dockerd or containerd
// is reported through testenv.Missing (fails in CI, skips elsewhere).
func StartCluster(t testing.TB, opts ClusterOptions) *Cluster {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Missing(t, "a cluster of Docker Engines in network namespaces needs root (euid %d)", os.Geteuid())
	}
	for _, bin := range []string{"ip", "nsenter", "unshare", "dockerd", "containerd", "runc"} {
		if _, err := exec.LookPath(bin); err != nil {
			testenv.Missing(t, "%s is not installed: %v", bin, err)
		}
	}
	if opts.Nodes <= 0 {
		opts.Nodes = 3
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = time.Second
	}
	major, err := dockerdMajor()
	if err != nil {
		t.Fatalf("cluster: %v", err)
	}
	clusterSweepOnce.Do(func() { sweepClusters(t.Logf) })

	dir, lock, err := makeDir(clusterPrefix)
	if err != nil {
		t.Fatalf("cluster: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Cluster{id: filepath.Base(dir), dir: dir, lock: lock, ctx: ctx, cancel: cancel}
	t.Cleanup(func() { c.cleanup(t) })
	if c.subnet, err = pickSubnet(dir); err != nil {
		t.Fatalf("cluster: %v", err)
	}
	for i := 1; i <= opts.Nodes; i++ {
		n := &Node{c: c, index: i, dir: filepath.Join(dir, "n"+strconv.Itoa(i)), netns: fmt.Sprintf("%s-n%d", c.id, i),
			addr: nthAddr(c.subnet, 10+i), version: major}
		c.nodes = append(c.nodes, n)
	}
	if err := c.wire(); err != nil {
		t.Fatalf("cluster: %v", err)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(c.nodes))
	for i, n := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = n.setup(); errs[i] == nil {
				errs[i] = n.start()
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("cluster: %v", err)
	}
	if err := c.formSwarm(opts.Heartbeat); err != nil {
		t.Fatalf("cluster: %v", err)
	}
	return c
}

// HostAddr is the host's address on the cluster's network: what the nodes
// reach the host at (a registry for them listens there).
func (c *Cluster) HostAddr() netip.Addr { return nthAddr(c.subnet, 1) }

// Dir is the cluster's directory; it is gone after cleanup.
func (c *Cluster) Dir() string { return c.dir }

// Subnet is the nodes' network.
func (c *Cluster) Subnet() netip.Prefix { return c.subnet }

// Nodes are the engines, the manager first.
func (c *Cluster) Nodes() []*Node { return c.nodes }

// Node returns node i, from 1.
func (c *Cluster) Node(i int) *Node { return c.nodes[i-1] }

// Manager is node 1.
func (c *Cluster) Manager() *Node { return c.nodes[0] }

// Host is the node's DOCKER_HOST.
func (n *Node) Host() string { return "unix://" + filepath.Join(n.dir, dockerSock) }

// Addr is the node's address, where it publishes ports.
func (n *Node) Addr() netip.Addr { return n.addr }

// Hostname is the node's hostname, its name in the swarm.
func (n *Node) Hostname() string { return fmt.Sprintf("px-node-%d", n.index) }

// SwarmID is the node's ID in the swarm.
func (n *Node) SwarmID() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.swarmID
}

// Output returns what the node's dockerd and containerd printed.
func (n *Node) Output() string { return daemonOutput(n.dir, n.Hostname()+" ") }

// Client returns a client of the node's engine, closed when t ends.
func (n *Node) Client(t testing.TB) *client.Client {
	t.Helper()
	n.mu.Lock()
	v := n.apiVersion
	n.mu.Unlock()
	return testClient(t, n.Host(), v)
}

// Kill sends SIGKILL to the node's dockerd, as a crash: its containers
// keep running in containerd, but the swarm loses the node.
func (n *Node) Kill(t testing.TB) {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.dockerd == nil || n.dockerd.exited() {
		t.Fatalf("cluster: kill %s: dockerd is not running", n.Hostname())
	}
	_ = n.dockerd.cmd.Process.Signal(syscall.SIGKILL)
	if !n.dockerd.wait(StopTimeout) {
		t.Fatalf("cluster: kill %s: dockerd did not exit after SIGKILL", n.Hostname())
	}
}

// Start starts the node's dockerd again; it rejoins the swarm by itself.
func (n *Node) Start(t testing.TB) {
	t.Helper()
	if err := n.start(); err != nil {
		t.Fatalf("cluster: %v", err)
	}
}

// ip runs the ip command.
func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// wire makes the namespaces, the switch and the links.
func (c *Cluster) wire() error {
	sw := c.id + "-sw"
	host := c.id + "h"
	bits := strconv.Itoa(c.subnet.Bits())
	steps := [][]string{
		{"netns", "add", sw},
		{"-n", sw, "link", "set", "lo", "up"},
		{"-n", sw, "link", "add", "br0", "type", "bridge"},
		{"-n", sw, "link", "set", "br0", "up"},
		{"link", "add", host, "type", "veth", "peer", "name", "up0", "netns", sw},
		{"-n", sw, "link", "set", "up0", "master", "br0", "up"},
		{"addr", "add", c.HostAddr().String() + "/" + bits, "dev", host},
		{"link", "set", host, "up"},
	}
	for _, n := range c.nodes {
		port := "p" + strconv.Itoa(n.index)
		steps = append(steps,
			[]string{"netns", "add", n.netns},
			[]string{"-n", n.netns, "link", "set", "lo", "up"},
			[]string{"-n", n.netns, "link", "add", "eth0", "type", "veth", "peer", "name", port, "netns", sw},
			[]string{"-n", sw, "link", "set", port, "master", "br0", "up"},
			[]string{"-n", n.netns, "addr", "add", n.addr.String() + "/" + bits, "dev", "eth0"},
			[]string{"-n", n.netns, "link", "set", "eth0", "up"},
			[]string{"-n", n.netns, "route", "add", "default", "via", c.HostAddr().String()},
		)
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return err
		}
	}
	return nil
}

// setup writes the node's containerd and dockerd configuration.
func (n *Node) setup() error {
	for _, d := range []string{"data", "exec"} {
		if err := os.MkdirAll(filepath.Join(n.dir, d), 0o700); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(n.dir, "containerd.toml"), []byte(containerdConfig(n.dir)), 0o600); err != nil {
		return err
	}
	cfg := map[string]any{}
	if n.version < 23 {
		// dockerd < 23 derives its engine ID from /etc/docker/key.json,
		// the main daemon's; every node would have the same.
		cfg["deprecated-key-path"] = filepath.Join(n.dir, "key.json")
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(n.dir, daemonJSON), data, 0o600)
}

// start starts containerd (unless it runs) and dockerd, and waits until
// dockerd answers.
func (n *Node) start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.dockerd != nil && !n.dockerd.exited() {
		return fmt.Errorf("start %s: dockerd is already running", n.Hostname())
	}
	if n.containerd == nil || n.containerd.exited() {
		p, err := startContainerdIn(n.c.ctx, n.dir)
		if err != nil {
			return fmt.Errorf("%s: %w", n.Hostname(), err)
		}
		n.containerd = p
	}
	_ = os.Remove(filepath.Join(n.dir, "docker.pid"))
	args := []string{"--uts", "--", "bash", "-c", `hostname "$0" && exec nsenter --net=/run/netns/"$1" -- "${@:2}"`,
		n.Hostname(), n.netns, "dockerd",
		"--config-file", filepath.Join(n.dir, daemonJSON),
		"-H", n.Host(),
		"--data-root", filepath.Join(n.dir, "data"),
		"--exec-root", filepath.Join(n.dir, "exec"),
		"--pidfile", filepath.Join(n.dir, "docker.pid"),
		"--containerd", filepath.Join(n.dir, ctrdSock),
		"--insecure-registry", n.c.subnet.String(),
		"--cgroup-parent", n.netns,
		"--log-level", "warn",
	}
	p, err := spawn(n.c.ctx, filepath.Join(n.dir, dockerLog), "unshare", args...)
	if err != nil {
		return fmt.Errorf("start dockerd of %s: %w", n.Hostname(), err)
	}
	v, err := pingUntil(n.c.ctx, n.Host(), p)
	if err != nil {
		_ = p.stop(5 * time.Second)
		return fmt.Errorf("%s: %w\n%s", n.Hostname(), err, tail(filepath.Join(n.dir, dockerLog), 8<<10))
	}
	n.dockerd, n.apiVersion = p, v
	return nil
}

// formSwarm makes node 1 a manager and joins the others as workers, then
// waits until the manager lists every node ready.
func (c *Cluster) formSwarm(heartbeat time.Duration) error {
	ctx, cancel := context.WithTimeout(c.ctx, 2*time.Minute)
	defer cancel()
	clients := make([]*client.Client, len(c.nodes))
	for i, n := range c.nodes {
		cli, err := client.NewClientWithOpts(client.WithHost(n.Host()), client.WithAPIVersionNegotiation())
		if err != nil {
			return err
		}
		defer cli.Close()
		clients[i] = cli
	}
	mgr := c.Manager()
	listen := net.JoinHostPort(mgr.addr.String(), "2377")
	if _, err := clients[0].SwarmInit(ctx, swarm.InitRequest{ListenAddr: listen, AdvertiseAddr: listen}); err != nil {
		return fmt.Errorf("swarm init on %s: %w", mgr.Hostname(), err)
	}
	sw, err := clients[0].SwarmInspect(ctx)
	if err != nil {
		return fmt.Errorf("swarm inspect: %w", err)
	}
	sw.Spec.Dispatcher.HeartbeatPeriod = heartbeat
	if err := clients[0].SwarmUpdate(ctx, sw.Version, sw.Spec, swarm.UpdateFlags{}); err != nil {
		return fmt.Errorf("swarm update (heartbeat %s): %w", heartbeat, err)
	}
	for i, n := range c.nodes[1:] {
		addr := net.JoinHostPort(n.addr.String(), "2377")
		err := clients[i+1].SwarmJoin(ctx, swarm.JoinRequest{ListenAddr: addr, AdvertiseAddr: addr,
			RemoteAddrs: []string{listen}, JoinToken: sw.JoinTokens.Worker})
		if err != nil {
			return fmt.Errorf("swarm join of %s: %w", n.Hostname(), err)
		}
	}
	for {
		nodes, err := clients[0].NodeList(ctx, swarm.NodeListOptions{})
		ready := map[string]string{}
		for _, sn := range nodes {
			if sn.Status.State == swarm.NodeStateReady {
				ready[sn.Description.Hostname] = sn.ID
			}
		}
		if err == nil && len(ready) == len(c.nodes) {
			for _, n := range c.nodes {
				n.mu.Lock()
				n.swarmID = ready[n.Hostname()]
				n.mu.Unlock()
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("swarm: not every node ready (%v, %v): %w", ready, err, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// cleanup removes everything of the cluster; see the top of this file.
func (c *Cluster) cleanup(t testing.TB) {
	t.Helper()
	for _, n := range c.nodes {
		n.mu.Lock()
		for _, p := range []*process{n.dockerd, n.containerd} {
			if p != nil && !p.exited() {
				_ = p.cmd.Process.Signal(syscall.SIGKILL)
				p.wait(StopTimeout)
			}
		}
		n.mu.Unlock()
	}
	c.cancel()
	if t.Failed() {
		for _, n := range c.nodes {
			t.Logf("cluster node output:\n%s", n.Output())
		}
	}
	for _, err := range reapCluster(c.dir, t.Logf) {
		t.Errorf("cluster cleanup: %v", err)
	}
	c.lock.Close()
}

// reapCluster removes what a cluster left: processes naming its directory
// (shims), runc containers, mounts, namespaces, cgroups and the directory.
func reapCluster(dir string, logf func(string, ...any)) []error {
	var errs []error
	id := filepath.Base(dir)
	if pids := processesUsing(dir); len(pids) > 0 {
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		waitGone(pids, 10*time.Second)
	}
	nodeDirs, _ := filepath.Glob(filepath.Join(dir, "n*"))
	for _, nd := range nodeDirs {
		runcRoot := filepath.Join(nd, "exec", "runtime-runc", "moby")
		ents, _ := os.ReadDir(runcRoot)
		for _, ent := range ents {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if out, err := exec.CommandContext(ctx, "runc", "--root", runcRoot, "delete", "--force", ent.Name()).CombinedOutput(); err != nil {
				logf("cluster cleanup: runc delete --force %.12s: %v: %s", ent.Name(), err, out)
			}
			cancel()
		}
		// dockerd made the cgroup parent on each v1 hierarchy; empty now.
		cgs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", id+"-n*"))
		cgs2, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", id+"-n*"))
		for _, cg := range append(cgs, cgs2...) {
			_ = syscall.Rmdir(cg)
		}
	}
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = unmountUnder(dir); err == nil {
			break
		}
		time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond)
	}
	if err != nil {
		errs = append(errs, err)
	}
	if out, lerr := exec.Command("ip", "netns", "list").Output(); lerr == nil {
		for _, line := range strings.Split(string(out), "\n") {
			name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
			if strings.HasPrefix(name, id+"-") {
				if err := ip("netns", "del", name); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	_ = ip("link", "del", id+"h") // gone with its peer's namespace, normally
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, fmt.Errorf("remove %s: %w", dir, err))
	}
	return errs
}

var clusterSweepOnce sync.Once

// sweepClusters reaps the clusters of test processes that died: their
// directory's lock can be taken.
func sweepClusters(logf func(string, ...any)) {
	dirs, _ := filepath.Glob(filepath.Join(tmpRoot, clusterPrefix+"*"))
	for _, dir := range dirs {
		f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR, 0)
		if err != nil {
			continue
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		logf("cluster: removing %s, left by a test process that died", dir)
		for _, err := range reapCluster(dir, logf) {
			logf("cluster: sweep %s: %v", dir, err)
		}
		f.Close()
	}
}

// pickSubnet chooses a /24 in 10.199.0.0/16 that no host address or route
// and no other cluster uses, and records it in dir.
func pickSubnet(dir string) (netip.Prefix, error) {
	poolMu.Lock()
	defer poolMu.Unlock()
	used := hostPrefixes()
	others, _ := filepath.Glob(filepath.Join(tmpRoot, clusterPrefix+"*", poolName))
	for _, f := range others {
		if b, err := os.ReadFile(f); err == nil {
			if p, err := netip.ParsePrefix(strings.TrimSpace(string(b))); err == nil {
				used = append(used, p)
			}
		}
	}
	for _, y := range rand.Perm(256) {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 199, byte(y), 0}), 24)
		if overlapsAny(p, used) {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, poolName), []byte(p.String()+"\n"), 0o600); err != nil {
			return netip.Prefix{}, err
		}
		return p, nil
	}
	return netip.Prefix{}, errors.New("no free /24 in 10.199.0.0/16")
}

// nthAddr is the address at offset i in p.
func nthAddr(p netip.Prefix, i int) netip.Addr {
	a := p.Addr().As4()
	a[3] = byte(i)
	return netip.AddrFrom4(a)
}
