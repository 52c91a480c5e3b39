package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/panelx/panelx/internal/testenv"
	"github.com/panelx/panelx/internal/testimage"
	"github.com/panelx/panelx/reconcile"
)

// TestContainerImage builds the image as `make image` does and runs it the
// two ways users are told to: the README's `docker run` line and
// deploy/docker-compose.yml. In each, PanelX in its container applies a
// project through its published API and the CLI, the service gets Ready,
// its metrics come from the cgroup files; in the first, volume files, logs
// and exec work, a restart of the PanelX container keeps state and services,
// and removing it leaves the services running; in the second, the edge
// serves the service on its domain.
func TestContainerImage(t *testing.T) {
	docker := testenv.Docker(t)
	ctx := context.Background()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := buildPanelx(t) // the CLI
	// The image's binary is built as `make build` builds it (stripped).
	imageBin := filepath.Join(t.TempDir(), "panelx")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", imageBin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	tag := "panelx-test/" + uniqueName("panelx") + ":test"
	if out, err := exec.Command("bash", filepath.Join(root, "scripts", "image.sh"), imageBin, tag, "v0.0.0-test", "0123456789ab").CombinedOutput(); err != nil {
		t.Fatalf("scripts/image.sh: %v\n%s", err, out)
	}
	t.Cleanup(func() { _, _ = docker.ImageRemove(ctx, tag, image.RemoveOptions{Force: true, PruneChildren: true}) })

	t.Run("image", func(t *testing.T) {
		img, _, err := docker.ImageInspectWithRaw(ctx, tag)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("image size: %.1f MB (%d bytes), %d layers", float64(img.Size)/1e6, img.Size, len(img.RootFS.Layers))
		if img.Size > 40e6 {
			t.Errorf("image is %.1f MB, the goal is under 40 MB", float64(img.Size)/1e6)
		}
		cfg := img.Config
		if cfg.User != "65532:65532" {
			t.Errorf("user %q, want 65532:65532", cfg.User)
		}
		if cfg.Healthcheck == nil || strings.Join(cfg.Healthcheck.Test, " ") != "CMD /usr/local/bin/panelx health" {
			t.Errorf("healthcheck %+v", cfg.Healthcheck)
		}
		for k, want := range map[string]string{
			"org.opencontainers.image.version":  "v0.0.0-test",
			"org.opencontainers.image.revision": "0123456789ab",
			"org.opencontainers.image.source":   "https://github.com/panelx/panelx",
		} {
			if cfg.Labels[k] != want {
				t.Errorf("label %s = %q, want %q", k, cfg.Labels[k], want)
			}
		}
	})

	t.Run("the root Dockerfile ends with the same image", func(t *testing.T) {
		// Its final stage is deploy/image/Dockerfile's, but copying from the
		// build stage's /out instead of the context.
		multi := finalStage(t, mustRead(t, filepath.Join(root, "Dockerfile")))
		multi = strings.ReplaceAll(multi, "--from=build ", "")
		multi = strings.ReplaceAll(multi, " /out/", " ")
		if hostBuilt := finalStage(t, mustRead(t, filepath.Join(root, "deploy", "image", "Dockerfile"))); multi != hostBuilt {
			t.Errorf("the final stages differ:\nDockerfile:\n%s\ndeploy/image/Dockerfile:\n%s", multi, hostBuilt)
		}
	})

	t.Run("docker run from the README", func(t *testing.T) { testReadmeDockerRun(t, docker, root, bin, tag) })
	t.Run("deploy/docker-compose.yml", func(t *testing.T) { testComposeFile(t, docker, root, bin, tag) })
}

