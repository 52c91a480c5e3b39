package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/panelx/panelx/internal/testenv"
	"github.com/panelx/panelx/internal/testimage"
	"github.com/panelx/panelx/reconcile"
	"github.com/panelx/panelx/store/postgres"
)

// cliEnv runs the real binary: a server against a fresh database and the
// real Docker Engine, and CLI commands against that server.
type cliEnv struct {
	t    testing.TB
	bin  string
	base string
	env  []string // PANELX_SERVER, PANELX_TOKEN, PANELX_CONFIG
	// server is the server's process (benchmarks read its memory), logs
	// what it logged.
	server *exec.Cmd
	logs   *syncLog
	// dbURL is the server's database (to make other users' tokens); token
	// is alice's, which the CLI uses.
	dbURL, token string
}

func newCLIEnv(t testing.TB, serverEnv ...string) *cliEnv {
	t.Helper()
	docker := testenv.Docker(t)
	dbURL := testenv.NewDatabase(t)
	bin := buildPanelx(t)
	// Remove every Docker object of this installation at the end — after
	// the server has stopped (cleanups run last-registered first), or it
	// would re-create what was just removed.
	var instance string
	t.Cleanup(func() {
		if instance != "" {
			testenv.RemoveLabelled(docker, reconcile.LabelInstance+"="+instance)
		}
	})
	server, base, logs := startServer(t, bin, append([]string{"PANELX_DATABASE_URL=" + dbURL, "PANELX_PULL_INTERVAL=2s",
		"PANELX_DATA_DIR=" + t.TempDir()}, serverEnv...)...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", logs)
		}
	})
	st, err := postgres.Open(context.Background(), dbURL, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	instance, err = st.InstallationID(context.Background())
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	token := createToken(t, bin, dbURL, "alice")
	cfg := filepath.Join(t.TempDir(), "config.json")
	e := &cliEnv{t: t, bin: bin, base: base, server: server, logs: logs, dbURL: dbURL, token: token, env: []string{"PANELX_SERVER=" + base, "PANELX_TOKEN=" + token, "PANELX_CONFIG=" + cfg}}
	return e
}

// newSealedCLIEnv is newCLIEnv with a master key, for tests that use
// Secrets.
func newSealedCLIEnv(t testing.TB, serverEnv ...string) *cliEnv {
	t.Helper()
	keyFile := filepath.Join(t.TempDir(), "master.key")
	if out, err := exec.Command(buildPanelx(t), "secrets", "init-key", keyFile).CombinedOutput(); err != nil {
		t.Fatalf("secrets init-key: %v\n%s", err, out)
	}
	return newCLIEnv(t, append(serverEnv, "PANELX_SECRET_KEY_FILE="+keyFile)...)
}

// run runs a CLI command and returns its output (stdout and stderr) and
// exit code.
func (e *cliEnv) run(stdin string, args ...string) (string, int) {
	e.t.Helper()
	cmd := exec.Command(e.bin, args...)
	cmd.Env = append(os.Environ(), e.env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &exit):
		return out.String(), exit.ExitCode()
	}
	e.t.Fatalf("run %v: %v", args, err)
	return "", -1
}

