package operations_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
	"github.com/docker/go-connections/nat"
	"github.com/golang-jwt/jwt/v5"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/panelx/panelx/apiserver"
	"github.com/panelx/panelx/apiserver/auth"
	"github.com/panelx/panelx/internal/operations"
	"github.com/panelx/panelx/internal/testenv"
	"github.com/panelx/panelx/internal/testimage"
	"github.com/panelx/panelx/reconcile"
	"github.com/panelx/panelx/store"
	"github.com/panelx/panelx/store/postgres"
)

const (
	jwtSecret = "operations-test-secret-of-at-least-32-bytes"
	audience  = "authenticated"
	// testLabel marks the test's images for cleanup; containers and
	// volumes carry the test's unique instance label.
	testLabel = "org.panelx.operations.test"
	// marker is the content of /etc/panelx-marker in the test image: a
	// file outside every volume that no request may ever read.
	marker = "outside-the-volume-4b1d"
)

// env is the real API on 127.0.0.1 (a fresh database, HS256 JWTs) whose
// Operations drive the real Docker Engine, with one project "shop" owned
// by alice. Its Docker objects carry a unique instance label and are
// removed at the end.
type env struct {
	t        *testing.T
	cli      *client.Client
	st       store.Store
	ops      *operations.Docker
	id       string
	instance string
	project  string
	image    string
	URL      string
	alice    string
}

type envOpt func(*apiserver.Options)

func newEnv(t *testing.T, opts ...envOpt) *env {
	t.Helper()
	e := &env{t: t, cli: testenv.Docker(t), id: randomHex(4)}
	e.instance, e.project = "opstest-"+e.id, "shop"
	e.st = openStore(t)
	t.Cleanup(e.cleanup)
	e.image = e.buildImage()
	e.ops = operations.New(e.cli, operations.Options{Instance: e.instance, HelperBinary: toolBinary(t)})
	e.URL = e.serve(opts...)
	e.alice = e.jwt("alice", time.Hour)
	e.must(e.t, http.StatusCreated, "POST", "/api/v1/projects", e.alice, map[string]any{"metadata": map[string]any{"name": e.project}})
	return e
}

// serve starts another API server on the same store and Docker side.
func (e *env) serve(opts ...envOpt) string {
	v, err := auth.NewVerifier(auth.Config{HS256Secret: []byte(jwtSecret), Audience: audience})
	if err != nil {
		e.t.Fatal(err)
	}
	o := apiserver.Options{Store: e.st, Logger: zaptest.NewLogger(e.t, zaptest.Level(zap.WarnLevel)), Verifier: v, Operations: e.ops}
	for _, opt := range opts {
		opt(&o)
	}
	srv := httptest.NewServer(apiserver.New(o).Handler())
	e.t.Cleanup(srv.Close)
	return srv.URL
}

func openStore(t *testing.T) store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := postgres.Open(ctx, testenv.NewDatabase(t), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}

