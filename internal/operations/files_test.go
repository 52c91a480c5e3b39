package operations_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/panelx/panelx/apiserver"
)

const filesPath = "/api/v1/projects/shop/volumes/data/files/"

func (e *env) listing(t *testing.T, dir string) apiserver.FileList {
	t.Helper()
	var l apiserver.FileList
	r := e.must(t, http.StatusOK, "GET", filesPath+dir, e.alice, nil)
	if err := json.Unmarshal(r.Body, &l); err != nil {
		t.Fatalf("listing of %q: %v\n%s", dir, err, r.Body)
	}
	return l
}

func names(l apiserver.FileList) []string {
	var out []string
	for _, it := range l.Items {
		out = append(out, it.Name+":"+it.Type)
	}
	return out
}

// TestFiles: upload, list, download round trip byte-exact; make a
// directory, rename, replace, delete; conflicts; all with the project's
// only container stopped.
func TestFiles(t *testing.T) {
	e := newEnv(t)
	vol := e.volume("data")
	e.service("web")
	e.replica("web", 0, replicaOpts{cmd: []string{"-sleep"}, noStart: true})

	blob := make([]byte, 3<<20+17)
	rand.Read(blob)
	e.must(t, http.StatusNoContent, "PUT", filesPath+"blob.bin", e.alice, blob)
	e.must(t, http.StatusNoContent, "PUT", filesPath+"hello.txt", e.alice, "hello\n")
	e.must(t, http.StatusNoContent, "PUT", filesPath+"empty", e.alice, "")
	if r := e.must(t, http.StatusCreated, "POST", filesPath+"docs", e.alice, nil); r.Header.Get("Location") != filesPath+"docs" {
		t.Errorf("Location %q", r.Header.Get("Location"))
	}
	e.must(t, http.StatusNoContent, "PUT", filesPath+"docs/r%C3%A9sum%C3%A9%201.txt", e.alice, "cv")

	root := e.listing(t, "")
	if got, want := names(root), []string{"blob.bin:file", "docs:dir", "empty:file", "hello.txt:file"}; !slices.Equal(got, want) || root.Path != "" || root.Truncated {
		t.Fatalf("root listing %q (%+v), want %q", got, root, want)
	}
	blobItem, docs := root.Items[0], root.Items[1]
	if blobItem.Size != int64(len(blob)) || blobItem.Mode != "0644" || blobItem.ModeBits != 0o644 ||
		time.Since(blobItem.ModTime) > 5*time.Minute || docs.Mode != "0755" {
		t.Errorf("entries %+v %+v", blobItem, docs)
	}

	r := e.must(t, http.StatusOK, "GET", filesPath+"blob.bin", e.alice, nil)
	if !bytes.Equal(r.Body, blob) {
		t.Fatalf("download differs: %d bytes, want %d", len(r.Body), len(blob))
	}
	for k, want := range map[string]string{"Content-Type": "application/octet-stream", "X-Content-Type-Options": "nosniff",
		"Content-Disposition": `attachment; filename=blob.bin`, "Content-Length": "3145745"} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if r := e.must(t, http.StatusOK, "GET", filesPath+"empty", e.alice, nil); len(r.Body) != 0 {
		t.Errorf("empty file: %q", r.Body)
	}
	if got := names(e.listing(t, "docs/")); !slices.Equal(got, []string{"résumé 1.txt:file"}) {
		t.Errorf("docs: %q", got)
	}

	// rename, replace, conflicts
	e.must(t, http.StatusNoContent, "POST", filesPath+"docs/r%C3%A9sum%C3%A9%201.txt?op=rename&to=docs%2Fcv.txt", e.alice, nil)
	if r := e.must(t, http.StatusOK, "GET", filesPath+"docs/cv.txt", e.alice, nil); string(r.Body) != "cv" {
		t.Errorf("renamed file: %q", r.Body)
	}
	e.must(t, http.StatusNoContent, "PUT", filesPath+"hello.txt", e.alice, "bonjour\n")
	if r := e.must(t, http.StatusOK, "GET", filesPath+"hello.txt", e.alice, nil); string(r.Body) != "bonjour\n" {
		t.Errorf("replaced file: %q", r.Body)
	}
	e.must(t, http.StatusConflict, "POST", filesPath+"docs", e.alice, nil)
	e.must(t, http.StatusConflict, "POST", filesPath+"hello.txt", e.alice, map[string]any{"op": "rename", "to": "blob.bin"})
	e.must(t, http.StatusConflict, "PUT", filesPath+"docs", e.alice, "x")
	e.must(t, http.StatusConflict, "PUT", filesPath+"hello.txt/x", e.alice, "x")
	e.must(t, http.StatusNotFound, "GET", filesPath+"nope.txt", e.alice, nil)
	e.must(t, http.StatusNotFound, "PUT", filesPath+"nope/x", e.alice, "x")
	e.must(t, http.StatusNotFound, "DELETE", filesPath+"nope.txt", e.alice, nil)

	e.must(t, http.StatusNoContent, "DELETE", filesPath+"docs", e.alice, nil)
	e.must(t, http.StatusNoContent, "DELETE", filesPath+"blob.bin", e.alice, nil)
	got := e.tree(vol)
	want := map[string]string{"v/": "", "v/hello.txt": "bonjour\n", "v/empty": ""}
	if !maps.Equal(got, want) {
		t.Errorf("the volume holds %q, want %q", got, want)
	}

	// Viewers read, only editors write; the upload limit holds.
	e.member("vera", "viewer")
	vera := e.jwt("vera", time.Hour)
	e.must(t, http.StatusOK, "GET", filesPath+"hello.txt", vera, nil)
	e.must(t, http.StatusForbidden, "PUT", filesPath+"x", vera, "x")
	e.must(t, http.StatusForbidden, "DELETE", filesPath+"hello.txt", vera, nil)
	e.must(t, http.StatusNotFound, "GET", filesPath+"hello.txt", e.jwt("mallory", time.Hour), nil)
	small := e.serve(func(o *apiserver.Options) { o.MaxUploadBytes = 1024 })
	big := *e
	big.URL = small
	big.must(t, http.StatusRequestEntityTooLarge, "PUT", filesPath+"big", e.alice, make([]byte, 1025))
	big.must(t, http.StatusNoContent, "PUT", filesPath+"fits", e.alice, make([]byte, 1024))
}

