package swarmtest_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"k8s.io/client-go/util/workqueue"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/controller"
	"github.com/panelx/panelx/controller/conformance"
	"github.com/panelx/panelx/controller/conformance/dockerside"
	"github.com/panelx/panelx/internal/dockerclient"
	"github.com/panelx/panelx/internal/testenv"
	"github.com/panelx/panelx/internal/testimage"
	"github.com/panelx/panelx/reconcile"
	dockerruntime "github.com/panelx/panelx/reconcile/docker"
	swarmruntime "github.com/panelx/panelx/reconcile/swarm"
	"github.com/panelx/panelx/store"
	"github.com/panelx/panelx/store/postgres"
	"github.com/panelx/panelx/store/storetest"
)

// swarmReady is why the swarm could not be set up ("" when it is).
var swarmReady = "not set up"

// TestMain makes the local engine a single-node swarm for the package's
// run, unless it is one already, and leaves it again at the end.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	// Init and leave rewire the engine's networks: no other test process
	// may use the engine meanwhile (testenv.Docker holds the lock shared).
	unlock, err := testenv.LockEngine()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cli, err := dockerclient.New(ctx)
	if err != nil {
		swarmReady = fmt.Sprintf("no Docker Engine: %v", err)
		return m.Run()
	}
	defer cli.Close()
	info, err := cli.Info(ctx)
	if err != nil {
		swarmReady = fmt.Sprintf("no Docker Engine: %v", err)
		return m.Run()
	}
	switch info.Swarm.LocalNodeState {
	case swarm.LocalNodeStateActive:
		if !info.Swarm.ControlAvailable {
			swarmReady = "the engine is a swarm worker, not a manager"
			return m.Run()
		}
		swarmReady = "" // someone's swarm: used, and left as it was
		return m.Run()
	case swarm.LocalNodeStateInactive:
	default:
		swarmReady = fmt.Sprintf("the engine's swarm state is %q", info.Swarm.LocalNodeState)
		return m.Run()
	}
	if _, err := cli.SwarmInit(ctx, swarm.InitRequest{ListenAddr: "127.0.0.1:2377", AdvertiseAddr: "127.0.0.1"}); err != nil {
		swarmReady = fmt.Sprintf("docker swarm init --advertise-addr 127.0.0.1: %v", err)
		return m.Run()
	}
	swarmReady = ""
	code := m.Run()
	lctx, lcancel := context.WithTimeout(context.Background(), time.Minute)
	defer lcancel()
	if err := cli.SwarmLeave(lctx, true); err != nil {
		fmt.Fprintf(os.Stderr, "docker swarm leave --force: %v\n", err)
		return 1
	}
	return code
}

// needSwarm skips (fails in CI) a test when there is no swarm.
func needSwarm(t *testing.T) {
	t.Helper()
	if swarmReady != "" {
		testenv.Missing(t, "a single-node swarm: %s", swarmReady)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// target is a world for one test on the swarm: a fresh database, an
// installation ID, an in-process registry; everything removed at the end.
func target(t *testing.T) conformance.Target { return targetOn(t, true) }

// targetOn is a target on the swarm, or with the single-engine runtime on
// the same engine (for the benchmark's peer).
func targetOn(t testing.TB, onSwarm bool) conformance.Target {
	if tt, ok := t.(*testing.T); ok {
		needSwarm(tt)
	} else if swarmReady != "" {
		testenv.Missing(t, "a single-node swarm: %s", swarmReady)
	}
	cli := testenv.Docker(t)
	instance := "swarm-" + randomHex(6)
	url := testenv.NewDatabase(t)
	s, err := postgres.Open(context.Background(), url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeAll(cli, instance) })
	reg := testimage.StartRegistry(t, testimage.RegistryOptions{})
	var rt reconcile.Runtime = swarmruntime.New(cli, instance, swarmruntime.Options{PublishMode: swarmruntime.PublishHost})
	if !onSwarm {
		rt = dockerruntime.NewRuntime(cli, instance)
	}
	return conformance.Target{
		Instance: instance,
		Runtime:  rt,
		Store:    s,
		Registry: testRegistry{reg},
		PrivateRegistry: func(t testing.TB, username, password string) conformance.Registry {
			return testRegistry{testimage.StartRegistry(t, testimage.RegistryOptions{Username: username, Password: password})}
		},
		Outside: swarmOutside{dockerside.Outside{T: t, Cli: cli}},
		HTTP:    true,
		HostIP:  "", // Swarm binds every address of the node; the tests reach it on 127.0.0.1
		ReplicaName: func(project, service string, index int) string {
			return fmt.Sprintf("%s.%d", reconcile.WorkloadName(project, service), index+1)
		},
		Timeout: 2 * time.Minute,
	}
}

// removeAll removes the test's services (their tasks go with them), then
// its containers, networks and volumes.
func removeAll(cli *client.Client, instance string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := filters.NewArgs(filters.Arg("label", reconcile.LabelInstance+"="+instance))
	svcs, _ := cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: f})
	for _, s := range svcs {
		_ = cli.ServiceRemove(ctx, s.ID)
	}
	// A service's containers go shortly after it; the networks and
	// volumes only once they have.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
		if err != nil || len(cs) == 0 {
			break
		}
	}
	testenv.RemoveLabelled(cli, reconcile.LabelInstance+"="+instance)
}

