package swarmtest_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/internal/testedge"
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
	edgeRef := reg.Push(t, "t"+suffix+"/panelx:edge", testedge.Image(t))
	testedge.Pull(t, cli, edgeRef, "")
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
	apiURL, token := testedge.ServeAPI(t, tg.Store, bn.IPAM.Config[0].Gateway)
	runEdge := func() string {
		t.Helper()
		return testedge.Start(t, cli, testedge.Options{Name: edgeName, Image: edgeRef, Network: bridge, API: apiURL, Token: token,
			Labels: map[string]string{edgeLabel: tg.Instance}, PublishIP: "127.0.0.1"})
	}
	edgeAddr := runEdge()

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
	if !testedge.Attached(t, cli, edgeName, overlay.ID) {
		t.Fatalf("the edge container is not on %s", overlay.Name)
	}

	// Through the edge: both replicas answer.
	t.Logf("through the edge: answered by %v", testedge.Through(t, edgeAddr, host, hostnames))

	// A recreated edge container has none of its networks: attached again
	// as it starts.
	if err := cli.ContainerRemove(ctx, edgeName, container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	recreated := time.Now()
	edgeAddr = runEdge()
	for !testedge.Attached(t, cli, edgeName, overlay.ID) {
		if time.Since(recreated) > 20*time.Second {
			t.Fatalf("the recreated edge container was not attached to %s", overlay.Name)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("the recreated edge container is on %s %v after it was created", overlay.Name, time.Since(recreated).Round(time.Millisecond))
	t.Logf("through the recreated edge: answered by %v", testedge.Through(t, edgeAddr, host, hostnames))

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
	testedge.Pull(t, cli, img, "")
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
