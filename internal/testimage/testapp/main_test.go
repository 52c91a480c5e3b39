package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func do(t *testing.T, srv *httptest.Server, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func newServer(t *testing.T) (*httptest.Server, string) {
	dir := t.TempDir()
	srv := httptest.NewServer(newHandler(dir))
	t.Cleanup(srv.Close)
	return srv, dir
}

func TestInfoAndEnv(t *testing.T) {
	t.Setenv("APP_VERSION", "7")
	t.Setenv("GREETING", "hello world")
	srv, _ := newServer(t)

	code, body := do(t, srv, "GET", "/", "")
	if code != 200 {
		t.Fatalf("GET / = %d %s", code, body)
	}
	var got info
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if got.Version != "7" || got.Env["GREETING"] != "hello world" || got.Hostname == "" {
		t.Errorf("GET / = %+v", got)
	}

	if code, body := do(t, srv, "GET", "/env/GREETING", ""); code != 200 || body != "hello world" {
		t.Errorf("GET /env/GREETING = %d %q", code, body)
	}
	if code, _ := do(t, srv, "GET", "/env/PANELX_SURELY_UNSET", ""); code != 404 {
		t.Errorf("GET /env of an unset variable = %d, want 404", code)
	}
}

func TestHealthFlips(t *testing.T) {
	flag := filepath.Join(t.TempDir(), "unhealthy")
	t.Setenv("UNHEALTHY_FILE", flag)
	srv, _ := newServer(t)

	if code, _ := do(t, srv, "GET", "/healthz", ""); code != 200 {
		t.Fatalf("healthz = %d, want 200", code)
	}
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _ := do(t, srv, "GET", "/healthz", ""); code != 500 {
		t.Fatalf("healthz with %s present = %d, want 500", flag, code)
	}
}

func TestFiles(t *testing.T) {
	srv, dir := newServer(t)

	if code, body := do(t, srv, "PUT", "/files/a/b/c.txt", "payload"); code != 201 {
		t.Fatalf("PUT = %d %s", code, body)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "a/b/c.txt")); err != nil || string(b) != "payload" {
		t.Fatalf("file on disk = %q, %v", b, err)
	}
	if code, body := do(t, srv, "GET", "/files/a/b/c.txt", ""); code != 200 || body != "payload" {
		t.Errorf("GET = %d %q", code, body)
	}
	if code, _ := do(t, srv, "GET", "/files/missing", ""); code != 404 {
		t.Errorf("GET of a missing file = %d, want 404", code)
	}

	// A symlink pointing outside DATA_DIR must not be followed.
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "escape")); err != nil {
		t.Fatal(err)
	}
	if code, _ := do(t, srv, "PUT", "/files/escape/x", "evil"); code < 400 {
		t.Errorf("PUT through an escaping symlink = %d, want an error", code)
	}
	if _, err := os.Stat(filepath.Join(outside, "x")); err == nil {
		t.Error("file written outside DATA_DIR")
	}
}

func TestBadParameters(t *testing.T) {
	srv, _ := newServer(t)
	for _, path := range []string{"/burn?seconds=x", "/exit?code=300", "/log?stream=stdin&line=x"} {
		if code, _ := do(t, srv, "POST", path, ""); code != 400 {
			t.Errorf("POST %s = %d, want 400", path, code)
		}
	}
	if code, _ := do(t, srv, "POST", "/burn?seconds=0.01", ""); code != 202 {
		t.Errorf("POST /burn = %d, want 202", code)
	}
}
