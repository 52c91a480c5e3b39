package apiserver_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/panelx/panelx/apiserver/policy"
)

// TestHostnameBelongsToOneService: a hostname claimed by one tenant's
// service is a 409 for every other claim, through REST and apply alike,
// and the answer names nothing of the other tenant; a wildcard is for
// administrators only.
func TestHostnameBelongsToOneService(t *testing.T) {
	e := newEnv(t, withPolicy(policy.DefaultConfig()))
	alice, bob := e.jwtFor("alice"), e.jwtFor("bob")
	e.project(t, alice, "shop")
	e.project(t, bob, "rival")
	svc := func(name string, hosts ...string) map[string]any {
		var domains []any
		for _, h := range hosts {
			domains = append(domains, map[string]any{"host": h})
		}
		return map[string]any{"metadata": map[string]any{"name": name},
			"spec": map[string]any{"image": "nginx:1.27", "ports": []any{map[string]any{"containerPort": 80}}, "domains": domains}}
	}
	created := e.must(t, http.StatusCreated, req{method: "POST", path: "/api/v1/projects/shop/services", token: alice, body: svc("web", "WWW.Example.COM")})
	if !strings.Contains(string(created.Body), `"host":"www.example.com"`) {
		t.Errorf("host not stored in canonical form: %s", created.Body)
	}

	secret := []string{"alice", "shop", "web"}
	check := func(r *response, wantHost string) {
		t.Helper()
		if r.Status != http.StatusConflict {
			t.Fatalf("status %d, want 409: %s", r.Status, r.Body)
		}
		p := r.problem(t)
		if !strings.Contains(p.Detail, wantHost) {
			t.Errorf("detail %q does not name the hostname", p.Detail)
		}
		for _, s := range secret {
			if strings.Contains(string(r.Body), s) {
				t.Errorf("the answer to another tenant names %q: %s", s, r.Body)
			}
		}
	}
	check(e.do(t, req{method: "POST", path: "/api/v1/projects/rival/services", token: bob, body: svc("site", "www.rival.test", "www.example.com")}), "www.example.com")
	e.must(t, http.StatusCreated, req{method: "POST", path: "/api/v1/projects/rival/services", token: bob, body: svc("site", "www.rival.test")})
	check(e.do(t, req{method: "PUT", path: "/api/v1/projects/rival/services/site", token: bob, body: svc("site", "Www.example.com.")}), "www.example.com")
	apply := "apiVersion: panelx.dev/v1\nkind: Service\nmetadata: {project: rival, name: other}\n" +
		"spec: {image: 'nginx:1.27', ports: [{containerPort: 80}], domains: [{host: www.example.com}]}\n"
	r := e.do(t, req{method: "POST", path: "/api/v1/apply", token: bob, body: apply, header: map[string]string{"Content-Type": "application/yaml"}})
	check(r, "www.example.com")
	if f := r.fields(); len(f) != 1 || f[0] != "[0].spec.domains" {
		t.Errorf("apply conflict fields = %v", f)
	}

	// Within the project the holder is named.
	r = e.do(t, req{method: "POST", path: "/api/v1/projects/shop/services", token: alice, body: svc("api", "www.example.com")})
	if r.Status != http.StatusConflict || !strings.Contains(r.problem(t).Detail, "service web") {
		t.Errorf("same-project conflict: %d %s", r.Status, r.Body)
	}

	// Bad hostnames are 422s with the field.
	for _, h := range []string{"10.0.0.1", "localhost", "a_b.example.com"} {
		r := e.do(t, req{method: "POST", path: "/api/v1/projects/rival/services", token: bob, body: svc("bad", h)})
		if r.Status != http.StatusUnprocessableEntity || len(r.fields()) != 1 || r.fields()[0] != "spec.domains[0].host" {
			t.Errorf("host %q: %d %s", h, r.Status, r.Body)
		}
	}
	r = e.do(t, req{method: "POST", path: "/api/v1/projects/rival/services", token: bob, body: svc("wild", "*.rival.test")})
	if r.Status != http.StatusUnprocessableEntity || r.fields()[0] != "spec.domains[0].host" {
		t.Errorf("wildcard by a user: %d %s", r.Status, r.Body)
	}
}
