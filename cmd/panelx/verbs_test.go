package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/panelx/panelx/internal/testenv"
	"github.com/panelx/panelx/internal/testimage"
)

// TestCLIVerbs: the everyday verbs against a real server and Docker —
// version, use (a default project), describe, scale, stop and start (the
// replica count comes back), restart, top, edit, cp, events, get -A,
// delete --wait, volumes (retained) and purge, token list and revoke — and
// a login to a server that is down saying so.
func TestCLIVerbs(t *testing.T) {
	e := newCLIEnv(t, "PANELX_ADMIN_USERS=alice") // retained volumes of a deleted project are for administrators
	docker := testenv.Docker(t)
	reg := testimage.StartRegistry(t, testimage.RegistryOptions{})
	img := reg.Push(t, "shop/web:1", testimage.Image(t, testimage.ImageOptions{Version: "1"}))
	project := uniqueName("verbs")
	e.mustRun("apply", "-f", e.write("shop.yaml", fmt.Sprintf(`apiVersion: panelx.dev/v1
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
  volumes: [{name: data, mountPath: /data}]
  healthcheck: {command: [/testapp, -check], interval: 1s}
`, project, img)), "--wait", "--timeout", "90s")

	contains := func(what, out string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: no %q in:\n%s", what, w, out)
			}
		}
	}
	contains("version", e.mustRun("version"), "client: panelx", "server: panelx")
	if out := e.mustRun("version", "--client", "--server", "http://127.0.0.1:1"); strings.Contains(out, "server:") {
		t.Errorf("version --client asked the server:\n%s", out)
	}

	// A default project: no -p from here on.
	contains("use", e.mustRun("use", project), "default project: "+project)
	if out, code := e.run("", "use", "no-such-project"); code == 0 || !strings.Contains(out, "404") {
		t.Errorf("use of a project that does not exist: exit %d\n%s", code, out)
	}
	contains("use (show)", e.mustRun("use"), project)
	contains("get services", e.mustRun("get", "services"), "web", "1/1")
	contains("get projects", e.mustRun("get", "projects"), project) // not narrowed to the default
	contains("describe", e.mustRun("describe", "service", "web"),
		"Name:", "Project:", "Replicas:", "1 desired, 1 ready", "Phase:", "Ready", "Conditions:", "Events:", "running")

	containers := func() int {
		t.Helper()
		return len(serviceContainersOrNone(t, docker, project))
	}
	contains("scale", e.mustRun("scale", "web", "--replicas", "2", "--wait", "--timeout", "90s"), "scaled to 2 replica(s)", "ready")
	contains("get after scale", e.mustRun("get", "service", "web"), "2/2")
	if n := containers(); n != 2 {
		t.Errorf("after scale 2: %d containers", n)
	}
	contains("scale again", e.mustRun("scale", "web", "--replicas", "2"), "already has 2 replica(s)")
	if out, code := e.run("", "scale", "web", "--replicas", "101"); code == 0 || !strings.Contains(out, "want 0 to 100") {
		t.Errorf("scale to 101: exit %d\n%s", code, out)
	}

	contains("stop", e.mustRun("stop", "web", "--wait", "--timeout", "90s"), "stopped (had 2 replica(s))")
	if n := containers(); n != 0 {
		t.Errorf("after stop: %d containers", n)
	}
	contains("describe stopped", e.mustRun("describe", "service", "web"), "0 desired", "panelx start brings back 2 replica(s)")
	contains("start", e.mustRun("start", "web", "--wait", "--timeout", "90s"), "started with 2 replica(s)", "ready")
	if n := containers(); n != 2 {
		t.Errorf("after start: %d containers", n)
	}

	// top: the live metrics stream, one table.
	top := e.mustRun("top", "web")
	contains("top", top, "SERVICE", "CPU %", "MEMORY")
	if n := strings.Count(top, "\nweb "); n != 2 {
		t.Errorf("top shows %d rows of web, want 2:\n%s", n, top)
	}

	// restart: every replica replaced, nothing else changed.
	before := serviceContainersOrNone(t, docker, project)
	contains("restart", e.mustRun("restart", "web", "--wait", "--timeout", "90s"), "restarting (2 replica(s))", "ready")
	after := serviceContainersOrNone(t, docker, project)
	if len(after) != 2 {
		t.Errorf("after restart: %d containers", len(after))
	}
	for _, id := range after {
		if slices.Contains(before, id) {
			t.Errorf("restart kept container %s", id)
		}
	}
	contains("rollout history", e.mustRun("rollout", "history", "web"), "restartedAt")

	contains("events", e.mustRun("events"), "LAST SEEN", "service/web")
	contains("events of web", e.mustRun("events", "web"), "service/web")
	contains("get -A", e.mustRun("get", "services", "-A"), "PROJECT", project+" ")

	// edit: the editor's change is written; a change made meanwhile by
	// someone else is not overwritten, and the edit is kept in a file.
	dir := t.TempDir()
	editor := filepath.Join(dir, "editor.sh")
	writeScript := func(body string) {
		t.Helper()
		if err := os.WriteFile(editor, []byte("#!/bin/sh\nset -e\n"+body), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	e.env = append(e.env, "EDITOR="+editor, "VISUAL=")
	writeScript(`sed -i 's/^  replicas: 2$/  replicas: 1/' "$1"` + "\n")
	contains("edit", e.mustRun("edit", "service", "web"), "service/"+project+"/web edited")
	contains("get after edit", e.mustRun("get", "service", "web", "-o", "yaml"), "replicas: 1")
	writeScript("true\n")
	contains("edit without a change", e.mustRun("edit", "service", "web"), "no changes")
	writeScript(e.bin + ` scale web --replicas 3` + "\n" + `sed -i 's/^  replicas: 1$/  replicas: 2/' "$1"` + "\n")
	if out, code := e.run("", "edit", "service", "web"); code == 0 || !strings.Contains(out, "not changed") || !strings.Contains(out, "your edit is in") {
		t.Errorf("edit racing another write: exit %d\n%s", code, out)
	}
	contains("get after the lost race", e.mustRun("get", "service", "web", "-o", "yaml"), "replicas: 3")
	e.env = e.env[:len(e.env)-2]

	// cp into and out of a volume of the project.
	local := filepath.Join(dir, "hello.txt")
	if err := os.WriteFile(local, []byte("hello volume\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.mustRun("cp", local, "data:greeting.txt")
	if out := e.mustRun("cp", "data:greeting.txt", "-"); out != "hello volume\n" {
		t.Errorf("cp out to stdout: %q", out)
	}
	e.mustRun("cp", "data:greeting.txt", dir+"/")
	if got, err := os.ReadFile(filepath.Join(dir, "greeting.txt")); err != nil || string(got) != "hello volume\n" {
		t.Errorf("cp out to a directory: %q %v", got, err)
	}
	if out, code := e.run("", "cp", local, filepath.Join(dir, "x")); code == 0 || !strings.Contains(out, "VOLUME:PATH") {
		t.Errorf("cp between two local paths: exit %d\n%s", code, out)
	}
	if out, code := e.run("", "cp", "data:nope.txt", "-"); code == 0 || !strings.Contains(out, "404") {
		t.Errorf("cp of a missing file: exit %d\n%s", code, out)
	}

	contains("delete --wait", e.mustRun("delete", "service", "web", "--wait", "--timeout", "90s"), "deleted", "gone")
	if n := containers(); n != 0 {
		t.Errorf("after delete --wait: %d containers", n)
	}
	// The project goes without --purge-volumes: its volume's data stays
	// (reclaimPolicy Retain). panelx volumes lists it to an administrator
	// (the project is gone: nobody else may), and purge removes it.
	contains("delete project", e.mustRun("delete", "project", project, "--wait", "--timeout", "90s"), "gone")
	dockerName := "panelx-" + project + "-data"
	contains("volumes", e.mustRun("volumes"), dockerName, project+" (deleted)", "data")
	contains("volumes purge", e.mustRun("volumes", "purge", dockerName), "purged")
	if _, err := docker.VolumeInspect(context.Background(), dockerName); err == nil {
		t.Errorf("docker volume %s is still there after purge", dockerName)
	}
	if out := e.mustRun("volumes"); strings.Contains(out, dockerName) {
		t.Errorf("a purged volume is still listed:\n%s", out)
	}
	contains("use -", e.mustRun("use", "-"), "no default project")

	// token list | revoke, through the API: a second token, revoked by name,
	// stops working.
	code, body := apiCall(t, e, "POST", e.base+"/api/v1/tokens", `{"name":"ci-deploy"}`)
	if code != 201 {
		t.Fatalf("POST /api/v1/tokens: %d %s", code, body)
	}
	var created struct{ Token string }
	if err := json.Unmarshal([]byte(body), &created); err != nil || created.Token == "" {
		t.Fatalf("token answer %s: %v", body, err)
	}
	contains("token list", e.mustRun("token", "list"), "NAME", "ci-deploy", "never")
	contains("token revoke", e.mustRun("token", "revoke", "ci-deploy"), "revoked")
	if out := e.mustRun("token", "list"); strings.Contains(out, "ci-deploy") {
		t.Errorf("the revoked token is still listed:\n%s", out)
	}
	if out, code := e.run("", "token", "revoke", "ci-deploy"); code == 0 || !strings.Contains(out, "no token of yours") {
		t.Errorf("revoke of a token that is gone: exit %d\n%s", code, out)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, code := e.run("", "get", "projects", "--token", created.Token)
		if code != 0 && strings.Contains(out, "401") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the revoked token still works:\n%s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// A server that is down is not a refused token. (The token comes from
	// stdin here, not PANELX_TOKEN.)
	e.env = []string{e.env[2]}
	out, code := e.run("tok\n", "login", "--server", fmt.Sprintf("http://127.0.0.1:%d", freeTCPPort(t)))
	if code == 0 || strings.Contains(out, "refused the token") || !strings.Contains(out, "cannot log in") {
		t.Errorf("login to a server that is down: exit %d\n%s", code, out)
	}
	out, code = e.run("not-a-token\n", "login", "--server", e.base)
	if code == 0 || !strings.Contains(out, "refused the token") {
		t.Errorf("login with a bad token: exit %d\n%s", code, out)
	}
}
