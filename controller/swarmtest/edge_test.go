package swarmtest_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"k8s.io/client-go/util/workqueue"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/apiserver"
	"github.com/panelx/panelx/apiserver/auth"
	"github.com/panelx/panelx/apiserver/authz"
	"github.com/panelx/panelx/controller"
	"github.com/panelx/panelx/controller/conformance"
	"github.com/panelx/panelx/internal/testenv"
	"github.com/panelx/panelx/reconcile"
	swarmruntime "github.com/panelx/panelx/reconcile/swarm"
	"github.com/panelx/panelx/store"
)

// edgeLabel marks the objects of the edge tests (its container and bridge
// network), which are not PanelX's.
const edgeLabel = "org.panelx.swarmtest.edge"

// TestEdgeReachesReplicasOnTheOverlay: on Swarm the replicas' addresses
// are on the project's overlay, which the host cannot reach. `panelx edge`
// runs in a container on a bridge network (its port published on
// 127.0.0.1), PanelX attaches it to the overlay, and a request through
// the edge is answered by each of the service's two replicas, at the
// task addresses the controller published. A recreated edge container
// (which has lost its networks) is attached again when it starts; and the
// project's overlay can still be removed with the edge on it.
func TestEdgeReachesReplicasOnTheOverlay(t *testing.T) {
	tg := target(t)
	cli := testenv.Docker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	suffix := tg.Instance[len(tg.Instance)-6:]
	reg := tg.Registry.(testRegistry).Registry

	// The edge's image: the panelx binary, FROM scratch.
	edgeRef := reg.Push(t, "t"+suffix+"/panelx:edge", edgeImage(t))
	pullImage(t, cli, edgeRef)
	t.Cleanup(func() { _, _ = cli.ImageRemove(context.Background(), edgeRef, image.RemoveOptions{Force: true}) })

	// Its bridge network; the API it follows listens on its gateway (the
	// host, as seen from the container).
	bridge := "panelx-edge-" + suffix
	edgeName := "panelx-edge-" + suffix
	t.Cleanup(func() {
		_ = cli.ContainerRemove(context.Background(), edgeName, container.RemoveOptions{Force: true})
		testenv.RemoveLabelled(cli, edgeLabel+"="+tg.Instance)
	})
	if _, err := cli.NetworkCreate(ctx, bridge, network.CreateOptions{Driver: "bridge", Labels: map[string]string{edgeLabel: tg.Instance}}); err != nil {
		t.Fatal(err)
	}
	bn, err := cli.NetworkInspect(ctx, bridge, network.InspectOptions{})
	if err != nil || len(bn.IPAM.Config) == 0 || bn.IPAM.Config[0].Gateway == "" {
		t.Fatalf("the edge's bridge network has no gateway: %v %+v", err, bn.IPAM)
	}
	apiURL := serveAPI(t, tg.Store, bn.IPAM.Config[0].Gateway)
	plain, hash, err := auth.GenerateAPIToken()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tg.Store.Tokens().Create(ctx, store.APIToken{UserID: authz.EdgeUserID, Name: "edge", Prefix: auth.TokenPrefix(plain), Hash: hash}); err != nil {
		t.Fatal(err)
	}
	runEdge := func() string {
		t.Helper()
		return startEdgeContainer(t, cli, edgeName, edgeRef, bridge, tg.Instance, apiURL, plain)
	}
	edgePort := runEdge()

	// PanelX on the swarm, told which container is the edge.
	rt := swarmruntime.New(cli, tg.Instance, swarmruntime.Options{PublishMode: swarmruntime.PublishHost, EdgeContainer: edgeName})
	tg.Runtime = rt
	kctx, kstop := context.WithCancel(ctx)
	kdone := make(chan struct{})
	go func() {
		defer close(kdone)
		rt.KeepEdgeAttached(kctx, 0, func(n string, err error) {
			if err != nil {
				t.Logf("keep the edge attached: %v", err)
			} else {
				t.Logf("attached the edge to %s", n)
			}
		})
	}()
	t.Cleanup(func() { kstop(); <-kdone })
	w := startController(t, ctx, tg, cli)

	p := w.project()
	img := w.Registry.Push(t, "t"+suffix+"/web:1", "1")
	host := "web-" + suffix + ".test"
	off := false
	w.apply(p, "web", func(s *api.Service) {
		healthchecked(img, 2)(s)
		s.Spec.Ports = []api.Port{{ContainerPort: 8080}}
		s.Spec.Domains = []api.Domain{{Host: host, TLS: api.TLSOff, RedirectHTTPS: &off}}
	})
	svc := w.wait(p, "web", "2/2 Ready with 2 endpoints", func(s *api.Service) bool {
		return reconcile.ServiceReady(s) && len(s.Status.Endpoints) == 2
	})

	// What the controller publishes on Swarm: the tasks' addresses on the
	// project's overlay (not reachable from the host).
	overlay, err := cli.NetworkInspect(ctx, reconcile.NetworkName(p), network.InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	subnet := netip.MustParsePrefix(overlay.IPAM.Config[0].Subnet)
	hostnames := map[string]bool{} // the replicas' containers' hostnames
	for _, ep := range svc.Status.Endpoints {
		task, _, err := cli.TaskInspectWithRaw(ctx, ep.ContainerID)
		if err != nil {
			t.Fatalf("endpoint %+v is not a task: %v", ep, err)
		}
		var addr string
		for _, na := range task.NetworksAttachments {
			if na.Network.ID == overlay.ID && len(na.Addresses) > 0 {
				addr = na.Addresses[0]
			}
		}
		if ip, err := netip.ParseAddr(ep.IP); err != nil || !subnet.Contains(ip) || addr != ep.IP+"/"+fmt.Sprint(subnet.Bits()) {
			t.Errorf("endpoint %+v: want the task's address on %s (%s), it has %q", ep, overlay.Name, subnet, addr)
		}
		hostnames[task.Status.ContainerStatus.ContainerID[:12]] = true
		t.Logf("endpoint: replica %d, task %s on node %s, %s:8080 on %s", ep.Replica, task.ID, task.NodeID, ep.IP, overlay.Name)
	}
	if !attachedTo(t, cli, edgeName, overlay.ID) {
		t.Fatalf("the edge container is not on %s", overlay.Name)
	}

	// Through the edge: both replicas answer.
	throughEdge(t, edgePort, host, hostnames)

	// A recreated edge container has none of its networks: attached again
	// as it starts.
	if err := cli.ContainerRemove(ctx, edgeName, container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	recreated := time.Now()
	edgePort = runEdge()
	for !attachedTo(t, cli, edgeName, overlay.ID) {
		if time.Since(recreated) > 20*time.Second {
			t.Fatalf("the recreated edge container was not attached to %s", overlay.Name)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("the recreated edge container is on %s %v after it was created", overlay.Name, time.Since(recreated).Round(time.Millisecond))
	throughEdge(t, edgePort, host, hostnames)

	// The project's overlay goes with the project, the edge on it or not.
	if _, err := w.Store.Projects().Delete(ctx, api.Key{Name: p}, store.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if _, err := cli.NetworkInspect(ctx, overlay.ID, network.InspectOptions{}); client.IsErrNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the deleted project's overlay %s is still there", overlay.Name)
		}
	}
	if c, err := cli.ContainerInspect(ctx, edgeName); err != nil || !c.State.Running {
		t.Errorf("the edge container after the project's deletion: %v", err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if _, err := w.Store.Projects().Get(ctx, api.Key{Name: p}); errors.Is(err, store.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the project %s was not deleted", p)
		}
	}
}

// TestAttachEdgeSaysWhy: an edge container PanelX cannot attach is named
// with the reason, and nothing is attached.
func TestAttachEdgeSaysWhy(t *testing.T) {
	tg := target(t)
	cli := testenv.Docker(t)
	ctx := t.Context()
	suffix := tg.Instance[len(tg.Instance)-6:]
	img := tg.Registry.Push(t, "t"+suffix+"/app:1", "1")
	pullImage(t, cli, img)
	hostNet := "panelx-edge-host-" + suffix
	t.Cleanup(func() { testenv.RemoveLabelled(cli, edgeLabel+"="+tg.Instance) })
	c, err := cli.ContainerCreate(ctx, &container.Config{Image: img, Cmd: []string{"-sleep"}, Labels: map[string]string{edgeLabel: tg.Instance}},
		&container.HostConfig{NetworkMode: "host"}, nil, nil, hostNet)
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, edge, want string
	}{
		{"no such container", "panelx-edge-missing-" + suffix, "no container panelx-edge-missing-" + suffix + " on the engine PanelX drives"},
		{"host networking", hostNet, `runs with network mode "host", which cannot join the projects' overlays`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := swarmruntime.New(cli, tg.Instance, swarmruntime.Options{EdgeContainer: tc.edge})
			name := "panelx-" + suffix + "-" + randomHex(3)
			n, err := rt.CreateNetwork(ctx, name, map[string]string{reconcile.LabelManaged: "true", reconcile.LabelInstance: tg.Instance,
				reconcile.LabelProject: "p" + suffix})
			if err != nil {
				t.Fatalf("a network is created even when the edge cannot join it: %v", err)
			}
			attached, err := rt.AttachEdge(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.want) || len(attached) != 0 {
				t.Errorf("AttachEdge = %v, %v; want an error saying %q", attached, err, tc.want)
			}
			if err := rt.RemoveNetwork(ctx, name); err != nil {
				t.Errorf("remove network %s: %v", n.Name, err)
			}
		})
	}
}

// startController runs a controller on the target (the world of
// swarm_test.go, with the target's runtime as the test set it).
func startController(t *testing.T, ctx context.Context, tg conformance.Target, cli *client.Client) *world {
	w := &world{t: t, ctx: ctx, Target: tg, cli: cli}
	c, err := controller.New(controller.Options{Store: tg.Store, Runtime: tg.Runtime, Instance: tg.Instance,
		Log: zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)), ResyncInterval: 30 * time.Second, PullInterval: time.Second,
		RateLimiter: workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Key](100*time.Millisecond, 2*time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	cctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(cctx) }()
	t.Cleanup(func() { stop(); <-done })
	return w
}

// serveAPI serves PanelX's API (the edge's routes and reports) on addr.
func serveAPI(t *testing.T, st store.Store, addr string) string {
	h := apiserver.New(apiserver.Options{Store: st, Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))})
	ln, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatalf("listen on the edge network's gateway: %v", err)
	}
	srv := &http.Server{Handler: h.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { h.StopStreams(); _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// startEdgeContainer runs `panelx edge` in a container named name on the
// bridge network, its HTTP port published on 127.0.0.1, and returns that
// port once the edge answers there.
func startEdgeContainer(t *testing.T, cli *client.Client, name, ref, bridge, instance, apiURL, token string) string {
	t.Helper()
	ctx := context.Background()
	resp, err := cli.ContainerCreate(ctx, &container.Config{
		Image: ref,
		Env: []string{"PANELX_EDGE_SERVER=" + apiURL, "PANELX_EDGE_TOKEN=" + token, "PANELX_DATA_DIR=/data",
			"PANELX_EDGE_HTTP=:8080", "PANELX_EDGE_HTTPS=:8443", "PANELX_ACME=false", "PANELX_EDGE_ID=" + name},
		ExposedPorts: nat.PortSet{"8080/tcp": {}},
		Labels:       map[string]string{edgeLabel: instance},
	}, &container.HostConfig{
		NetworkMode:  container.NetworkMode(bridge),
		PortBindings: nat.PortMap{"8080/tcp": {{HostIP: "127.0.0.1"}}},
	}, nil, nil, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			logs, err := cli.ContainerLogs(context.Background(), resp.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: "40"})
			if err == nil {
				b, _ := io.ReadAll(logs)
				logs.Close()
				t.Logf("edge container %s (%.12s) log:\n%s", name, resp.ID, b)
			}
		}
	})
	if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	var port string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		c, err := cli.ContainerInspect(ctx, resp.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !c.State.Running {
			t.Fatalf("the edge container exited (%d)", c.State.ExitCode)
		}
		if b := c.NetworkSettings.Ports["8080/tcp"]; len(b) > 0 && port == "" {
			port = b[0].HostPort
		}
		if port != "" {
			// Up: the edge answers any host, if only to say it serves nothing.
			if r, err := http.Get("http://127.0.0.1:" + port + "/"); err == nil {
				r.Body.Close()
				if r.Header.Get("X-PanelX-Edge") != "" {
					return port
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the edge container does not answer on 127.0.0.1:%s", port)
		}
	}
}

// attachedTo reports whether the container is on the network.
func attachedTo(t *testing.T, cli *client.Client, name, networkID string) bool {
	t.Helper()
	c, err := cli.ContainerInspect(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	for _, es := range c.NetworkSettings.Networks {
		if es != nil && es.NetworkID == networkID {
			return true
		}
	}
	return false
}

// throughEdge sends requests for host to the edge on 127.0.0.1:port until
// every one of want (the replicas' hostnames) has answered; anything but
// 200 from one of them fails the test.
func throughEdge(t *testing.T, port, host string, want map[string]bool) {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second}
	seen := map[string]int{}
	start := time.Now()
	for i := 0; ; i++ {
		req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+port+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("request %d through the edge: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// The edge may not have its routes yet (404, 503): it says so.
		if resp.StatusCode != http.StatusOK {
			if resp.Header.Get("X-PanelX-Edge") == "" || resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusGatewayTimeout || time.Since(start) > time.Minute {
				t.Fatalf("request %d through the edge: %d %s", i, resp.StatusCode, body)
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		var info struct {
			Hostname string `json:"hostname"`
		}
		if err := json.Unmarshal(body, &info); err != nil || !want[info.Hostname] {
			t.Fatalf("request %d through the edge: answered by %q, not a replica of %v (%v): %s", i, info.Hostname, want, err, body)
		}
		seen[info.Hostname]++
		if len(seen) == len(want) {
			t.Logf("through the edge: %d requests, answered by %v", i+1, seen)
			return
		}
		if i > 50 {
			t.Fatalf("after %d requests through the edge only %v answered, want all of %v", i+1, seen, want)
		}
	}
}

func pullImage(t *testing.T, cli *client.Client, ref string) {
	t.Helper()
	rc, err := cli.ImagePull(context.Background(), ref, image.PullOptions{})
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
}

var (
	panelxOnce sync.Once
	panelxBin  string
	panelxErr  error
)

// edgeImage is the panelx binary, built static for linux, in a FROM-scratch
// image whose entrypoint is `panelx edge`.
func edgeImage(t *testing.T) v1.Image {
	t.Helper()
	panelxOnce.Do(func() {
		dir, err := os.MkdirTemp("", "panelx-swarmtest-")
		if err != nil {
			panelxErr = err
			return
		}
		panelxBin = filepath.Join(dir, "panelx")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", panelxBin, "github.com/panelx/panelx/cmd/panelx")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
		if out, err := cmd.CombinedOutput(); err != nil {
			panelxErr = fmt.Errorf("go build ./cmd/panelx: %w\n%s", err, out)
		}
	})
	if panelxErr != nil {
		t.Fatal(panelxErr)
	}
	bin, err := os.ReadFile(panelxBin)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range []struct {
		hdr  tar.Header
		body []byte
	}{
		{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "data/", Mode: 0o755}},
		{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777}},
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "panelx", Mode: 0o755, Size: int64(len(bin))}, body: bin},
	} {
		e.hdr.ModTime = time.Unix(0, 0)
		if err := tw.WriteHeader(&e.hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil },
		tarball.WithCompressionLevel(gzip.BestSpeed))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config = v1.Config{Entrypoint: []string{"/panelx"}, Cmd: []string{"edge"}, Labels: map[string]string{"org.panelx.testimage": "true"}}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}
