package controller_test

import (
	"context"
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
				if running && !ready && len(svc.Status.Endpoints) > 0 {
					t.Fatalf("an endpoint was published before the probe passed: %+v", svc.Status.Endpoints)
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
