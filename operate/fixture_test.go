package operate

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/panelx/panelx/internal/testenv"
	"github.com/panelx/panelx/internal/testimage"
	"github.com/panelx/panelx/naming"
)

// testLabel marks every image, container and volume of one test, for
// cleanup; containers and volumes also carry a unique instance label.
const testLabel = "org.panelx.operate.test"

// dockerEnv is one test's corner of the Docker Engine: a unique PanelX
// instance and project, removed (containers, volumes, images) at the end
// whether the test passed or not.
type dockerEnv struct {
	t        *testing.T
	cli      *client.Client
	id       string
	instance string
	project  string
}

func newDockerEnv(t *testing.T) *dockerEnv {
	t.Helper()
	id := randomHex(5)
	e := &dockerEnv{t: t, cli: testenv.Docker(t), id: id, instance: "optest-" + id, project: "op" + id}
	t.Cleanup(e.cleanup)
	return e
}

func (e *dockerEnv) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	byInstance := filters.NewArgs(filters.Arg("label", naming.LabelInstance+"="+e.instance))
	ctrs, err := e.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: byInstance})
	if err != nil {
		e.t.Errorf("cleanup: list containers: %v", err)
	}
	for _, c := range ctrs {
		if err := e.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			e.t.Errorf("cleanup: remove container %s: %v", c.ID, err)
		}
	}
	vols, err := e.cli.VolumeList(ctx, volume.ListOptions{Filters: byInstance})
	if err != nil {
		e.t.Errorf("cleanup: list volumes: %v", err)
	}
	for _, v := range vols.Volumes {
		if err := e.cli.VolumeRemove(ctx, v.Name, true); err != nil {
			e.t.Errorf("cleanup: remove volume %s: %v", v.Name, err)
		}
	}
	imgs, err := e.cli.ImageList(ctx, image.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", testLabel+"="+e.id))})
	if err != nil {
		e.t.Errorf("cleanup: list images: %v", err)
	}
	for _, img := range imgs {
		if _, err := e.cli.ImageRemove(ctx, img.ID, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil {
			e.t.Errorf("cleanup: remove image %s: %v", img.ID, err)
		}
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if toolPath != "" {
		os.RemoveAll(filepath.Dir(toolPath))
	}
	os.Exit(code)
}

var (
	toolOnce sync.Once
	toolPath string
	toolErr  error
)

// toolBinary builds ./testdata/tool once per test process: static, for the
// daemon's (the host's) architecture.
func toolBinary(t *testing.T) string {
	t.Helper()
	toolOnce.Do(func() {
		dir, err := os.MkdirTemp("", "panelx-operate-tool-")
		if err != nil {
			toolErr = err
			return
		}
		toolPath = filepath.Join(dir, "tool")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", toolPath, "./testdata/tool")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
		if out, err := cmd.CombinedOutput(); err != nil {
			toolErr = fmt.Errorf("build testdata/tool: %v\n%s", err, out)
		}
	})
	if toolErr != nil {
		t.Fatal(toolErr)
	}
	return toolPath
}

// imageFile is a file an image layer adds: a regular file, or a symbolic
// link when link is set.
type imageFile struct {
	path string
	mode int64
	body []byte
	link string
}

// image builds a test image (testimage's /testapp) with extra layers and
// loads it into Docker through an in-process registry. It returns the
// image ID.
func (e *dockerEnv) image(cmd []string, layers ...v1.Layer) string {
	e.t.Helper()
	img := testimage.Image(e.t, testimage.ImageOptions{Cmd: cmd, Labels: map[string]string{testLabel: e.id}})
	if len(layers) > 0 {
		var err error
		if img, err = mutate.AppendLayers(img, layers...); err != nil {
			e.t.Fatal(err)
		}
	}
	reg := testimage.StartRegistry(e.t, testimage.RegistryOptions{})
	ref := reg.Push(e.t, "operate/test:"+randomHex(4), img)
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
	in, err := e.cli.ImageInspect(ctx, ref)
	if err != nil {
		e.t.Fatal(err)
	}
	return in.ID
}

// layer packs files into an image layer (fast compression: the race
// detector makes gzip slow).
func layer(t *testing.T, files ...imageFile) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, f := range files {
		if d := filepath.Dir(f.path); d != "." && !dirs[d] {
			dirs[d] = true
			mustTar(t, tw, &tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755}, nil)
		}
		h := &tar.Header{Typeflag: tar.TypeReg, Name: f.path, Mode: f.mode, Size: int64(len(f.body))}
		if f.link != "" {
			h = &tar.Header{Typeflag: tar.TypeSymlink, Name: f.path, Linkname: f.link, Mode: 0o777}
		}
		mustTar(t, tw, h, f.body)
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

func mustTar(t *testing.T, tw *tar.Writer, h *tar.Header, body []byte) {
	t.Helper()
	h.ModTime = time.Unix(0, 0)
	if err := tw.WriteHeader(h); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(body); err != nil {
		t.Fatal(err)
	}
}

var (
	toolLayerOnce sync.Once
	toolLayerV    v1.Layer
)

// toolLayer holds the tool at /tool and /bin/sh (a link), built once.
func toolLayer(t *testing.T) v1.Layer {
	t.Helper()
	bin, err := os.ReadFile(toolBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	toolLayerOnce.Do(func() {
		toolLayerV = layer(t, imageFile{path: "tool", mode: 0o755, body: bin}, imageFile{path: "bin/sh", link: "/tool"})
	})
	return toolLayerV
}

// toolImage is the test image plus the tool (toolLayer) and a marker file
// at /etc/panelx-marker.
func (e *dockerEnv) toolImage(marker string, cmd ...string) string {
	e.t.Helper()
	return e.image(cmd, toolLayer(e.t), layer(e.t, imageFile{path: "etc/panelx-marker", mode: 0o644, body: []byte(marker)}))
}

// replicaOpts vary a replica container.
type replicaOpts struct {
	name    string // default: the final PanelX name
	cmd     []string
	env     []string
	tty     bool
	publish bool // publish 8080 on a random port of 127.0.0.1
	noStart bool
}

// replica creates (and starts) a container labelled as a PanelX replica.
func (e *dockerEnv) replica(service string, index int, img string, o replicaOpts) (id, name string) {
	e.t.Helper()
	name = o.name
	if name == "" {
		name = naming.ContainerName(e.project, service, index)
	}
	cfg := &container.Config{Image: img, Cmd: o.cmd, Env: o.env, Tty: o.tty, Labels: map[string]string{
		naming.LabelManaged: "true", naming.LabelInstance: e.instance, naming.LabelProject: e.project,
		naming.LabelService: service, naming.LabelReplica: strconv.Itoa(index), testLabel: e.id,
	}}
	host := &container.HostConfig{LogConfig: container.LogConfig{Type: "json-file"}}
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
	return resp.ID, name
}

// appURL waits until the app in a container answers and returns its URL.
func (e *dockerEnv) appURL(id string) string {
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
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
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

// volume creates a PanelX volume of the test's project.
func (e *dockerEnv) volume(name string) string {
	e.t.Helper()
	full := naming.VolumeName(e.project, name)
	_, err := e.cli.VolumeCreate(context.Background(), volume.CreateOptions{Name: full, Labels: map[string]string{
		naming.LabelManaged: "true", naming.LabelInstance: e.instance, naming.LabelProject: e.project,
		naming.LabelVolume: name, testLabel: e.id,
	}})
	if err != nil {
		e.t.Fatal(err)
	}
	return full
}

// rawVolume is a created container mounting a volume at /v, for tests to
// set up and inspect volumes behind the back of the code under test.
func (e *dockerEnv) rawVolume(vol, img string) string {
	e.t.Helper()
	resp, err := e.cli.ContainerCreate(context.Background(),
		&container.Config{Image: img, Labels: map[string]string{naming.LabelInstance: e.instance, testLabel: e.id}},
		&container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: vol, Target: "/v"}}}, nil, nil, "")
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.ID
}

// runIn runs cmd (the tool's entrypoint-less argv) to completion in a
// container of img mounting vol at /v.
func (e *dockerEnv) runIn(vol, img string, cmd ...string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := e.cli.ContainerCreate(ctx,
		&container.Config{Image: img, Entrypoint: cmd, Labels: map[string]string{naming.LabelInstance: e.instance, testLabel: e.id}},
		&container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: vol, Target: "/v"}}}, nil, nil, "")
	if err != nil {
		e.t.Fatal(err)
	}
	defer e.cli.ContainerRemove(ctx, resp.ID, container.RemoveOptions{Force: true})
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
}

