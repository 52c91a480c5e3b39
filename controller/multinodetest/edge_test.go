package multinodetest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/internal/testedge"
	"github.com/panelx/panelx/internal/testimage"
	"github.com/panelx/panelx/reconcile"
	swarmruntime "github.com/panelx/panelx/reconcile/swarm"
)

// TestEdgeReachesReplicasOnWorkers: the trap of Swarm-based panels — a
// proxy on the manager answers Bad Gateway for replicas on worker nodes —
// on three engines. `panelx edge` runs in a container on the manager's
// engine (a bridge network, its port published on the manager's address),
// PanelX attaches it to the project's overlay, and a request through it is
// answered by each of three replicas spread over the nodes, those on the
// workers included.
func TestEdgeReachesReplicasOnWorkers(t *testing.T) {
	w := newCluster(t)
	c, st, ctx := w.cluster, w.store, w.ctx
	mgr := c.Manager().Client(t)
	// The registry and the API listen where the nodes (and the edge's
	// container, through its node's NAT) reach the host.
	reg := testimage.StartRegistry(t, testimage.RegistryOptions{Listen: net.JoinHostPort(c.HostAddr().String(), "0")})
	img := reg.Push(t, "multi/app:1", testimage.Image(t, testimage.ImageOptions{Version: "1"}))
	edgeRef := reg.Push(t, "multi/panelx:edge", testedge.Image(t))
	testedge.Pull(t, mgr, edgeRef, "")
	apiURL, token := testedge.ServeAPI(t, st, c.HostAddr().String())
	if _, err := mgr.NetworkCreate(ctx, "edge", network.CreateOptions{Driver: "bridge"}); err != nil {
		t.Fatal(err)
	}
	edgeAddr := testedge.Start(t, mgr, testedge.Options{Name: "panelx-edge", Image: edgeRef, Network: "edge", API: apiURL, Token: token,
		PublishIP: c.Manager().Addr().String()})

	rt := swarmruntime.New(mgr, "multinode", swarmruntime.Options{PublishMode: swarmruntime.PublishHost, EdgeContainer: "panelx-edge"})
	kctx, kstop := context.WithCancel(ctx)
	kdone := make(chan struct{})
	go func() {
		defer close(kdone)
		rt.KeepEdgeAttached(kctx, 0, func(n string, err error) { t.Logf("keep the edge attached: %s %v", n, err) })
	}()
	t.Cleanup(func() { kstop(); <-kdone })
	w.run(rt)

	three := int32(3)
	off := false
	w.apply("web", func(s *api.Service) {
		s.Spec.Image, s.Spec.Replicas = img, &three
		s.Spec.Healthcheck = &api.Healthcheck{Command: []string{"/testapp", "-check"},
			Interval: api.Duration{Duration: time.Second}, Timeout: api.Duration{Duration: time.Second}, Retries: 2}
		s.Spec.Ports = []api.Port{{ContainerPort: 8080}}
		s.Spec.Domains = []api.Domain{{Host: "web.multi.test", TLS: api.TLSOff, RedirectHTTPS: &off}}
	})
	web := w.wait("web", "3/3 Ready with 3 endpoints", func(s *api.Service) bool {
		return reconcile.ServiceReady(s) && len(s.Status.Endpoints) == 3
	})
	onWorkers := 0
	hostnames := map[string]bool{}
	nodeOf := map[string]string{}
	for _, ep := range web.Status.Endpoints {
		task, _, err := mgr.TaskInspectWithRaw(ctx, ep.ContainerID)
		if err != nil || task.Status.ContainerStatus == nil {
			t.Fatalf("endpoint %+v: %v", ep, err)
		}
		node, _, err := mgr.NodeInspectWithRaw(ctx, task.NodeID)
		if err != nil {
			t.Fatal(err)
		}
		h := task.Status.ContainerStatus.ContainerID[:12]
		hostnames[h], nodeOf[h] = true, node.Description.Hostname
		if node.Description.Hostname != c.Manager().Hostname() {
			onWorkers++
		}
		t.Logf("endpoint: replica %d at %s on %s", ep.Replica, ep.IP, node.Description.Hostname)
	}
	if onWorkers == 0 {
		t.Fatalf("no replica of web on a worker node: %v", nodeOf)
	}
	seen := testedge.Through(t, edgeAddr, "web.multi.test", hostnames)
	for h, n := range seen {
		t.Logf("through the edge on %s: %d answers from the replica on %s", c.Manager().Hostname(), n, nodeOf[h])
	}
}