// jwt is an access token of user expiring in ttl.
func (e *env) jwt(user string, ttl time.Duration) string {
	now := time.Now()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": user, "aud": audience, "role": "authenticated",
		"iat": now.Unix(), "exp": now.Add(ttl).Unix()}).SignedString([]byte(jwtSecret))
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *env) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	byInstance := filters.NewArgs(filters.Arg("label", reconcile.LabelInstance+"="+e.instance))
	ctrs, _ := e.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: byInstance})
	for _, c := range ctrs {
		if err := e.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			e.t.Errorf("cleanup: remove container %s: %v", c.ID, err)
		}
	}
	vols, _ := e.cli.VolumeList(ctx, volume.ListOptions{Filters: byInstance})
	for _, v := range vols.Volumes {
		if err := e.cli.VolumeRemove(ctx, v.Name, true); err != nil {
			e.t.Errorf("cleanup: remove volume %s: %v", v.Name, err)
		}
	}
	imgs, _ := e.cli.ImageList(ctx, image.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", testLabel+"="+e.id))})
	for _, img := range imgs {
		_, _ = e.cli.ImageRemove(ctx, img.ID, image.RemoveOptions{Force: true, PruneChildren: true})
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// response is an API answer.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// do sends a request; body is sent as is when []byte or string, else as
// JSON.
func (e *env) do(t testing.TB, method, path, token string, body any, header ...string) *response {
	t.Helper()
	var rd io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		data, _ := json.Marshal(b)
		rd, ct = bytes.NewReader(data), "application/json"
	}
	hr, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		hr.Header.Set("Content-Type", ct)
	}
	if token != "" {
		hr.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		hr.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

func (e *env) must(t testing.TB, status int, method, path, token string, body any, header ...string) *response {
	t.Helper()
	r := e.do(t, method, path, token, body, header...)
	if r.Status != status {
		t.Fatalf("%s %s: %d, want %d\n%s", method, path, r.Status, status, r.Body)
	}
	return r
}

// member adds user to the project with role.
func (e *env) member(user, role string) {
	e.t.Helper()
	r := e.do(e.t, "PUT", "/api/v1/projects/"+e.project+"/members/"+user, e.alice, map[string]any{"role": role})
	if r.Status != http.StatusOK && r.Status != http.StatusCreated {
		e.t.Fatalf("add member %s: %d %s", user, r.Status, r.Body)
	}
}

// service declares a service in the store; replicas run only when the
// test creates them (replica), as no controller runs here.
func (e *env) service(name string) {
	e.t.Helper()
	e.must(e.t, http.StatusCreated, "POST", "/api/v1/projects/"+e.project+"/services", e.alice,
		map[string]any{"metadata": map[string]any{"name": name}, "spec": map[string]any{"image": "example.com/app:1"}})
}

// replicaOpts vary a replica container.
type replicaOpts struct {
	cmd     []string
	env     []string
	publish bool // 8080 on a random port of 127.0.0.1
	noStart bool
	mounts  []mount.Mount
}

// replica creates (and starts) a container labelled as the reconciler
// labels a replica.
func (e *env) replica(service string, index int, o replicaOpts) string {
	e.t.Helper()
	name := reconcile.ContainerName(e.project, service, index)
	cfg := &container.Config{Image: e.image, Cmd: o.cmd, Env: o.env, Labels: map[string]string{
		reconcile.LabelManaged: "true", reconcile.LabelInstance: e.instance, reconcile.LabelProject: e.project,
		reconcile.LabelService: service, reconcile.LabelReplica: strconv.Itoa(index),
	}}
	host := &container.HostConfig{LogConfig: container.LogConfig{Type: "json-file"}, Mounts: o.mounts}
	if o.publish {
		host.PortBindings = nat.PortMap{"8080/tcp": {{HostIP: "127.0.0.1"}}}
	}
	ctx := context.Background()
	resp, err := e.cli.ContainerCreate(ctx, cfg, host, nil, nil, name)
	if err != nil {
		e.t.Fatalf("create %s: %v", name, err)
	}
	if !o.noStart {
		if err := e.cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
			e.t.Fatalf("start %s: %v", name, err)
		}
	}
	return resp.ID
}

// appURL waits until the app of a container answers and returns its URL.
func (e *env) appURL(id string) string {
	e.t.Helper()
	in, err := e.cli.ContainerInspect(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	b := in.NetworkSettings.Ports["8080/tcp"]
	if len(b) == 0 {
		e.t.Fatalf("container %s publishes no port", id)
	}
	u := "http://127.0.0.1:" + b[0].HostPort
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(u + "/healthz"); err == nil {
			resp.Body.Close()
			return u
		}
	}
	e.t.Fatalf("app at %s does not answer", u)
	return ""
}

// logLine makes the app print line on stream.
func logLine(t *testing.T, appURL, stream, line string) {
	t.Helper()
	resp, err := http.Post(appURL+"/log?stream="+stream+"&line="+url.QueryEscape(line), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST /log: %s", resp.Status)
	}
}

// volume declares a Volume in the store and creates its Docker volume as
// the reconciler would.
func (e *env) volume(name string) string {
	e.t.Helper()
	e.must(e.t, http.StatusCreated, "POST", "/api/v1/projects/"+e.project+"/volumes", e.alice, map[string]any{"metadata": map[string]any{"name": name}})
	full := reconcile.VolumeName(e.project, name)
	_, err := e.cli.VolumeCreate(context.Background(), volume.CreateOptions{Name: full, Labels: map[string]string{
		reconcile.LabelManaged: "true", reconcile.LabelInstance: e.instance, reconcile.LabelProject: e.project, reconcile.LabelVolume: name,
	}})
	if err != nil {
		e.t.Fatal(err)
	}
	return full
}

// runIn runs the tool's argv to completion in a container mounting vol at
// /v: how a test reaches a volume behind the API's back.
func (e *env) runIn(vol string, cmd ...string) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := e.cli.ContainerCreate(ctx,
		&container.Config{Image: e.image, Entrypoint: cmd, Labels: map[string]string{reconcile.LabelInstance: e.instance}},
		&container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: vol, Target: "/v"}}}, nil, nil, "")
	if err != nil {
		e.t.Fatal(err)
	}
	defer e.cli.ContainerRemove(context.WithoutCancel(ctx), resp.ID, container.RemoveOptions{Force: true})
	waitC, errC := e.cli.ContainerWait(ctx, resp.ID, container.WaitConditionNextExit)
	if err := e.cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		e.t.Fatal(err)
	}
	select {
	case w := <-waitC:
		if w.StatusCode != 0 {
			e.t.Fatalf("%q exited with %d", cmd, w.StatusCode)
		}
	case err := <-errC:
		e.t.Fatal(err)
	}
	return resp.ID
}

