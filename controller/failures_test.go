package controller_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/controller"
	"github.com/panelx/panelx/naming"
	"github.com/panelx/panelx/reconcile"
	"github.com/panelx/panelx/store"
)

// panickyRuntime panics when asked to create a container of one service.
type panickyRuntime struct {
	reconcile.Runtime
	service string
}

func (r panickyRuntime) CreateContainer(ctx context.Context, spec reconcile.ContainerSpec) (string, error) {
	if spec.Labels[reconcile.LabelService] == r.service {
		panic("injected: cannot create " + spec.Name)
	}
	return r.Runtime.CreateContainer(ctx, spec)
}

// TestPanicInReconcileIsContained: a reconcile that panics is recovered,
// counted and retried with backoff; every other key goes on.
func TestPanicInReconcileIsContained(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	img := e.image("shop/web:1", "1")
	project := e.uniq("shop")
	e.createProject(project)
	reg := prometheus.NewRegistry()
	opts := e.controllerOptions()
	opts.Runtime = panickyRuntime{Runtime: opts.Runtime, service: "boom"}
	opts.Metrics = controller.NewMetrics(reg)
	e.startController(opts)
	e.createService(project, "boom", img, nil)
	e.createService(project, "fine", img, nil)
	e.waitReady(project, "fine")
	e.eventually(30*time.Second, "the panic counted and retried", func() (bool, string) {
		n := panics(t, reg)
		return n >= 2, fmt.Sprintf("%v panics counted", n)
	})
	// And the controller still works after it.
	e.updateService(project, "fine", func(s *api.Service) { s.Spec.Env = []api.EnvVar{{Name: "A", Value: "1"}} })
	e.waitReady(project, "fine")
}

// panics sums panelx_reconcile_panics_total.
func panics(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() == "panelx_reconcile_panics_total" {
			for _, m := range mf.GetMetric() {
				v += m.GetCounter().GetValue()
			}
		}
	}
	return v
}

// stuckRuntime fails every start of one container, as containerd does
// after an engine restart when it kept a stale task ("task … already
// exists"): no retry of that container can work.
type stuckRuntime struct {
	reconcile.Runtime
	mu      sync.Mutex
	stuckID string
}

func (r *stuckRuntime) stick(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stuckID = id
}

func (r *stuckRuntime) StartContainer(ctx context.Context, ref string) error {
	r.mu.Lock()
	stuckID := r.stuckID
	r.mu.Unlock()
	stuck := ref == stuckID
	if !stuck && stuckID != "" {
		// A ref may be a name; the name is reused by the replacement.
		if c, err := r.Runtime.InspectContainer(ctx, ref); err == nil {
			stuck = c.ID == stuckID
		}
	}
	if stuck {
		return errors.New("failed to create task for container: task " + ref + " already exists: unknown")
	}
	return r.Runtime.StartContainer(ctx, ref)
}