type testRegistry struct{ *testimage.Registry }

func (r testRegistry) Push(t testing.TB, repoTag, version string) string {
	return r.Registry.Push(t, repoTag, testimage.Image(t, testimage.ImageOptions{Version: version}))
}

// swarmOutside is a person at the Docker CLI of the (single) node: the
// replicas' IDs are tasks', whose containers it finds.
type swarmOutside struct {
	dockerside.Outside
}

func (d swarmOutside) containerOf(ctx context.Context, id string) (string, error) {
	task, _, err := d.Cli.TaskInspectWithRaw(ctx, id)
	if err != nil {
		return id, nil // not a task: a container
	}
	if task.Status.ContainerStatus == nil || task.Status.ContainerStatus.ContainerID == "" {
		return "", fmt.Errorf("task %s has no container", id)
	}
	return task.Status.ContainerStatus.ContainerID, nil
}

func (d swarmOutside) RemoveContainer(ctx context.Context, id string) error {
	cid, err := d.containerOf(ctx, id)
	if err != nil {
		return err
	}
	return d.Outside.RemoveContainer(ctx, cid)
}

func (d swarmOutside) StopContainer(ctx context.Context, id string) error {
	cid, err := d.containerOf(ctx, id)
	if err != nil {
		return err
	}
	return d.Outside.StopContainer(ctx, cid)
}

// RemoveNetwork removes the overlay the way a person must on Swarm, which
// refuses to remove an overlay its services use: `docker service rm` of
// the services on it, then `docker network rm` once their tasks have let
// go of it. PanelX is to bring back both.
func (d swarmOutside) RemoveNetwork(ctx context.Context, name string) error {
	n, err := d.Cli.NetworkInspect(ctx, name, network.InspectOptions{})
	if err != nil {
		return err
	}
	// The tasks' containers leave the network a moment after their
	// service is gone, and PanelX may meanwhile re-create the service,
	// which holds the network again: the person repeats both until the
	// removal sticks.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		svcs, err := d.Cli.ServiceList(ctx, swarm.ServiceListOptions{})
		if err != nil {
			return err
		}
		for _, s := range svcs {
			for _, na := range s.Spec.TaskTemplate.Networks {
				if na.Target == n.ID || na.Target == name {
					if err := d.Cli.ServiceRemove(ctx, s.ID); err != nil && !errdefs.IsNotFound(err) {
						return fmt.Errorf("docker service rm %s: %w", s.Spec.Name, err)
					}
				}
			}
		}
		err = d.Cli.NetworkRemove(ctx, n.ID)
		if err == nil || errdefs.IsNotFound(err) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("docker network rm %s: %w", name, err)
		}
	}
}

// Squat makes a Swarm service of no installation under the name PanelX
// would give the service (no replicas: the name is what matters).
func (d swarmOutside) Squat(ctx context.Context, project, service, ref string) (func(context.Context) error, error) {
	name := reconcile.WorkloadName(project, service)
	zero := uint64(0)
	resp, err := d.Cli.ServiceCreate(ctx, swarm.ServiceSpec{Annotations: swarm.Annotations{Name: name},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: ref, Args: []string{"-sleep"}}},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &zero}}}, swarm.ServiceCreateOptions{})
	if err != nil {
		return nil, err
	}
	d.T.Cleanup(func() { _ = d.Cli.ServiceRemove(context.Background(), resp.ID) })
	before, _, err := d.Cli.ServiceInspectWithRaw(ctx, resp.ID, swarm.ServiceInspectOptions{})
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		s, _, err := d.Cli.ServiceInspectWithRaw(ctx, resp.ID, swarm.ServiceInspectOptions{})
		if err != nil {
			return err
		}
		if s.Version.Index != before.Version.Index {
			return fmt.Errorf("service %s was changed (version %d → %d)", name, before.Version.Index, s.Version.Index)
		}
		return nil
	}, nil
}

// TestConformance runs the runtime conformance suite on the swarm.
func TestConformance(t *testing.T) {
	conformance.Run(t, target)
}

// world is a target with its controller running.
type world struct {
	t   testing.TB
	ctx context.Context
	conformance.Target
	cli *client.Client
}

