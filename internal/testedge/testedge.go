// Package testedge runs `panelx edge` in a container for tests: the panelx
// binary, built static for linux, in a FROM-scratch image (no public image,
// nothing pulled from the internet), following a PanelX API served by the
// test on an address the container reaches. The Swarm tests use it because
// an edge reaches Swarm replicas only from a container attached to their
// overlay (reconcile/swarm/edge.go).
package testedge

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/panelx/panelx/apiserver"
	"github.com/panelx/panelx/apiserver/auth"
	"github.com/panelx/panelx/apiserver/authz"
	"github.com/panelx/panelx/store"
)

// Port is the edge's HTTP port inside its container.
const Port = "8080"

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Image is the panelx binary in a FROM-scratch image whose entrypoint is
// `panelx edge` (built once per test process).
func Image(t testing.TB) v1.Image {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "panelx-testedge-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "panelx")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", binPath, "github.com/panelx/panelx/cmd/panelx")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build ./cmd/panelx: %w\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	bin, err := os.ReadFile(binPath)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range []struct {
		hdr  tar.Header
		body []byte
	}{
		{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "data/", Mode: 0o755}},
		{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777}},
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "panelx", Mode: 0o755, Size: int64(len(bin))}, body: bin},
	} {
		e.hdr.ModTime = time.Unix(0, 0)
		if err := tw.WriteHeader(&e.hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil },
		tarball.WithCompressionLevel(gzip.BestSpeed))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config = v1.Config{Entrypoint: []string{"/panelx"}, Cmd: []string{"edge"}, Labels: map[string]string{"org.panelx.testimage": "true"}}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

// Pull pulls ref onto the engine.
func Pull(t testing.TB, cli *client.Client, ref, auth string) {
	t.Helper()
	rc, err := cli.ImagePull(context.Background(), ref, image.PullOptions{RegistryAuth: auth})
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
}

// ServeAPI serves PanelX's API on the store (the edge's routes and
// reports) on addr, and returns its URL and an edge token.
func ServeAPI(t testing.TB, st store.Store, addr string) (url, token string) {
	t.Helper()
	plain, hash, err := auth.GenerateAPIToken()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Tokens().Create(context.Background(), store.APIToken{UserID: authz.EdgeUserID, Name: "edge", Prefix: auth.TokenPrefix(plain), Hash: hash}); err != nil {
		t.Fatal(err)
	}
	h := apiserver.New(apiserver.Options{Store: st, Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))})
	ln, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatalf("serve the API for the edge on %s: %v", addr, err)
	}
	srv := &http.Server{Handler: h.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { h.StopStreams(); _ = srv.Close() })
	return "http://" + ln.Addr().String(), plain
}

// Options of a container running the edge.
type Options struct {
	Name    string
	Image   string
	Network string // the network it starts on (a bridge)
	API     string // the URL of the API it follows
	Token   string
	Labels  map[string]string
	// PublishIP is the host address its HTTP port is published on.
	PublishIP string
}

// Start runs `panelx edge` in a container (HTTP only, no ACME, its state
// in the container), its HTTP port published on PublishIP, and returns
// host:port once the edge answers there. Its last log lines are logged if
// the test fails.
func Start(t testing.TB, cli *client.Client, o Options) string {
	t.Helper()
	ctx := context.Background()
	resp, err := cli.ContainerCreate(ctx, &container.Config{
		Image: o.Image,
		Env: []string{"PANELX_EDGE_SERVER=" + o.API, "PANELX_EDGE_TOKEN=" + o.Token, "PANELX_DATA_DIR=/data",
			"PANELX_EDGE_HTTP=:" + Port, "PANELX_EDGE_HTTPS=:8443", "PANELX_ACME=false", "PANELX_EDGE_ID=" + o.Name},
		ExposedPorts: nat.PortSet{Port + "/tcp": {}},
		Labels:       o.Labels,
	}, &container.HostConfig{
		NetworkMode:  container.NetworkMode(o.Network),
		PortBindings: nat.PortMap{Port + "/tcp": {{HostIP: o.PublishIP}}},
	}, nil, nil, o.Name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		logs, err := cli.ContainerLogs(context.Background(), resp.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: "40"})
		if err == nil {
			b, _ := io.ReadAll(logs)
			logs.Close()
			t.Logf("edge container %s (%.12s) log:\n%s", o.Name, resp.ID, b)
		}
	})
	if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	var addr string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		c, err := cli.ContainerInspect(ctx, resp.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !c.State.Running {
			t.Fatalf("the edge container exited (%d)", c.State.ExitCode)
		}
		if b := c.NetworkSettings.Ports[Port+"/tcp"]; len(b) > 0 && addr == "" {
			addr = net.JoinHostPort(o.PublishIP, b[0].HostPort)
		}
		if addr != "" {
			// Up: the edge answers any host, if only to say it serves nothing.
			if r, err := http.Get("http://" + addr + "/"); err == nil {
				r.Body.Close()
				if r.Header.Get("X-PanelX-Edge") != "" {
					return addr
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the edge container does not answer on %s", addr)
		}
	}
}

// Attached reports whether the container is on the network.
func Attached(t testing.TB, cli *client.Client, name, networkID string) bool {
	t.Helper()
	c, err := cli.ContainerInspect(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	for _, es := range c.NetworkSettings.Networks {
		if es != nil && es.NetworkID == networkID {
			return true
		}
	}
	return false
}

// Through sends requests for host to the edge at addr until every one of
// want (the hostnames of the replicas, which the test program reports on
// GET /) has answered, and returns how many answers each gave. An answer
// from anything else, or a 502 or 504 (the edge could not reach a
// replica), fails the test; the edge's 404 and 503 (its routes not there
// yet) are waited out for a minute.
func Through(t testing.TB, addr, host string, want map[string]bool) map[string]int {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second}
	seen := map[string]int{}
	start := time.Now()
	for i := 0; ; i++ {
		req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("request %d through the edge: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			if resp.Header.Get("X-PanelX-Edge") == "" || resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusGatewayTimeout || time.Since(start) > time.Minute {
				t.Fatalf("request %d through the edge: %d %s", i, resp.StatusCode, body)
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		var info struct {
			Hostname string `json:"hostname"`
		}
		if err := json.Unmarshal(body, &info); err != nil || !want[info.Hostname] {
			t.Fatalf("request %d through the edge: answered by %q, not one of %v (%v): %s", i, info.Hostname, want, err, body)
		}
		seen[info.Hostname]++
		if len(seen) == len(want) {
			return seen
		}
		if i > 20*len(want) {
			t.Fatalf("after %d requests through the edge only %v answered, want all of %v", i+1, seen, want)
		}
	}
}
