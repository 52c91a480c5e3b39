package apiserver_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestAPITokens(t *testing.T) {
	e := newEnv(t)
	alice := e.jwtFor("alice")
	e.project(t, alice, "shop")
	e.project(t, alice, "blog")

	created := e.must(t, http.StatusCreated, req{method: "POST", path: "/api/v1/tokens", token: alice,
		body: map[string]any{"name": "ci", "expiresIn": "720h", "project": "shop"}})
	m := created.JSON(t)
	plain := m["token"].(string)
	if !strings.HasPrefix(plain, "pnx_") || m["prefix"] != plain[:12] || m["project"] != "shop" || m["expiresAt"] == nil || m["hash"] != nil {
		t.Errorf("created token: %s", created.Body)
	}
	if created.Header.Get("Cache-Control") != "no-store" {
		t.Error("a response carrying a secret must not be cached")
	}
	// Shown once: the list has the prefix, never the token or its hash.
	list := e.must(t, http.StatusOK, req{method: "GET", path: "/api/v1/tokens", token: alice})
	if bytes.Contains(list.Body, []byte(plain)) || bytes.Contains(list.Body, []byte(`"hash"`)) || !bytes.Contains(list.Body, []byte(plain[:12])) {
		t.Errorf("token list: %s", list.Body)
	}

	// The scoped token reaches its project only, and manages no tokens.
	e.must(t, http.StatusOK, req{method: "GET", path: "/api/v1/projects/shop", token: plain})
	e.must(t, http.StatusCreated, req{method: "POST", path: "/api/v1/projects/shop/services", token: plain, body: manifest("services", "web", nil)})
	e.must(t, http.StatusNotFound, req{method: "GET", path: "/api/v1/projects/blog", token: plain})
	projects := e.must(t, http.StatusOK, req{method: "GET", path: "/api/v1/projects", token: plain})
	if bytes.Contains(projects.Body, []byte(`"blog"`)) || !bytes.Contains(projects.Body, []byte(`"shop"`)) {
		t.Errorf("scoped token's project list: %s", projects.Body)
	}
	e.must(t, http.StatusForbidden, req{method: "POST", path: "/api/v1/tokens", token: plain, body: map[string]any{"name": "wider"}})
	e.must(t, http.StatusForbidden, req{method: "GET", path: "/api/v1/tokens", token: plain})
	e.must(t, http.StatusForbidden, req{method: "DELETE", path: "/api/v1/tokens/" + m["id"].(string), token: plain})
	e.must(t, http.StatusForbidden, req{method: "POST", path: "/api/v1/projects", token: plain, body: map[string]any{"metadata": map[string]any{"name": "new"}}})
	me := e.must(t, http.StatusOK, req{method: "GET", path: "/api/v1/me", token: plain}).JSON(t)
	if me["userId"] != "alice" || me["method"] != "api-token" || me["project"] != "shop" {
		t.Errorf("me: %v", me)
	}

	// An unscoped token with an expiry can mint tokens that end no later.
	short, _ := e.apiToken(t, alice, map[string]any{"expiresIn": "1h"})
	child := e.must(t, http.StatusCreated, req{method: "POST", path: "/api/v1/tokens", token: short, body: map[string]any{"name": "child"}}).JSON(t)
	exp, _ := time.Parse(time.RFC3339Nano, child["expiresAt"].(string))
	if exp.IsZero() || time.Until(exp) > time.Hour {
		t.Errorf("child of a 1h token expires %v", child["expiresAt"])
	}
	e.must(t, http.StatusUnprocessableEntity, req{method: "POST", path: "/api/v1/tokens", token: short, body: map[string]any{"name": "longer", "expiresIn": "48h"}})

	for _, body := range []map[string]any{
		{"name": ""},
		{"name": "x", "expiresIn": "soon"},
		{"name": "x", "expiresIn": "-1h"},
		{"name": "x", "expiresIn": "1h", "expiresAt": time.Now().Add(time.Hour)},
		{"name": "x", "expiresAt": time.Now().Add(-time.Hour)},
		{"name": "x", "admin": true},
		{"name": "bad\nname"},
	} {
		e.must(t, http.StatusUnprocessableEntity, req{method: "POST", path: "/api/v1/tokens", token: alice, body: body})
	}
	e.must(t, http.StatusNotFound, req{method: "POST", path: "/api/v1/tokens", token: e.jwtFor("bob"), body: map[string]any{"name": "x", "project": "shop"}})
	e.must(t, http.StatusNotFound, req{method: "DELETE", path: "/api/v1/tokens/not-a-token", token: alice})

	// Revoked: 401 at once.
	e.must(t, http.StatusNoContent, req{method: "DELETE", path: "/api/v1/tokens/" + m["id"].(string), token: alice})
	e.must(t, http.StatusUnauthorized, req{method: "GET", path: "/api/v1/projects/shop", token: plain})
}
