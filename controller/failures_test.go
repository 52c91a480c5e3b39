package controller_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/controller"
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
