package buildctx

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func names(t *testing.T, r io.Reader) []string {
	t.Helper()
	var out []string
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 || !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() {
			t.Errorf("%s: owner %d:%d, atime %v, ctime %v: the digest would change with them", h.Name, h.Uid, h.Gid, h.AccessTime, h.ChangeTime)
		}
		if h.Typeflag == tar.TypeReg {
			out = append(out, h.Name)
		}
	}
}

// TestPack: .dockerignore is honoured but never drops the Dockerfile; the
// same directory packs to the same digest; SkipGit leaves .git out.
func TestPack(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"Dockerfile": "FROM scratch\n", ".dockerignore": "*.log\nDockerfile\nsecrets/\n",
		"main.go": "package main", "debug.log": "x", "secrets/key": "k", ".git/HEAD": "ref: main",
	})
	rc, err := Pack(root, "", "Dockerfile", PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := names(t, rc)
	rc.Close()
	slices.Sort(got)
	if want := []string{".dockerignore", ".git/HEAD", "Dockerfile", "main.go"}; !slices.Equal(got, want) {
		t.Errorf("packed %v, want %v", got, want)
	}
	rc, _ = Pack(root, "", "Dockerfile", PackOptions{SkipGit: true})
	if got := names(t, rc); slices.Contains(got, ".git/HEAD") {
		t.Errorf("SkipGit packed %v", got)
	}
	rc.Close()

	d1, n1, err := Digest(root, "", "Dockerfile", PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Reading the files (their access times) changes nothing.
	d2, n2, _ := Digest(root, "", "Dockerfile", PackOptions{})
	if d1 != d2 || n1 != n2 || !ValidDigest(d1) {
		t.Errorf("the same directory packed to %s (%d) and %s (%d)", d1, n1, d2, n2)
	}
	writeTree(t, root, map[string]string{"main.go": "package main // changed"})
	if d3, _, _ := Digest(root, "", "Dockerfile", PackOptions{}); d3 == d1 {
		t.Error("a changed file kept the digest")
	}

	for _, tt := range []struct{ dir, dockerfile, want string }{
		{"", "Missing", "no Dockerfile"},
		{"nowhere", "Dockerfile", "not a directory"},
		{"secrets", "../Dockerfile", "leads out"},
	} {
		if _, err := Pack(root, tt.dir, tt.dockerfile, PackOptions{}); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Pack(%q, %q): %v, want %q", tt.dir, tt.dockerfile, err, tt.want)
		}
	}
}

func tarOf(t *testing.T, files map[string]string) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	return b.Bytes()
}

// TestStore: content-addressed per project, refusals leave nothing
// behind, Prune keeps what is named or recent.
func TestStore(t *testing.T) {
	dir := t.TempDir()
	s := NewStore(dir, 8<<10)
	ctx := context.Background()
	a, err := s.Put(ctx, "shop", bytes.NewReader(tarOf(t, map[string]string{"Dockerfile": "FROM scratch"})))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat("shop", a.Digest); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat("blog", a.Digest); !errors.Is(err, ErrNotFound) {
		t.Errorf("another project sees the context: %v", err)
	}
	for name, body := range map[string][]byte{
		"too large": tarOf(t, map[string]string{"big": strings.Repeat("x", 9<<10)}),
		"devices":   devTar(t),
		"traversal": tarOf(t, map[string]string{"a/../../x": "x"}),
	} {
		if _, err := s.Put(ctx, "shop", bytes.NewReader(body)); err == nil {
			t.Errorf("%s: stored", name)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "shop"))
	if len(entries) != 1 {
		t.Errorf("refused uploads left files: %v", entries)
	}
	if _, err := s.Put(ctx, "../etc", bytes.NewReader(tarOf(t, map[string]string{"x": "x"}))); err == nil {
		t.Error("a project name with a path was taken")
	}

	b, _ := s.Put(ctx, "shop", bytes.NewReader(tarOf(t, map[string]string{"Dockerfile": "FROM scratch\n# b"})))
	old := time.Now().Add(-2 * time.Hour)
	for _, d := range []string{a.Digest, b.Digest} {
		p, _ := s.file("shop", d)
		os.Chtimes(p, old, old)
	}
	removed, err := s.Prune("shop", map[string]bool{a.Digest: true}, time.Hour)
	if err != nil || !slices.Equal(removed, []string{b.Digest}) {
		t.Errorf("Prune removed %v (%v), want only %s", removed, err, b.Digest)
	}
	if _, err := s.Open("shop", a.Digest); err != nil {
		t.Errorf("the named context is gone: %v", err)
	}
	if _, err := s.Prune("shop", nil, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "shop")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a project without contexts keeps its directory: %v", err)
	}
}

func devTar(t *testing.T) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Name: "dev/sda", Typeflag: tar.TypeBlock, Devmajor: 8}); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	return b.Bytes()
}