// TestUnstartableContainerIsRecreated: a stopped container whose start
// fails in a way no retry fixes is removed and created again, with an
// event saying why.
func TestUnstartableContainerIsRecreated(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	img := e.image("shop/web:1", "1")
	project := e.uniq("shop")
	e.createProject(project)
	opts := e.controllerOptions()
	rt := &stuckRuntime{Runtime: opts.Runtime}
	opts.Runtime = rt
	e.startController(opts)
	e.createService(project, "stuck", img, nil)
	first := e.waitReady(project, "stuck").Status.Replicas[0].ContainerID
	rt.stick(first)
	if err := e.docker.ContainerStop(e.ctx, first, container.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually(60*time.Second, "a new container", func() (bool, string) {
		svc, err := e.store.Services().Get(e.ctx, api.Key{Project: project, Name: "stuck"})
		if err != nil {
			return false, err.Error()
		}
		return reconcile.ServiceReady(svc) && svc.Status.Replicas[0].ContainerID != first, statusSummary(svc)
	})
	evs, err := e.store.Events().List(e.ctx, project, store.EventFilter{Name: "stuck"})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ev := range evs {
		found = found || (ev.Reason == "Removed" && strings.Contains(ev.Message, "could not be started 2 times") && strings.Contains(ev.Message, "already exists"))
	}
	if !found {
		t.Errorf("no event says why the container was recreated: %+v", evs)
	}
}

// TestDeadContainerDoesNotBlockRollout: when the engine cannot remove the
// container a rollout replaced (here an immutable file in its filesystem;
// in the field, "device or resource busy" after an engine restart), Docker
// leaves it dead. The rollout still completes: the dead one is moved off
// the replica's name and removed once the engine lets it.
func TestDeadContainerDoesNotBlockRollout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	img := e.image("shop/web:1", "1")
	project := e.uniq("shop")
	e.createProject(project)
	e.startController(e.controllerOptions())
	e.createService(project, "web", img, nil)
	first := e.waitReady(project, "web").Status.Replicas[0].ContainerID

	unpin := pinContainerFS(t, e, first)
	t.Cleanup(unpin)
	e.updateService(project, "web", func(s *api.Service) { s.Spec.Env = []api.EnvVar{{Name: "V", Value: "2"}} })

	deadName := naming.DeadContainerName(project, "web", 0, first)
	e.eventually(60*time.Second, "the replacement ready and the dead container moved aside", func() (bool, string) {
		svc, err := e.store.Services().Get(e.ctx, api.Key{Project: project, Name: "web"})
		if err != nil {
			return false, err.Error()
		}
		in, err := e.docker.ContainerInspect(e.ctx, first)
		if err != nil {
			return false, err.Error()
		}
		return reconcile.ServiceReady(svc) && svc.Status.Replicas[0].ContainerID != first &&
				in.State.Dead && in.Name == "/"+deadName,
			fmt.Sprintf("%s; old container %s dead=%v", statusSummary(svc), in.Name, in.State.Dead)
	})
	svc, err := e.store.Services().Get(e.ctx, api.Key{Project: project, Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	if in, err := e.docker.ContainerInspect(e.ctx, svc.Status.Replicas[0].ContainerID); err != nil {
		t.Fatal(err)
	} else if in.Name != "/"+naming.ContainerName(project, "web", 0) {
		t.Errorf("the replacement runs as %q, want the replica's name", in.Name)
	}
	e.eventually(10*time.Second, "an event saying the removal failed", func() (bool, string) {
		evs, err := e.store.Events().List(e.ctx, project, store.EventFilter{Name: "web"})
		if err != nil {
			return false, err.Error()
		}
		for _, ev := range evs {
			if ev.Reason == "CleanupFailed" && strings.Contains(ev.Message, first) {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d events, none CleanupFailed for %s", len(evs), first)
	})

	// Once the engine can remove it, the next attempt (after the 30 s
	// backoff) does.
	unpin()
	e.eventually(90*time.Second, "the dead container removed", func() (bool, string) {
		_, err := e.docker.ContainerInspect(e.ctx, first)
		return cerrdefs.IsNotFound(err), fmt.Sprint(err)
	})
}

// pinContainerFS makes the container's filesystem impossible to delete: an
// immutable file in its writable layer. The returned func undoes it.
func pinContainerFS(t *testing.T, e *env, id string) func() {
	t.Helper()
	in, err := e.docker.ContainerInspect(e.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	upper := in.GraphDriver.Data["UpperDir"]
	if upper == "" {
		t.Fatalf("container %s has no UpperDir (storage driver %s)", id, in.GraphDriver.Name)
	}
	path := filepath.Join(upper, "panelx-test-pin")
	if err := os.WriteFile(path, []byte("pinned"), 0o644); err != nil {
		t.Fatal(err)
	}
	setImmutable := func(on bool) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		flags, err := unix.IoctlGetInt(int(f.Fd()), unix.FS_IOC_GETFLAGS)
		if err != nil {
			return fmt.Errorf("get flags of %s: %w", path, err)
		}
		const immutable = 0x10 // FS_IMMUTABLE_FL
		if on {
			flags |= immutable
		} else {
			flags &^= immutable
		}
		if err := unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, flags); err != nil {
			return fmt.Errorf("set flags of %s: %w", path, err)
		}
		return nil
	}
	if err := setImmutable(true); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			if err := setImmutable(false); err != nil && !os.IsNotExist(err) {
				t.Errorf("unpin %s: %v", path, err)
			}
		})
	}
}
