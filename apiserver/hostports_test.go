package apiserver_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestHostPortsClaimedOnce: a host port published by one service is
// refused to another at validation (422 naming the field), whichever
// project it is in, through every write path; another protocol or another
// address is fine; a changed service may keep the ports it had.
func TestHostPortsClaimedOnce(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.jwtFor("alice"), e.jwtFor("bob")
	e.project(t, alice, "shop")
	e.project(t, bob, "blog")
	svc := func(name string, ports ...map[string]any) map[string]any {
		list := make([]any, len(ports))
		for i, p := range ports {
			list[i] = p
		}
		return manifest("services", name, map[string]any{"ports": list})
	}
	port := func(container, host int, extra ...string) map[string]any {
		p := map[string]any{"containerPort": container, "hostPort": host}
		for i := 0; i+1 < len(extra); i += 2 {
			p[extra[i]] = extra[i+1]
		}
		return p
	}
	post := func(token, project string, body map[string]any) *response {
		return e.do(t, req{method: "POST", path: "/api/v1/projects/" + project + "/services", token: token, body: body})
	}
	wantRefused := func(r *response, field, says string) {
		t.Helper()
		if r.Status != http.StatusUnprocessableEntity {
			t.Fatalf("status %d, want 422: %s", r.Status, r.Body)
		}
		p := r.problem(t)
		for _, fe := range p.Errors {
			if strings.HasSuffix(fe.Field, field) && strings.Contains(fe.Detail, says) {
				return
			}
		}
		t.Fatalf("no error on %s saying %q: %s", field, says, r.Body)
	}

	e.must(t, http.StatusCreated, req{method: "POST", path: "/api/v1/projects/shop/services", token: alice,
		body: svc("web", port(80, 18080))})
	wantRefused(post(alice, "shop", svc("api", port(80, 18080))), "spec.ports[0].hostPort", "already published by service web")
	wantRefused(post(alice, "shop", svc("api", port(81, 18081), port(80, 18080, "hostIP", "127.0.0.1"))),
		"spec.ports[1].hostPort", "127.0.0.1:18080/tcp is already published by service web")
	r := post(bob, "blog", svc("web", port(80, 18080)))
	wantRefused(r, "spec.ports[0].hostPort", "already published by a service of another project")
	if strings.Contains(string(r.Body), "shop") {
		t.Errorf("the refusal names alice's project to bob: %s", r.Body)
	}
	e.must(t, http.StatusCreated, req{method: "POST", path: "/api/v1/projects/shop/services", token: alice,
		body: svc("dns", port(53, 18080, "protocol", "udp"))})

	// An apply whose two documents ask for the same port.
	stream := fmt.Sprintf("%s---\n%s", toYAML(t, withKind(svc("a", port(80, 19090)), "shop")), toYAML(t, withKind(svc("b", port(80, 19090)), "shop")))
	ar := e.do(t, req{method: "POST", path: "/api/v1/apply", token: alice, body: stream, header: map[string]string{"Content-Type": "application/yaml"}})
	wantRefused(ar, "spec.ports[0].hostPort", "already published by service a")

	// web changes its image but keeps its port; then it goes and the port is free.
	e.must(t, http.StatusOK, req{method: "PATCH", path: "/api/v1/projects/shop/services/web", token: alice,
		body: `{"spec": {"image": "nginx:1.28"}}`})
	e.must(t, http.StatusAccepted, req{method: "DELETE", path: "/api/v1/projects/shop/services/web", token: alice})
	e.must(t, http.StatusCreated, req{method: "POST", path: "/api/v1/projects/blog/services", token: bob, body: svc("web", port(80, 18080))})
}

func withKind(m map[string]any, project string) map[string]any {
	m["apiVersion"] = "panelx.dev/v1"
	m["kind"] = "Service"
	m["metadata"].(map[string]any)["project"] = project
	return m
}
