package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	dockerclient "github.com/docker/docker/client"

	"github.com/panelx/panelx/client"
	"github.com/panelx/panelx/internal/testenv"
	"github.com/panelx/panelx/internal/testimage"
	"github.com/panelx/panelx/reconcile"
	"github.com/panelx/panelx/store/postgres"
)

// TestOperateEndToEnd: the real binary as server (with its controller
// running a service) and as CLI: panelx logs (plain and -f, ended by
// Ctrl-C), panelx exec with the remote exit code, and a volume file round
// trip through the helper — the server's own static binary in a helper
// container.
func TestOperateEndToEnd(t *testing.T) {
	docker := testenv.Docker(t)
	dbURL := testenv.NewDatabase(t)
	bin := buildPanelx(t)
	// Registered first so it runs last, once the server (and its
	// controller, which would recreate containers) has been stopped.
	label := "org.panelx.cmd.operate-test=" + uniqueName("t")
	var instance string
	t.Cleanup(func() {
		if instance != "" {
			removeInstance(docker, instance, label)
		}
	})
	_, base, logs := startServer(t, bin, "PANELX_DATABASE_URL="+dbURL)
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
	out, err := exec.Command(bin, "token", "create", "--user", "alice", "--database-url", dbURL).Output()
	if err != nil {
		t.Fatalf("token create: %v", err)
	}
	token := strings.TrimSpace(string(out))
	e := &cliEnv{t: t, bin: bin, base: base, env: []string{"PANELX_SERVER=" + base, "PANELX_TOKEN=" + token,
		"PANELX_CONFIG=" + filepath.Join(t.TempDir(), "config.json")}}

	reg := testimage.StartRegistry(t, testimage.RegistryOptions{})
	img := reg.Push(t, "shop/web:1", testimage.Image(t, testimage.ImageOptions{Version: "1",
		Labels: map[string]string{strings.Split(label, "=")[0]: strings.Split(label, "=")[1]}}))
	project := uniqueName("ops")
	e.mustRun("apply", "--wait", "--timeout", "120s", "-f", e.write("shop.yaml", fmt.Sprintf(`apiVersion: panelx.dev/v1
kind: Project
metadata: {name: %[1]s}
---
apiVersion: panelx.dev/v1
kind: Volume
metadata: {project: %[1]s, name: data}
---
apiVersion: panelx.dev/v1
kind: Service
metadata: {project: %[1]s, name: web}
spec:
  image: %[2]s
  env: [{name: LOG_EVERY, value: 300ms}]
  volumes: [{name: data, mountPath: /data}]
`, project, img)))

	// logs: tagged lines, stderr marked.
	var logsOut string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		if logsOut = e.mustRun("logs", "web", "-p", project); strings.Contains(logsOut, "[0] tick 2\n") {
			break
		}
	}
	for _, want := range []string{"[0] started version=1\n", "[0 stderr] stderr-line\n", "[0] tick 1\n[0] tick 2\n"} {
		if !strings.Contains(logsOut, want) {
			t.Errorf("panelx logs lacks %q:\n%s", want, logsOut)
		}
	}
	if out := e.mustRun("logs", "web", "-p", project, "--tail", "1"); strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "[0] tick ") {
		t.Errorf("--tail 1: %q", out)
	}

	// logs -f: new lines as they come, until Ctrl-C, which ends it cleanly.
	follow := exec.Command(bin, "logs", "web", "-p", project, "-f", "--tail", "0", "--timestamps")
	follow.Env = append(os.Environ(), e.env...)
	stdout, _ := follow.StdoutPipe()
	var stderr bytes.Buffer
	follow.Stderr = &stderr
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	ticks := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			ticks <- sc.Text()
		}
		close(ticks)
	}()
	select {
	case line := <-ticks:
		if f := strings.Fields(line); len(f) < 3 || f[1] != "[0]" || f[2] != "tick" {
			t.Errorf("followed line %q", line)
		} else if _, err := time.Parse(time.RFC3339Nano, f[0]); err != nil {
			t.Errorf("--timestamps: %q", line)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no line followed within 30s")
	}
	follow.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() {
		for range ticks {
		}
		done <- follow.Wait()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("logs -f after Ctrl-C: %v\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		follow.Process.Kill()
		t.Fatal("logs -f did not end on Ctrl-C")
	}

	// exec: output and the remote exit code; no argument ever logged.
	secret := "echo-" + uniqueName("arg")
	if out, code := e.run("", "exec", "web", "-p", project, "--", "/testapp", "-echo", "hi", secret); code != 0 || out != "hi "+secret+"\n" {
		t.Errorf("exec echo: exit %d, output %q", code, out)
	}
	if out, code := e.run("", "exec", "web", "-p", project, "--", "/testapp", "-no-such-flag"); code != 2 || !strings.Contains(out, "flag provided but not defined") {
		t.Errorf("exec of a failing command: exit %d, output %q", code, out)
	}
	if out, code := e.run("", "exec", "web", "-p", project, "--replica", "3", "--", "/testapp"); code == 0 || !strings.Contains(out, "no container") {
		t.Errorf("exec in a missing replica: exit %d, output %q", code, out)
	}
	if out := e.mustRun("get", "events", "-p", project); !strings.Contains(out, "Exec") {
		t.Errorf("no Exec event:\n%s", out)
	}
	if strings.Contains(logs.String(), secret) {
		t.Errorf("the server logged the command's argument or output")
	}

	// files: a round trip through the API, written by the helper.
	c, err := client.New(base, token)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	payload := make([]byte, 1<<20+3)
	rand.Read(payload)
	if err := c.Mkdir(ctx, project, "data", "up loads"); err != nil {
		t.Fatal(err)
	}
	if err := c.Upload(ctx, project, "data", "up loads/blob 1.bin", bytes.NewReader(payload), int64(len(payload))); err != nil {
		t.Fatalf("upload: %v", err)
	}
	l, err := c.ListFiles(ctx, project, "data", "up loads")
	if err != nil || len(l.Items) != 1 || l.Items[0].Name != "blob 1.bin" || l.Items[0].Size != int64(len(payload)) {
		t.Fatalf("listing %+v: %v", l, err)
	}
	rc, err := c.Download(ctx, project, "data", "up loads/blob 1.bin")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("download: %d bytes (%v), want %d", len(got), err, len(payload))
	}
	if err := c.RenameFile(ctx, project, "data", "up loads/blob 1.bin", "moved.bin"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteFile(ctx, project, "data", "up loads"); err != nil {
		t.Fatal(err)
	}
	if l, err := c.ListFiles(ctx, project, "data", ""); err != nil || len(l.Items) != 1 || l.Items[0].Name != "moved.bin" {
		t.Errorf("root after rename and delete: %+v %v", l, err)
	}
}

// removeInstance removes the Docker objects of an installation and the
// test's images.
func removeInstance(docker *dockerclient.Client, instance, imageLabel string) {
	ctx := context.Background()
	testenv.RemoveLabelled(docker, reconcile.LabelInstance+"="+instance)
	imgs, _ := docker.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("label", imageLabel))})
	for _, img := range imgs {
		_, _ = docker.ImageRemove(ctx, img.ID, image.RemoveOptions{Force: true, PruneChildren: true})
	}
}
