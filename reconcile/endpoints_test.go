package reconcile

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/panelx/panelx/api"
)

func routed(s *api.Service) {
	s.Spec.Ports = []api.Port{{ContainerPort: 8080}}
	s.Spec.Domains = []api.Domain{{Host: "app.example.com"}}
}

func withIP(ip string) func(*Container) {
	return func(c *Container) { c.IPs = map[string]string{"net1": ip} }
}

func healthy(c *Container) { c.Health = "healthy" }

func TestDesiredEndpoints(t *testing.T) {
	v1 := testService(func(s *api.Service) { routed(s); two := int32(2); s.Spec.Replicas = &two })
	v2 := testService(func(s *api.Service) {
		routed(s)
		two := int32(2)
		s.Spec.Replicas = &two
		s.Spec.Env[0].Value = "debug"
	})
	plain := testService(nil)
	img := ImageState{Image: Image{ID: "sha256:img1"}}
	net := &Network{ID: "net1"}
	old0 := ctr(v1, 0, "sha256:img1", "running", withIP("10.0.0.2"))
	old1 := ctr(v1, 1, "sha256:img1", "running", withIP("10.0.0.3"))
	new0 := ctr(v2, 0, "sha256:img1", "running", withIP("10.0.0.4"))
	new0starting := ctr(v2, 0, "sha256:img1", "running", withIP("10.0.0.4"), func(c *Container) { c.Health = "starting" })
	extra := ctr(v1, 2, "sha256:img1", "running", withIP("10.0.0.9"))
	deleting := testService(func(s *api.Service) { routed(s); now := t0; s.Metadata.DeletionTimestamp = &now })

	tests := []struct {
		name string
		svc  *api.Service
		cs   []Container
		want []string
	}{
		{"both replicas ready", v1, []Container{old0, old1}, []string{"0=10.0.0.2", "1=10.0.0.3"}},
		{"replacement not ready: the old one serves", v2, []Container{old0, new0starting, old1}, []string{"0=10.0.0.2", "1=10.0.0.3"}},
		{"replacement ready: only the new one serves", v2, []Container{old0, new0, old1}, []string{"0=10.0.0.4", "1=10.0.0.3"}},
		{"above the desired count serves nothing", v1, []Container{old0, old1, extra}, []string{"0=10.0.0.2", "1=10.0.0.3"}},
		{"stopped replicas serve nothing", v1, []Container{old0, ctr(v1, 1, "sha256:img1", "exited", withIP("10.0.0.3"))}, []string{"0=10.0.0.2"}},
		{"no address yet", v1, []Container{ctr(v1, 0, "sha256:img1", "running")}, nil},
		{"no domains, no endpoints", plain, []Container{ctr(plain, 0, "sha256:img1", "running", withIP("10.0.0.2"))}, nil},
		{"deleting, no endpoints", deleting, []Container{old0}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, e := range DesiredEndpoints(EndpointsInput{Instance: testInstance, Service: tt.svc, Image: img, Network: net, Containers: tt.cs}) {
				got = append(got, strings.TrimPrefix(describeEndpoints([]api.Endpoint{e}), ""))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("endpoints = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestPlanDrainsBeforeStopping: a replaced replica is stopped only once it
// is out of the published endpoints and no live edge routes to it or has
// requests in flight to it — or the drain timeout passed.
func TestPlanDrainsBeforeStopping(t *testing.T) {
	v1 := testService(routed)
	v2 := testService(func(s *api.Service) { routed(s); s.Spec.Env[0].Value = "debug" })
	old := ctr(v1, 0, "sha256:img1", "running", withIP("10.0.0.2"))
	repl := ctr(v2, 0, "sha256:img1", "running", withIP("10.0.0.3"), func(c *Container) { c.Name = tmpName(v2, 0, "sha256:img1") })
	now := t0.Add(10 * time.Second)
	edge := func(seen time.Time, active, draining []string) EdgeView {
		v := EdgeView{ID: "edge-a", SeenAt: seen, Active: map[string]bool{}, Draining: map[string]bool{}}
		for _, ip := range active {
			v.Active[ip] = true
		}
		for _, ip := range draining {
			v.Draining[ip] = true
		}
		return v
	}
	retire := "0 stop-container panelx-shop-web-0 (replaced by " + repl.Name + " (env LOG_LEVEL))\n" +
		"1 remove-container panelx-shop-web-0 (replaced by " + repl.Name + " (env LOG_LEVEL)) after 0\n" +
		"2 rename-container " + repl.Name + " -> panelx-shop-web-0 (replica 0 replacement is ready) after 1\n"

	tests := []struct {
		name  string
		drain DrainInput
		want  string
	}{
		{"still published", DrainInput{Needed: true, Routed: map[string]bool{old.ID: true}},
			"wait: replica 0: taking panelx-shop-web-0 out of the edge's routes first\n"},
		{"an edge still routes to it", DrainInput{Needed: true, Since: map[string]time.Time{old.ID: now.Add(-time.Second)},
			Edges: []EdgeView{edge(now, []string{"10.0.0.2", "10.0.0.3"}, nil)}},
			"wait: replica 0: draining panelx-shop-web-0 (edge-a still routes to it)\n"},
		{"an edge drains it", DrainInput{Needed: true, Since: map[string]time.Time{old.ID: now.Add(-time.Second)},
			Edges: []EdgeView{edge(now, []string{"10.0.0.3"}, []string{"10.0.0.2"})}},
			"wait: replica 0: draining panelx-shop-web-0 (edge-a has requests in flight to it)\n"},
		{"the edge has not reported since", DrainInput{Needed: true, Since: map[string]time.Time{old.ID: now.Add(-time.Second)},
			Edges: []EdgeView{edge(now.Add(-2*time.Second), []string{"10.0.0.3"}, nil)}},
			"wait: replica 0: draining panelx-shop-web-0 (edge-a has not confirmed its new routes)\n"},
		{"drained", DrainInput{Needed: true, Since: map[string]time.Time{old.ID: now.Add(-time.Second)},
			Edges: []EdgeView{edge(now, []string{"10.0.0.3"}, nil)}}, retire},
		{"no live edge", DrainInput{Needed: true, Since: map[string]time.Time{old.ID: now.Add(-time.Second)}}, retire},
		{"drain timeout", DrainInput{Needed: true, Since: map[string]time.Time{old.ID: now.Add(-31 * time.Second)},
			Edges: []EdgeView{edge(now, []string{"10.0.0.2"}, nil)}}, retire},
		{"a service the edge never routed", DrainInput{}, retire},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := baseInput(v2, old, repl)
			in.Now = now
			in.Drain = tt.drain
			if got := PlanService(in).String(); got != tt.want {
				t.Errorf("plan:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}

	// Stop-first (a host port): the old replica leaves the routes at once,
	// drains, and only then stops; its replacement starts after it.
	hp := func(s *api.Service) { routed(s); s.Spec.Ports[0].HostPort = 18080 }
	h1 := testService(hp)
	h2 := testService(func(s *api.Service) { hp(s); s.Spec.Env[0].Value = "debug" })
	oldH := ctr(h1, 0, "sha256:img1", "running", withIP("10.0.0.2"))
	if eps := DesiredEndpoints(EndpointsInput{Instance: testInstance, Service: h2, Image: ImageState{Image: Image{ID: "sha256:img1"}},
		Network: &Network{ID: "net1"}, Containers: []Container{oldH}}); len(eps) != 0 {
		t.Errorf("stop-first: the old replica stays routed: %v", eps)
	}
	in0 := baseInput(h2, oldH)
	in0.Now = now
	in0.Drain = DrainInput{Needed: true, Since: map[string]time.Time{oldH.ID: now.Add(-time.Second)}, Edges: []EdgeView{edge(now, nil, []string{"10.0.0.2"})}}
	if got := PlanService(in0).String(); strings.Contains(got, "stop-container") || !strings.Contains(got, "has requests in flight") {
		t.Errorf("stop-first while draining:\n%s", got)
	}
	in0.Drain.Edges = []EdgeView{edge(now, nil, nil)}
	if got := PlanService(in0).String(); !strings.Contains(got, "0 stop-container panelx-shop-web-0") || !strings.Contains(got, "create-container panelx-shop-web-0") {
		t.Errorf("stop-first once drained:\n%s", got)
	}

	// Scale down and delete drain too.
	two := testService(func(s *api.Service) { routed(s); n := int32(2); s.Spec.Replicas = &n })
	in := baseInput(v1, old, ctr(two, 1, "sha256:img1", "running", withIP("10.0.0.5")))
	in.Drain = DrainInput{Needed: true, Routed: map[string]bool{old.ID: true}, Edges: []EdgeView{edge(now, []string{"10.0.0.2", "10.0.0.5"}, nil)},
		Since: map[string]time.Time{}}
	if got := PlanService(in).String(); !strings.Contains(got, "draining panelx-shop-web-1 (edge-a still routes to it)") || strings.Contains(got, "stop-container") {
		t.Errorf("scale down:\n%s", got)
	}
}
