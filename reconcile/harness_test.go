package reconcile_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/reconcile"
	"github.com/panelx/panelx/reconcile/memruntime"
)

// The tests of this file's package run the cache, the executor and the
// status computation against the in-memory runtime: the loop of the
// controller without its store.

const instance = "unit"

// clock is the engine's clock; tests move it on so that containers have
// run MinReadyTime.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// world is one engine with its cache and executor.
type world struct {
	t     *testing.T
	ctx   context.Context
	rt    *memruntime.Runtime
	cache *reconcile.Cache
	exec  *reconcile.Executor
	clock *clock
	// images are the pull states the reconciler would keep, by reference.
	images map[string]reconcile.ImageState
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	clk := &clock{now: time.Now()}
	rt := memruntime.New(instance, nil)
	rt.Clock = clk.Now
	cache := reconcile.NewCache(rt)
	if err := cache.Sync(ctx, true); err != nil {
		t.Fatal(err)
	}
	return &world{t: t, ctx: ctx, rt: rt, cache: cache, clock: clk, images: map[string]reconcile.ImageState{},
		exec: &reconcile.Executor{Runtime: rt, Cache: cache, Parallel: 4}}
}

func project(name string) *api.Project {
	p := &api.Project{Metadata: api.ObjectMeta{Name: name}}
	p.Default()
	return p
}

func volume(p, name string) *api.Volume {
	v := &api.Volume{Metadata: api.ObjectMeta{Project: p, Name: name}}
	v.Default()
	return v
}

// service is shop/web on image, changed by mutate.
func service(image string, mutate func(*api.Service)) *api.Service {
	s := &api.Service{Metadata: api.ObjectMeta{Project: "shop", Name: "web", Generation: 1, UID: "uid-web"},
		Spec: api.ServiceSpec{Image: image}}
	if mutate != nil {
		mutate(s)
	}
	s.Default()
	return s
}

// input is what the controller would hand the planner for svc now.
func (w *world) input(svc *api.Service, vols ...*api.Volume) reconcile.ServiceInput {
	w.t.Helper()
	key := api.Key{Project: svc.Metadata.Project, Name: svc.Metadata.Name}
	// A look at every container, as the controller's NeedsLook does for
	// the ones that have run long enough.
	for _, c := range w.cache.Containers(key.Project, key.Name) {
		if err := w.cache.RefreshContainer(w.ctx, c.ID); err != nil {
			w.t.Fatal(err)
		}
	}
	in := reconcile.ServiceInput{Instance: instance, Key: key, Project: project(key.Project), Service: svc,
		Networks: w.cache.Networks(key.Project), DockerVolumes: w.cache.Volumes(key.Project),
		Containers: w.cache.Containers(key.Project, key.Name), Now: w.clock.Now(), PullInterval: time.Hour,
		Volumes: map[string]*api.Volume{}}
	for _, v := range vols {
		in.Volumes[v.Metadata.Name] = v
	}
	in.Network = reconcile.FirstNetwork(key.Project, &svc.Spec, in.Networks)
	id, err := w.cache.ImageID(w.ctx, svc.Spec.Image)
	if err != nil {
		w.t.Fatal(err)
	}
	st := w.images[svc.Spec.Image]
	st.Ref, st.ID = svc.Spec.Image, id
	in.Image = st
	return in
}

// converge plans and executes until the plan is empty, moving the clock
// on while it only waits (five times at most in a row); it returns the
// last plan and the results of every round.
func (w *world) converge(svc *api.Service, vols ...*api.Volume) (reconcile.Plan, []reconcile.OpResult) {
	w.t.Helper()
	var all []reconcile.OpResult
	waited := 0
	for round := 0; round < 30; round++ {
		plan := reconcile.PlanService(w.input(svc, vols...))
		if plan.Empty() {
			// Settled, stuck, or waiting for what the engine alone can
			// change (a container that keeps restarting).
			if plan.Wait == "" || plan.Blocked != "" || waited == 5 {
				return plan, all
			}
			waited++
			w.clock.Add(time.Second) // let what it waits for happen
			continue
		}
		waited = 0
		results := w.exec.Run(w.ctx, plan)
		all = append(all, results...)
		for _, r := range results {
			if r.Op.Kind == reconcile.OpPullImage {
				st := w.images[r.Op.Target]
				st.AttemptedAt = w.clock.Now()
				if r.Err != nil {
					st.Failures++
					st.PullError = r.Err.Error()
				} else {
					st.Failures, st.PullError, st.PulledAt = 0, "", st.AttemptedAt
				}
				w.images[r.Op.Target] = st
			}
			if r.Err != nil && r.Op.Kind != reconcile.OpPullImage {
				return plan, all
			}
		}
	}
	w.t.Fatalf("%s/%s did not converge in 30 rounds", svc.Metadata.Project, svc.Metadata.Name)
	return reconcile.Plan{}, nil
}

// status is what the controller would report for svc now.
func (w *world) status(svc *api.Service, plan reconcile.Plan, err error) api.ServiceStatus {
	in := w.input(svc)
	return reconcile.ComputeServiceStatus(reconcile.ServiceStatusInput{Instance: instance, Service: svc, Previous: svc.Status,
		Containers: in.Containers, Image: in.Image, Plan: plan, Err: err, Now: w.clock.Now(), Network: in.Network})
}
