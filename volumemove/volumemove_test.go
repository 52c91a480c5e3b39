package volumemove

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var testToken = strings.Repeat("0123456789abcdef", 4)

func testConfig(t testing.TB, root, addr string) config {
	return config{
		addr:         addr,
		root:         root,
		token:        testToken,
		tokenTimeout: 2 * time.Second,
		idleTimeout:  10 * time.Second,
		ackTimeout:   30 * time.Second,
		dialTimeout:  10 * time.Second,
		maxConns:     4,
		stderr:       t.Output(),
	}
}

type served struct {
	res Result
	err error
}

// startServer serves root on a loopback port and returns its address and
// what serveOn returns once it ends (the test's end cancels it).
func startServer(t testing.TB, cfg config) (string, <-chan served) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan served, 1)
	go func() {
		res, err := serveOn(ctx, ln, cfg)
		ch <- served{res, err}
	}()
	t.Cleanup(cancel)
	return ln.Addr().String(), ch
}

func waitServed(t testing.TB, ch <-chan served) served {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not end after the fetch")
		return served{}
	}
}

func mustRun(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func makeFile(t testing.TB, p string, data []byte, mode fs.FileMode) {
	t.Helper()
	mustRun(t, os.WriteFile(p, data, 0o600))
	mustRun(t, os.Chmod(p, mode))
}

// buildTree fills src with every kind of entry the mover keeps.
func buildTree(t testing.TB, src string) {
	t.Helper()
	big := make([]byte, 20<<20)
	_, _ = rand.Read(big)
	mustRun(t, os.MkdirAll(filepath.Join(src, "dir/nested/deeper"), 0o755))
	mustRun(t, os.Mkdir(filepath.Join(src, "emptydir"), 0o700))
	mustRun(t, os.Mkdir(filepath.Join(src, "sticky"), 0o700))
	mustRun(t, os.Chmod(filepath.Join(src, "sticky"), 0o777|fs.ModeSticky))
	mustRun(t, os.Mkdir(filepath.Join(src, "setgid"), 0o700))
	mustRun(t, os.Chmod(filepath.Join(src, "setgid"), 0o775|fs.ModeSetgid))
	mustRun(t, os.Mkdir(filepath.Join(src, "readonly"), 0o755))
	makeFile(t, filepath.Join(src, "readonly/f"), []byte("ro"), 0o444)
	mustRun(t, os.Chmod(filepath.Join(src, "readonly"), 0o555))
	makeFile(t, filepath.Join(src, "big"), big, 0o644)
	makeFile(t, filepath.Join(src, "empty"), nil, 0o644)
	makeFile(t, filepath.Join(src, "private"), []byte("secret"), 0o600)
	makeFile(t, filepath.Join(src, "setuid"), []byte("#!/bin/true"), 0o755|fs.ModeSetuid)
	makeFile(t, filepath.Join(src, "dir/nested/deeper/deep.txt"), []byte("deep"), 0o640)
	makeFile(t, filepath.Join(src, "dir/a.txt"), []byte("a"), 0o644)
	mustRun(t, os.Link(filepath.Join(src, "dir/a.txt"), filepath.Join(src, "dir/nested/hard")))
	mustRun(t, os.Link(filepath.Join(src, "big"), filepath.Join(src, "zz-big-again")))
	mustRun(t, os.Symlink("/etc/passwd", filepath.Join(src, "abs-link")))
	mustRun(t, os.Symlink("nested/deeper/deep.txt", filepath.Join(src, "dir/rel-link")))
	mustRun(t, os.Symlink("../nowhere", filepath.Join(src, "dir/dangling")))
	mustRun(t, syscall.Mkfifo(filepath.Join(src, "fifo"), 0o644))
	for _, p := range []string{"private", "dir/nested", "abs-link", "sticky", "."} {
		mustRun(t, os.Lchown(filepath.Join(src, p), 1234, 5678))
	}
	mustRun(t, os.Chmod(filepath.Join(src, "setuid"), 0o755|fs.ModeSetuid)) // after any chown
	mustRun(t, os.Chmod(src, 0o750))
	// Times last, children before their directories.
	when := time.Date(2021, 3, 4, 5, 6, 7, 123456789, time.UTC)
	var paths []string
	mustRun(t, filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		paths = append(paths, p)
		return err
	}))
	for i := len(paths) - 1; i >= 0; i-- {
		if fi, err := os.Lstat(paths[i]); err == nil && fi.Mode()&fs.ModeSymlink == 0 && fi.Mode()&fs.ModeNamedPipe == 0 {
			mustRun(t, os.Chtimes(paths[i], time.Time{}, when.Add(time.Duration(i)*time.Hour)))
		}
	}
}

