package dockerd_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"

	"github.com/panelx/panelx/internal/testenv"
	"github.com/panelx/panelx/internal/testenv/dockerd"
	"github.com/panelx/panelx/internal/testimage"
)

const (
	testLabel = "org.panelx.testenv.dockerd.test"
	netName   = "pxnet"
	// serveTimeout bounds waiting for a container to answer after a start
	// or an engine restart; it normally takes well under a second.
	serveTimeout = 60 * time.Second
)

// TestRestartAndKill runs a container with restart policy always on a
// private engine, restarts and kills the engine, and checks that the
// container comes back each time, that the main daemon saw none of it, and
// that nothing of the engine is left afterwards.
func TestRestartAndKill(t *testing.T) {
	t.Parallel()
	mainCli := testenv.Docker(t)
	checkMainBridge := watchMainBridge(t, mainCli)
	reg := testimage.StartRegistry(t, testimage.RegistryOptions{})
	ref := reg.Push(t, "dockerd/web:1", testimage.Image(t, testimage.ImageOptions{
		Version: "1",
		Labels:  map[string]string{testLabel: "restart"},
	}))

	// A container on the main daemon that must not notice anything.
	label := fmt.Sprintf("%s=%d", testLabel, time.Now().UnixNano())
	t.Cleanup(func() { // after RemoveLabelled
		_, _ = mainCli.ImageRemove(context.Background(), ref, image.RemoveOptions{Force: true, PruneChildren: true})
	})
	t.Cleanup(func() { testenv.RemoveLabelled(mainCli, label) })
	pull(t, mainCli, ref)
	sentinel := create(t, mainCli, ref, "", label, container.RestartPolicy{})
	sentinelIP := waitServing(t, mainCli, sentinel, "bridge", "1")
	before := inspect(t, mainCli, sentinel)
	mainInfo, err := mainCli.Info(t.Context())
	if err != nil {
		t.Fatalf("main daemon info: %v", err)
	}

	var dir string
	var pool netip.Prefix
	var privateIDs []string
	t.Run("engine", func(t *testing.T) {
		t0 := time.Now()
		e := dockerd.Start(t, dockerd.Options{})
		t.Logf("engine %s (pool %s, bridge %s) ready in %s", e.Host(), e.AddressPool(), e.Bridge(), time.Since(t0).Round(time.Millisecond))
		dir, pool = e.Dir(), e.AddressPool()
		cli := e.Client(t)

		info, err := cli.Info(t.Context())
		if err != nil {
			t.Fatalf("private info: %v", err)
		}
		if info.ID == mainInfo.ID {
			t.Errorf("private engine has the main daemon's ID %s", info.ID)
		}
		if info.DockerRootDir != dir+"/data" {
			t.Errorf("private DockerRootDir = %q, want %q", info.DockerRootDir, dir+"/data")
		}
		if info.LiveRestoreEnabled {
			t.Errorf("private engine has live restore enabled after Start")
		}

		t0 = time.Now()
		pull(t, cli, ref)
		t.Logf("pulled %s from the in-process registry in %s", ref, time.Since(t0).Round(time.Millisecond))
		createNetwork(t, cli)
		web := create(t, cli, ref, netName, label, container.RestartPolicy{Name: container.RestartPolicyAlways})
		// On the engine's default bridge, without a restart policy.
		plain := create(t, cli, ref, "", label, container.RestartPolicy{})
		privateIDs = append(privateIDs, web, plain)
		for _, c := range []struct{ id, net string }{{web, netName}, {plain, "bridge"}} {
			ip := waitServing(t, cli, c.id, c.net, "1")
			if !pool.Contains(netip.MustParseAddr(ip)) {
				t.Errorf("container IP %s on %s is not in the engine's pool %s", ip, c.net, pool)
			}
		}

		t0 = time.Now()
		e.Restart(t)
		restarted := time.Since(t0)
		waitServing(t, cli, web, netName, "1")
		t.Logf("Restart took %s, container answering after %s", restarted.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
		if st := inspect(t, cli, plain).State; st.Running {
			t.Errorf("container without restart policy still running after Restart: the engine stopped with live restore on")
		}

		startedAt := inspect(t, cli, web).State.StartedAt
		e.Kill(t)
		if e.Running() {
			t.Errorf("Running after Kill")
		}
		if _, err := cli.Ping(t.Context()); err == nil {
			t.Errorf("Ping answered after Kill")
		}
		// As after a crash, the container outlives dockerd.
		getRoot(t, ipFromDisk(t, e, web), "1")
		t0 = time.Now()
		e.Start(t)
		started := time.Since(t0)
		waitServing(t, cli, web, netName, "1")
		st := inspect(t, cli, web).State
		t.Logf("Start after Kill took %s, container answering after %s", started.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
		if st.StartedAt == startedAt {
			t.Errorf("container kept running across Kill+Start (started at %s): it should be stopped and restarted, as without live restore", startedAt)
		}

		// The main daemon knows nothing of the private containers.
		if _, err := mainCli.ContainerInspect(t.Context(), web); !cerrdefs.IsNotFound(err) {
			t.Errorf("main daemon inspect of private container %.12s: err = %v, want not found", web, err)
		}
		// A container left running and a killed engine must be cleaned
		// up as well.
		extra := create(t, cli, ref, netName, label, container.RestartPolicy{})
		waitServing(t, cli, extra, netName, "1")
		privateIDs = append(privateIDs, extra)
		e.Kill(t)
	})

	// The main daemon is untouched: same engine and default bridge, the
	// sentinel was neither restarted nor stopped and still answers, no
	// private container leaked.
	checkMainBridge()
	info, err := mainCli.Info(t.Context())
	if err != nil {
		t.Fatalf("main daemon info: %v", err)
	}
	if info.ID != mainInfo.ID {
		t.Errorf("main daemon ID changed: %s -> %s", mainInfo.ID, info.ID)
	}
	after := inspect(t, mainCli, sentinel)
	if !after.State.Running || after.State.StartedAt != before.State.StartedAt || after.RestartCount != before.RestartCount {
		t.Errorf("sentinel on the main daemon changed: running=%v startedAt %s -> %s, restarts %d -> %d",
			after.State.Running, before.State.StartedAt, after.State.StartedAt, before.RestartCount, after.RestartCount)
	}
	getRoot(t, sentinelIP, "1")
	list, err := mainCli.ContainerList(t.Context(), container.ListOptions{All: true})
	if err != nil {
		t.Fatalf("main daemon containers: %v", err)
	}
	for _, c := range list {
		for _, id := range privateIDs {
			if c.ID == id {
				t.Errorf("private container %.12s is listed by the main daemon", id)
			}
		}
	}

	checkGone(t, dir, pool)
}

// ipFromDisk reads the container's IP on netName from the engine's state
// file, for when dockerd is down.
func ipFromDisk(t *testing.T, e *dockerd.Engine, id string) string {
	t.Helper()
	b, err := os.ReadFile(e.Dir() + "/data/containers/" + id + "/config.v2.json")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		NetworkSettings struct {
			Networks map[string]struct{ IPAddress string }
		}
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg.NetworkSettings.Networks[netName].IPAddress
}

// watchMainBridge notes the main daemon's default bridge interface and
// returns a check that it is still the same interface: dockerd deletes the
// interface named docker0 in some configurations, which the harness avoids.
func watchMainBridge(t *testing.T, mainCli *client.Client) func() {
	t.Helper()
	n, err := mainCli.NetworkInspect(t.Context(), "bridge", network.InspectOptions{})
	if err != nil {
		t.Fatalf("main daemon bridge network: %v", err)
	}
	name := n.Options["com.docker.network.bridge.name"]
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		t.Fatalf("main daemon bridge %q: %v", name, err)
	}
	return func() {
		t.Helper()
		now, err := net.InterfaceByName(name)
		if err != nil || now.Index != ifc.Index {
			t.Errorf("main daemon bridge %s (index %d) is gone or replaced: %v, %v", name, ifc.Index, now, err)
		}
	}
}

// TestInterContainer checks Options.InterContainer: one container reaches
// another by name over the engine's network. It runs in parallel with the
// other tests, so two private engines run at once.
func TestInterContainer(t *testing.T) {
	t.Parallel()
	checkMainBridge := watchMainBridge(t, testenv.Docker(t))
	reg := testimage.StartRegistry(t, testimage.RegistryOptions{})
	ref := reg.Push(t, "dockerd/web:2", testimage.Image(t, testimage.ImageOptions{Version: "2"}))
	var dir string
	var pool netip.Prefix
	t.Run("engine", func(t *testing.T) {
		e := dockerd.Start(t, dockerd.Options{InterContainer: true})
		dir, pool = e.Dir(), e.AddressPool()
		cli := e.Client(t)
		pull(t, cli, ref)
		createNetwork(t, cli)
		a := create(t, cli, ref, netName, "", container.RestartPolicy{})
		b := create(t, cli, ref, netName, "", container.RestartPolicy{})
		ipA := waitServing(t, cli, a, netName, "2")
		waitServing(t, cli, b, netName, "2")
		// By the short ID, an alias on the network that the embedded
		// DNS resolves (generated names hold "_", which the test
		// program's resolver does not look up).
		body := get(t, fmt.Sprintf("http://%s:%s/fetch?url=http://%s:%s/healthz", ipA, testimage.AppPort, b[:12], testimage.AppPort))
		if strings.TrimSpace(body) != "ok" {
			t.Errorf("container to container by name: %q, want ok", body)
		}
	})
	checkGone(t, dir, pool)
	checkMainBridge()
}

// TestLiveRestore checks that with LiveRestore containers keep running,
// untouched, while dockerd is stopped or killed.
func TestLiveRestore(t *testing.T) {
	t.Parallel()
	checkMainBridge := watchMainBridge(t, testenv.Docker(t))
	t.Cleanup(checkMainBridge)
	reg := testimage.StartRegistry(t, testimage.RegistryOptions{})
	ref := reg.Push(t, "dockerd/web:3", testimage.Image(t, testimage.ImageOptions{Version: "3"}))
	t0 := time.Now()
	e := dockerd.Start(t, dockerd.Options{LiveRestore: true})
	t.Logf("engine ready in %s", time.Since(t0).Round(time.Millisecond))
	cli := e.Client(t)
	pull(t, cli, ref)
	createNetwork(t, cli)
	id := create(t, cli, ref, netName, "", container.RestartPolicy{})
	ip := waitServing(t, cli, id, netName, "3")
	before := inspect(t, cli, id)

	t0 = time.Now()
	e.Kill(t)
	getRoot(t, ip, "3") // served while dockerd is down
	e.Start(t)
	t.Logf("Kill+Start took %s", time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	e.Restart(t)
	t.Logf("Restart took %s", time.Since(t0).Round(time.Millisecond))
	getRoot(t, ip, "3")
	after := inspect(t, cli, id)
	if !after.State.Running || after.State.StartedAt != before.State.StartedAt || after.State.Pid != before.State.Pid {
		t.Errorf("container changed across live-restore restarts: running=%v startedAt %s -> %s, pid %d -> %d",
			after.State.Running, before.State.StartedAt, after.State.StartedAt, before.State.Pid, after.State.Pid)
	}
}

func pull(t *testing.T, cli *client.Client, ref string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	rc, err := cli.ImagePull(ctx, ref, image.PullOptions{})
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	defer rc.Close()
	if err := jsonmessage.DisplayJSONMessagesStream(rc, io.Discard, 0, false, nil); err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
}

func createNetwork(t *testing.T, cli *client.Client) {
	t.Helper()
	if _, err := cli.NetworkCreate(t.Context(), netName, network.CreateOptions{Driver: "bridge"}); err != nil {
		t.Fatalf("create network: %v", err)
	}
}

// create creates and starts a container of ref on netName ("" for the
// default network) and returns its ID.
func create(t *testing.T, cli *client.Client, ref, netName, label string, restart container.RestartPolicy) string {
	t.Helper()
	cfg := &container.Config{Image: ref, Labels: map[string]string{}}
	if k, v, ok := strings.Cut(label, "="); ok {
		cfg.Labels[k] = v
	}
	hc := &container.HostConfig{RestartPolicy: restart}
	var nc *network.NetworkingConfig
	if netName != "" {
		hc.NetworkMode = container.NetworkMode(netName)
		nc = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{netName: {}}}
	}
	c, err := cli.ContainerCreate(t.Context(), cfg, hc, nc, nil, "")
	if err != nil {
		t.Fatalf("create container: %v", err)
	}
	if err := cli.ContainerStart(t.Context(), c.ID, container.StartOptions{}); err != nil {
		t.Fatalf("start container: %v", err)
	}
	return c.ID
}

func inspect(t *testing.T, cli *client.Client, id string) container.InspectResponse {
	t.Helper()
	c, err := cli.ContainerInspect(t.Context(), id)
	if err != nil {
		t.Fatalf("inspect %.12s: %v", id, err)
	}
	return c
}

// waitServing waits until the container runs and answers GET / over its IP
// on netName with the wanted version, and returns the IP (which may change
// across restarts).
func waitServing(t *testing.T, cli *client.Client, id, netName, version string) string {
	t.Helper()
	deadline := time.Now().Add(serveTimeout)
	var last string
	for {
		c, err := cli.ContainerInspect(t.Context(), id)
		switch {
		case err != nil:
			last = err.Error()
		case !c.State.Running:
			last = "state " + c.State.Status
		case c.NetworkSettings == nil || c.NetworkSettings.Networks[netName] == nil || c.NetworkSettings.Networks[netName].IPAddress == "":
			last = "no IP on " + netName
		default:
			ip := c.NetworkSettings.Networks[netName].IPAddress
			v, err := version1(ip)
			if err == nil && v == version {
				return ip
			}
			last = fmt.Sprintf("GET / on %s: version %q, %v", ip, v, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %.12s not serving within %s: %s", id, serveTimeout, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

func version1(ip string) (string, error) {
	resp, err := httpClient.Get("http://" + net.JoinHostPort(ip, testimage.AppPort) + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s", resp.Status)
	}
	var body struct {
		Version string `json:"version"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return "", err
	}
	return body.Version, nil
}

func getRoot(t *testing.T, ip, version string) {
	t.Helper()
	v, err := version1(ip)
	if err != nil || v != version {
		t.Errorf("GET / on %s: version %q, %v; want %q", ip, v, err, version)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := httpClient.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b)
	}
	return string(b)
}

// checkGone checks that nothing of the engine in dir is left: directory,
// mounts, processes, bridges of its pool, iptables rules.
func checkGone(t *testing.T, dir string, pool netip.Prefix) {
	t.Helper()
	if dir == "" {
		t.Fatal("engine did not start")
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s still exists (stat: %v)", dir, err)
	}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			t.Errorf("still mounted: %s", f[4])
		}
	}
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		b, err := os.ReadFile("/proc/" + ent.Name() + "/cmdline")
		if err == nil && strings.Contains(string(b), dir+"/") {
			t.Errorf("process %s still uses %s: %s", ent.Name(), dir, strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && pool.Contains(p.Addr()) {
			t.Errorf("host address %s of the engine's pool %s is left", a, pool)
		}
	}
	if out, err := exec.Command("iptables", "-w", "-S", "FORWARD").Output(); err == nil && strings.Contains(string(out), ":"+dir+`"`) {
		t.Errorf("iptables rule of %s left:\n%s", dir, out)
	}
}
