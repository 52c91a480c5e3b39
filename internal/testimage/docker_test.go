package testimage

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/panelx/panelx/internal/testenv"
)

// These tests go through the real Docker Engine: push to the in-process
// registry, ImagePull, run a container, talk to it.

// testLabel marks every container and image of one test, for cleanup.
const testLabel = "org.panelx.testimage.test"

// dockerTest is a Docker client plus the label that cleanup removes by.
type dockerTest struct {
	cli   *client.Client
	label string // value of testLabel, unique per test
}

func newDockerTest(t *testing.T) *dockerTest {
	t.Helper()
	d := &dockerTest{cli: testenv.Docker(t), label: randomID()}
	requireInsecureLoopback(t, d.cli)
	t.Cleanup(func() { d.cleanup(t) })
	return d
}

// requireInsecureLoopback explains the failure up front when the daemon
// would insist on HTTPS for 127.0.0.1 (it never does by default).
func requireInsecureLoopback(t *testing.T, cli *client.Client) {
	t.Helper()
	info, err := cli.Info(t.Context())
	if err != nil {
		t.Fatalf("docker info: %v", err)
	}
	for _, n := range info.RegistryConfig.InsecureRegistryCIDRs {
		if n.String() == "127.0.0.0/8" {
			return
		}
	}
	t.Fatalf("the Docker daemon does not treat 127.0.0.0/8 as an insecure registry (insecure CIDRs: %v)",
		info.RegistryConfig.InsecureRegistryCIDRs)
}

func randomID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// labels returns the labels for images and containers of this test.
func (d *dockerTest) labels() map[string]string { return map[string]string{testLabel: d.label} }

// cleanup force-removes the test's containers, then its images (which carry
// the label because Image put it in their config).
func (d *dockerTest) cleanup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := filters.NewArgs(filters.Arg("label", testLabel+"="+d.label))
	ctrs, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		t.Errorf("cleanup: list containers: %v", err)
	}
	for _, c := range ctrs {
		if err := d.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			t.Errorf("cleanup: remove container %s: %v", c.ID, err)
		}
	}
	imgs, err := d.cli.ImageList(ctx, image.ListOptions{All: true, Filters: f})
	if err != nil {
		t.Errorf("cleanup: list images: %v", err)
	}
	for _, img := range imgs {
		if _, err := d.cli.ImageRemove(ctx, img.ID, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil {
			t.Errorf("cleanup: remove image %s: %v", img.ID, err)
		}
	}
}

// pull pulls ref and returns the image ID. Errors can come either as the
// HTTP answer or inside the progress stream, so both are checked.
func (d *dockerTest) pull(ctx context.Context, ref, auth string) (string, error) {
	rc, err := d.cli.ImagePull(ctx, ref, image.PullOptions{RegistryAuth: auth})
	if err != nil {
		return "", err
	}
	defer rc.Close()
	if err := jsonmessage.DisplayJSONMessagesStream(rc, io.Discard, 0, false, nil); err != nil {
		return "", err
	}
	ins, err := d.cli.ImageInspect(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("inspect %s after pull: %w", ref, err)
	}
	return ins.ID, nil
}

func (d *dockerTest) mustPull(t *testing.T, ref, auth string) string {
	t.Helper()
	start := time.Now()
	id, err := d.pull(t.Context(), ref, auth)
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	t.Logf("pulled %s as %s in %v", ref, id, time.Since(start).Round(time.Millisecond))
	return id
}

// run creates and starts a container of ref with port 8080 published on a
// random port of 127.0.0.1 and returns its ID.
func (d *dockerTest) run(t *testing.T, ref string, cfg container.Config) string {
	t.Helper()
	cfg.Image = ref
	cfg.Labels = d.labels()
	hc := &container.HostConfig{
		PortBindings: nat.PortMap{appPort: {{HostIP: "127.0.0.1", HostPort: ""}}},
	}
	created, err := d.cli.ContainerCreate(t.Context(), &cfg, hc, nil, nil, "")
	if err != nil {
		t.Fatalf("create container: %v", err)
	}
	if err := d.cli.ContainerStart(t.Context(), created.ID, container.StartOptions{}); err != nil {
		t.Fatalf("start container: %v", err)
	}
	return created.ID
}

const appPort = nat.Port(AppPort + "/tcp")

// appURL returns the base URL of the app in a running container.
func (d *dockerTest) appURL(t *testing.T, id string) string {
	t.Helper()
	ins, err := d.cli.ContainerInspect(t.Context(), id)
	if err != nil {
		t.Fatalf("inspect container: %v", err)
	}
	bindings := ins.NetworkSettings.Ports[appPort]
	if len(bindings) == 0 {
		t.Fatalf("no host binding for %s: %v", appPort, ins.NetworkSettings.Ports)
	}
	return "http://127.0.0.1:" + bindings[0].HostPort
}

