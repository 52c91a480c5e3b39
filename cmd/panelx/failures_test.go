package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	_ "modernc.org/sqlite"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/apiserver"
	"github.com/panelx/panelx/internal/testenv"
	"github.com/panelx/panelx/internal/testenv/dockerd"
	"github.com/panelx/panelx/internal/testenv/pgserver"
	"github.com/panelx/panelx/internal/testimage"
	"github.com/panelx/panelx/naming"
	"github.com/panelx/panelx/reconcile"
)

// mountTmpfs mounts a small tmpfs (a disk that can fill up) for the test.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Missing(t, "mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		testenv.Missing(t, "mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fill writes to dir until the disk is full, and returns the filler.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return path
		}
	}
}

// TestEmbeddedStoreOutOfSpace: with the disk full, writes answer 507 with
// a message that says so (reads still work), /readyz says not ready; once
// space returns both recover, and the database file is intact.
func TestEmbeddedStoreOutOfSpace(t *testing.T) {
	bin := buildPanelx(t)
	dir := mountTmpfs(t, "8m")
	cmd, base, logs := startServer(t, bin, "PANELX_DATABASE_URL=", "PANELX_DATA_DIR="+dir,
		"PANELX_CONTROLLER=false", "PANELX_CONTAINER_METRICS=false")
	token, err := os.ReadFile(filepath.Join(dir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	c := apiClient{t: t, base: base, token: strings.TrimSpace(string(token))}
	c.must(201, "POST", "/api/v1/projects", map[string]any{"metadata": map[string]any{"name": "before"}})

	filler := fill(t, dir)
	// The first writes may still fit in pages SQLite already has.
	var status int
	var body []byte
	for i := 0; i < 50; i++ {
		status, body = c.do("POST", "/api/v1/projects", map[string]any{"metadata": map[string]any{"name": fmt.Sprintf("full-%d", i)},
			"spec": map[string]any{"displayName": strings.Repeat("x", 150)}})
		if status != 201 {
			break
		}
	}
	var p apiserver.Problem
	_ = json.Unmarshal(body, &p)
	if status != http.StatusInsufficientStorage || p.Type != apiserver.ProblemNoSpace || !strings.Contains(p.Detail, "disk is full") {
		t.Fatalf("write on a full disk: %d %s\n%s", status, body, logs)
	}
	if code, _ := get(t, base+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz on a full disk = %d", code)
	}
	c.must(200, "GET", "/api/v1/projects/before", nil) // reads still work

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code, _ := get(t, base+"/readyz"); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/readyz never recovered once space returned")
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.must(201, "POST", "/api/v1/projects", map[string]any{"metadata": map[string]any{"name": "after"}})

	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	db, err := sql.Open("sqlite", filepath.Join(dir, "panelx.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var check string
	if err := db.QueryRowContext(context.Background(), "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity check: %q %v", check, err)
	}
	var n int
	_ = db.QueryRow("SELECT count(*) FROM projects WHERE name IN ('before', 'after')").Scan(&n)
	if n != 2 {
		t.Errorf("%d of the projects written before and after the full disk are there", n)
	}
}

// TestDatabaseDownAndBack: while PostgreSQL is stopped the API answers at
// once with 503, Retry-After and a problem type that says so (no hang, no
// 500); right after it returns — and right after a quick restart that
// killed every pooled connection — no request fails.
func TestDatabaseDownAndBack(t *testing.T) {
	pg := pgserver.Start(t)
	dbURL := pg.NewDatabase(t)
	bin := buildPanelx(t)
	_, base, logs := startServer(t, bin, "PANELX_DATABASE_URL="+dbURL, "PANELX_DATA_DIR="+t.TempDir(),
		"PANELX_CONTROLLER=false", "PANELX_CONTAINER_METRICS=false")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", logs)
		}
	})
	out, err := exec.Command(bin, "token", "create", "--user", "alice", "--database-url", dbURL).Output()
	if err != nil {
		t.Fatal(err)
	}
	c := apiClient{t: t, base: base, token: strings.TrimSpace(string(out))}
	c.must(201, "POST", "/api/v1/projects", map[string]any{"metadata": map[string]any{"name": "shop"}})
	burst := func(n int) (failed []string) {
		type res struct {
			status int
			body   string
		}
		results := make(chan res, n)
		for i := 0; i < n; i++ {
			go func() {
				status, body := c.do("GET", "/api/v1/projects/shop", nil)
				results <- res{status, string(body)}
			}()
		}
		for i := 0; i < n; i++ {
			if r := <-results; r.status != 200 {
				failed = append(failed, fmt.Sprintf("%d %s", r.status, r.body))
			}
		}
		return failed
	}
	if f := burst(16); len(f) > 0 {
		t.Fatalf("before: %v", f)
	}

	pg.Stop(t)
	for _, rq := range []struct{ method, path string }{{"GET", "/api/v1/projects/shop"}, {"GET", "/api/v1/projects"},
		{"POST", "/api/v1/projects"}} {
		start := time.Now()
		req, _ := http.NewRequest(rq.method, base+rq.path, strings.NewReader(`{"metadata": {"name": "new"}}`))
		req.Header.Set("Authorization", "Bearer "+c.token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var p api.Problem
		_ = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		took := time.Since(start)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
			p.Type != apiserver.ProblemDatabaseUnavailable || took > time.Second {
			t.Errorf("%s %s with the database down: %d Retry-After %q type %q after %v", rq.method, rq.path,
				resp.StatusCode, resp.Header.Get("Retry-After"), p.Type, took)
		}
	}
	if code, _ := get(t, base+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the database down = %d", code)
	}

	pg.Start(t)
	if f := burst(32); len(f) > 0 {
		t.Errorf("right after the database returned: %d failed: %v", len(f), f)
	}
	// A quick restart kills every pooled connection (57P01) while the
	// server does not notice; the next requests must not fail on them.
	if f := burst(16); len(f) > 0 { // a full pool of idle connections
		t.Fatal(f)
	}
	pg.Restart(t)
	if f := burst(32); len(f) > 0 {
		t.Errorf("right after a restart: %d failed: %v", len(f), f)
	}
}

// TestEngineRestarts: the Docker Engine restarted three times (as a
// package upgrade does) under a running workload, with a change made while
// it is down each time: everything converges within 10 s of the engine's
// return, with no duplicate container.
func TestEngineRestarts(t *testing.T) {
	engine := dockerd.Start(t, dockerd.Options{})
	docker := engine.Client(t)
	dbURL := testenv.NewDatabase(t)
	bin := buildPanelx(t)
	_, base, logs := startServer(t, bin, "PANELX_DATABASE_URL="+dbURL, "PANELX_DATA_DIR="+t.TempDir(),
		"DOCKER_HOST="+engine.Host(), "PANELX_CONTAINER_METRICS=false")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s\nengine:\n%s", logs, engine.Output())
		}
	})
	out, err := exec.Command(bin, "token", "create", "--user", "alice", "--database-url", dbURL).Output()
	if err != nil {
		t.Fatal(err)
	}
	c := apiClient{t: t, base: base, token: strings.TrimSpace(string(out))}
	reg := testimage.StartRegistry(t, testimage.RegistryOptions{})
	img := reg.Push(t, "shop/web:1", testimage.Image(t, testimage.ImageOptions{Version: "1"}))
	c.must(201, "POST", "/api/v1/projects", map[string]any{"metadata": map[string]any{"name": "shop"}})
	spec := func(replicas int, greeting string) map[string]any {
		return map[string]any{"metadata": map[string]any{"name": "web"}, "spec": map[string]any{"image": img, "replicas": replicas,
			"env": []any{map[string]any{"name": "GREETING", "value": greeting}}}}
	}
	c.must(201, "POST", "/api/v1/projects/shop/services", spec(2, "v0"))
	waitReadyAPI(t, c, "shop", "web", time.Minute)

	converged := func(replicas int, greeting string) bool {
		s := c.service("shop", "web")
		if !reconcile.ServiceReady(&s) || len(s.Status.Replicas) != replicas {
			return false
		}
		cs, err := docker.ContainerList(context.Background(), container.ListOptions{All: true,
			Filters: filters.NewArgs(filters.Arg("label", naming.LabelService+"=web"))})
		if err != nil {
			return false
		}
		// The engine sometimes cannot remove a container it stopped while
		// going down ("device or resource busy" on its filesystem) and
		// leaves it dead; PanelX moves it aside and retries later.
		cs = slices.DeleteFunc(cs, func(ct container.Summary) bool { return ct.State == "dead" })
		if len(cs) != replicas {
			return false
		}
		for _, ct := range cs {
			in, err := docker.ContainerInspect(context.Background(), ct.ID)
			if err != nil || !in.State.Running || !slices.Contains(in.Config.Env, "GREETING="+greeting) {
				return false
			}
		}
		return true
	}
	for round := 1; round <= 3; round++ {
		engine.Stop(t)
		greeting := fmt.Sprintf("v%d", round)
		replicas := 2 + round%2
		c.must(200, "PUT", "/api/v1/projects/shop/services/web", spec(replicas, greeting))
		time.Sleep(time.Second)
		engine.Start(t)
		back := time.Now()
		for !converged(replicas, greeting) {
			if time.Since(back) > 10*time.Second {
				s := c.service("shop", "web")
				t.Fatalf("round %d: not converged 10 s after the engine returned: %s %+v", round, s.Status.Phase, s.Status.Conditions)
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("round %d: converged %v after the engine returned (%d replicas, %s)", round, time.Since(back).Round(10*time.Millisecond), replicas, greeting)
	}
}
