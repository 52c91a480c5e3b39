// Package multinodetest runs PanelX's Swarm runtime on a swarm of three
// Docker Engines, each in its own network namespace on this machine
// (dockerd.StartCluster): replicas spread over the nodes, images pulled on
// every node with the project's registry credentials, a volume's service
// kept on the volume's node, and a node whose daemon is killed shown as a
// condition naming it while Swarm moves its replicas. It uses no Docker
// Engine of the host, so it runs beside the other packages' tests.
package multinodetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/volume"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"k8s.io/client-go/util/workqueue"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/controller"
	"github.com/panelx/panelx/internal/testenv"
	"github.com/panelx/panelx/internal/testenv/dockerd"
	"github.com/panelx/panelx/internal/testimage"
	"github.com/panelx/panelx/operate"
	"github.com/panelx/panelx/reconcile"
	swarmruntime "github.com/panelx/panelx/reconcile/swarm"
	"github.com/panelx/panelx/store"
	"github.com/panelx/panelx/store/postgres"
	"github.com/panelx/panelx/store/storetest"
)

// world is a controller driving a three-node swarm.
type world struct {
	t       *testing.T
	ctx     context.Context
	cluster *dockerd.Cluster
	store   store.Store
	project string
	stop    func() // the controller newWorld started
	// backups, when set, runs the volumes' runs (moves) beside it.
	backups *controller.Backups
}

