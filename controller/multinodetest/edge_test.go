package multinodetest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"k8s.io/client-go/util/workqueue"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/controller"
	"github.com/panelx/panelx/internal/testedge"
	"github.com/panelx/panelx/internal/testenv"
	"github.com/panelx/panelx/internal/testenv/dockerd"
	"github.com/panelx/panelx/internal/testimage"
	"github.com/panelx/panelx/reconcile"
	swarmruntime "github.com/panelx/panelx/reconcile/swarm"
	"github.com/panelx/panelx/store/postgres"
	"github.com/panelx/panelx/store/storetest"
)

// TestEdgeReachesReplicasOnWorkers: the trap of Swarm-based panels — a
// proxy on the manager answers Bad Gateway for replicas on worker nodes —
// on three engines. `panelx edge` runs in a container on the manager's
// engine (a bridge network, its port published on the manager's address),
// PanelX attaches it to the project's overlay, and a request through it is
// answered by each of three replicas spread over the nodes, those on the
// workers included.
func TestEdgeReachesReplicasOnWorkers(t *testing.T) {
	c := dockerd.StartCluster(t, dockerd.ClusterOptions{Nodes: 3})
	mgr := c.Manager().Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	st, err := postgres.Open(ctx, testenv.NewDatabase(t), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
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
	ctl, err := controller.New(controller.Options{Store: st, Runtime: rt, Instance: "multinode",
		Log: zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)), ResyncInterval: 30 * time.Second, PullInterval: time.Minute,
		RateLimiter: workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Key](100*time.Millisecond, 2*time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	cctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = ctl.Run(cctx) }()
	t.Cleanup(func() { stop(); <-done })
	w := &world{t: t, ctx: ctx, cluster: c, store: st, project: "multi"}
	if _, err := st.Projects().Create(ctx, storetest.Project(w.project)); err != nil {
		t.Fatal(err)
	}

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
