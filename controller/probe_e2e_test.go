package controller_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/panelx/panelx/api"
)

// TestReadinessProbe: a workload that listens only 3 s after it starts is
// not Ready before then — no ready replica, no endpoint for the edge —
// and is once its probe passes; the same with an exec probe.
func TestReadinessProbe(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startController(e.controllerOptions())
	img := e.image("shop/web:1", "1")
	shop := e.uniq("shop")
	e.createProject(shop)
	probes := map[string]*api.Probe{
		"http": {HTTPGet: &api.HTTPGetAction{Path: "/healthz", Port: 8080}, Period: api.Duration{Duration: 250 * time.Millisecond}},
		"exec": {Exec: &api.ExecAction{Command: []string{"/testapp", "-check"}}, Period: api.Duration{Duration: 250 * time.Millisecond}},
	}
	for name, probe := range probes {
		t.Run(name, func(t *testing.T) {
			e.createService(shop, name, img, func(s *api.Service) {
				s.Spec.Env = []api.EnvVar{{Name: "LISTEN_DELAY", Value: "3s"}}
				s.Spec.Ports = []api.Port{{ContainerPort: 8080}}
				s.Spec.Domains = []api.Domain{{Host: name + "." + shop + ".example.test"}}
				s.Spec.ReadinessProbe = probe
			})
			// The container runs long before it serves: watch the status
			// until it turns Ready, noting when the container started.
			var started time.Time
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			for {
				svc, err := e.store.Services().Get(ctx, api.Key{Project: shop, Name: name})
				if err != nil {
					t.Fatal(err)
				}
				var running bool
				for _, r := range svc.Status.Replicas {
					if r.State == "running" && r.StartedAt != nil {
						running, started = true, *r.StartedAt
					}
				}
				ready := svc.Status.ReadyReplicas > 0
				// Endpoints are written before the rest of the status (the
				// edge follows them first), so a status may show the
				// endpoint a moment before its ready count: what must not
				// be is an endpoint before the workload listens.
				if running && len(svc.Status.Endpoints) > 0 && time.Since(started) < 3*time.Second {
					t.Fatalf("an endpoint was published %v after the container started, before it listens: %+v",
						time.Since(started), svc.Status.Endpoints)
				}
				if ready {
					if started.IsZero() {
						t.Fatal("Ready before any replica was seen running")
					}
					if d := time.Since(started); d < 3*time.Second {
						t.Fatalf("Ready %v after the container started; it listens only after 3 s", d)
					}
					if svc.Status.Phase == api.PhaseDegraded {
						t.Errorf("the service was Degraded while it started: %+v", svc.Status.Conditions)
					}
					break
				}
				if ctx.Err() != nil {
					t.Fatalf("never Ready: %s", statusSummary(svc))
				}
				time.Sleep(100 * time.Millisecond)
			}
			svc := e.waitReady(shop, name)
			if len(svc.Status.Endpoints) != 1 {
				t.Errorf("endpoints once ready: %+v", svc.Status.Endpoints)
			}
		})
	}
}

// TestNoOpReconcileWritesNothing: once a project and its services are
// Ready, reconciling them again writes no row — every write raises a row's
// resourceVersion, so an unchanged one means nothing reached the WAL, and
// nothing reaches Supabase Realtime's publication either.
func TestNoOpReconcileWritesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startController(e.controllerOptions())
	img := e.image("shop/web:1", "1")
	shop := e.uniq("shop")
	e.createProject(shop)
	e.createService(shop, "web", img, func(s *api.Service) { s.Spec.Ports = []api.Port{{ContainerPort: 8080}} })
	e.createService(shop, "api", img, func(s *api.Service) {
		s.Spec.ReadinessProbe = &api.Probe{Exec: &api.ExecAction{Command: []string{"/testapp", "-check"}}, Period: api.Duration{Duration: 200 * time.Millisecond}}
	})
	e.waitReady(shop, "web")
	e.waitReady(shop, "api")
	if err := e.ctrl.Resync(e.ctx); err != nil { // the last status writes settle
		t.Fatal(err)
	}
	versions := func() map[string]string {
		out := map[string]string{}
		p, err := e.store.Projects().Get(e.ctx, api.Key{Name: shop})
		if err != nil {
			t.Fatal(err)
		}
		out["project"] = p.Metadata.ResourceVersion
		for _, n := range []string{"web", "api"} {
			s, err := e.store.Services().Get(e.ctx, api.Key{Project: shop, Name: n})
			if err != nil {
				t.Fatal(err)
			}
			out[n] = s.Metadata.ResourceVersion
		}
		return out
	}
	before := versions()
	for range 3 {
		if err := e.ctrl.Resync(e.ctx); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Second) // probes keep running: a verdict that flaps would write
	if after := versions(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("reconciles with nothing to do wrote rows: resourceVersions %v, then %v", before, after)
	}
}

// TestPullAlwaysRevisionIsTheRegistrys: with pullPolicy Always, an image
// already tagged in the engine under the service's reference — left by an
// older push — is not the first revision: the registry's image is, and
// there is no second revision for a tag that never moved.
func TestPullAlwaysRevisionIsTheRegistrys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	img := e.image("shop/web:1", "1")
	stale := e.image("shop/web:stale", "stale")
	rc, err := e.docker.ImagePull(e.ctx, stale, imagePullOptions())
	if err != nil {
		t.Fatal(err)
	}
	drain(rc)
	if err := e.docker.ImageTag(e.ctx, stale, img); err != nil {
		t.Fatal(err)
	}
	e.startController(e.controllerOptions())
	shop := e.uniq("shop")
	e.createProject(shop)
	e.createService(shop, "web", img, func(s *api.Service) { s.Spec.ImagePullPolicy = api.PullAlways })
	e.waitReady(shop, "web")
	revs, err := e.store.Revisions().List(e.ctx, api.Key{Project: shop, Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	inspect, _, err := e.docker.ImageInspectWithRaw(e.ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	if len(revs) != 1 || revs[0].ImageID != inspect.ID {
		t.Fatalf("revisions %+v, want one of image %s", revs, inspect.ID)
	}
}
