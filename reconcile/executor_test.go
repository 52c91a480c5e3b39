package reconcile_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/reconcile"
	"github.com/panelx/panelx/reconcile/memruntime"
)

func ops(results []reconcile.OpResult) []reconcile.OpKind {
	var out []reconcile.OpKind
	for _, r := range results {
		if r.Err == nil && !r.Skipped {
			out = append(out, r.Op.Kind)
		}
	}
	return out
}

func names(objs []memruntime.Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.Name+":"+o.State)
	}
	return out
}

// TestExecutorConverges: plans of the pure planner, run by the executor
// against the in-memory engine, converge the way the end-to-end tests see
// the Docker engine converge.
func TestExecutorConverges(t *testing.T) {
	t.Parallel()
	two, three, one := int32(2), int32(3), int32(1)
	for _, c := range []struct {
		name string
		// first converges from an empty engine, then second from there.
		first, second func(*api.Service)
		wantOps       []reconcile.OpKind // of the second convergence, in order of completion, deduplicated
		wantNames     []string
		noOps         []reconcile.OpKind
	}{
		{
			name: "new service with a volume",
			second: func(s *api.Service) {
				s.Spec.Replicas = &two
				s.Spec.Volumes = []api.VolumeMount{{Name: "data", MountPath: "/data"}}
			},
			wantOps:   []reconcile.OpKind{reconcile.OpPullImage, reconcile.OpCreateNetwork, reconcile.OpCreateVolume, reconcile.OpCreateContainer, reconcile.OpStartContainer},
			wantNames: []string{"panelx-shop-web-0:running", "panelx-shop-web-1:running"},
		},
		{
			name:      "env change without a host port: start-first, renamed into place",
			first:     func(s *api.Service) {},
			second:    func(s *api.Service) { s.Spec.Env = []api.EnvVar{{Name: "X", Value: "2"}} },
			wantOps:   []reconcile.OpKind{reconcile.OpCreateContainer, reconcile.OpStartContainer, reconcile.OpStopContainer, reconcile.OpRemoveContainer, reconcile.OpRenameContainer},
			wantNames: []string{"panelx-shop-web-0:running"},
		},
		{
			name:      "env change with a host port: stop-first, no rename",
			first:     func(s *api.Service) { s.Spec.Ports = []api.Port{{ContainerPort: 8080, HostPort: 18080}} },
			second:    func(s *api.Service) { s.Spec.Env = []api.EnvVar{{Name: "X", Value: "2"}} },
			wantNames: []string{"panelx-shop-web-0:running"},
			noOps:     []reconcile.OpKind{reconcile.OpRenameContainer},
		},
		{
			name:      "scale 3 to 1",
			first:     func(s *api.Service) { s.Spec.Replicas = &three },
			second:    func(s *api.Service) { s.Spec.Replicas = &one },
			wantOps:   []reconcile.OpKind{reconcile.OpRetireContainer},
			wantNames: []string{"panelx-shop-web-0:running"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			img := w.rt.Registry().Push("127.0.0.1:5000/shop/web:1", "1")
			if c.first != nil {
				svc := service(img, c.first)
				if plan, results := w.converge(svc, volume("shop", "data")); plan.Blocked != "" || failed(results) != nil {
					t.Fatalf("first convergence: blocked %q, %v", plan.Blocked, failed(results))
				}
			}
			svc := service(img, func(s *api.Service) {
				if c.first != nil {
					c.first(s)
				}
				c.second(s)
			})
			svc.Metadata.Generation = 2
			plan, results := w.converge(svc, volume("shop", "data"))
			if plan.Blocked != "" || failed(results) != nil {
				t.Fatalf("blocked %q, %v", plan.Blocked, failed(results))
			}
			got := slices.Compact(ops(results))
			for _, want := range c.wantOps {
				if !slices.Contains(got, want) {
					t.Errorf("no %s among %v", want, got)
				}
			}
			for _, no := range c.noOps {
				if slices.Contains(got, no) {
					t.Errorf("%s among %v", no, got)
				}
			}
			if got := names(w.rt.Containers()); !slices.Equal(got, c.wantNames) {
				t.Errorf("containers = %v, want %v", got, c.wantNames)
			}
			// What the engine holds is what the cache says.
			cached := w.cache.Containers("shop", "web")
			if len(cached) != len(c.wantNames) {
				t.Errorf("cache holds %d containers, engine %d", len(cached), len(c.wantNames))
			}
			st := w.status(svc, plan, nil)
			if int(st.ReadyReplicas) != len(c.wantNames) || st.Phase != api.PhaseRunning {
				t.Errorf("status: %d ready, phase %s; %+v", st.ReadyReplicas, st.Phase, st.Conditions)
			}
		})
	}
}