// finalStage returns the lines from the last FROM on, without comments.
func finalStage(t *testing.T, dockerfile string) string {
	t.Helper()
	i := strings.LastIndex(dockerfile, "\nFROM ")
	if i < 0 {
		t.Fatal("no FROM")
	}
	var out []string
	for _, l := range strings.Split(dockerfile[i+1:], "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") && strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func testReadmeDockerRun(t *testing.T, docker *client.Client, root, bin, tag string) {
	ctx := context.Background()
	line := readmeDockerRun(t, root)
	name := uniqueName("panelx-img")
	data := name + "-data"
	port := freeTCPPort(t)
	cmdline := replaceOnce(t, line, map[string]string{
		"--name panelx ":                "--name " + name + " ",
		"-p 8080:8080 ":                 fmt.Sprintf("-p 127.0.0.1:%d:8080 ", port),
		" panelx-data:/var/lib/panelx ": " " + data + ":/var/lib/panelx ",
	})
	if !strings.HasSuffix(cmdline, " panelx/panelx") {
		t.Fatalf("the README's docker run line does not end with the image panelx/panelx:\n%s", line)
	}
	cmdline = strings.TrimSuffix(cmdline, "panelx/panelx") + tag
	if out, err := exec.Command("bash", "-c", cmdline).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmdline, err, out)
	}
	var instance string
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("docker", "logs", "--tail", "60", name).CombinedOutput()
			t.Logf("PanelX container log:\n%s", out)
		}
		_ = docker.ContainerRemove(ctx, name, container.RemoveOptions{Force: true})
		if instance != "" {
			testenv.RemoveLabelled(docker, reconcile.LabelInstance+"="+instance)
		}
		_ = docker.VolumeRemove(ctx, data, true)
	})
	waitHealthy(t, docker, name)
	instance = instanceOf(t, name)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	e := &cliEnv{t: t, bin: bin, base: base, env: []string{"PANELX_SERVER=" + base, "PANELX_TOKEN=" + adminToken(t, name),
		"PANELX_CONFIG=" + filepath.Join(t.TempDir(), "config.json")}}

	reg := testimage.StartRegistry(t, testimage.RegistryOptions{})
	img := reg.Push(t, "shop/web:1", testimage.Image(t, testimage.ImageOptions{Version: "1"}))
	project := uniqueName("shop")
	webPort := freeTCPPort(t)
	e.mustRun("apply", "-f", e.write("shop.yaml", shopManifests(project, img, webPort, "")), "--wait", "--timeout", "120s")
	if got := httpBody(t, fmt.Sprintf("http://127.0.0.1:%d/env/GREETING", webPort)); got != "hello" {
		t.Fatalf("GREETING = %q", got)
	}
	wantCgroupMetrics(t, base, e.env[1], project)

	// Volume files go through a helper container made from the binary in
	// the image; logs and exec through the Docker API.
	files := base + "/api/v1/projects/" + project + "/volumes/data/files/hello.txt"
	if code, body := apiCall(t, e, http.MethodPut, files, "hi from the image"); code != http.StatusCreated && code != http.StatusOK && code != http.StatusNoContent {
		t.Fatalf("PUT a volume file: %d %s", code, body)
	}
	if code, body := apiCall(t, e, http.MethodGet, files, ""); code != http.StatusOK || body != "hi from the image" {
		t.Fatalf("GET the volume file: %d %q", code, body)
	}
	if out := e.mustRun("logs", "web", "-p", project); !strings.Contains(out, "started version=1") {
		t.Errorf("logs of web:\n%s", out)
	}
	if out := e.mustRun("exec", "web", "-p", project, "--", "/testapp", "-echo", "from", "exec"); !strings.Contains(out, "from exec") {
		t.Errorf("exec in web:\n%s", out)
	}

	// A restart of the PanelX container keeps its state and the services.
	before := serviceContainers(t, docker, project)
	if out, err := exec.Command("docker", "restart", name).CombinedOutput(); err != nil {
		t.Fatalf("docker restart: %v\n%s", err, out)
	}
	waitHealthy(t, docker, name)
	if out := e.mustRun("get", "services", "-p", project); !strings.Contains(out, "web") || !strings.Contains(out, "1/1") {
		t.Errorf("after the restart, get services:\n%s", out)
	}
	if code, body := apiCall(t, e, http.MethodGet, files, ""); code != http.StatusOK || body != "hi from the image" {
		t.Errorf("after the restart, the volume file: %d %q", code, body)
	}
	time.Sleep(3 * time.Second) // a resync after the start would replace what it found wrong
	if after := serviceContainers(t, docker, project); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("the restart replaced the service's containers: %v, then %v", before, after)
	}

	// Removing PanelX leaves the services running.
	if err := docker.ContainerRemove(ctx, name, container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	for _, id := range before {
		c, err := docker.ContainerInspect(ctx, id)
		if err != nil || !c.State.Running {
			t.Errorf("service container %s after PanelX was removed: %v, %+v", id, err, c.State)
		}
	}
	if got := httpBody(t, fmt.Sprintf("http://127.0.0.1:%d/env/GREETING", webPort)); got != "hello" {
		t.Errorf("the service after PanelX was removed answered %q", got)
	}
}

