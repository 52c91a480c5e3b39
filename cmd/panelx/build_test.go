package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/internal/testenv"
	"github.com/panelx/panelx/internal/testenv/gitserver"
	"github.com/panelx/panelx/internal/testimage"
)

// TestBuildFromSource: a service built from a git repository served over
// smart HTTP runs its first build; a new commit and `panelx build` roll it
// onto the new image (the build's log follows on the way); a broken
// Dockerfile fails with the builder's line in the status, the events and
// the build log, while the last good build keeps serving.
func TestBuildFromSource(t *testing.T) {
	t.Parallel()
	e := newSealedCLIEnv(t)
	reg := testimage.StartRegistry(t, testimage.RegistryOptions{})
	base := reg.Push(t, uniqueName("build")+"/base:1", testimage.Image(t, testimage.ImageOptions{}))
	git := gitserver.Start(t, "")
	repo := git.Repo(t, "shop")
	dockerfile := []byte("FROM " + base + "\nCOPY version.txt /data/version.txt\n")
	repo.Commit("main", "v1", map[string][]byte{"Dockerfile": dockerfile, "version.txt": []byte("v1")})

	project, port := uniqueName("build"), freeTCPPort(t)
	const hookSecret = "whsec-5f4e3d2c1b"
	// notify sends the forge's push notification, signed as GitHub does.
	notify := func(delivery string, secret string) (int, string) {
		body := fmt.Appendf(nil, `{"ref": "refs/heads/main", "after": %q}`, strings.Repeat("0", 39)+"1")
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		req, err := http.NewRequest("POST", e.base+"/api/v1/hooks/projects/"+project+"/services/app", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-GitHub-Delivery", delivery)
		req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(data)
	}
	e.mustRun("apply", "-f", e.write("shop.yaml", fmt.Sprintf(`apiVersion: panelx.dev/v1
kind: Project
metadata: {name: %[1]s}
---
apiVersion: panelx.dev/v1
kind: Secret
metadata: {project: %[1]s, name: hook}
spec:
  data: {secret: %[4]s}
---
apiVersion: panelx.dev/v1
kind: Service
metadata: {project: %[1]s, name: app}
spec:
  build:
    git: {url: %[2]q, ref: main}
    deadline: 5m
    webhook: {secretRef: hook}
  rollout: {revisionHistoryLimit: 2}
  env: [{name: DATA_DIR, value: /data}]
  ports: [{containerPort: 8080, hostPort: %[3]d, hostIP: 127.0.0.1}]
`, project, repo.URL, port, hookSecret)), "--wait", "--timeout", "120s")
	url := fmt.Sprintf("http://127.0.0.1:%d/files/version.txt", port)
	if got := httpBody(t, url); got != "v1" {
		t.Fatalf("first build serves %q", got)
	}
	svc := e.service(project, "app")
	if b := svc.Status.Build; b == nil || b.Phase != api.BuildSucceeded || !strings.Contains(b.Image, "-app:") || b.ImageCommit == "" {
		t.Fatalf("build status after the first build: %+v", b)
	}
	firstImage := svc.Status.Build.Image

	// A new commit, built on request; the log follows.
	commit2 := repo.Commit("main", "v2", map[string][]byte{"version.txt": []byte("v2")})
	out := e.mustRun("build", "app", "-p", project, "-f")
	if !strings.Contains(out, "Step 2/") || !strings.Contains(out, "commit "+commit2) {
		t.Errorf("build -f printed:\n%s", out)
	}
	waitBody(t, url, "v2")
	if b := e.service(project, "app").Status.Build; b.ImageCommit != commit2 || !strings.Contains(b.Image, commit2[:12]) {
		t.Errorf("build status after the second build: %+v", b)
	}

	// A push notification builds the branch's newest commit; a forged one
	// builds nothing; two quick pushes end with the newer commit running.
	commit3 := repo.Commit("main", "v3", map[string][]byte{"version.txt": []byte("v3")})
	if code, body := notify("forged-1", "guess"); code != http.StatusUnauthorized {
		t.Errorf("a forged notification: %d %s", code, body)
	}
	if code, body := notify("delivery-1", hookSecret); code != http.StatusOK || !strings.Contains(body, `"build":true`) {
		t.Fatalf("a push notification: %d %s", code, body)
	}
	waitBody(t, url, "v3")
	repo.Commit("main", "v4", map[string][]byte{"version.txt": []byte("v4")})
	notify("delivery-2", hookSecret)
	repo.Commit("main", "v5", map[string][]byte{"version.txt": []byte("v5")})
	notify("delivery-3", hookSecret)
	waitBody(t, url, "v5")

	// A broken Dockerfile: Failed with the builder's line; v5 keeps serving.
	repo.Commit("main", "broken", map[string][]byte{"Dockerfile": []byte("FROM " + base + "\nCOPY missing.txt /data/\n")})
	e.mustRun("build", "app", "-p", project)
	deadline := time.Now().Add(90 * time.Second)
	for {
		b := e.service(project, "app").Status.Build
		if b != nil && b.Phase == api.BuildFailed && strings.Contains(b.Message, "missing.txt") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the broken build never failed: %+v", b)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if got := httpBody(t, url); got != "v5" {
		t.Errorf("after a failed build the service serves %q", got)
	}
	if out := e.mustRun("logs", "app", "-p", project, "--build"); !strings.Contains(out, "missing.txt") {
		t.Errorf("logs --build:\n%s", out)
	}
	if out := e.mustRun("events", "-p", project); !strings.Contains(out, "BuildFailed") || !strings.Contains(out, "Built") {
		t.Errorf("events:\n%s", out)
	}

	// A rollback runs the image the revision ran: nothing is cloned or built.
	var v3 int64
	var revs []api.Revision
	if err := json.Unmarshal([]byte(e.mustRun("rollout", "history", "app", "-p", project, "-o", "json")), &revs); err != nil {
		t.Fatal(err)
	}
	for _, r := range revs {
		if strings.Contains(r.ImageDigest, commit3[:12]) {
			v3 = r.Number
		}
	}
	if v3 == 0 {
		t.Fatalf("no revision ran commit %s: %+v", commit3, revs)
	}
	fetches := git.Fetches.Load()
	e.mustRun("rollout", "undo", "app", "-p", project, "--to-revision", fmt.Sprint(v3))
	waitBody(t, url, "v3")
	if n := git.Fetches.Load(); n != fetches {
		t.Errorf("the rollback fetched the repository %d time(s)", n-fetches)
	}
	if b := e.service(project, "app").Status.Build; b.ImageCommit != commit3 || !strings.Contains(b.Image, commit3[:12]) || !strings.Contains(b.Message, "rolled back") {
		t.Errorf("build status after the rollback: %+v", b)
	}
	// Two revisions are kept, so the first build's image is gone.
	docker := testenv.Docker(t)
	if _, _, err := docker.ImageInspectWithRaw(context.Background(), firstImage); err == nil {
		t.Errorf("the first build's image %s outlived the revisions that ran it", firstImage)
	}
	if out := e.mustRun("events", "-p", project); !strings.Contains(out, "BuildImagesPruned") {
		t.Errorf("no BuildImagesPruned event:\n%s", out)
	}
	e.mustRun("delete", "project", project, "--wait", "--timeout", "90s")
}

func (e *cliEnv) service(project, name string) *api.Service {
	e.t.Helper()
	var svc api.Service
	if err := json.Unmarshal([]byte(e.mustRun("get", "service", name, "-p", project, "-o", "json")), &svc); err != nil {
		e.t.Fatal(err)
	}
	return &svc
}

// TestBuildCancelAndDeadline: a build that never ends is cancelled by
// `panelx build --cancel`, and another stops at the spec's deadline; both
// end Failed saying why, and the running build keeps serving.
func TestBuildCancelAndDeadline(t *testing.T) {
	t.Parallel()
	e := newCLIEnv(t)
	reg := testimage.StartRegistry(t, testimage.RegistryOptions{})
	base := reg.Push(t, uniqueName("slow")+"/base:1", testimage.Image(t, testimage.ImageOptions{}))
	git := gitserver.Start(t, "")
	repo := git.Repo(t, "slow")
	repo.Commit("main", "v1", map[string][]byte{"Dockerfile": []byte("FROM " + base + "\nCOPY version.txt /data/version.txt\n"), "version.txt": []byte("v1")})
	project, port := uniqueName("slow"), freeTCPPort(t)
	manifest := func(deadline string) string {
		return e.write("shop.yaml", fmt.Sprintf(`apiVersion: panelx.dev/v1
kind: Project
metadata: {name: %[1]s}
---
apiVersion: panelx.dev/v1
kind: Service
metadata: {project: %[1]s, name: app}
spec:
  build: {git: {url: %[2]q, ref: main}, deadline: %[4]s}
  env: [{name: DATA_DIR, value: /data}]
  ports: [{containerPort: 8080, hostPort: %[3]d, hostIP: 127.0.0.1}]
`, project, repo.URL, port, deadline))
	}
	e.mustRun("apply", "-f", manifest("5m"), "--wait", "--timeout", "120s")
	url := fmt.Sprintf("http://127.0.0.1:%d/files/version.txt", port)
	waitBody(t, url, "v1")

	failed := func(what, want string) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(300 * time.Millisecond) {
			b := e.service(project, "app").Status.Build
			if b.Phase == api.BuildFailed && strings.Contains(b.Message, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the build did not fail with %q: %+v", what, want, b)
			}
		}
	}
	// A step that never ends, cancelled.
	repo.Commit("main", "hang", map[string][]byte{"Dockerfile": []byte("FROM " + base + "\nRUN [\"/testapp\", \"-sleep\"]\n")})
	e.mustRun("build", "app", "-p", project)
	for deadline := time.Now().Add(60 * time.Second); e.service(project, "app").Status.Build.Phase != api.BuildBuilding; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the build never started")
		}
	}
	e.mustRun("build", "app", "-p", project, "--cancel")
	failed("cancel", "cancelled")
	if out, code := e.run("", "build", "app", "-p", project, "--cancel"); code == 0 || !strings.Contains(out, "no build queued or running") {
		t.Errorf("a second cancel: exit %d\n%s", code, out)
	}

	// The same step under a 3-second deadline.
	e.mustRun("apply", "-f", manifest("3s"))
	failed("deadline", "longer than its deadline (3s)")
	if got := httpBody(t, url); got != "v1" {
		t.Errorf("after a cancelled and a timed-out build the service serves %q", got)
	}
	e.mustRun("delete", "project", project, "--wait", "--timeout", "90s")
}