// TestFileTraversal: every way out of the volume is refused with a 400 —
// "..", its encodings, absolute paths, backslashes, control and look-alike
// characters, and a symbolic link planted in the volume that points to
// /etc — and nothing outside the volume is read or written.
func TestFileTraversal(t *testing.T) {
	e := newEnv(t)
	vol := e.volume("data")
	e.service("web")
	e.replica("web", 0, replicaOpts{cmd: []string{"-sleep"}}) // running, mounting nothing
	e.must(t, http.StatusNoContent, "PUT", filesPath+"hello.txt", e.alice, "hello")
	e.must(t, http.StatusCreated, "POST", filesPath+"sub", e.alice, nil)
	// A link to /etc and one to a file in it, made from inside as a
	// service mounting the volume could.
	e.runIn(vol, "/tool", "ln", "/etc", "/v/link")
	e.runIn(vol, "/tool", "ln", "../../etc/panelx-marker", "/v/sub/rel")
	before := e.tree(vol)

	escapes := []string{
		"..", "../etc/panelx-marker", "..%2fetc%2fpanelx-marker", "..%2Fetc/panelx-marker", "%2e%2e/etc/panelx-marker",
		"%2E%2E%2Fetc%2Fpanelx-marker", "%252e%252e/etc/panelx-marker", "..%252fetc", "sub/../../etc/panelx-marker",
		"sub/%2e%2e/%2e%2e/etc/panelx-marker", "/etc/panelx-marker", "%2fetc%2fpanelx-marker", "..%5c..%5cetc%5cpanelx-marker",
		"hello.txt%00.png", "%EF%BC%8E%EF%BC%8E/etc/panelx-marker", "sub/%EF%BC%8F..%EF%BC%8Fetc", ".", "./hello.txt", "sub//rel",
		"link", "link/panelx-marker", "link/", "sub/rel",
	}
	for _, p := range escapes {
		r := e.do(t, "GET", filesPath+p, e.alice, nil)
		if r.Status != http.StatusBadRequest {
			t.Errorf("GET files/%s: %d, want 400\n%s", p, r.Status, r.Body)
		}
		if strings.Contains(string(r.Body), marker) {
			t.Errorf("GET files/%s read outside the volume: %s", p, r.Body)
		}
		if r := e.do(t, "PUT", filesPath+p, e.alice, "evil"); r.Status != http.StatusBadRequest {
			t.Errorf("PUT files/%s: %d, want 400\n%s", p, r.Status, r.Body)
		}
		// A delete acts on a link itself (tested below), not through it.
		if p != "link" && p != "link/" && p != "sub/rel" {
			if r := e.do(t, "DELETE", filesPath+p, e.alice, nil); r.Status != http.StatusBadRequest {
				t.Errorf("DELETE files/%s: %d, want 400\n%s", p, r.Status, r.Body)
			}
		}
	}
	for _, p := range []string{"link/x", "link/panelx-marker", "sub/rel/x"} {
		if r := e.do(t, "DELETE", filesPath+p, e.alice, nil); r.Status != http.StatusBadRequest {
			t.Errorf("DELETE files/%s: %d, want 400\n%s", p, r.Status, r.Body)
		}
	}
	for _, p := range []string{"link/newdir", "..%2fnewdir", "/newdir"} {
		if r := e.do(t, "POST", filesPath+p, e.alice, nil); r.Status != http.StatusBadRequest {
			t.Errorf("mkdir files/%s: %d, want 400", p, r.Status)
		}
	}
	for _, to := range []string{"../evil", "..%2fevil", "%2e%2e/evil", "/evil", "link/evil", "sub/rel/evil"} {
		if r := e.do(t, "POST", filesPath+"hello.txt?op=rename&to="+to, e.alice, nil); r.Status != http.StatusBadRequest {
			t.Errorf("rename to %s: %d, want 400\n%s", to, r.Status, r.Body)
		}
	}
	if r := e.do(t, "POST", filesPath+"hello.txt", e.alice, map[string]any{"to": "../evil"}); r.Status != http.StatusBadRequest {
		t.Errorf("rename to ../evil (JSON body): %d", r.Status)
	}

	// The listing shows the links as links, never what they point to.
	l := e.listing(t, "")
	for _, it := range l.Items {
		if it.Name == "link" && (it.Type != "symlink" || it.LinkTarget != "/etc") {
			t.Errorf("link listed as %+v", it)
		}
	}
	if after := e.tree(vol); !maps.Equal(after, before) {
		t.Errorf("the volume changed:\nbefore %q\nafter  %q", before, after)
	}
	// Deleting a link removes the link, not its target.
	e.must(t, http.StatusNoContent, "DELETE", filesPath+"link", e.alice, nil)
	if m := e.imageMarker(t); m != marker {
		t.Errorf("/etc/panelx-marker of the image is now %q", m)
	}
	if _, ok := e.tree(vol)["v/link"]; ok {
		t.Error("the link is still there")
	}
}

// imageMarker reads /etc/panelx-marker from a fresh container of the
// image: what a write through a link would have changed.
func (e *env) imageMarker(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	resp, err := e.cli.ContainerCreate(ctx, &container.Config{Image: e.image}, nil, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer e.cli.ContainerRemove(ctx, resp.ID, container.RemoveOptions{Force: true})
	rc, _, err := e.cli.CopyFromContainer(ctx, resp.ID, "/etc/panelx-marker")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, _ := io.ReadAll(rc)
	i := bytes.Index(data, []byte(marker))
	if i < 0 {
		return string(data)
	}
	return marker
}