func (e *cliEnv) mustRun(args ...string) string {
	e.t.Helper()
	out, code := e.run("", args...)
	if code != 0 {
		e.t.Fatalf("panelx %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

func (e *cliEnv) write(name, content string) string {
	p := filepath.Join(e.t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func freeTCPPort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func httpBody(t testing.TB, url string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return string(data)
			}
			err = fmt.Errorf("%d %s", resp.StatusCode, data)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func uniqueName(prefix string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// TestCLIEndToEnd: login, apply --wait until the container serves, diff's
// exit codes, get, a failing image making --wait fail fast with the reason,
// a Compose file whose three services reach each other by name, delete.
func TestCLIEndToEnd(t *testing.T) {
	e := newCLIEnv(t)
	reg := testimage.StartRegistry(t, testimage.RegistryOptions{})
	img := reg.Push(t, "shop/web:1", testimage.Image(t, testimage.ImageOptions{Version: "1"}))
	project := uniqueName("shop")
	port := freeTCPPort(t)

	// login saves the server and token (mode 0600) for later commands.
	login := append([]string{}, e.env...)
	e.env = []string{login[2]} // only PANELX_CONFIG: the rest comes from the saved config
	token := strings.TrimPrefix(login[1], "PANELX_TOKEN=")
	if out, code := e.run(token+"\n", "login", "--server", e.base); code != 0 || !strings.Contains(out, "logged in") {
		t.Fatalf("login: exit %d\n%s", code, out)
	}
	fi, err := os.Stat(strings.TrimPrefix(login[2], "PANELX_CONFIG="))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config file: %v, mode %v", err, fi.Mode())
	}

	manifests := e.write("shop.yaml", fmt.Sprintf(`# yaml-language-server: $schema=../schema/panelx.schema.json
apiVersion: panelx.dev/v1
kind: Project
metadata: {name: %[1]s}
---
apiVersion: panelx.dev/v1
kind: Service
metadata: {project: %[1]s, name: web}
spec:
  image: %[2]s
  env: [{name: GREETING, value: hello}]
  ports: [{containerPort: 8080, hostPort: %[3]d, hostIP: 127.0.0.1}]
  healthcheck: {command: [/testapp, -check], interval: 1s}
`, project, img, port))
	out := e.mustRun("apply", "-f", manifests, "--wait", "--timeout", "90s")
	if !strings.Contains(out, "service/"+project+"/web created") || !strings.Contains(out, "ready") {
		t.Errorf("apply --wait output:\n%s", out)
	}
	if got := httpBody(t, fmt.Sprintf("http://127.0.0.1:%d/env/GREETING", port)); got != "hello" {
		t.Fatalf("GREETING = %q", got)
	}

	// diff: 0 when nothing would change, 1 when something would.
	if out, code := e.run("", "diff", "-f", manifests); code != 0 {
		t.Errorf("diff of applied manifests: exit %d\n%s", code, out)
	}
	changed := e.write("changed.yaml", strings.Replace(mustRead(t, manifests), "value: hello", "value: bonjour", 1))
	if out, code := e.run("", "diff", "-f", changed); code != 1 || !strings.Contains(out, `"hello" → "bonjour"`) {
		t.Errorf("diff of a change: exit %d\n%s", code, out)
	}
	out = e.mustRun("apply", "-f", changed, "--wait", "--timeout", "90s")
	if !strings.Contains(out, "configured") {
		t.Errorf("apply of a change:\n%s", out)
	}
	if got := httpBody(t, fmt.Sprintf("http://127.0.0.1:%d/env/GREETING", port)); got != "bonjour" {
		t.Fatalf("GREETING after the change = %q", got)
	}
	if out := e.mustRun("get", "services", "-p", project); !strings.Contains(out, "web") || !strings.Contains(out, "1/1") {
		t.Errorf("get services:\n%s", out)
	}
	if out := e.mustRun("get", "service", "web", "-p", project, "-o", "yaml"); !strings.Contains(out, "kind: Service") {
		t.Errorf("get -o yaml:\n%s", out)
	}

	// An image that cannot be pulled: --wait fails fast, saying why.
	broken := e.write("broken.yaml", fmt.Sprintf(`apiVersion: panelx.dev/v1
kind: Service
metadata: {project: %s, name: broken}
spec: {image: %s/shop/missing:1}
`, project, reg.Host()))
	start := time.Now()
	out, code := e.run("", "apply", "-f", broken, "--wait", "--timeout", "90s")
	if code == 0 || !strings.Contains(out, "Degraded") || !strings.Contains(out, "shop/missing") {
		t.Errorf("apply --wait of a missing image: exit %d\n%s", code, out)
	}
	if time.Since(start) > 60*time.Second {
		t.Errorf("the failure took %v: not fast", time.Since(start))
	}

	// A Compose file: three services reaching each other by name.
	cproject := uniqueName("stack")
	webPort := freeTCPPort(t)
	composeFile := e.write("docker-compose.yml", fmt.Sprintf(`name: %s
services:
  web:
    image: %[2]s
    ports: ["127.0.0.1:%[3]d:8080"]
    depends_on: [api]
  api:
    image: %[2]s
    environment: {ROLE: api}
    depends_on: [db]
  db:
    image: %[2]s
    environment: {ROLE: db}
    volumes: [dbdata:/data]
volumes:
  dbdata: {}
`, cproject, img, webPort))
	out = e.mustRun("apply", "-f", composeFile, "--wait", "--timeout", "120s")
	for _, s := range []string{"web", "api", "db"} {
		if !strings.Contains(out, "service/"+cproject+"/"+s+" created") {
			t.Errorf("compose apply did not create %s:\n%s", s, out)
		}
	}
	for _, peer := range []string{"api", "db"} {
		url := fmt.Sprintf("http://127.0.0.1:%d/fetch?url=http://%s:8080/env/ROLE", webPort, peer)
		if got := httpBody(t, url); got != peer {
			t.Errorf("web → %s by name answered %q", peer, got)
		}
	}
	if out := e.mustRun("convert", "-f", composeFile); !strings.Contains(out, "kind: Service") {
		t.Errorf("convert:\n%s", out)
	}

	// delete: the project and everything in it go.
	e.mustRun("delete", "project", cproject, "--purge-volumes")
	e.mustRun("delete", "-f", manifests)
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, code := e.run("", "get", "project", project)
		if code != 0 && strings.Contains(out, "404") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("project still there after delete:\n%s", out)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func mustRead(t testing.TB, p string) string {
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