// entryInfo is what must survive the move of one entry.
type entryInfo struct {
	Mode     fs.FileMode
	UID, GID uint32
	MTime    time.Time
	Size     int64
	Digest   string
	Link     string
	Inode    string // the name of the first entry with the same inode
}

func describe(t testing.TB, dir string) map[string]entryInfo {
	t.Helper()
	out := map[string]entryInfo{}
	inodes := map[uint64]string{}
	mustRun(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeNamedPipe != 0 {
			return nil
		}
		st := fi.Sys().(*syscall.Stat_t)
		e := entryInfo{Mode: fi.Mode(), UID: st.Uid, GID: st.Gid}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			e.Link, err = os.Readlink(p)
		case fi.Mode().IsRegular():
			e.MTime, e.Size = fi.ModTime(), fi.Size()
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			e.Digest = hex.EncodeToString(sum[:])
			if first, ok := inodes[st.Ino]; ok {
				e.Inode = first
			} else {
				inodes[st.Ino] = rel
			}
		default:
			e.MTime = fi.ModTime()
		}
		out[rel] = e
		return err
	}))
	return out
}

func TestRoundTrip(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	buildTree(t, src)
	want := describe(t, src)

	var warn syncBuffer
	scfg := testConfig(t, src, "")
	scfg.stderr = io.MultiWriter(&warn, t.Output())
	addr, done := startServer(t, scfg)
	res, err := fetch(t.Context(), testConfig(t, dst, addr))
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	s := waitServed(t, done)
	if s.err != nil {
		t.Fatalf("serve: %v", s.err)
	}
	if res != s.res {
		t.Errorf("fetch result %+v, serve result %+v", res, s.res)
	}
	// The root, 7 directories, 7 files, 2 hard links, 3 symbolic links.
	if res.Files != 20 || res.Bytes < 20<<20 || !isHexDigest(res.SHA256) {
		t.Errorf("result %+v", res)
	}
	if !strings.Contains(warn.String(), "1 devices, sockets or FIFOs not sent") {
		t.Errorf("no warning about the FIFO in %q", warn.String())
	}

	got := describe(t, dst)
	for name, w := range want {
		g, ok := got[name]
		switch {
		case !ok:
			t.Errorf("%s: missing", name)
		case g.Mode != w.Mode || g.UID != w.UID || g.GID != w.GID || g.Size != w.Size || g.Digest != w.Digest || g.Link != w.Link || g.Inode != w.Inode:
			t.Errorf("%s: got %+v, want %+v", name, g, w)
		case !g.MTime.Equal(w.MTime):
			t.Errorf("%s: mtime %v, want %v", name, g.MTime, w.MTime)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: not in the source", name)
		}
	}
	// The spot checks the comparison above relies on.
	for name, mode := range map[string]fs.FileMode{"setuid": 0o755 | fs.ModeSetuid, "private": 0o600, "sticky": fs.ModeDir | 0o777 | fs.ModeSticky, "setgid": fs.ModeDir | 0o775 | fs.ModeSetgid, ".": fs.ModeDir | 0o750} {
		if got[name].Mode != mode {
			t.Errorf("%s: mode %v, want %v", name, got[name].Mode, mode)
		}
	}
	if g := got["private"]; g.UID != 1234 || g.GID != 5678 {
		t.Errorf("private: owner %d:%d", g.UID, g.GID)
	}
	if g := got["."]; g.UID != 1234 || g.GID != 5678 {
		t.Errorf("root: owner %d:%d", g.UID, g.GID)
	}
}