func newWorld(t testing.TB) *world { return newWorldOn(t, true) }

func newWorldOn(t testing.TB, onSwarm bool) *world {
	tg := targetOn(t, onSwarm)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return startController(t, ctx, tg, testenv.Docker(t))
}

// startController runs a controller on the target until the test ends;
// tune changes its options (a keyring, say).
func startController(t testing.TB, ctx context.Context, tg conformance.Target, cli *client.Client, tune ...func(*controller.Options)) *world {
	w := &world{t: t, ctx: ctx, Target: tg, cli: cli}
	opts := controller.Options{Store: tg.Store, Runtime: tg.Runtime, Instance: tg.Instance,
		Log: zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)), ResyncInterval: 30 * time.Second, PullInterval: time.Second,
		RateLimiter: workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Key](100*time.Millisecond, 2*time.Second)}
	for _, f := range tune {
		f(&opts)
	}
	c, err := controller.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	cctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(cctx) }()
	t.Cleanup(func() { stop(); <-done })
	return w
}

func (w *world) project() string {
	name := "sw-" + w.Instance[len(w.Instance)-6:]
	if _, err := w.Store.Projects().Create(w.ctx, storetest.Project(name)); err != nil && !errors.Is(err, store.ErrConflict) {
		w.t.Fatal(err)
	}
	return name
}

func (w *world) apply(project, name string, mutate func(*api.Service)) {
	w.t.Helper()
	for {
		cur, err := w.Store.Services().Get(w.ctx, api.Key{Project: project, Name: name})
		if errors.Is(err, store.ErrNotFound) {
			cur = &api.Service{Metadata: api.ObjectMeta{Project: project, Name: name}}
		} else if err != nil {
			w.t.Fatal(err)
		}
		mutate(cur)
		cur.Default()
		if errs := cur.Validate(); len(errs) > 0 {
			w.t.Fatalf("invalid service: %v", errs)
		}
		if cur.Metadata.ResourceVersion == "" {
			_, err = w.Store.Services().Create(w.ctx, cur)
		} else {
			_, err = w.Store.Services().Update(w.ctx, cur)
		}
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			w.t.Fatal(err)
		}
		return
	}
}