// TestBuildPrivateRepository: a repository that asks for a token is built
// with the token of the Secret the build names; the token is in no log
// line of the server, no build log line, no event and no status.
func TestBuildPrivateRepository(t *testing.T) {
	t.Parallel()
	const token = "ghp-7c1d2e3f4a5b6c7d8e9f"
	e := newSealedCLIEnv(t)
	reg := testimage.StartRegistry(t, testimage.RegistryOptions{})
	base := reg.Push(t, uniqueName("private")+"/base:1", testimage.Image(t, testimage.ImageOptions{}))
	git := gitserver.Start(t, token)
	repo := git.Repo(t, "private")
	repo.Commit("main", "v1", map[string][]byte{"Dockerfile": []byte("FROM " + base + "\nCOPY version.txt /data/version.txt\n"), "version.txt": []byte("private-v1")})
	project, port := uniqueName("private"), freeTCPPort(t)
	manifest := func(secretRef string) string {
		return e.write("app.yaml", fmt.Sprintf(`apiVersion: panelx.dev/v1
kind: Project
metadata: {name: %[1]s}
---
apiVersion: panelx.dev/v1
kind: Secret
metadata: {project: %[1]s, name: git}
spec:
  data: {token: %[4]s}
---
apiVersion: panelx.dev/v1
kind: Service
metadata: {project: %[1]s, name: app}
spec:
  build: {git: {url: %[2]q, ref: main%[5]s}}
  env: [{name: DATA_DIR, value: /data}]
  ports: [{containerPort: 8080, hostPort: %[3]d, hostIP: 127.0.0.1}]
`, project, repo.URL, port, token, secretRef))
	}
	// Without the token: the build fails saying what to do.
	e.mustRun("apply", "-f", manifest(""))
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		b := e.service(project, "app").Status.Build
		if b != nil && b.Phase == api.BuildFailed && strings.Contains(b.Message, "secretRef") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a build without credentials: %+v", b)
		}
	}
	e.mustRun("apply", "-f", manifest(", secretRef: git"), "--wait", "--timeout", "120s")
	if got := httpBody(t, fmt.Sprintf("http://127.0.0.1:%d/files/version.txt", port)); got != "private-v1" {
		t.Fatalf("serves %q", got)
	}
	for what, text := range map[string]string{
		"server log": e.logs.String(),
		"build log":  e.mustRun("logs", "app", "-p", project, "--build"),
		"events":     e.mustRun("events", "-p", project),
		"service":    e.mustRun("get", "service", "app", "-p", project, "-o", "yaml"),
	} {
		if strings.Contains(text, token) {
			t.Errorf("the token is in the %s:\n%s", what, text)
		}
	}
	e.mustRun("delete", "project", project, "--wait", "--timeout", "90s")
}