func testComposeFile(t *testing.T, docker *client.Client, root, bin, tag string) {
	ctx := context.Background()
	compose := composeCommand(t)
	project := uniqueName("pxcompose")
	port, edgeHTTP, edgeHTTPS, edgeAdmin := freeTCPPort(t), freeTCPPort(t), freeTCPPort(t), freeTCPPort(t)
	gid, err := socketGroup()
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "PANELX_IMAGE="+tag, "DOCKER_GID="+gid, "PANELX_BIND=127.0.0.1", "PANELX_PORT="+strconv.Itoa(port),
		fmt.Sprintf("PANELX_EDGE_HTTP=127.0.0.1:%d", edgeHTTP), fmt.Sprintf("PANELX_EDGE_HTTPS=127.0.0.1:%d", edgeHTTPS),
		fmt.Sprintf("PANELX_EDGE_ADMIN=127.0.0.1:%d", edgeAdmin))
	composeCmd := func(args ...string) *exec.Cmd {
		cmd := exec.Command(compose[0], append(append(compose[1:], "-f", filepath.Join(root, "deploy", "docker-compose.yml"), "-p", project), args...)...)
		cmd.Env = env
		return cmd
	}
	run := func(args ...string) string {
		t.Helper()
		out, err := composeCmd(args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", strings.Join(compose, " "), strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	var instance string
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := composeCmd("logs", "--tail", "15").CombinedOutput()
			t.Logf("compose logs:\n%s", out)
		}
		_ = composeCmd("down", "-v").Run()
		if instance != "" {
			testenv.RemoveLabelled(docker, reconcile.LabelInstance+"="+instance)
		}
	})
	run("up", "-d")
	panelx, edge := run("ps", "-q", "panelx"), run("ps", "-q", "edge")
	if panelx == "" || edge == "" {
		t.Fatalf("compose ps: panelx %q, edge %q", panelx, edge)
	}
	waitHealthy(t, docker, panelx)
	waitHealthy(t, docker, edge) // its HEALTHCHECK asks the edge's own /readyz
	instance = instanceOf(t, panelx)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	e := &cliEnv{t: t, bin: bin, base: base, env: []string{"PANELX_SERVER=" + base, "PANELX_TOKEN=" + adminToken(t, panelx),
		"PANELX_CONFIG=" + filepath.Join(t.TempDir(), "config.json")}}

	reg := testimage.StartRegistry(t, testimage.RegistryOptions{})
	img := reg.Push(t, "shop/web:1", testimage.Image(t, testimage.ImageOptions{Version: "1"}))
	shop := uniqueName("shop")
	host := shop + ".example.test"
	e.mustRun("apply", "-f", e.write("shop.yaml", shopManifests(shop, img, freeTCPPort(t), host)), "--wait", "--timeout", "120s")
	wantCgroupMetrics(t, base, e.env[1], shop)

	// The edge, on the host's network, serves the service on its domain.
	deadline := time.Now().Add(60 * time.Second)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/env/GREETING", edgeHTTP), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && string(body) == "hello" {
				break
			}
			err = fmt.Errorf("%d %s", resp.StatusCode, body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the edge did not serve %s: %v", host, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// shopManifests: a project with a volume and a service that serves on
// 127.0.0.1:port (and on host through the edge, when host is set).
func shopManifests(project, img string, port int, host string) string {
	domains := ""
	if host != "" {
		domains = fmt.Sprintf("\n  domains: [{host: %s, tls: Off, redirectHTTPS: false}]", host)
	}
	return fmt.Sprintf(`apiVersion: panelx.dev/v1
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
  env: [{name: GREETING, value: hello}]
  ports: [{containerPort: 8080, hostPort: %[3]d, hostIP: 127.0.0.1}]
  volumes: [{name: data, mountPath: /data}]
  healthcheck: {command: [/testapp, -check], interval: 1s}%[4]s
`, project, img, port, domains)
}

// readmeDockerRun returns the README's one-line `docker run` of the image.
func readmeDockerRun(t *testing.T, root string) string {
	t.Helper()
	var found []string
	sc := bufio.NewScanner(strings.NewReader(mustRead(t, filepath.Join(root, "README.md"))))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "docker run -d --name panelx ") {
			found = append(found, sc.Text())
		}
	}
	if len(found) != 1 {
		t.Fatalf("the README should have one line starting with `docker run -d --name panelx `; found %d", len(found))
	}
	return found[0]
}

// replaceOnce replaces each old string, which must occur exactly once.
func replaceOnce(t *testing.T, s string, repl map[string]string) string {
	t.Helper()
	for old, new := range repl {
		if n := strings.Count(s, old); n != 1 {
			t.Fatalf("%q occurs %d times in %q, want once", old, n, s)
		}
		s = strings.Replace(s, old, new, 1)
	}
	return s
}

