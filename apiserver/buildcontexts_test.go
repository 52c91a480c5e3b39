package apiserver_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/panelx/panelx/builder/buildctx"
)

// fakeContextsLimit bounds the contexts of the test server.
const fakeContextsLimit = 64 << 10

// fakeContexts keeps the build contexts tests upload.
var fakeContexts = func() *buildctx.Store {
	dir, err := os.MkdirTemp("", "panelx-apiserver-contexts-")
	if err != nil {
		panic(err)
	}
	return buildctx.NewStore(dir, fakeContextsLimit)
}()

// tinyContext is a build context tar with a Dockerfile and, when given,
// one more entry named extra (which may be hostile).
func tinyContext(t testing.TB, extra string) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	add := func(name, body string) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil && t != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	add("Dockerfile", "FROM scratch\n")
	if extra != "" {
		add(extra, "x")
	}
	tw.Close()
	return b.Bytes()
}

// TestBuildContextUpload: a context is stored under its digest (gzipped
// or not), found again by it, and refused when it is too large, not a
// tar, or names a path outside itself; strangers see nothing.
func TestBuildContextUpload(t *testing.T) {
	e, alice := shopEnv(t, withFakeOps)
	const path = "/api/v1/projects/shop/build-contexts"
	plain := tinyContext(t, "app/main.go")
	r := e.must(t, http.StatusCreated, req{method: "POST", path: path, token: alice, body: plain, header: map[string]string{"Content-Type": "application/x-tar"}})
	digest, _ := r.JSON(t)["digest"].(string)
	if !buildctx.ValidDigest(digest) {
		t.Fatalf("upload answered %s", r.Body)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	r = e.must(t, http.StatusCreated, req{method: "POST", path: path, token: alice, body: gz.Bytes(), header: map[string]string{"Content-Encoding": "gzip"}})
	if got := r.JSON(t)["digest"]; got != digest {
		t.Errorf("the gzipped upload of the same tar is %v, want %s", got, digest)
	}
	if got := e.must(t, http.StatusOK, req{method: "GET", path: path + "/" + digest, token: alice}).JSON(t)["size"]; got != float64(len(plain)) {
		t.Errorf("size %v, want %d", got, len(plain))
	}

	big := tinyContext(t, "")
	big = append(big, make([]byte, fakeContextsLimit)...) // zero blocks after the end: still over the limit
	bomb := &bytes.Buffer{}
	zw = gzip.NewWriter(bomb)
	zw.Write(make([]byte, 4*fakeContextsLimit))
	zw.Close()
	for _, tt := range []struct {
		name   string
		body   []byte
		header map[string]string
		status int
		detail string
	}{
		{"too large", big, nil, http.StatusRequestEntityTooLarge, "65536"},
		{"a gzip bomb", bomb.Bytes(), map[string]string{"Content-Encoding": "gzip"}, http.StatusRequestEntityTooLarge, "65536"},
		{"not a tar", []byte(strings.Repeat("hello ", 200)), nil, http.StatusBadRequest, "tar"},
		{"empty", nil, nil, http.StatusBadRequest, "tar"},
		{"a path out of the context", tinyContext(t, "../../etc/cron.d/x"), nil, http.StatusBadRequest, "../../etc/cron.d/x"},
		{"an absolute path", tinyContext(t, "/etc/passwd"), nil, http.StatusBadRequest, "/etc/passwd"},
		{"not gzip", plain, map[string]string{"Content-Encoding": "gzip"}, http.StatusBadRequest, "gzip"},
		{"an encoding it does not know", plain, map[string]string{"Content-Encoding": "br"}, http.StatusUnsupportedMediaType, "br"},
		{"JSON", plain, map[string]string{"Content-Type": "application/json"}, http.StatusUnsupportedMediaType, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := e.must(t, tt.status, req{method: "POST", path: path, token: alice, body: tt.body, header: tt.header})
			if p := r.problem(t); !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("detail %q, want it to say %q", p.Detail, tt.detail)
			}
		})
	}
	e.must(t, http.StatusBadRequest, req{method: "GET", path: path + "/sha256:nothex", token: alice})
	e.must(t, http.StatusNotFound, req{method: "GET", path: path + "/sha256:" + strings.Repeat("0", 64), token: alice})

	// Another tenant: 404 for the project, whatever the digest.
	mallory := e.jwtFor("mallory")
	e.must(t, http.StatusNotFound, req{method: "GET", path: path + "/" + digest, token: mallory})
	e.must(t, http.StatusNotFound, req{method: "POST", path: path, token: mallory, body: plain})
	e.project(t, mallory, "other")
	e.must(t, http.StatusNotFound, req{method: "GET", path: "/api/v1/projects/other/build-contexts/" + digest, token: mallory})
}
