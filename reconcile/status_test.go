package reconcile_test

import (
	"strings"
	"testing"
	"time"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/reconcile"
)

// TestStatusFromTheEngine: what a service reports after converging on the
// in-memory engine, and after what its containers do next.
func TestStatusFromTheEngine(t *testing.T) {
	t.Parallel()
	exit1 := 1
	two := int32(2)
	for _, c := range []struct {
		name      string
		image     func(w *world) string
		spec      func(*api.Service)
		after     func(w *world)
		wantPhase api.Phase
		wantReady int32
		reason    string // of Degraded=True, "" for Degraded=False
		message   string
	}{
		{
			name:      "two replicas ready",
			spec:      func(s *api.Service) { s.Spec.Replicas = &two },
			wantPhase: api.PhaseRunning, wantReady: 2,
		},
		{
			name: "a crashing program",
			image: func(w *world) string {
				return w.rt.Registry().PushImage("127.0.0.1:5000/shop/crash:1", "1", &exit1)
			},
			wantPhase: api.PhaseDegraded, reason: reconcile.ReasonCrashLoop, message: "keeps crashing (exit code 1",
		},
		{
			name: "a healthcheck failing",
			spec: func(s *api.Service) {
				s.Spec.Healthcheck = &api.Healthcheck{Command: []string{"/app", "-check"}}
			},
			after: func(w *world) {
				if err := w.rt.Outside().SetHealth("panelx-shop-web-0", "unhealthy"); err != nil {
					w.t.Fatal(err)
				}
			},
			wantPhase: api.PhaseDegraded, reason: reconcile.ReasonUnhealthy, message: "replica 0 is unhealthy",
		},
		{
			name:      "an image the registry does not have",
			image:     func(w *world) string { return "127.0.0.1:5000/shop/missing:1" },
			wantPhase: api.PhaseDegraded, reason: reconcile.ReasonPullFailed, message: "manifest unknown",
		},
		{
			name: "a private registry without credentials",
			image: func(w *world) string {
				w.rt.Registry().RequireAuth("127.0.0.1:5001", "ci", "s3cret")
				return w.rt.Registry().Push("127.0.0.1:5001/shop/private:1", "1")
			},
			wantPhase: api.PhaseDegraded, reason: reconcile.ReasonPullFailed, message: "no basic auth credentials",
		},
		{
			name: "stopped behind PanelX's back",
			after: func(w *world) {
				if err := w.rt.Outside().StopContainer("panelx-shop-web-0"); err != nil {
					w.t.Fatal(err)
				}
			},
			wantPhase: api.PhaseProgressing, wantReady: 0,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			img := w.rt.Registry().Push("127.0.0.1:5000/shop/web:1", "1")
			if c.image != nil {
				img = c.image(w)
			}
			svc := service(img, c.spec)
			plan, results := w.converge(svc)
			err := failed(results)
			if err != nil && strings.Contains(err.Error(), "pull ") {
				err = nil // a failed pull is reported from the image's state
			}
			if c.after != nil {
				c.after(w)
				w.clock.Add(time.Second)
				plan = reconcile.PlanService(w.input(svc))
			}
			st := w.status(svc, plan, err)
			if st.Phase != c.wantPhase || st.ReadyReplicas != c.wantReady {
				t.Errorf("phase %s, %d ready; want %s, %d; %+v", st.Phase, st.ReadyReplicas, c.wantPhase, c.wantReady, st.Conditions)
			}
			d := api.FindCondition(st.Conditions, api.ConditionDegraded)
			switch {
			case d == nil:
				t.Fatal("no Degraded condition")
			case c.reason == "" && d.Status != api.ConditionFalse:
				t.Errorf("Degraded: %s %s", d.Reason, d.Message)
			case c.reason != "" && (d.Status != api.ConditionTrue || d.Reason != c.reason || !strings.Contains(d.Message, c.message)):
				t.Errorf("Degraded = %s %s: %s; want True %s: …%s…", d.Status, d.Reason, d.Message, c.reason, c.message)
			}
			if r := api.FindCondition(st.Conditions, api.ConditionReady); (r.Status == api.ConditionTrue) != (c.wantPhase == api.PhaseRunning) {
				t.Errorf("Ready = %s with phase %s", r.Status, st.Phase)
			}
		})
	}
}
