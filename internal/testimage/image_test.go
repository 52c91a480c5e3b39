package testimage

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func imageID(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	h, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestImageIDFollowsOptions(t *testing.T) {
	a := imageID(t, Image(t, ImageOptions{Version: "1"}))
	if again := imageID(t, Image(t, ImageOptions{Version: "1"})); again != a {
		t.Errorf("equal options gave IDs %s and %s", a, again)
	}
	for _, opts := range []ImageOptions{
		{Version: "2"},
		{Version: "1", Env: map[string]string{"X": "y"}},
		{Version: "1", Labels: map[string]string{"x": "y"}},
		{Version: "1", Cmd: []string{"-sleep"}},
	} {
		if id := imageID(t, Image(t, opts)); id == a {
			t.Errorf("options %+v gave the same ID as {Version: 1}", opts)
		}
	}
}

func TestImageConfig(t *testing.T) {
	img := Image(t, ImageOptions{
		Version: "3",
		Env:     map[string]string{"B": "2", "A": "1", "APP_VERSION": "ignored"},
		Labels:  map[string]string{"team": "shop"},
	})
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if !slices.Equal(c.Entrypoint, []string{"/testapp"}) {
		t.Errorf("Entrypoint = %q", c.Entrypoint)
	}
	if !slices.Equal(c.Env, []string{"A=1", "APP_VERSION=3", "B=2"}) {
		t.Errorf("Env = %q", c.Env)
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("ExposedPorts = %v", c.ExposedPorts)
	}
	if c.Labels["team"] != "shop" || c.Labels[MarkerLabel] != "true" {
		t.Errorf("Labels = %v", c.Labels)
	}
	if cf.OS != "linux" || cf.Architecture == "" {
		t.Errorf("platform = %s/%s", cf.OS, cf.Architecture)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers = %d, %v; want 1", len(layers), err)
	}
}

func TestRegistryPushDelete(t *testing.T) {
	reg := StartRegistry(t, RegistryOptions{})
	if !strings.HasPrefix(reg.Host(), "127.0.0.1:") {
		t.Fatalf("Host = %q, want 127.0.0.1:port", reg.Host())
	}
	img := Image(t, ImageOptions{Version: "1"})
	ref := reg.Push(t, "shop/web:1", img)
	if ref != reg.Host()+"/shop/web:1" {
		t.Errorf("Push returned %q", ref)
	}
	if got := fetchDigest(t, ref, authn.Anonymous); got != mustDigest(t, img) {
		t.Errorf("registry serves %s, pushed %s", got, mustDigest(t, img))
	}
	if got := reg.Push(t, "shop/web", img); got != reg.Host()+"/shop/web:latest" {
		t.Errorf("Push without a tag returned %q", got)
	}

	reg.Delete(t, "shop/web:1")
	if _, err := remote.Head(parseRef(t, ref)); err == nil {
		t.Error("tag still present after Delete")
	}
}

func TestRegistryAuth(t *testing.T) {
	reg := StartRegistry(t, RegistryOptions{Username: "alice", Password: "s3cret"})

	resp, err := http.Get("http://" + reg.Host() + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic realm=") {
		t.Errorf("anonymous /v2/ = %s, WWW-Authenticate %q; want 401 with a Basic challenge",
			resp.Status, resp.Header.Get("WWW-Authenticate"))
	}

	img := Image(t, ImageOptions{Version: "1"})
	ref := reg.Push(t, "private/app:1", img) // Push uses the credentials
	if _, err := remote.Head(parseRef(t, ref)); err == nil {
		t.Error("anonymous HEAD of a manifest succeeded")
	}
	wrong := &authn.Basic{Username: "alice", Password: "wrong"}
	if _, err := remote.Head(parseRef(t, ref), remote.WithAuth(wrong)); err == nil {
		t.Error("HEAD with a wrong password succeeded")
	}
	right := &authn.Basic{Username: "alice", Password: "s3cret"}
	if got := fetchDigest(t, ref, right); got != mustDigest(t, img) {
		t.Errorf("registry serves %s, pushed %s", got, mustDigest(t, img))
	}

	if reg.AuthConfig() == "" {
		t.Error("AuthConfig is empty for a registry with credentials")
	}
	if StartRegistry(t, RegistryOptions{}).AuthConfig() != "" {
		t.Error("AuthConfig is not empty for a registry without credentials")
	}
}

func parseRef(t *testing.T, ref string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func fetchDigest(t *testing.T, ref string, auth authn.Authenticator) v1.Hash {
	t.Helper()
	desc, err := remote.Head(parseRef(t, ref), remote.WithAuth(auth))
	if err != nil {
		t.Fatalf("HEAD %s: %v", ref, err)
	}
	return desc.Digest
}

func mustDigest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}