func socketGroup() (string, error) {
	out, err := exec.Command("stat", "-c", "%g", "/var/run/docker.sock").Output()
	if err != nil {
		return "", fmt.Errorf("stat /var/run/docker.sock: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// composeCommand finds Compose: the v2 plugin, or docker-compose (Debian's
// package, which scripts/services.sh installs).
func composeCommand(t *testing.T) []string {
	t.Helper()
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	if p, err := exec.LookPath("docker-compose"); err == nil {
		return []string{p}
	}
	testenv.Missing(t, "Docker Compose: neither `docker compose` nor docker-compose (apt-get install -y docker-compose)")
	return nil
}

// waitHealthy waits for the container's HEALTHCHECK to report healthy.
func waitHealthy(t *testing.T, docker *client.Client, id string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		c, err := docker.ContainerInspect(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if c.State.Health == nil {
			t.Fatalf("container %s has no healthcheck", id)
		}
		if c.State.Health.Status == "healthy" {
			return
		}
		if !c.State.Running || time.Now().After(deadline) {
			var last string
			if n := len(c.State.Health.Log); n > 0 {
				last = c.State.Health.Log[n-1].Output
			}
			t.Fatalf("container %s: running %v, health %s (last check: %s)", id, c.State.Running, c.State.Health.Status, last)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// instanceOf reads the installation ID from the server's log.
func instanceOf(t *testing.T, container string) string {
	t.Helper()
	out, err := exec.Command("docker", "logs", container).CombinedOutput()
	if err != nil {
		t.Fatalf("docker logs: %v\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		var line struct{ Msg, Instance string }
		if json.Unmarshal([]byte(l), &line) == nil && line.Msg == "reconciling Docker" && line.Instance != "" {
			return line.Instance
		}
	}
	t.Fatalf("no installation id in the log:\n%s", out)
	return ""
}

// adminToken reads the token the server wrote on its first start, as the
// README says: docker cp … - | tar -xO.
func adminToken(t *testing.T, container string) string {
	t.Helper()
	out, err := exec.Command("bash", "-c", "docker cp "+container+":/var/lib/panelx/admin-token - | tar -xO").Output()
	if err != nil || len(strings.TrimSpace(string(out))) == 0 {
		t.Fatalf("read the admin token: %v (%q)", err, out)
	}
	return strings.TrimSpace(string(out))
}

// serviceContainers lists the IDs of a project's running containers; it
// fails the test when there are none.
func serviceContainers(t *testing.T, docker *client.Client, project string) []string {
	t.Helper()
	ids := serviceContainersOrNone(t, docker, project)
	if len(ids) == 0 {
		t.Fatalf("no containers of project %s", project)
	}
	return ids
}

func serviceContainersOrNone(t *testing.T, docker *client.Client, project string) []string {
	t.Helper()
	cs, err := docker.ContainerList(context.Background(), container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", reconcile.LabelProject+"="+project))})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	return ids
}

// wantCgroupMetrics waits for the project's container series on /metrics,
// read from the cgroup files (not Docker's stats stream).
func wantCgroupMetrics(t *testing.T, base, tokenEnv, project string) {
	t.Helper()
	token := strings.TrimPrefix(tokenEnv, "PANELX_TOKEN=")
	labels := `[^}]*project="` + regexp.QuoteMeta(project) + `"[^}]*service="web"[^}]*`
	series := regexp.MustCompile(`(?m)^container_memory_working_set_bytes\{` + labels + `\} [0-9]`)
	source := regexp.MustCompile(`(?m)^panelx_container_metrics_source\{` + labels + `source="cgroup_v[12]"\} 1`)
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, err := http.NewRequest(http.MethodGet, base+"/metrics", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && series.Match(body) && source.Match(body) {
			return
		}
		if time.Now().After(deadline) {
			var lines []string
			for _, l := range strings.Split(string(body), "\n") {
				if strings.Contains(l, `project="`+project+`"`) {
					lines = append(lines, l)
				}
			}
			t.Fatalf("/metrics (%d): no cgroup-read series of %s/web; the project's series:\n%s", resp.StatusCode, project, strings.Join(lines, "\n"))
		}
		time.Sleep(time.Second)
	}
}

// apiCall sends one request with the CLI's token; a body is JSON when it
// looks like an object, bytes otherwise.
func apiCall(t *testing.T, e *cliEnv, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimPrefix(e.env[1], "PANELX_TOKEN="))
	switch {
	case strings.HasPrefix(body, "{"):
		req.Header.Set("Content-Type", "application/json")
	case body != "":
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}