// newCluster starts the three nodes and a fresh store: a world whose
// controller is not running yet (run starts it).
func newCluster(t *testing.T) *world {
	c := dockerd.StartCluster(t, dockerd.ClusterOptions{Nodes: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	s, err := postgres.Open(ctx, testenv.NewDatabase(t), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return &world{t: t, ctx: ctx, cluster: c, store: s, project: "multi"}
}

// run starts a controller of the runtime and creates the project; stop
// ends that controller (also done when the test ends).
func (w *world) run(rt reconcile.Runtime) (stop func()) {
	stop = w.startController(rt)
	if _, err := w.store.Projects().Create(w.ctx, storetest.Project(w.project)); err != nil {
		w.t.Fatal(err)
	}
	return stop
}

// startController runs a controller of the runtime until stop or the end
// of the test.
func (w *world) startController(rt reconcile.Runtime) (stop func()) {
	t := w.t
	ctl, err := controller.New(controller.Options{Store: w.store, Runtime: rt, Instance: "multinode",
		Log: zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)), ResyncInterval: 30 * time.Second, PullInterval: time.Minute,
		RateLimiter: workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Key](100*time.Millisecond, 2*time.Second),
		Backups:     w.backups})
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(w.ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = ctl.Run(cctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// multinodeOptions: dnsrr, since this machine's kernel has no IPVS, which
// a service's virtual IP needs (docs/architecture.md); service names then
// resolve to the replicas' own addresses, as on one engine.
var multinodeOptions = swarmruntime.Options{PublishMode: swarmruntime.PublishHost, EndpointMode: swarmruntime.EndpointDNSRR}

// newWorld is a cluster with PanelX's Swarm runtime driving it.
func newWorld(t *testing.T) *world {
	w := newCluster(t)
	w.stop = w.run(swarmruntime.New(w.cluster.Manager().Client(t), "multinode", multinodeOptions))
	return w
}

func (w *world) apply(name string, mutate func(*api.Service)) {
	w.t.Helper()
	svc := &api.Service{Metadata: api.ObjectMeta{Project: w.project, Name: name}}
	mutate(svc)
	svc.Default()
	if errs := svc.Validate(); len(errs) > 0 {
		w.t.Fatalf("invalid service: %v", errs)
	}
	if _, err := w.store.Services().Create(w.ctx, svc); err != nil {
		w.t.Fatal(err)
	}
}

// wait polls the service until cond holds and returns it.
func (w *world) wait(name, what string, cond func(*api.Service) bool) *api.Service {
	w.t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	var last *api.Service
	for {
		svc, err := w.store.Services().Get(w.ctx, api.Key{Project: w.project, Name: name})
		if err == nil {
			last = svc
			if svc.Status.ObservedGeneration == svc.Metadata.Generation && cond(svc) {
				return svc
			}
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("timed out waiting for %s of %s: status %+v", what, name, last.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// nodesOf returns the node of each replica.
func nodesOf(svc *api.Service) []string {
	var out []string
	for _, r := range svc.Status.Replicas {
		out = append(out, r.Node)
	}
	return out
}

func distinct(s []string) int {
	s = slices.Clone(s)
	slices.Sort(s)
	return len(slices.Compact(s))
}

func httpGet(ctx context.Context, addr, path string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s%s: %s: %s", addr, path, resp.Status, b)
	}
	return string(b), err
}

// TestMultiNode: see the package documentation. One test, in steps that
// build on each other: starting a cluster takes ~7 s.
func TestMultiNode(t *testing.T) {
	w := newWorld(t)
	c := w.cluster
	// The registry listens where the nodes reach the host, and wants a
	// password: a worker can pull only with the credentials PanelX sends
	// along (no "No such image" on workers).
	reg := testimage.StartRegistry(t, testimage.RegistryOptions{Listen: net.JoinHostPort(c.HostAddr().String(), "0"),
		Username: "ci", Password: "s3cret"})
	img := reg.Push(t, "multi/app:1", testimage.Image(t, testimage.ImageOptions{Version: "1"}))
	if _, err := w.store.RegistryCredentials().Put(w.ctx, store.RegistryCredential{Project: w.project, Registry: reg.Host(),
		Username: "ci", Password: "s3cret"}); err != nil {
		t.Fatal(err)
	}
	healthy := &api.Healthcheck{Command: []string{"/testapp", "-check"},
		Interval: api.Duration{Duration: time.Second}, Timeout: api.Duration{Duration: time.Second}, Retries: 2}

	// A front on a host-mode port of its node (validation allows a host
	// port to one replica).
	const port = 18080
	w.apply("web", func(s *api.Service) {
		s.Spec.Image, s.Spec.Healthcheck = img, healthy
		s.Spec.Ports = []api.Port{{ContainerPort: 8080, HostPort: port}}
	})
	web := w.wait("web", "1/1 Ready", reconcile.ServiceReady)
	webNode := nodeByName(t, c, web.Status.Replicas[0].Node)
	front := net.JoinHostPort(webNode.Addr().String(), strconv.Itoa(port))
	if _, err := httpGet(w.ctx, front, "/healthz"); err != nil {
		t.Fatalf("web on %s: %v", webNode.Hostname(), err)
	}

	// A service with a volume stays on the node that holds the volume
	// (the manager's, where PanelX creates it).
	if _, err := w.store.Volumes().Create(w.ctx, storetest.Volume(w.project, "data")); err != nil {
		t.Fatal(err)
	}
	two := int32(2)
	w.apply("db", func(s *api.Service) {
		s.Spec.Image, s.Spec.Replicas, s.Spec.Healthcheck = img, &two, healthy
		s.Spec.Volumes = []api.VolumeMount{{Name: "data", MountPath: "/data"}}
	})
	db := w.wait("db", "2/2 Ready", reconcile.ServiceReady)
	vol, err := w.store.Volumes().Get(w.ctx, api.Key{Project: w.project, Name: "data"})
	if err != nil {
		t.Fatal(err)
	}
	if vol.Status.Node != c.Manager().Hostname() {
		t.Errorf("volume data: status.node = %q, want %s", vol.Status.Node, c.Manager().Hostname())
	}
	for _, node := range nodesOf(db) {
		if node != c.Manager().Hostname() {
			t.Errorf("db's replicas are on %v: want all on %s, which holds the volume", nodesOf(db), c.Manager().Hostname())
			break
		}
	}

	// Four replicas without a port spread over the nodes: the workers
	// pulled the private image with the credentials PanelX passed on.
	four := int32(4)
	w.apply("worker", func(s *api.Service) {
		s.Spec.Image, s.Spec.Replicas, s.Spec.Healthcheck = img, &four, healthy
		s.Spec.Env = []api.EnvVar{{Name: "LOG_EVERY", Value: "200ms"}}
	})
	worker := w.wait("worker", "4/4 Ready", reconcile.ServiceReady)
	t.Logf("worker's replicas on %v", nodesOf(worker))
	if distinct(nodesOf(worker)) < 2 {
		t.Fatalf("worker's replicas are all on %v", nodesOf(worker))
	}
	// The project's overlay joins the nodes: web reaches every replica of
	// worker at its overlay address, whatever node it is on.
	for _, r := range worker.Status.Replicas {
		task, _, err := c.Manager().Client(t).TaskInspectWithRaw(w.ctx, r.ContainerID)
		if err != nil {
			t.Fatal(err)
		}
		for _, na := range task.NetworksAttachments {
			if na.Network.Spec.Name != reconcile.NetworkName(w.project) || len(na.Addresses) == 0 {
				continue
			}
			ip, _, _ := strings.Cut(na.Addresses[0], "/")
			if _, err := httpGet(w.ctx, front, "/fetch?url=http://"+net.JoinHostPort(ip, "8080")+"/healthz"); err != nil {
				t.Errorf("web (on %s) → worker replica %d (on %s) at %s: %v", webNode.Hostname(), r.Index, r.Node, ip, err)
			}
		}
	}
	// And by the service's name, from another node's replica.
	for _, name := range []string{"worker", "tasks.worker"} {
		if _, err := httpGet(w.ctx, front, "/fetch?url=http://"+name+":8080/healthz"); err != nil {
			t.Errorf("web → http://%s:8080: %v", name, err)
		}
	}

	// Logs come from every replica, on any node, through the manager; a
	// terminal opens only on the manager's node and says where the
	// replica is otherwise.
	w.checkOperate(worker)

	// Kill the daemon of a worker node that runs replicas of worker.
	lost := c.Node(2)
	if !slices.Contains(nodesOf(worker), lost.Hostname()) {
		lost = c.Node(3)
	}
	var onLost []string
	for _, r := range worker.Status.Replicas {
		if r.Node == lost.Hostname() {
			onLost = append(onLost, strconv.Itoa(int(r.Index)))
		}
	}
	killed := time.Now()
	lost.Kill(t)
	nodeLost := func(s *api.Service) bool {
		cond := api.FindCondition(s.Status.Conditions, api.ConditionNodeLost)
		return cond != nil && cond.Status == api.ConditionTrue
	}
	worker = w.wait("worker", "the NodeLost condition", nodeLost)
	shown := time.Since(killed)
	msg := api.FindCondition(worker.Status.Conditions, api.ConditionNodeLost).Message
	t.Logf("NodeLost %v after the kill: %s", shown.Round(time.Millisecond), msg)
	if !strings.Contains(msg, "node "+lost.Hostname()+" ("+lost.SwarmID()[:12]+") is down") {
		t.Errorf("NodeLost message %q does not name the node %s (%s) as down", msg, lost.Hostname(), lost.SwarmID())
	}
	if !strings.Contains(msg, strings.Join(onLost, ", ")+" w") {
		t.Errorf("NodeLost message %q does not name replicas %v", msg, onLost)
	}
	// Swarm starts the lost replicas on the nodes left.
	worker = w.wait("worker", "4/4 Ready on the nodes left", func(s *api.Service) bool {
		return reconcile.ServiceReady(s) && !slices.Contains(nodesOf(s), lost.Hostname())
	})
	t.Logf("worker 4/4 Ready again %v after the kill, on %v", time.Since(killed).Round(time.Millisecond), nodesOf(worker))
	if !nodeLost(worker) {
		t.Errorf("NodeLost turned False while %s is still down", lost.Hostname())
	}
	// web had its only replica there, or not: either way it is Ready on a
	// live node.
	web = w.wait("web", "1/1 Ready on a live node", func(s *api.Service) bool {
		return reconcile.ServiceReady(s) && s.Status.Replicas[0].Node != lost.Hostname()
	})

	// The node comes back: Swarm ends the tasks it had, the condition
	// clears, and web is whole again.
	lost.Start(t)
	w.wait("worker", "NodeLost False", func(s *api.Service) bool { return !nodeLost(s) && reconcile.ServiceReady(s) })
	w.wait("web", "Ready after the node's return", func(s *api.Service) bool {
		return !nodeLost(s) && reconcile.ServiceReady(s)
	})
	if t.Failed() {
		return
	}
	t.Logf("node back: conditions cleared %v after the kill", time.Since(killed).Round(time.Millisecond))

	w.checkManagerChange()
}

// checkManagerChange: PanelX moves to another manager of the swarm (a
// failover, a new DOCKER_HOST). That engine does not have the volume,
// whose data is on the first manager's node: PanelX must not create an
// empty one there and move the services onto it; they stay on the node
// status.node names.
func (w *world) checkManagerChange() {
	t, c := w.t, w.cluster
	mgr := c.Manager().Client(t)
	second := c.Node(2)
	node, _, err := mgr.NodeInspectWithRaw(w.ctx, second.SwarmID())
	if err != nil {
		t.Fatal(err)
	}
	node.Spec.Role = swarm.NodeRoleManager
	if err := mgr.NodeUpdate(w.ctx, node.ID, node.Version, node.Spec); err != nil {
		t.Fatalf("promote %s: %v", second.Hostname(), err)
	}
	cli := second.Client(t)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		info, err := cli.Info(w.ctx)
		if err == nil && info.Swarm.ControlAvailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not become a manager: %v", second.Hostname(), err)
		}
	}
	w.stop()
	w.startController(swarmruntime.New(cli, "multinode", multinodeOptions))

	// The volume is where its data is, which PanelX says, and db stays
	// there, Ready.
	vol := w.waitVolume("data", "Ready on another node", func(v *api.Volume) bool {
		c := api.FindCondition(v.Status.Conditions, api.ConditionReady)
		return c != nil && c.Status == api.ConditionTrue && c.Reason == reconcile.ReasonOnAnotherNode
	})
	msg := api.FindCondition(vol.Status.Conditions, api.ConditionReady).Message
	t.Logf("volume data: %s", msg)
	if vol.Status.Node != c.Manager().Hostname() || !strings.Contains(msg, "on node "+c.Manager().Hostname()) || !strings.Contains(msg, "node "+second.Hostname()) {
		t.Errorf("volume data: node %s, message %q: want %s, and both nodes named", vol.Status.Node, msg, c.Manager().Hostname())
	}
	w.wait("db", "Ready where its data is", func(s *api.Service) bool {
		if !reconcile.ServiceReady(s) {
			return false
		}
		for _, r := range s.Status.Replicas {
			if r.Node != c.Manager().Hostname() {
				return false
			}
		}
		return true
	})
	// Swarm runs db where its data is.
	tasks, err := cli.TaskList(w.ctx, swarm.TaskListOptions{Filters: filters.NewArgs(
		filters.Arg("service", reconcile.WorkloadName(w.project, "db")), filters.Arg("desired-state", "running"))})
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		if task.NodeID != c.Manager().SwarmID() || task.Status.State != swarm.TaskStateRunning {
			t.Errorf("db's task %s: %s on node %s, want running on %s", task.ID, task.Status.State, task.NodeID, c.Manager().Hostname())
		}
	}
	if len(tasks) != 2 {
		t.Errorf("db has %d tasks, want its 2", len(tasks))
	}
	vols, err := cli.VolumeList(w.ctx, volume.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vols.Volumes {
		if v.Name == reconcile.VolumeName(w.project, "data") {
			t.Errorf("an empty volume %s was created on %s", v.Name, second.Hostname())
		}
	}
}

func (w *world) volume(name string) *api.Volume {
	w.t.Helper()
	v, err := w.store.Volumes().Get(w.ctx, api.Key{Project: w.project, Name: name})
	if err != nil {
		w.t.Fatal(err)
	}
	return v
}

func (w *world) waitVolume(name, what string, cond func(*api.Volume) bool) *api.Volume {
	w.t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		v := w.volume(name)
		if cond(v) {
			return v
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("volume %s: no %s: %+v", name, what, v.Status)
		}
	}
}

func nodeByName(t *testing.T, c *dockerd.Cluster, name string) *dockerd.Node {
	t.Helper()
	for _, n := range c.Nodes() {
		if n.Hostname() == name {
			return n
		}
	}
	t.Fatalf("no node %q in the cluster", name)
	return nil
}

// checkOperate reads the logs of worker's replicas and opens a terminal
// into each.
func (w *world) checkOperate(worker *api.Service) {
	t, c := w.t, w.cluster
	// Every replica logs every 200 ms: read until each has a line.
	var per map[int]int
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		lines, err := operate.SwarmLogs(w.ctx, c.Manager().Client(t), operate.LogTarget{Instance: "multinode", Project: w.project, Service: "worker"}, operate.LogOptions{})
		if err != nil {
			t.Fatal(err)
		}
		per = map[int]int{}
		for l := range lines {
			if l.Stream != operate.StreamSystem {
				per[l.Replica]++
			}
		}
		missing := 0
		for _, r := range worker.Status.Replicas {
			if per[int(r.Index)] == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log lines per replica %v: some of %+v have none", per, worker.Status.Replicas)
		}
	}
	for _, r := range worker.Status.Replicas {
		s, err := operate.SwarmExec(w.ctx, c.Manager().Client(t), operate.ExecTarget{Instance: "multinode", Project: w.project,
			Service: "worker", Replica: int(r.Index)}, operate.ExecOptions{Cmd: []string{"/testapp", "-echo"}})
		switch {
		case r.Node == c.Manager().Hostname() && err != nil:
			t.Errorf("exec in replica %d on the manager's node: %v", r.Index, err)
		case r.Node != c.Manager().Hostname() && (!errors.Is(err, operate.ErrOtherNode) || !strings.Contains(err.Error(), r.Node)):
			t.Errorf("exec in replica %d on %s: %v, want an error naming the node", r.Index, r.Node, err)
		}
		if s != nil {
			s.Close()
		}
	}
}
