// Package testimage gives tests real container images without pulling
// anything from the internet: it builds the small static program in
// ./testapp, packs it into a FROM-scratch image with go-containerregistry and
// serves it from an in-process registry on 127.0.0.1, which the local Docker
// Engine pulls from over plain HTTP (Docker treats 127.0.0.0/8 as an insecure
// registry by default).
//
// Typical use from another package's test:
//
//	reg := testimage.StartRegistry(t, testimage.RegistryOptions{})
//	ref := reg.Push(t, "shop/web:1", testimage.Image(t, testimage.ImageOptions{
//		Version: "1",
//		Labels:  map[string]string{"test": t.Name()},
//	}))
//	// ref is "127.0.0.1:<port>/shop/web:1"; pull it through the real pull
//	// path with image.PullOptions{RegistryAuth: reg.AuthConfig()}.
//
// The image runs /testapp, an HTTP server on port 8080 (see the testapp
// package documentation for its endpoints and modes). A Docker health check
// that works without a shell is
//
//	Test: []string{"CMD", "/testapp", "-check"}
//
// The registry lives in the test process, so the Docker daemon must share its
// network namespace: a daemon reached through a remote DOCKER_HOST, or inside
// a VM (Docker Desktop), cannot reach 127.0.0.1 of the test.
//
// Images carry the label MarkerLabel, so leftovers of crashed test runs can
// be removed with
//
//	docker image prune -a -f --filter label=org.panelx.testimage
package testimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// MarkerLabel is set on every image of this package, to find leftovers.
const MarkerLabel = "org.panelx.testimage"

// AppPort is the port the test program listens on unless PORT says otherwise;
// the image exposes it as 8080/tcp.
const AppPort = "8080"

// appPackage is built by Binary. An import path, not a directory, so that
// the build works from whichever package's directory the test runs in.
const appPackage = "github.com/panelx/panelx/internal/testimage/testapp"

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error

	layerOnce sync.Once
	layer     v1.Layer
	layerErr  error
)

// Binary builds the test program once per test process (static, for linux on
// the host's architecture) and returns the path of the executable.
func Binary(t testing.TB) string {
	t.Helper()
	binaryOnce.Do(func() { binaryPath, binaryErr = buildBinary() })
	if binaryErr != nil {
		t.Fatalf("testimage: %v", binaryErr)
	}
	return binaryPath
}

// buildBinary runs go build into a directory of its own; it is left behind at
// exit because a sync.Once result outlives every single test.
func buildBinary() (string, error) {
	dir, err := os.MkdirTemp("", "panelx-testapp-")
	if err != nil {
		return "", fmt.Errorf("build testapp: %w", err)
	}
	out := filepath.Join(dir, "testapp")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, appPackage)
	// The image is a linux one whatever the host; GOARCH follows the host,
	// which is the daemon's architecture for a local engine.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build testapp: %w\n%s", err, b)
	}
	return out, nil
}

// ImageOptions vary the image. Two images built from different options have
// different configs and so different image IDs; equal options give equal IDs.
type ImageOptions struct {
	// Version becomes APP_VERSION (overriding Env), which GET / reports and
	// the program prints at start. Empty leaves APP_VERSION unset.
	Version string
	// Env is the image's environment.
	Env map[string]string
	// Labels are image labels; MarkerLabel is added.
	Labels map[string]string
	// Cmd is the image's CMD, i.e. the arguments to /testapp (e.g. "-sleep").
	Cmd []string
	// Healthcheck is the image's HEALTHCHECK, if any.
	Healthcheck *v1.HealthConfig
}

// Image returns a FROM-scratch image holding the test program at /testapp
// (with empty /tmp and /data directories) and a config made from opts.
func Image(t testing.TB, opts ImageOptions) v1.Image {
	t.Helper()
	l := appLayer(t)
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatalf("testimage: append layer: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatalf("testimage: read config: %v", err)
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = runtime.GOARCH
	// A fixed creation time keeps the image ID a function of opts alone.
	cf.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	cf.Config = imageConfig(opts)
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatalf("testimage: set config: %v", err)
	}
	return img
}

func imageConfig(opts ImageOptions) v1.Config {
	env := maps.Clone(opts.Env)
	if env == nil {
		env = map[string]string{}
	}
	if opts.Version != "" {
		env["APP_VERSION"] = opts.Version
	}
	labels := maps.Clone(opts.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[MarkerLabel] = "true"
	return v1.Config{
		Entrypoint:   []string{"/testapp"},
		Cmd:          slices.Clone(opts.Cmd),
		Env:          envList(env),
		Labels:       labels,
		ExposedPorts: map[string]struct{}{AppPort + "/tcp": {}},
		Healthcheck:  opts.Healthcheck,
	}
}

// envList sorts, so that equal options give byte-equal configs.
func envList(env map[string]string) []string {
	var list []string
	for _, k := range slices.Sorted(maps.Keys(env)) {
		list = append(list, k+"="+env[k])
	}
	return list
}

// appLayer is built once: compressing the binary is the slow part of Image.
func appLayer(t testing.TB) v1.Layer {
	t.Helper()
	bin := Binary(t)
	layerOnce.Do(func() { layer, layerErr = buildLayer(bin) })
	if layerErr != nil {
		t.Fatalf("testimage: %v", layerErr)
	}
	return layer
}

func buildLayer(bin string) (v1.Layer, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("build layer: %w", err)
	}
	tarBytes, err := layerTar(data)
	if err != nil {
		return nil, fmt.Errorf("build layer: %w", err)
	}
	open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tarBytes)), nil }
	l, err := tarball.LayerFromOpener(open, tarball.WithCompressionLevel(gzip.BestSpeed))
	if err != nil {
		return nil, fmt.Errorf("build layer: %w", err)
	}
	return l, nil
}

// layerTar returns the layer's file system: /testapp plus the directories
// the program writes to, since a scratch image has none.
func layerTar(bin []byte) ([]byte, error) {
	epoch := time.Unix(0, 0)
	entries := []struct {
		hdr  tar.Header
		body []byte
	}{
		{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "data/", Mode: 0o755}},
		{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777}},
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "testapp", Mode: 0o755, Size: int64(len(bin))}, body: bin},
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		e.hdr.ModTime = epoch
		if err := tw.WriteHeader(&e.hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
