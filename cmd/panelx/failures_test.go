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
	"strings"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/panelx/panelx/apiserver"
	"github.com/panelx/panelx/internal/testenv"
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