// syncBuffer is a bytes.Buffer for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A failed client, whatever its failure, leaves the source serving the next.
func TestServeKeepsServing(t *testing.T) {
	src := t.TempDir()
	makeFile(t, filepath.Join(src, "f"), bytes.Repeat([]byte("x"), 4<<20), 0o644)
	addr, done := startServer(t, testConfig(t, src, ""))

	failures := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"wrong token", func(t *testing.T) {
			cfg := testConfig(t, t.TempDir(), addr)
			cfg.token = strings.Repeat("f", 64)
			_, err := fetch(t.Context(), cfg)
			if err == nil || !strings.Contains(err.Error(), "wrong token") {
				t.Fatalf("fetch with a wrong token: %v", err)
			}
		}},
		{"too long a token line", func(t *testing.T) {
			c := dial(t, addr)
			fmt.Fprintf(c, "%s\n", strings.Repeat("a", 1000))
			if n, _ := io.Copy(io.Discard, c); n != 0 {
				t.Fatalf("got %d bytes", n)
			}
		}},
		{"no token", func(t *testing.T) {
			c := dial(t, addr)
			// The source gives up after tokenTimeout.
			if n, _ := io.Copy(io.Discard, c); n != 0 {
				t.Fatalf("got %d bytes", n)
			}
		}},
		{"gone midway", func(t *testing.T) {
			c := dial(t, addr)
			fmt.Fprintf(c, "%s\n", testToken)
			if _, err := io.CopyN(io.Discard, c, 1<<20); err != nil {
				t.Fatal(err)
			}
			c.Close()
		}},
		{"answered an error", func(t *testing.T) {
			c := dial(t, addr)
			fmt.Fprintf(c, "%s\n", testToken)
			br := bufio.NewReader(c)
			tr := tar.NewReader(br)
			for {
				if _, err := tr.Next(); err == io.EOF {
					break
				} else if err != nil {
					t.Fatal(err)
				}
			}
			if _, err := br.ReadString('\n'); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(c, "error: disk full\n")
			c.Close()
		}},
	}
	for _, f := range failures {
		t.Run(f.name, f.run)
	}
	select {
	case s := <-done:
		t.Fatalf("serve ended after failed clients: %+v", s)
	default:
	}
	dst := t.TempDir()
	if _, err := fetch(t.Context(), testConfig(t, dst, addr)); err != nil {
		t.Fatalf("fetch after failed clients: %v", err)
	}
	if s := waitServed(t, done); s.err != nil {
		t.Fatal(s.err)
	}
	if data, err := os.ReadFile(filepath.Join(dst, "f")); err != nil || len(data) != 4<<20 {
		t.Fatalf("moved file: %d bytes, %v", len(data), err)
	}
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestShortTokenRefused(t *testing.T) {
	for _, side := range []string{"serve", "fetch"} {
		t.Run(side, func(t *testing.T) {
			cfg := testConfig(t, t.TempDir(), "127.0.0.1:0")
			cfg.token = "short"
			var out bytes.Buffer
			if code := run(t.Context(), []string{side}, cfg, &out); code != 1 {
				t.Fatalf("exit code %d", code)
			}
			if _, err := ParseResult(out.Bytes()); err == nil || !strings.Contains(err.Error(), EnvToken) {
				t.Fatalf("result %q: %v", out.String(), err)
			}
		})
	}
}

func TestTargetMustBeEmpty(t *testing.T) {
	src := t.TempDir()
	makeFile(t, filepath.Join(src, "f"), []byte("data"), 0o644)
	tests := []struct {
		name    string
		prepare func(dst string)
		refused bool
	}{
		{"file", func(dst string) { makeFile(t, filepath.Join(dst, "x"), nil, 0o644) }, true},
		{"directory", func(dst string) { mustRun(t, os.Mkdir(filepath.Join(dst, "d"), 0o755)) }, true},
		{"lost+found with data", func(dst string) {
			mustRun(t, os.Mkdir(filepath.Join(dst, "lost+found"), 0o700))
			makeFile(t, filepath.Join(dst, "lost+found/1"), nil, 0o644)
		}, true},
		{"empty lost+found", func(dst string) { mustRun(t, os.Mkdir(filepath.Join(dst, "lost+found"), 0o700)) }, false},
		{"a failed attempt's staging", func(dst string) {
			mustRun(t, os.MkdirAll(filepath.Join(dst, stagingPrefix+"0123/part"), 0o700))
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := t.TempDir()
			tt.prepare(dst)
			before := describe(t, dst)
			if tt.refused {
				// No source runs: the check comes before the dial.
				var out bytes.Buffer
				code := run(t.Context(), []string{"fetch"}, testConfig(t, dst, "127.0.0.1:1"), &out)
				_, err := ParseResult(out.Bytes())
				if code != 1 || err == nil || !strings.Contains(err.Error(), "volume already holds data on this node: refusing to mix") {
					t.Fatalf("exit %d, output %q", code, out.String())
				}
				if after := describe(t, dst); len(after) != len(before) {
					t.Fatalf("target changed: %v", after)
				}
				return
			}
			addr, done := startServer(t, testConfig(t, src, ""))
			if _, err := fetch(t.Context(), testConfig(t, dst, addr)); err != nil {
				t.Fatal(err)
			}
			waitServed(t, done)
			names := dirNames(t, dst)
			if got := strings.Join(names, ","); got != "f" && got != "f,lost+found" {
				t.Fatalf("target holds %v", names)
			}
		})
	}
}