func failed(results []reconcile.OpResult) error {
	for _, r := range results {
		if r.Err != nil && !r.Skipped {
			return r.Err
		}
	}
	return nil
}

// TestExecutorFailures: the engine's refusals reach the results, later
// steps are skipped, the cache still learns what happened, and the next
// convergence repairs.
func TestExecutorFailures(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		arrange func(w *world)
		wantErr string
		// repaired: a second convergence, without the cause removed,
		// succeeds (the failure was transient).
		repaired bool
	}{
		{
			name:     "start refused once",
			arrange:  func(w *world) { w.rt.Fail("container_start", errors.New("OCI runtime create failed")) },
			wantErr:  "OCI runtime create failed",
			repaired: true,
		},
		{
			name:     "create refused once",
			arrange:  func(w *world) { w.rt.Fail("container_create", errors.New("no space left on device")) },
			wantErr:  "no space left on device",
			repaired: true,
		},
		{
			name: "name held by a container of no installation",
			arrange: func(w *world) {
				if err := w.rt.Outside().Pull("127.0.0.1:5000/shop/web:1"); err != nil {
					w.t.Fatal(err)
				}
				if _, err := w.rt.Outside().RunContainer("panelx-shop-web-0", "127.0.0.1:5000/shop/web:1", nil, true); err != nil {
					w.t.Fatal(err)
				}
			},
			wantErr: "the name is taken",
		},
		{
			name: "network name held by someone else",
			arrange: func(w *world) {
				if err := w.rt.Outside().CreateNetwork("panelx-shop", nil); err != nil {
					w.t.Fatal(err)
				}
			},
			wantErr: reconcile.ErrNotOwned.Error(),
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			img := w.rt.Registry().Push("127.0.0.1:5000/shop/web:1", "1")
			c.arrange(w)
			foreign := names(w.rt.Containers())
			svc := service(img, nil)
			_, results := w.converge(svc)
			err := failed(results)
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("error = %v, want one saying %q", err, c.wantErr)
			}
			for _, r := range results {
				if r.Skipped && r.Err == nil {
					t.Errorf("skipped op without error: %+v", r)
				}
			}
			// The cache agrees with the engine about this installation's
			// containers, whatever state the failure left them in.
			var owned []string
			for _, o := range w.rt.Containers() {
				if o.Labels[reconcile.LabelInstance] == instance {
					owned = append(owned, o.ID)
				}
			}
			var cached []string
			for _, ct := range w.cache.Containers("shop", "web") {
				cached = append(cached, ct.ID)
			}
			slices.Sort(owned)
			slices.Sort(cached)
			if !slices.Equal(owned, cached) {
				t.Errorf("engine holds %v, cache %v", owned, cached)
			}
			plan, results := w.converge(svc)
			if c.repaired {
				if err := failed(results); err != nil || plan.Blocked != "" {
					t.Fatalf("not repaired: %v, blocked %q", err, plan.Blocked)
				}
				if got := names(w.rt.Containers()); !slices.Equal(got, []string{"panelx-shop-web-0:running"}) {
					t.Errorf("after repair: %v", got)
				}
				return
			}
			// A foreign object is never touched.
			for _, name := range foreign {
				if !slices.Contains(names(w.rt.Containers()), name) {
					t.Errorf("foreign container %s changed: %v", name, names(w.rt.Containers()))
				}
			}
		})
	}
}

// TestExecutorSkipsDependents: an op whose prerequisite failed does not
// run, and says so.
func TestExecutorSkipsDependents(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	plan := reconcile.Plan{Ops: []reconcile.Op{
		{Kind: reconcile.OpCreateNetwork, Target: "panelx-shop", Labels: map[string]string{reconcile.LabelManaged: "true", reconcile.LabelInstance: instance, reconcile.LabelProject: "shop"}},
		{Kind: reconcile.OpPullImage, Target: "127.0.0.1:5000/shop/missing:1", Project: "shop"},
		{Kind: reconcile.OpStartContainer, Target: "panelx-shop-web-0", After: []int{1}},
		{Kind: reconcile.OpRenameContainer, Target: "panelx-shop-web-0", NewName: "x", After: []int{2}},
	}}
	results := w.exec.Run(w.ctx, plan)
	if results[0].Err != nil {
		t.Errorf("create-network: %v", results[0].Err)
	}
	if err := results[1].Err; err == nil || !strings.Contains(err.Error(), "manifest unknown") {
		t.Errorf("pull of a missing image: %v", err)
	}
	for _, i := range []int{2, 3} {
		if !results[i].Skipped || results[i].Err == nil {
			t.Errorf("op %d: %+v, want skipped", i, results[i])
		}
	}
	if w.cache.NetworkNamed("panelx-shop") == nil {
		t.Error("the created network is not in the cache")
	}
}
