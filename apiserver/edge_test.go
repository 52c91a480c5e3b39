package apiserver_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/api/routing"
	"github.com/panelx/panelx/apiserver"
	"github.com/panelx/panelx/seal"
	"github.com/panelx/panelx/store"
)

// TestEdgeAPI: edge tokens are made by administrators, reach the edge
// routes and nothing else; nobody else reaches the edge routes; the route
// table follows the store; reports land where the controller reads them;
// uploaded certificates are checked and their keys never come back.
func TestEdgeAPI(t *testing.T) {
	e := newEnv(t, func(o *apiserver.Options) { o.StreamRecheck = 200 * time.Millisecond })
	alice, admin := e.jwtFor("alice"), e.jwtFor(adminUser)
	e.project(t, alice, "shop")
	e.must(t, http.StatusCreated, req{method: "POST", path: "/api/v1/projects/shop/services", token: alice,
		body: map[string]any{"metadata": map[string]any{"name": "web"},
			"spec": map[string]any{"image": "nginx:1.27", "ports": []any{map[string]any{"containerPort": 8080}},
				"domains": []any{map[string]any{"host": "app.example.test"}}}}})

	// Only administrators make edge tokens.
	r := e.do(t, req{method: "POST", path: "/api/v1/tokens", token: alice, body: map[string]any{"name": "edge", "edge": true}})
	if r.Status != http.StatusForbidden {
		t.Fatalf("edge token by a user: %d %s", r.Status, r.Body)
	}
	edge, edgeID := e.apiToken(t, admin, map[string]any{"name": "edge", "edge": true})
	list := e.must(t, http.StatusOK, req{method: "GET", path: "/api/v1/tokens?edge=true", token: admin})
	if !strings.Contains(string(list.Body), `"name":"edge"`) {
		t.Errorf("edge tokens list: %s", list.Body)
	}
	e.must(t, http.StatusForbidden, req{method: "GET", path: "/api/v1/tokens?edge=true", token: alice})

	// An edge token reaches nothing but the edge routes.
	for _, rq := range []req{
		{method: "GET", path: "/api/v1/projects"},
		{method: "GET", path: "/api/v1/projects/shop/services/web"},
		{method: "POST", path: "/api/v1/projects", body: map[string]any{"metadata": map[string]any{"name": "edgy"}}},
		{method: "GET", path: "/api/v1/tokens"},
		{method: "POST", path: "/api/v1/tokens", body: map[string]any{"name": "more"}},
		{method: "GET", path: "/api/v1/me"},
	} {
		rq.token = edge
		if r := e.do(t, rq); r.Status != http.StatusForbidden {
			t.Errorf("edge token %s %s: %d, want 403", rq.method, rq.path, r.Status)
		}
	}
	// Nobody else reaches the edge routes, administrators included.
	for _, tok := range []string{alice, admin} {
		if r := e.do(t, req{method: "GET", path: "/api/v1/edge/routes", token: tok}); r.Status != http.StatusForbidden {
			t.Errorf("user on the edge routes: %d", r.Status)
		}
		if r := e.do(t, req{method: "PUT", path: "/api/v1/edge/reports/x", token: tok, body: map[string]any{"name": "x"}}); r.Status != http.StatusForbidden {
			t.Errorf("user reporting as an edge: %d", r.Status)
		}
	}

	// The table: the route exists with no endpoint until the controller publishes one.
	var tbl routing.Table
	if err := json.Unmarshal(e.must(t, http.StatusOK, req{method: "GET", path: "/api/v1/edge/routes", token: edge}).Body, &tbl); err != nil {
		t.Fatal(err)
	}
	if len(tbl.Routes) != 1 || tbl.Routes[0].Host != "app.example.test" || len(tbl.Routes[0].Endpoints) != 0 || !tbl.Valid() {
		t.Fatalf("table = %+v", tbl)
	}

	// The stream sends the table, then a new one after a change.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	hr, _ := http.NewRequestWithContext(ctx, "GET", e.URL+"/api/v1/edge/routes?watch=true", nil)
	hr.Header.Set("Authorization", "Bearer "+edge)
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	tables := make(chan routing.Table, 10)
	streamEnded := make(chan struct{})
	go func() {
		defer close(streamEnded)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var t routing.Table
				if json.Unmarshal([]byte(data), &t) == nil {
					tables <- t
				}
			}
		}
	}()
	next := func() routing.Table {
		t.Helper()
		select {
		case tb := <-tables:
			return tb
		case <-ctx.Done():
			t.Fatal("no table came")
		}
		return routing.Table{}
	}
	if first := next(); first.Version != tbl.Version {
		t.Errorf("first streamed table %s, want %s", first.Version, tbl.Version)
	}
	svc, err := e.Store.Services().Get(ctx, api.Key{Project: "shop", Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	svc.Status.Endpoints = []api.Endpoint{{Replica: 0, ContainerID: "c0", IP: "172.18.0.2"}}
	written := time.Now()
	if _, err := e.Store.Services().UpdateStatus(ctx, svc); err != nil {
		t.Fatal(err)
	}
	got := next()
	t.Logf("store write → new table on the stream: %v", time.Since(written))
	if len(got.Routes) != 1 || len(got.Routes[0].Endpoints) != 1 || got.Routes[0].Endpoints[0] != "172.18.0.2" {
		t.Errorf("after the status write: %+v", got.Routes)
	}

	// Reports: bad ones are 422s; good ones reach the store.
	bad := e.do(t, req{method: "PUT", path: "/api/v1/edge/reports/edge-1", token: edge, body: map[string]any{
		"name": "h", "active": []string{"not-an-ip"}, "draining": []string{},
		"certificates": []any{map[string]any{"host": "APP.example.test", "status": map[string]any{"state": "Great"}}}}})
	if bad.Status != http.StatusUnprocessableEntity || len(bad.fields()) != 3 {
		t.Errorf("bad report: %d %s", bad.Status, bad.Body)
	}
	e.must(t, http.StatusNoContent, req{method: "PUT", path: "/api/v1/edge/reports/edge-1", token: edge, body: map[string]any{
		"name": "host-a", "routes": got.Version, "active": []string{"172.18.0.2"}, "draining": []string{},
		"certificates": []any{map[string]any{"host": "app.example.test", "status": map[string]any{"state": "Failed", "message": "urn:ietf:params:acme:error:connection: refused"}}},
		"events":       []any{map[string]any{"host": "app.example.test", "type": "Warning", "reason": "CertificateFailed", "message": "refused"}}}})
	edges, _ := e.Store.Edges().List(ctx)
	if len(edges) != 1 || edges[0].Name != "host-a" || edges[0].Active[0] != "172.18.0.2" {
		t.Errorf("edges = %+v", edges)
	}
	sts, _ := e.Store.Certificates().Statuses(ctx, []string{"app.example.test"})
	if sts["app.example.test"].State != api.CertificateFailed {
		t.Errorf("certificate status = %+v", sts)
	}
	evs, _ := e.Store.Events().List(ctx, "shop", store.EventFilter{Name: "web"})
	if len(evs) != 1 || evs[0].Reason != "CertificateFailed" || !strings.Contains(evs[0].Message, "app.example.test") {
		t.Errorf("events = %+v", evs)
	}

	// Uploaded certificates: only for the project's own hostnames, checked,
	// the key write-only; the edges get it.
	cert, key := selfSigned(t, "app.example.test")
	otherCert, otherKey := selfSigned(t, "other.example.test")
	e.project(t, e.jwtFor("bob"), "rival")
	for _, tc := range []struct {
		path, cert, key string
		token           string
		want            int
	}{
		{"/api/v1/projects/shop/certificates/nobody.example.test", cert, key, alice, http.StatusUnprocessableEntity},
		{"/api/v1/projects/rival/certificates/app.example.test", cert, key, e.jwtFor("bob"), http.StatusUnprocessableEntity},
		{"/api/v1/projects/shop/certificates/app.example.test", otherCert, otherKey, alice, http.StatusUnprocessableEntity},
		{"/api/v1/projects/shop/certificates/app.example.test", cert, otherKey, alice, http.StatusUnprocessableEntity},
		{"/api/v1/projects/shop/certificates/APP.Example.test", cert, key, alice, http.StatusOK},
	} {
		r := e.do(t, req{method: "PUT", path: tc.path, token: tc.token, body: map[string]any{"certificate": tc.cert, "privateKey": tc.key}})
		if r.Status != tc.want {
			t.Errorf("PUT %s: %d, want %d: %s", tc.path, r.Status, tc.want, r.Body)
		}
		if strings.Contains(string(r.Body), "PRIVATE KEY") {
			t.Errorf("PUT %s answers the key", tc.path)
		}
	}
	one := e.must(t, http.StatusOK, req{method: "GET", path: "/api/v1/projects/shop/certificates/app.example.test", token: alice})
	if strings.Contains(string(one.Body), "PRIVATE KEY") || !strings.Contains(string(one.Body), `"notAfter"`) {
		t.Errorf("GET certificate: %s", one.Body)
	}
	withCert := next()
	if len(withCert.Certificates) != 1 || !strings.Contains(withCert.Certificates[0].PrivateKeyPEM, "PRIVATE KEY") {
		t.Errorf("the edges' table lacks the uploaded certificate: %+v", withCert.Certificates)
	}
	// At rest the key is sealed; the edges get it opened.
	if stored, err := e.Store.Certificates().GetCustom(context.Background(), "shop", "app.example.test"); err != nil ||
		strings.Contains(stored.PrivateKeyPEM, "PRIVATE KEY") || !seal.IsSealedText(stored.PrivateKeyPEM) {
		t.Errorf("the stored key is not sealed: %v", err)
	}

	// A revoked edge token loses the feed.
	e.must(t, http.StatusNoContent, req{method: "DELETE", path: "/api/v1/tokens/" + edgeID + "?edge=true", token: admin})
	select {
	case <-streamEnded:
	case <-time.After(5 * time.Second):
		t.Error("the feed of a revoked edge token did not end")
	}
	if r := e.do(t, req{method: "GET", path: "/api/v1/edge/routes", token: edge}); r.Status != http.StatusUnauthorized {
		t.Errorf("revoked edge token: %d", r.Status)
	}
}
