package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/panelx/panelx/internal/testenv"
)

// buildPanelx compiles the binary once per test process, as make build
// does (static, CGO_ENABLED=0): the server copies itself into volume helper
// containers, which only a static binary survives.
func buildPanelx(t testing.TB) string {
	t.Helper()
	bin, err := builtBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

var builtBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "panelx-test-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "panelx")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// syncLog collects the server's log lines; tests read it while the
// scanner goroutine still writes.
type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) WriteString(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startServer runs `panelx server` and returns its base URL once it logs
// the address it serves on.
func startServer(t testing.TB, bin string, env ...string) (*exec.Cmd, string, *syncLog) {
	t.Helper()
	cmd := exec.Command(bin, "server")
	cmd.Env = append(os.Environ(), append([]string{"PANELX_LISTEN=127.0.0.1:0", "PANELX_LOG_FORMAT=json"}, env...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	logs := &syncLog{}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "serving API" {
				addr <- line.Addr
			}
		}
		close(addr)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			t.Fatalf("server exited before serving:\n%s", logs)
		}
		return cmd, "http://" + a, logs
	case <-time.After(60 * time.Second):
		t.Fatalf("server did not start:\n%s", logs)
	}
	return nil, "", nil
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestServerHealthReadyAndGracefulStop(t *testing.T) {
	dbURL := testenv.NewDatabase(t)
	bin := buildPanelx(t)

	// Without migrations the server is alive but not ready.
	cmd, base, _ := startServer(t, bin, "PANELX_DATABASE_URL="+dbURL, "PANELX_MIGRATE=false")
	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d, want 200", code)
	}
	code, body := get(t, base+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "panelx migrate") {
		t.Errorf("/readyz on an unmigrated database = %d %s, want 503 naming `panelx migrate`", code, body)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()

	// `panelx migrate`, then a server that is ready.
	out, err := exec.Command(bin, "migrate", "--database-url", dbURL).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "schema is up to date") {
		t.Fatalf("panelx migrate: %v\n%s", err, out)
	}
	cmd, base, logs := startServer(t, bin, "PANELX_DATABASE_URL="+dbURL)
	if code, body := get(t, base+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d %s, want 200", code, body)
	}
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("server exited with %v after SIGTERM:\n%s", err, logs)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("graceful stop took %v", d)
	}
	if !strings.Contains(logs.String(), `"stopped"`) {
		t.Errorf("no clean stop in the logs:\n%s", logs)
	}
}

func TestServerRefusesBadConfiguration(t *testing.T) {
	bin := buildPanelx(t)
	tests := []struct {
		env  []string
		want string
	}{
		{[]string{"PANELX_DATABASE_URL=", "PANELX_DATA_DIR=/dev/null/x"}, "data directory"},
		{[]string{"PANELX_DATABASE_URL=postgres://x@127.0.0.1:1/x", "PANELX_WORKERS=0"}, "PANELX_WORKERS"},
		{[]string{"PANELX_DATABASE_URL=postgres://x@127.0.0.1:1/x", "PANELX_SHUTDOWN_TIMEOUT=soon"}, "PANELX_SHUTDOWN_TIMEOUT"},
		{[]string{"PANELX_DATABASE_URL=postgres://x@127.0.0.1:1/x", "PANELX_LOG_LEVEL=loud"}, "log level"},
		{[]string{"PANELX_DATABASE_URL=postgres://x:hunter2@127.0.0.1:1/x?connect_timeout=2"}, "connect to database"},
	}
	for _, tt := range tests {
		cmd := exec.Command(bin, "server")
		cmd.Env = append(os.Environ(), tt.env...)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("%v: server started", tt.env)
			continue
		}
		if !strings.Contains(string(out), tt.want) {
			t.Errorf("%v: output %q does not mention %q", tt.env, out, tt.want)
		}
		if strings.Contains(string(out), "hunter2") {
			t.Errorf("%v: output leaks the password: %s", tt.env, out)
		}
	}
}

// TestEmbeddedServer: with no database URL the server keeps its state in
// SQLite under the data directory, and a second server on the same
// directory refuses to start, saying why.
func TestEmbeddedServer(t *testing.T) {
	testenv.Docker(t) // the controller needs the engine
	bin := buildPanelx(t)
	dir := t.TempDir()
	env := []string{"PANELX_DATABASE_URL=", "PANELX_DATA_DIR=" + dir}
	cmd, base, logs := startServer(t, bin, env...)
	if code, body := get(t, base+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d %s\n%s", code, body, logs)
	}
	second := exec.Command(bin, "server")
	second.Env = append(os.Environ(), append(env, "PANELX_LISTEN=127.0.0.1:0")...)
	out, err := second.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "another PanelX server is using it") {
		t.Errorf("second server on the same data directory: err %v, output %s", err, out)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("server exited with %v:\n%s", err, logs)
	}
	if _, err := os.Stat(filepath.Join(dir, "panelx.db")); err != nil {
		t.Errorf("no database file in the data directory: %v", err)
	}
	// With no JWT settings, the first start left a token to log in with.
	fi, err := os.Stat(filepath.Join(dir, "admin-token"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("bootstrap token file: %v, mode %v", err, fi.Mode())
	}
	token, _ := os.ReadFile(filepath.Join(dir, "admin-token"))
	if strings.Contains(logs.String(), strings.TrimSpace(string(token))) {
		t.Error("the bootstrap token is in the log")
	}
	cmd, base, _ = startServer(t, bin, env...)
	req, _ := http.NewRequest("GET", base+"/api/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the bootstrap token does not authenticate: %v %v", err, resp.Status)
	}
	var me struct{ UserID string }
	var admin struct{ Admin bool }
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	_ = json.Unmarshal(body, &me)
	_ = json.Unmarshal(body, &admin)
	if me.UserID != "admin" || !admin.Admin {
		t.Errorf("the bootstrap user is %s; want admin, a server administrator", body)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
}