func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	mustRun(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// fakeSource serves one connection with what send writes after the token.
func fakeSource(t *testing.T, send func(w io.Writer)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
			return
		}
		send(c)
	}()
	return ln.Addr().String()
}

// archive writes entries as the source would, then its honest trailer.
func archive(w io.Writer, entries []tar.Header, data map[string]string) {
	d := newDigest()
	tw := tar.NewWriter(io.MultiWriter(w, d))
	for _, e := range entries {
		e.Size = int64(len(data[e.Name]))
		if e.Mode == 0 {
			e.Mode = 0o644
		}
		if err := tw.WriteHeader(&e); err != nil {
			return
		}
		_, _ = io.WriteString(tw, data[e.Name])
	}
	_ = tw.Close()
	line, _ := json.Marshal(d.trailer(int64(len(entries))))
	fmt.Fprintf(w, "%s\n", line)
}

var rootEntry = tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755}

func TestHostileStream(t *testing.T) {
	outside := t.TempDir()
	abs := filepath.Join("/etc", "panelx-volumemove-test-"+randomHex(4))
	tests := []struct {
		name    string
		entries []tar.Header
	}{
		{"parent", []tar.Header{rootEntry, {Name: "../x", Typeflag: tar.TypeReg}}},
		{"parent inside", []tar.Header{rootEntry, {Name: "a/../../x", Typeflag: tar.TypeReg}}},
		{"absolute", []tar.Header{rootEntry, {Name: abs, Typeflag: tar.TypeReg}}},
		{"through a link to /", []tar.Header{rootEntry,
			{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "/"},
			{Name: "l" + abs, Typeflag: tar.TypeReg}}},
		{"through a link out", []tar.Header{rootEntry,
			{Name: "l", Typeflag: tar.TypeSymlink, Linkname: outside},
			{Name: "l/x", Typeflag: tar.TypeReg}}},
		{"through a relative link out", []tar.Header{rootEntry,
			{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "../../../../../../.." + outside},
			{Name: "l/x", Typeflag: tar.TypeReg}}},
		{"directory through a link", []tar.Header{rootEntry,
			{Name: "l", Typeflag: tar.TypeSymlink, Linkname: outside},
			{Name: "l/d/", Typeflag: tar.TypeDir}}},
		{"hard link out", []tar.Header{rootEntry, {Name: "h", Typeflag: tar.TypeLink, Linkname: "../x"}}},
		{"hard link to an absolute name", []tar.Header{rootEntry, {Name: "h", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"}}},
		{"hard link to a link", []tar.Header{rootEntry,
			{Name: "s", Typeflag: tar.TypeSymlink, Linkname: filepath.Join(outside, "x")},
			{Name: "h", Typeflag: tar.TypeLink, Linkname: "s"}}},
		{"file over a link", []tar.Header{rootEntry,
			{Name: "s", Typeflag: tar.TypeSymlink, Linkname: filepath.Join(outside, "x")},
			{Name: "s", Typeflag: tar.TypeReg}}},
		{"no root first", []tar.Header{{Name: "x", Typeflag: tar.TypeReg}}},
		{"device", []tar.Header{rootEntry, {Name: "null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "a", "b")
			mustRun(t, os.MkdirAll(dst, 0o755))
			addr := fakeSource(t, func(w io.Writer) {
				archive(w, tt.entries, map[string]string{"l" + abs: "pwned", "l/x": "pwned", "../x": "pwned", abs: "pwned"})
			})
			var out bytes.Buffer
			if code := run(t.Context(), []string{"fetch"}, testConfig(t, dst, addr), &out); code != 1 {
				t.Fatalf("exit code %d, output %q", code, out.String())
			}
			if _, err := ParseResult(out.Bytes()); err == nil {
				t.Fatalf("no error in %q", out.String())
			} else {
				t.Log(err)
			}
			for _, p := range []string{abs, filepath.Join(outside, "x"), filepath.Join(outside, "d"), filepath.Join(dst, "../x"), filepath.Join(dst, "../../x")} {
				if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("%s written: %v", p, err)
				}
			}
			if names := dirNames(t, dst); len(names) != 0 {
				t.Errorf("target left with %v", names)
			}
		})
	}
}

func TestDamagedStream(t *testing.T) {
	entries := []tar.Header{rootEntry, {Name: "f", Typeflag: tar.TypeReg}}
	data := map[string]string{"f": strings.Repeat("data", 10000)}
	var good bytes.Buffer
	archive(&good, entries, data)
	stream := good.Bytes()
	trailerAt := bytes.LastIndex(stream, []byte(`{"files"`))
	tests := []struct {
		name string
		send []byte
		want string
	}{
		{"truncated in a file", stream[:3000], "extract f: unexpected EOF"},
		{"truncated before the end blocks", stream[:trailerAt-1024], "trailer"},
		{"no trailer", stream[:trailerAt], "trailer"},
		{"flipped byte", flip(stream, 2000), "archive check failed"},
		{"wrong digest", otherDigest(stream), "archive check failed"},
		{"wrong count", []byte(strings.Replace(string(stream), `"files":2`, `"files":3`, 1)), "archive check failed"},
		{"nothing", nil, "wrong token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := t.TempDir()
			addr := fakeSource(t, func(w io.Writer) { _, _ = w.Write(tt.send) })
			var out bytes.Buffer
			if code := run(t.Context(), []string{"fetch"}, testConfig(t, dst, addr), &out); code != 1 {
				t.Fatalf("exit code %d, output %q", code, out.String())
			}
			r, err := ParseResult(out.Bytes())
			if err == nil || !strings.Contains(r.Error, tt.want) {
				t.Fatalf("result %+v, %v; want an error with %q", r, err, tt.want)
			}
			if names := dirNames(t, dst); len(names) != 0 {
				t.Errorf("target left with %v", names)
			}
		})
	}
}

// otherDigest changes the first hex digit of the trailer's digest.
func otherDigest(b []byte) []byte {
	i := bytes.Index(b, []byte(`"sha256":"`)) + len(`"sha256":"`)
	c := bytes.Clone(b)
	c[i] = "10"[min(1, int(c[i]-'0'))]
	return c
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}

// The source's task starts after the target's: fetch waits for it.
func TestFetchRetries(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	mustRun(t, err)
	addr := ln.Addr().String()
	ln.Close()

	src := t.TempDir()
	makeFile(t, filepath.Join(src, "f"), []byte("late"), 0o644)
	started := make(chan served, 1)
	go func() {
		time.Sleep(time.Second)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			started <- served{err: err}
			return
		}
		res, err := serveOn(t.Context(), ln, testConfig(t, src, ""))
		started <- served{res, err}
	}()
	dst := t.TempDir()
	begin := time.Now()
	res, err := fetch(t.Context(), testConfig(t, dst, addr))
	if err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(begin); waited < time.Second {
		t.Errorf("fetched after %v, before the source listened", waited)
	}
	if s := waitServed(t, started); s.err != nil || s.res != res {
		t.Fatalf("serve: %+v, fetch: %+v", s, res)
	}

	t.Run("gives up", func(t *testing.T) {
		cfg := testConfig(t, t.TempDir(), addr)
		cfg.dialTimeout = 500 * time.Millisecond
		_, err := fetch(t.Context(), cfg)
		if err == nil || !strings.Contains(err.Error(), "within 500ms") {
			t.Fatalf("fetch: %v", err)
		}
	})
	t.Run("unknown host", func(t *testing.T) {
		cfg := testConfig(t, t.TempDir(), "tasks.px-move-src-nonexistent.invalid:7070")
		cfg.dialTimeout = 500 * time.Millisecond
		_, err := fetch(t.Context(), cfg)
		var dns *net.DNSError
		if !errors.As(err, &dns) {
			t.Fatalf("fetch: %v", err)
		}
	})
}

func TestParseResult(t *testing.T) {
	digest := strings.Repeat("ab", 32)
	ok := fmt.Sprintf(`{"files":3,"bytes":4096,"sha256":"%s"}`, digest)
	tests := []struct {
		name    string
		output  string
		want    Result
		wantErr string
	}{
		{"plain", ok + "\n", Result{Files: 3, Bytes: 4096, SHA256: digest}, ""},
		{"no newline", ok, Result{Files: 3, Bytes: 4096, SHA256: digest}, ""},
		{"timestamps", "2026-12-04T18:00:00.000000000Z volume-move fetch: retrying\n2026-12-04T18:00:01.123456789Z " + ok + "\n", Result{Files: 3, Bytes: 4096, SHA256: digest}, ""},
		{"crlf and garbage after", ok + "\r\n{not json\n" + `{"level":"info"}` + "\n\x00\x01 junk\n", Result{Files: 3, Bytes: 4096, SHA256: digest}, ""},
		{"last one wins", `{"error":"first try failed"}` + "\n" + ok + "\n", Result{Files: 3, Bytes: 4096, SHA256: digest}, ""},
		{"error", "starting\n2026-12-04T18:00:00Z " + `{"files":0,"bytes":0,"sha256":"","error":"archive check failed"}` + "\n", Result{Error: "archive check failed"}, "archive check failed"},
		{"bad digest is no result", `{"files":1,"bytes":1,"sha256":"xyz"}`, Result{}, "no result"},
		{"extra field is no result", `{"files":1,"bytes":1,"sha256":"` + digest + `","x":1}`, Result{}, "no result"},
		{"empty", "", Result{}, "no result"},
		{"garbage", "panic: runtime error\n\tgoroutine 1\n", Result{}, "no result"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseResult([]byte(tt.output))
			if got != tt.want {
				t.Errorf("result %+v, want %+v", got, tt.want)
			}
			if (err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// The mover runs in a FROM scratch container: no Docker client, nothing
// of PanelX.
func TestStandardLibraryOnly(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	if deps := strings.Fields(string(out)); len(deps) != 1 {
		t.Fatalf("imports outside the standard library: %v", deps)
	}
}

// BenchmarkRoundTrip moves 200 MiB over loopback: in 3000 files of 1 byte
// to 140 KiB in 50 directories, and in 10 files of 20 MiB.
func BenchmarkRoundTrip(b *testing.B) {
	for _, bb := range []struct {
		name  string
		files int
	}{{"3000 files", 3000}, {"10 files", 10}} {
		b.Run(bb.name, func(b *testing.B) {
			src := b.TempDir()
			const total = 200 << 20
			var size int64
			buf := make([]byte, 2*total/bb.files)
			for i := range bb.files {
				dir := filepath.Join(src, fmt.Sprintf("d%02d", i%50))
				mustRun(b, os.MkdirAll(dir, 0o755))
				n := len(buf) / 2
				if bb.files > 100 {
					n = 1 + i*len(buf)/bb.files
				}
				_, _ = rand.Read(buf[:n])
				makeFile(b, filepath.Join(dir, fmt.Sprintf("f%04d", i)), buf[:n], 0o644)
				size += int64(n)
			}
			b.SetBytes(size)
			for b.Loop() {
				dst := filepath.Join(b.TempDir(), "v")
				mustRun(b, os.Mkdir(dst, 0o755))
				cfg := testConfig(b, src, "")
				cfg.stderr = io.Discard
				addr, done := startServer(b, cfg)
				cfg = testConfig(b, dst, addr)
				cfg.stderr = io.Discard
				if _, err := fetch(context.Background(), cfg); err != nil {
					b.Fatal(err)
				}
				if s := waitServed(b, done); s.err != nil {
					b.Fatal(s.err)
				}
				b.StopTimer()
				mustRun(b, os.RemoveAll(dst))
				b.StartTimer()
			}
		})
	}
}

// Should the order checks ever let an entry through a link (a directory
// swapped for a link under the extractor), os.Root still keeps every
// write inside the volume.
func TestRootConfinesBehindTheChecks(t *testing.T) {
	dst, outside := t.TempDir(), t.TempDir()
	root, err := os.OpenRoot(dst)
	mustRun(t, err)
	defer root.Close()
	mustRun(t, root.Mkdir("staging", 0o700))
	mustRun(t, os.Symlink(outside, filepath.Join(dst, "staging/d")))
	for _, hdr := range []tar.Header{
		{Name: "d/x", Typeflag: tar.TypeReg},
		{Name: "d/sub/", Typeflag: tar.TypeDir},
		{Name: "d/l", Typeflag: tar.TypeSymlink, Linkname: "/"},
	} {
		x := &extractor{root: root, base: "staging", buf: make([]byte, 512), files: 1,
			dirs: []openDir{{name: "."}, {name: "d", a: attrs{mode: 0o755}}}}
		if err := x.entry(&hdr, strings.NewReader("")); err == nil {
			t.Errorf("%s: extracted through a link out of the volume", hdr.Name)
		} else {
			t.Log(err)
		}
		if err := x.closeDirs(); err == nil {
			t.Errorf("%s: attributes set through a link out of the volume", hdr.Name)
		}
	}
	if names := dirNames(t, outside); len(names) != 0 {
		t.Errorf("written outside the volume: %v", names)
	}
}