// putTar extracts entries (headers with bodies) into dir of a container.
func (e *dockerEnv) putTar(id, dir string, entries ...tarEntry) {
	e.t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, en := range entries {
		h := en.hdr
		h.Size = int64(len(en.body))
		mustTar(e.t, tw, &h, en.body)
	}
	if err := tw.Close(); err != nil {
		e.t.Fatal(err)
	}
	if err := e.cli.CopyToContainer(context.Background(), id, dir, &buf, container.CopyToContainerOptions{}); err != nil {
		e.t.Fatalf("put into %s: %v", dir, err)
	}
}

type tarEntry struct {
	hdr  tar.Header
	body []byte
}

// tree returns every path under /v of a raw volume container with its
// content (regular files) or link target.
func (e *dockerEnv) tree(id string) map[string]string {
	e.t.Helper()
	rc, _, err := e.cli.CopyFromContainer(context.Background(), id, "/v")
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
		body, _ := io.ReadAll(io.LimitReader(tr, 1<<20))
		out[h.Name] = string(body) + h.Linkname
	}
}

// helpers lists the helper containers left behind.
func (e *dockerEnv) helpers() []container.Summary {
	e.t.Helper()
	list, err := e.cli.ContainerList(context.Background(), container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", naming.LabelInstance+"="+e.instance), filters.Arg("label", LabelHelper))})
	if err != nil {
		e.t.Fatal(err)
	}
	return list
}
