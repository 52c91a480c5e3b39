package testimage

import (
	"context"
	"crypto/subtle"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dockerregistry "github.com/docker/docker/api/types/registry"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// RegistryOptions configure StartRegistry.
type RegistryOptions struct {
	// Username and Password, when Username is set, make the registry demand
	// HTTP basic auth; other requests get 401 with a Basic challenge.
	Username string
	Password string
	// Verbose logs every registry request through t.Logf.
	Verbose bool
	// Listen is the address to listen on (default 127.0.0.1:0). Docker
	// trusts plain HTTP on 127.0.0.0/8 by itself; an engine reaching the
	// registry at another address needs it as --insecure-registry.
	Listen string
}

// Registry is an in-memory OCI/Docker registry serving plain HTTP on
// 127.0.0.1:<random port>.
type Registry struct {
	srv  *httptest.Server
	host string
	opts RegistryOptions
}

// pushTimeout bounds a push to the in-process registry, which takes well
// under a second; the bound only turns a hang into a clear failure.
const pushTimeout = time.Minute

// StartRegistry starts a registry that is closed when the test ends.
func StartRegistry(t testing.TB, opts RegistryOptions) *Registry {
	t.Helper()
	logger := log.New(io.Discard, "", 0)
	if opts.Verbose {
		logger = log.New(testWriter{t}, "registry: ", 0)
	}
	var h http.Handler = registry.New(registry.Logger(logger))
	if opts.Username != "" {
		h = basicAuth(h, opts.Username, opts.Password)
	}
	// httptest listens on 127.0.0.1 only, which is what Docker treats as
	// an insecure (plain HTTP) registry without any daemon configuration.
	srv := httptest.NewUnstartedServer(h)
	if opts.Listen != "" {
		l, err := net.Listen("tcp", opts.Listen)
		if err != nil {
			t.Fatalf("testimage: registry: %v", err)
		}
		srv.Listener.Close()
		srv.Listener = l
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return &Registry{srv: srv, host: strings.TrimPrefix(srv.URL, "http://"), opts: opts}
}

// Host returns "127.0.0.1:port", the registry part of image references.
func (r *Registry) Host() string { return r.host }

// Push uploads img as repoAndTag (e.g. "shop/web:1"; no tag means latest)
// and returns the full reference, e.g. "127.0.0.1:port/shop/web:1".
// Pushing to an existing tag moves the tag.
func (r *Registry) Push(t testing.TB, repoAndTag string, img v1.Image) string {
	t.Helper()
	tag := r.tag(t, repoAndTag)
	ctx, cancel := context.WithTimeout(context.Background(), pushTimeout)
	defer cancel()
	if err := remote.Write(tag, img, remote.WithAuth(r.authenticator()), remote.WithContext(ctx)); err != nil {
		t.Fatalf("testimage: push %s: %v", tag.Name(), err)
	}
	return tag.Name()
}

// Delete removes the tag repoAndTag, so that pulling it fails with "manifest
// unknown". The blobs stay; they are not reachable by that name any more.
func (r *Registry) Delete(t testing.TB, repoAndTag string) {
	t.Helper()
	tag := r.tag(t, repoAndTag)
	ctx, cancel := context.WithTimeout(context.Background(), pushTimeout)
	defer cancel()
	if err := remote.Delete(tag, remote.WithAuth(r.authenticator()), remote.WithContext(ctx)); err != nil {
		t.Fatalf("testimage: delete %s: %v", tag.Name(), err)
	}
}

// AuthConfig returns the registry's credentials the way a Docker pull takes
// them: base64url JSON for the X-Registry-Auth header, i.e. the value of
// image.PullOptions.RegistryAuth. It is "" for a registry without auth.
func (r *Registry) AuthConfig() string {
	if r.opts.Username == "" {
		return ""
	}
	return r.AuthConfigAs(r.opts.Username, r.opts.Password)
}

// AuthConfigAs is AuthConfig with other credentials, for tests of wrong
// passwords.
func (r *Registry) AuthConfigAs(username, password string) string {
	s, err := dockerregistry.EncodeAuthConfig(dockerregistry.AuthConfig{
		Username:      username,
		Password:      password,
		ServerAddress: r.host,
	})
	if err != nil {
		// Only json.Marshal of plain strings can fail here, which it cannot.
		panic(fmt.Sprintf("testimage: encode auth config: %v", err))
	}
	return s
}

func (r *Registry) tag(t testing.TB, repoAndTag string) name.Tag {
	t.Helper()
	tag, err := name.NewTag(r.host+"/"+repoAndTag, name.Insecure)
	if err != nil {
		t.Fatalf("testimage: reference %q: %v", repoAndTag, err)
	}
	return tag
}

func (r *Registry) authenticator() authn.Authenticator {
	if r.opts.Username == "" {
		return authn.Anonymous
	}
	return &authn.Basic{Username: r.opts.Username, Password: r.opts.Password}
}

// basicAuth guards next with HTTP basic auth. The 401 carries a Basic
// challenge and a registry error body, which is what makes Docker retry with
// credentials, or report an authentication error when it has none.
func basicAuth(next http.Handler, username, password string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		u, p, ok := req.BasicAuth()
		if ok && equal(u, username) && equal(p, password) {
			next.ServeHTTP(w, req)
			return
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="panelx-testimage"`)
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`+"\n")
	})
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// testWriter sends log lines to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
