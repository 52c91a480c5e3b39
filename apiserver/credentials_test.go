package apiserver_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/panelx/panelx/seal"
)

func TestRegistryCredentials(t *testing.T) {
	e := newEnv(t)
	tok := e.jwtFor("alice")
	e.project(t, tok, "shop")
	base := "/api/v1/projects/shop/registry-credentials/"
	const password = "correct-horse-battery-staple"
	var bodies [][]byte
	for _, r := range []*response{
		e.must(t, http.StatusCreated, req{method: "PUT", path: base + "127.0.0.1:5000", token: tok, body: map[string]any{"username": "ci", "password": password}}),
		e.must(t, http.StatusOK, req{method: "PUT", path: base + "127.0.0.1:5000", token: tok, body: map[string]any{"username": "ci2", "password": password}}),
		e.must(t, http.StatusOK, req{method: "GET", path: base + "127.0.0.1:5000", token: tok}),
		e.must(t, http.StatusOK, req{method: "GET", path: "/api/v1/projects/shop/registry-credentials", token: tok}),
	} {
		bodies = append(bodies, r.Body)
	}
	for _, b := range bodies {
		if bytes.Contains(b, []byte(password)) || bytes.Contains(b, []byte(`"password"`)) {
			t.Errorf("a response carries the password: %s", b)
		}
	}
	if !bytes.Contains(bodies[2], []byte(`"username":"ci2"`)) {
		t.Errorf("GET: %s", bodies[2])
	}
	// The store holds it sealed; the controller opens it.
	c, err := e.Store.RegistryCredentials().Get(context.Background(), "shop", "127.0.0.1:5000")
	if err != nil || strings.Contains(c.Password, password) || !seal.IsSealedText(c.Password) {
		t.Fatalf("stored credential: %+v %v", c, err)
	}
	if pw, err := e.Keyring.OpenText(seal.RegistryPasswordContext("shop", "127.0.0.1:5000"), c.Password); err != nil || pw != password {
		t.Errorf("open the stored password: %q %v", pw, err)
	}
	// Registries are spelled as image references resolve them.
	for _, reg := range []string{"index.docker.io", "UPPER.example.com/x", "not a host", "ghcr.io:99999x"} {
		r := e.do(t, req{method: "PUT", path: base + reg, token: tok, body: map[string]any{"username": "u", "password": "p"}})
		if r.Status != http.StatusUnprocessableEntity && r.Status != http.StatusNotFound {
			t.Errorf("registry %q: %d %s", reg, r.Status, r.Body)
		}
	}
	e.must(t, http.StatusUnprocessableEntity, req{method: "PUT", path: base + "ghcr.io", token: tok, body: map[string]any{"username": "u"}})
	e.must(t, http.StatusNoContent, req{method: "DELETE", path: base + "127.0.0.1:5000", token: tok})
	e.must(t, http.StatusNotFound, req{method: "DELETE", path: base + "127.0.0.1:5000", token: tok})
}