// tree returns every entry under /v of vol with its content (files) or
// link target, read straight from Docker.
func (e *env) tree(vol string) map[string]string {
	e.t.Helper()
	ctx := context.Background()
	resp, err := e.cli.ContainerCreate(ctx,
		&container.Config{Image: e.image, Labels: map[string]string{reconcile.LabelInstance: e.instance}},
		&container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: vol, Target: "/v"}}}, nil, nil, "")
	if err != nil {
		e.t.Fatal(err)
	}
	defer e.cli.ContainerRemove(ctx, resp.ID, container.RemoveOptions{Force: true})
	rc, _, err := e.cli.CopyFromContainer(ctx, resp.ID, "/v")
	if err != nil {
		e.t.Fatal(err)
	}
	defer rc.Close()
	out := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			e.t.Fatal(err)
		}
		body, _ := io.ReadAll(io.LimitReader(tr, 4<<20))
		out[h.Name] = string(body) + h.Linkname
	}
}

var (
	toolOnce sync.Once
	toolPath string
	toolErr  error
)

// toolBinary builds operate's static test tool once: it is the volume
// helper of these tests (what the panelx binary is in production) and
// provides /bin/sh, winsize and exit in the test image.
func toolBinary(t *testing.T) string {
	t.Helper()
	toolOnce.Do(func() {
		dir, err := os.MkdirTemp("", "panelx-operations-tool-")
		if err != nil {
			toolErr = err
			return
		}
		toolPath = filepath.Join(dir, "tool")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", toolPath, "github.com/panelx/panelx/operate/testdata/tool")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
		if out, err := cmd.CombinedOutput(); err != nil {
			toolErr = fmt.Errorf("build the tool: %v\n%s", err, out)
		}
	})
	if toolErr != nil {
		t.Fatal(toolErr)
	}
	return toolPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if toolPath != "" {
		os.RemoveAll(filepath.Dir(toolPath))
	}
	os.Exit(code)
}

// buildImage is testimage's app plus the tool (/tool, and /bin/sh linking
// to it) and /etc/panelx-marker, loaded into Docker through an
// in-process registry.
func (e *env) buildImage() string {
	e.t.Helper()
	bin, err := os.ReadFile(toolBinary(e.t))
	if err != nil {
		e.t.Fatal(err)
	}
	img, err := mutate.AppendLayers(testimage.Image(e.t, testimage.ImageOptions{Version: "1", Labels: map[string]string{testLabel: e.id}}),
		layer(e.t, []tarEntry{
			{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "bin/", Mode: 0o755}},
			{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "etc/", Mode: 0o755}},
			{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "tool", Mode: 0o755}, body: bin},
			{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/sh", Linkname: "/tool", Mode: 0o777}},
			{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "etc/panelx-marker", Mode: 0o644}, body: []byte(marker)},
		}))
	if err != nil {
		e.t.Fatal(err)
	}
	reg := testimage.StartRegistry(e.t, testimage.RegistryOptions{})
	ref := reg.Push(e.t, "operations/test:"+e.id, img)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rc, err := e.cli.ImagePull(ctx, ref, image.PullOptions{})
	if err != nil {
		e.t.Fatalf("pull %s: %v", ref, err)
	}
	defer rc.Close()
	if err := jsonmessage.DisplayJSONMessagesStream(rc, io.Discard, 0, false, nil); err != nil {
		e.t.Fatalf("pull %s: %v", ref, err)
	}
	return ref
}

type tarEntry struct {
	hdr  tar.Header
	body []byte
}

func layer(t *testing.T, entries []tarEntry) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, en := range entries {
		h := en.hdr
		h.Size, h.ModTime = int64(len(en.body)), time.Unix(0, 0)
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(en.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		tarball.WithCompressionLevel(gzip.BestSpeed))
	if err != nil {
		t.Fatal(err)
	}
	return l
}