// wait polls the service until cond holds.
func (w *world) wait(project, name, what string, cond func(*api.Service) bool) *api.Service {
	w.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		svc, err := w.Store.Services().Get(w.ctx, api.Key{Project: project, Name: name})
		if err == nil && svc.Status.ObservedGeneration == svc.Metadata.Generation && cond(svc) {
			return svc
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("timed out waiting for %s: %+v", what, svc)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// healthchecked is a service whose replicas are healthy only while the
// test program serves.
func healthchecked(image string, replicas int32) func(*api.Service) {
	return func(s *api.Service) {
		s.Spec.Image = image
		s.Spec.Replicas = &replicas
		s.Spec.Healthcheck = &api.Healthcheck{Command: []string{"/testapp", "-check"},
			Interval: api.Duration{Duration: time.Second}, Timeout: api.Duration{Duration: time.Second}, Retries: 2}
	}
}

// TestTwoReplicasFromTasks: a service becomes a Swarm service of two
// replicas, its image pinned by digest, start-first with rollback on
// failure, on an attachable overlay; it reports Ready from its tasks.
func TestTwoReplicasFromTasks(t *testing.T) {
	w := newWorld(t)
	p := w.project()
	img := w.Registry.Push(t, "t"+w.Instance[len(w.Instance)-6:]+"/web:1", "1")
	start := time.Now()
	w.apply(p, "web", healthchecked(img, 2))
	svc := w.wait(p, "web", "2/2 Ready", reconcile.ServiceReady)
	t.Logf("2/2 Ready after %v", time.Since(start).Round(time.Millisecond))
	if svc.Status.ReadyReplicas != 2 || len(svc.Status.Replicas) != 2 {
		t.Fatalf("status: %d ready, replicas %+v", svc.Status.ReadyReplicas, svc.Status.Replicas)
	}
	s, _, err := w.cli.ServiceInspectWithRaw(w.ctx, reconcile.WorkloadName(p, "web"), swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range svc.Status.Replicas {
		task, _, err := w.cli.TaskInspectWithRaw(w.ctx, r.ContainerID)
		if err != nil {
			t.Errorf("replica %d: %s is not a task: %v", i, r.ContainerID, err)
			continue
		}
		if task.ServiceID != s.ID || task.Status.State != swarm.TaskStateRunning || r.State != "running" || r.Health != "healthy" {
			t.Errorf("replica %d: task of %s in %s; status %+v", i, task.ServiceID, task.Status.State, r)
		}
	}
	cs := s.Spec.TaskTemplate.ContainerSpec
	if !strings.Contains(cs.Image, "@sha256:") {
		t.Errorf("image %s is not pinned by digest", cs.Image)
	}
	if u := s.Spec.UpdateConfig; u == nil || u.Order != swarm.UpdateOrderStartFirst || u.FailureAction != swarm.UpdateFailureActionRollback {
		t.Errorf("update config %+v: want start-first, rollback", u)
	}
	if s.Spec.Labels[reconcile.LabelInstance] != w.Instance || cs.Labels[reconcile.LabelSpecHash] != s.Spec.Labels[reconcile.LabelSpecHash] {
		t.Errorf("labels: service %v, template %v", s.Spec.Labels, cs.Labels)
	}
	n, err := w.cli.NetworkInspect(w.ctx, reconcile.NetworkName(p), network.InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Driver != "overlay" || !n.Attachable || n.Scope != "swarm" {
		t.Errorf("project network: driver %s, attachable %v, scope %s", n.Driver, n.Attachable, n.Scope)
	}
}

// TestFailedRolloutRollsBack: a new spec whose replicas crash at start is
// rolled back by Swarm; PanelX says so (Degraded, RolledBack)
// and does not try the same spec again; the old replicas keep running.
func TestFailedRolloutRollsBack(t *testing.T) {
	w := newWorld(t)
	p := w.project()
	img := w.Registry.Push(t, "t"+w.Instance[len(w.Instance)-6:]+"/web:1", "1")
	two := int32(2)
	w.apply(p, "web", func(s *api.Service) { s.Spec.Image, s.Spec.Replicas = img, &two })
	w.wait(p, "web", "2/2 Ready", reconcile.ServiceReady)
	name := reconcile.WorkloadName(p, "web")
	before, _, err := w.cli.ServiceInspectWithRaw(w.ctx, name, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// -check asks a server that does not run, and exits 1: a crash. (Swarm's
	// updater counts only tasks that reached running: with a healthcheck a
	// crashing replica never does, and the rollout stays "updating" while
	// Swarm replaces it again and again — until PanelX's progress deadline.)
	changed := time.Now()
	w.apply(p, "web", func(s *api.Service) { s.Spec.Args = []string{"-check"} })
	svc := w.wait(p, "web", "Degraded: RolledBack", func(s *api.Service) bool {
		d := api.FindCondition(s.Status.Conditions, api.ConditionDegraded)
		return d != nil && d.Status == api.ConditionTrue && d.Reason == reconcile.ReasonRolledBack
	})
	t.Logf("Degraded %v after the change: %s", time.Since(changed).Round(100*time.Millisecond), api.FindCondition(svc.Status.Conditions, api.ConditionDegraded).Message)
	after, _, err := w.cli.ServiceInspectWithRaw(w.ctx, name, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after.Spec.Labels[reconcile.LabelSpecHash] != before.Spec.Labels[reconcile.LabelSpecHash] {
		t.Errorf("the service is not back on its old spec")
	}
	// Not tried again: one update sent, and the old spec stays.
	time.Sleep(3 * time.Second)
	again, _, err := w.cli.ServiceInspectWithRaw(w.ctx, name, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Spec.Labels[reconcile.LabelSpecHash] != before.Spec.Labels[reconcile.LabelSpecHash] {
		t.Errorf("the failed spec was tried again")
	}
	evs, err := w.Store.Events().List(w.ctx, p, store.EventFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	updates := 0
	for _, ev := range evs {
		if ev.Name == "web" && ev.Reason == "Updated" {
			updates++
		}
	}
	if updates != 1 {
		t.Errorf("%d updates sent, want 1", updates)
	}
	// The old two run (a third, of the failed spec, may take a moment to
	// be shut down).
	oldHash := before.Spec.Labels[reconcile.LabelSpecHash]
	var running, other int
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		tasks, err := w.cli.TaskList(w.ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", name), filters.Arg("desired-state", "running"))})
		if err != nil {
			t.Fatal(err)
		}
		running, other = 0, 0
		for _, task := range tasks {
			switch {
			case task.Status.State == swarm.TaskStateRunning && task.Spec.ContainerSpec.Labels[reconcile.LabelSpecHash] == oldHash:
				running++
			case task.Status.State == swarm.TaskStateRunning:
				other++
			}
		}
		if running == 2 && other == 0 || time.Now().After(deadline) {
			break
		}
	}
	if running != 2 || other != 0 {
		t.Errorf("after the rollback: %d tasks of the old spec running, %d of another; want 2 and 0", running, other)
	}
	// Undoing the change is a spec Swarm runs again: Ready.
	w.apply(p, "web", func(s *api.Service) { s.Spec.Args = nil })
	w.wait(p, "web", "Ready again", reconcile.ServiceReady)
}