// TestBuildPollsItsRef: a repository that cannot send webhooks is polled
// (spec.build.git.poll): a pushed commit is built and served with no
// request, and a poll that finds nothing new builds nothing.
func TestBuildPollsItsRef(t *testing.T) {
	t.Parallel()
	e := newCLIEnv(t)
	reg := testimage.StartRegistry(t, testimage.RegistryOptions{})
	base := reg.Push(t, uniqueName("poll")+"/base:1", testimage.Image(t, testimage.ImageOptions{}))
	git := gitserver.Start(t, "")
	repo := git.Repo(t, "polled")
	repo.Commit("main", "v1", map[string][]byte{"Dockerfile": []byte("FROM " + base + "\nCOPY version.txt /data/version.txt\n"), "version.txt": []byte("v1")})
	project, port := uniqueName("poll"), freeTCPPort(t)
	e.mustRun("apply", "-f", e.write("app.yaml", fmt.Sprintf(`apiVersion: panelx.dev/v1
kind: Project
metadata: {name: %[1]s}
---
apiVersion: panelx.dev/v1
kind: Service
metadata: {project: %[1]s, name: app}
spec:
  build: {git: {url: %[2]q, ref: main, poll: 10s}}
  env: [{name: DATA_DIR, value: /data}]
  ports: [{containerPort: 8080, hostPort: %[3]d, hostIP: 127.0.0.1}]
`, project, repo.URL, port)), "--wait", "--timeout", "120s")
	url := fmt.Sprintf("http://127.0.0.1:%d/files/version.txt", port)
	waitBody(t, url, "v1")
	built := e.service(project, "app").Status.Build.FinishedAt

	// Nothing new: a poll or two later, nothing was built again.
	time.Sleep(12 * time.Second)
	if b := e.service(project, "app").Status.Build; !b.FinishedAt.Equal(*built) {
		t.Errorf("a poll that found nothing new built again: %+v", b)
	}
	commit := repo.Commit("main", "v2", map[string][]byte{"version.txt": []byte("v2")})
	waitBody(t, url, "v2")
	if b := e.service(project, "app").Status.Build; b.ImageCommit != commit {
		t.Errorf("after the poll: %+v", b)
	}
	if out := e.mustRun("events", "-p", project); !strings.Contains(out, "found commit "+commit[:12]) {
		t.Errorf("events:\n%s", out)
	}
	e.mustRun("delete", "project", project, "--wait", "--timeout", "90s")
}