// waitHealth polls the container's health status until it is want.
func (d *dockerTest) waitHealth(t *testing.T, id, want string) {
	t.Helper()
	const patience = time.Minute // probes run slowly on a loaded machine
	deadline := time.Now().Add(patience)
	var status string
	for time.Now().Before(deadline) {
		ins, err := d.cli.ContainerInspect(t.Context(), id)
		if err != nil {
			t.Fatalf("inspect container: %v", err)
		}
		if ins.State.Health == nil {
			t.Fatal("container has no health check")
		}
		status = ins.State.Health.Status
		if status == want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("health is %q after %v, want %q", status, patience, want)
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	var lastErr error
	// The port is published before the app listens; retry briefly.
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		resp, err := http.Get(url)
		if err == nil {
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode == http.StatusOK {
				return string(b)
			}
			lastErr = fmt.Errorf("%s: %s", resp.Status, b)
		} else {
			lastErr = err
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("GET %s: %v", url, lastErr)
	return ""
}

func httpDo(t *testing.T, method, url, body string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestDockerRunsPulledImage(t *testing.T) {
	d := newDockerTest(t)
	reg := StartRegistry(t, RegistryOptions{})
	ref := reg.Push(t, "shop/web:1", Image(t, ImageOptions{
		Version: "1.2.3",
		Env:     map[string]string{"GREETING": "hello"},
		Labels:  d.labels(),
	}))
	d.mustPull(t, ref, "")

	id := d.run(t, ref, container.Config{
		Env: []string{"EXTRA=from-container", "UNHEALTHY_FILE=/data/unhealthy"},
		Healthcheck: &container.HealthConfig{
			Test:     []string{"CMD", "/testapp", "-check"},
			Interval: 300 * time.Millisecond,
			Timeout:  2 * time.Second,
			Retries:  1,
		},
	})

	base := d.appURL(t, id)
	var got struct {
		Env      map[string]string `json:"env"`
		Hostname string            `json:"hostname"`
		Version  string            `json:"version"`
	}
	if err := json.Unmarshal([]byte(httpGet(t, base+"/")), &got); err != nil {
		t.Fatal(err)
	}
	if got.Version != "1.2.3" || got.Env["GREETING"] != "hello" || got.Env["EXTRA"] != "from-container" {
		t.Errorf("GET / = %+v", got)
	}
	if !strings.HasPrefix(id, got.Hostname) {
		t.Errorf("hostname %q is not a prefix of the container ID %s", got.Hostname, id)
	}
	if v := httpGet(t, base+"/env/GREETING"); v != "hello" {
		t.Errorf("GET /env/GREETING = %q", v)
	}

	d.waitHealth(t, id, "healthy")
	if code := httpDo(t, "PUT", base+"/files/sub/x.txt", "data"); code != http.StatusCreated {
		t.Errorf("PUT /files/sub/x.txt = %d", code)
	}
	if v := httpGet(t, base+"/files/sub/x.txt"); v != "data" {
		t.Errorf("GET /files/sub/x.txt = %q", v)
	}
	// UNHEALTHY_FILE lies in DATA_DIR, so the file API flips the health.
	if code := httpDo(t, "PUT", base+"/files/unhealthy", ""); code != http.StatusCreated {
		t.Fatalf("PUT /files/unhealthy = %d", code)
	}
	d.waitHealth(t, id, "unhealthy")

	d.stopPromptly(t, id)
	d.checkLogs(t, id)
}

// stopPromptly stops the container and expects exit code 0: Docker would
// SIGKILL (code 137) after the timeout if the app ignored SIGTERM.
func (d *dockerTest) stopPromptly(t *testing.T, id string) {
	t.Helper()
	start := time.Now()
	timeout := 10
	if err := d.cli.ContainerStop(t.Context(), id, container.StopOptions{Timeout: &timeout}); err != nil {
		t.Fatalf("stop: %v", err)
	}
	took := time.Since(start)
	ins, err := d.cli.ContainerInspect(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if ins.State.ExitCode != 0 {
		t.Errorf("stop took %v with exit code %d, want exit 0 on SIGTERM", took, ins.State.ExitCode)
	}
	t.Logf("container stopped in %v", took.Round(time.Millisecond))
}

// logs returns the container's stdout and stderr.
func (d *dockerTest) logs(t *testing.T, id string) (stdout, stderr string) {
	t.Helper()
	rc, err := d.cli.ContainerLogs(t.Context(), id, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatalf("logs: %v", err)
	}
	defer rc.Close()
	var out, errOut bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &errOut, rc); err != nil {
		t.Fatalf("read logs: %v", err)
	}
	return out.String(), errOut.String()
}

func (d *dockerTest) checkLogs(t *testing.T, id string) {
	t.Helper()
	stdout, stderr := d.logs(t, id)
	if !slices.Contains(strings.Split(stdout, "\n"), "started version=1.2.3") {
		t.Errorf("stdout = %q, want a line 'started version=1.2.3'", stdout)
	}
	if !strings.Contains(stderr, "stderr-line\n") {
		t.Errorf("stderr = %q, want 'stderr-line'", stderr)
	}
}

func TestDockerAuthenticatedRegistry(t *testing.T) {
	d := newDockerTest(t)
	reg := StartRegistry(t, RegistryOptions{Username: "alice", Password: "s3cret"})
	img := Image(t, ImageOptions{Version: "1", Labels: d.labels()})
	ref := reg.Push(t, "private/app:1", img)

	for name, auth := range map[string]string{
		"no credentials": "",
		"wrong password": reg.AuthConfigAs("alice", "wrong"),
	} {
		_, err := d.pull(t.Context(), ref, auth)
		if !isAuthError(err) {
			t.Errorf("pull with %s: %v, want an authentication error", name, err)
		}
	}

	if id := d.mustPull(t, ref, reg.AuthConfig()); id != imageID(t, img).String() {
		t.Errorf("Docker image ID %s, want the config digest %s", id, imageID(t, img))
	}
}

// isAuthError recognises a refused pull. Engine 20.10 answers it with HTTP
// 500 ("no basic auth credentials" without credentials, "unauthorized" with
// wrong ones), not 401, so the message is all there is to go by.
func isAuthError(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return cerrdefs.IsUnauthorized(err) ||
		strings.Contains(msg, "no basic auth credentials") ||
		strings.Contains(msg, "unauthorized")
}

func TestDockerMovedTagChangesImageID(t *testing.T) {
	d := newDockerTest(t)
	reg := StartRegistry(t, RegistryOptions{})
	first := Image(t, ImageOptions{Version: "1", Labels: d.labels()})
	second := Image(t, ImageOptions{Version: "2", Labels: d.labels()})

	ref := reg.Push(t, "shop/web:stable", first)
	id1 := d.mustPull(t, ref, "")
	if reg.Push(t, "shop/web:stable", second) != ref {
		t.Fatal("second push returned another reference")
	}
	id2 := d.mustPull(t, ref, "")
	if id1 == id2 {
		t.Fatalf("image ID stayed %s after the tag moved", id1)
	}
	if id2 != imageID(t, second).String() {
		t.Errorf("Docker image ID %s, want the config digest %s", id2, imageID(t, second))
	}
}

func TestDockerDeletedTag(t *testing.T) {
	d := newDockerTest(t)
	reg := StartRegistry(t, RegistryOptions{})
	ref := reg.Push(t, "shop/gone:1", Image(t, ImageOptions{Labels: d.labels()}))
	reg.Delete(t, "shop/gone:1")
	_, err := d.pull(t.Context(), ref, "")
	if !cerrdefs.IsNotFound(err) {
		t.Fatalf("pull of a deleted tag: %v, want a not-found error", err)
	}
}

func TestDockerSleepEchoAndImageHealthcheck(t *testing.T) {
	d := newDockerTest(t)
	reg := StartRegistry(t, RegistryOptions{})
	sleeper := reg.Push(t, "tools/sleep:1", Image(t, ImageOptions{
		Labels: d.labels(),
		Cmd:    []string{"-sleep"},
		Healthcheck: &v1.HealthConfig{
			Test:     []string{"CMD", "/testapp", "-check"},
			Interval: 300 * time.Millisecond,
			Retries:  1,
		},
	}))
	d.mustPull(t, sleeper, "")

	// The image's own CMD and HEALTHCHECK apply: it runs, serves nothing,
	// and so turns unhealthy; and it still stops at once on SIGTERM.
	id := d.run(t, sleeper, container.Config{})
	d.waitHealth(t, id, "unhealthy")
	d.stopPromptly(t, id)

	// -echo overrides CMD for a one-shot container.
	id = d.run(t, sleeper, container.Config{Cmd: []string{"-echo", "a", "b", "c"}})
	waitC, errC := d.cli.ContainerWait(t.Context(), id, container.WaitConditionNotRunning)
	select {
	case res := <-waitC:
		if res.StatusCode != 0 {
			t.Errorf("-echo exited %d", res.StatusCode)
		}
	case err := <-errC:
		t.Fatalf("wait: %v", err)
	}
	if stdout, _ := d.logs(t, id); stdout != "a b c\n" {
		t.Errorf("-echo printed %q", stdout)
	}
}
