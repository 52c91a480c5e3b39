package apiserver_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
)

// walkRoutes lists every method and pattern the router serves.
func walkRoutes(t testing.TB, e *env) [][2]string {
	t.Helper()
	var out [][2]string
	err := chi.Walk(e.API.Router(), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		out = append(out, [2]string{method, route})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 20 {
		t.Fatalf("only %d routes walked", len(out))
	}
	return out
}

// validBody is a body the route would accept from someone allowed to call
// it, so that a 404 can only come from tenancy, never from a bad request.
func validBody(method, pattern string) any {
	switch {
	case method == "PATCH":
		return `{"metadata": {"labels": {"patched": "yes"}}}`
	case method != "POST" && method != "PUT":
		return nil
	case strings.HasSuffix(pattern, "/services"), strings.HasSuffix(pattern, "/services/{service}"):
		return map[string]any{"metadata": map[string]any{"name": "web"}, "spec": map[string]any{"image": "nginx:1.27"}}
	case strings.HasSuffix(pattern, "/volumes"), strings.HasSuffix(pattern, "/volumes/{volume}"):
		return map[string]any{"metadata": map[string]any{"name": "data"}}
	case strings.HasSuffix(pattern, "/secrets"), strings.HasSuffix(pattern, "/secrets/{secret}"):
		return map[string]any{"metadata": map[string]any{"name": "db"}, "spec": map[string]any{"data": map[string]any{"password": "hunter2"}}}
	case strings.HasSuffix(pattern, "/members/{userId}"):
		return map[string]any{"role": "owner"}
	case strings.HasSuffix(pattern, "/build-contexts"):
		return tinyContext(nil, "")
	case strings.HasSuffix(pattern, "/registry-credentials/{registry}"):
		return map[string]any{"username": "u", "password": "hunter2"}
	case strings.HasSuffix(pattern, "/projects/{project}"):
		return map[string]any{"metadata": map[string]any{"name": "shop"}}
	case strings.HasSuffix(pattern, "/tokens"):
		return map[string]any{"name": "x", "project": "shop"}
	}
	return map[string]any{}
}

// fill substitutes URL parameters: A's objects everywhere.
func fill(pattern string, params map[string]string) string {
	for k, v := range params {
		pattern = strings.ReplaceAll(pattern, "{"+k+"}", v)
	}
	return pattern
}

// TestOtherUsersProjectIsNotFound: every route aimed at user A's project,
// by anyone who is not a member — another user, a server administrator, A's
// own token scoped to another project — answers 404, exactly as for a
// project that does not exist, and changes nothing. The routes come from
// chi's route tree, so a route added later is covered without editing this
// test.
func TestOtherUsersProjectIsNotFound(t *testing.T) {
	e := newEnv(t)
	alice := e.jwtFor("alice")
	e.project(t, alice, "shop")
	e.project(t, alice, "blog")
	e.service(t, alice, "shop", "web")
	e.volume(t, alice, "shop", "data")
	e.secret(t, alice, "shop", "db")
	e.revisions(t, "shop", "web")
	e.member(t, alice, "shop", "carol", "viewer")
	e.must(t, http.StatusCreated, req{method: "PUT", path: "/api/v1/projects/shop/registry-credentials/ghcr.io", token: alice,
		body: map[string]any{"username": "alice", "password": "s3cret"}})
	_, aliceTokenID := e.apiToken(t, alice, nil)
	blogOnly, _ := e.apiToken(t, alice, map[string]any{"project": "blog"})
	before := snapshot(t, e, alice)

	intruders := map[string]string{
		"another user":                  e.jwtFor("bob"),
		"a server administrator":        e.jwtFor(adminUser),
		"bob's API token":               func() string { tok, _ := e.apiToken(t, e.jwtFor("bob"), nil); return tok }(),
		"alice's token for another one": blogOnly,
	}
	params := []map[string]string{
		{"project": "shop", "service": "web", "volume": "data", "userId": "alice", "registry": "ghcr.io", "id": aliceTokenID, "secret": "db", "revision": "1"},
		{"project": "shop", "service": "nope", "volume": "nope", "userId": "bob", "registry": "docker.io", "id": "00000000-0000-0000-0000-000000000000", "secret": "nope", "revision": "7"},
	}
	covered := 0
	for name, tok := range intruders {
		t.Run(name, func(t *testing.T) {
			for _, rt := range walkRoutes(t, e) {
				method, pattern := rt[0], rt[1]
				if !strings.Contains(pattern, "{project}") && !strings.Contains(pattern, "{id}") {
					continue
				}
				if strings.HasPrefix(pattern, "/api/v1/hooks/") {
					continue // no PanelX credential there: the same 401 for everyone who cannot sign (webhooks_test.go)
				}
				if strings.Contains(pattern, "{id}") && tok == blogOnly {
					continue // alice's own token: her token ids are hers (and a scoped token is refused: 403)
				}
				covered++
				for _, p := range params {
					path := fill(pattern, p)
					r := e.do(t, req{method: method, path: path, token: tok, body: validBody(method, pattern)})
					if r.Status != http.StatusNotFound {
						t.Errorf("%s %s: status %d, want 404\n%s", method, path, r.Status, r.Body)
						continue
					}
					if strings.Contains(string(r.Body), "hunter2") || strings.Contains(string(r.Body), "s3cret") {
						t.Errorf("%s %s leaks a password: %s", method, path, r.Body)
					}
					r.problem(t)
				}
				// And a project that does not exist answers the same.
				if strings.Contains(pattern, "{project}") {
					ghost := fill(pattern, map[string]string{"project": "ghost", "service": "web", "volume": "data", "userId": "alice", "registry": "ghcr.io", "secret": "db", "revision": "1"})
					if r := e.do(t, req{method: method, path: ghost, token: alice, body: validBody(method, pattern)}); r.Status != http.StatusNotFound {
						t.Errorf("%s %s (no such project): %d", method, ghost, r.Status)
					}
				}
			}
			// Listing projects never shows it; a token for it cannot be made.
			list := e.must(t, http.StatusOK, req{method: "GET", path: "/api/v1/projects", token: tok})
			if strings.Contains(string(list.Body), `"shop"`) {
				t.Errorf("project list shows shop: %s", list.Body)
			}
		})
	}
	if covered < 4*20 {
		t.Errorf("only %d route checks", covered)
	}
	if after := snapshot(t, e, alice); after != before {
		t.Errorf("alice's project changed:\nbefore %s\nafter  %s", before, after)
	}
}

// snapshot renders what alice can see of shop, to compare before and after.
func snapshot(t *testing.T, e *env, tok string) string {
	t.Helper()
	var b strings.Builder
	for _, p := range []string{"/api/v1/projects/shop", "/api/v1/projects/shop/services", "/api/v1/projects/shop/volumes",
		"/api/v1/projects/shop/members", "/api/v1/projects/shop/registry-credentials"} {
		b.WriteString(p + " " + string(e.must(t, http.StatusOK, req{method: "GET", path: p, token: tok}).Body) + "\n")
	}
	// Tokens: their ids (lastUsedAt moves with use).
	for _, it := range e.must(t, http.StatusOK, req{method: "GET", path: "/api/v1/tokens", token: tok}).JSON(t)["items"].([]any) {
		b.WriteString("token " + it.(map[string]any)["id"].(string) + "\n")
	}
	return b.String()
}
