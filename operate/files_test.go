package operate

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"debug/elf"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/docker/docker/api/types/container"
)

// filesFixture: the project's volume "data" holding links that point out of
// it, a second volume "other" holding a secret, and a helper image whose
// /etc holds another secret. Nothing the tests get back may contain either.
type filesFixture struct {
	e           *dockerEnv
	img         string
	imageSecret string // in the helper image, /etc/panelx-marker
	otherSecret string // in the other volume
	raw         string // a raw container on the data volume, for checks
	rawOther    string
	files       *Files
}

func newFilesFixture(t *testing.T) *filesFixture {
	t.Helper()
	e := newDockerEnv(t)
	fx := &filesFixture{e: e, imageSecret: "IMAGE-SECRET-" + randomHex(6), otherSecret: "OTHER-SECRET-" + randomHex(6)}
	fx.img = e.toolImage(fx.imageSecret, "-sleep")
	data, other := e.volume("data"), e.volume("other")
	fx.rawOther = e.rawVolume(other, fx.img)
	e.putTar(fx.rawOther, "/v", tarEntry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "secret.txt", Mode: 0o600}, body: []byte(fx.otherSecret)})
	fx.raw = e.rawVolume(data, fx.img)
	e.putTar(fx.raw, "/v",
		tarEntry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "etc-link", Linkname: "/etc"}},
		tarEntry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "spare-link", Linkname: "/etc"}},
		tarEntry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "owned/", Mode: 0o750, Uid: 1000, Gid: 1000}},
		tarEntry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "owned/keep.sh", Mode: 0o750, Uid: 1000, Gid: 1000}, body: []byte("#!old")},
		tarEntry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "victim.txt", Mode: 0o644}, body: []byte("victim")},
	)
	// Docker's archive API refuses to extract a link escaping its target
	// directory, so this one is made by a process.
	e.runIn(data, fx.img, "/tool", "ln", "../../", "/v/up")
	fx.files = fx.open(t, FilesOptions{})
	return fx
}

// open opens the data volume with the fixture's image and helper binary,
// overridden by opts where set.
func (fx *filesFixture) open(t *testing.T, opts FilesOptions) *Files {
	t.Helper()
	opts.Instance, opts.Project, opts.Volume = fx.e.instance, fx.e.project, "data"
	if opts.Image == "" {
		opts.Image = fx.img
	}
	if opts.HelperBinary == "-" {
		opts.HelperBinary = ""
	} else if opts.HelperBinary == "" {
		opts.HelperBinary = toolBinary(t)
	}
	f, err := OpenFiles(t.Context(), fx.e.cli, opts)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func write(t *testing.T, f *Files, p string, body []byte) {
	t.Helper()
	if err := f.Write(t.Context(), p, bytes.NewReader(body), int64(len(body)), 64<<20); err != nil {
		t.Fatalf("write %s: %v", p, err)
	}
}

func read(t *testing.T, f *Files, p string) ([]byte, FileInfo) {
	t.Helper()
	rc, info, err := f.Read(t.Context(), p)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return b, info
}

func list(t *testing.T, f *Files, dir string) Listing {
	t.Helper()
	l, err := f.List(t.Context(), dir)
	if err != nil {
		t.Fatalf("list %q: %v", dir, err)
	}
	return l
}

func names(l Listing) string {
	var out []string
	for _, e := range l.Entries {
		out = append(out, e.Name)
	}
	return strings.Join(out, ",")
}

func entry(t *testing.T, l Listing, name string) FileInfo {
	t.Helper()
	for _, e := range l.Entries {
		if e.Name == name {
			return e
		}
	}
	t.Fatalf("no %s in %s", name, names(l))
	return FileInfo{}
}

func TestFiles(t *testing.T) {
	fx := newFilesFixture(t)
	f, ctx := fx.files, t.Context()

	t.Run("open", func(t *testing.T) {
		opts := FilesOptions{Instance: fx.e.instance, Project: fx.e.project, Volume: "data"}
		if _, err := OpenFiles(ctx, fx.e.cli, opts); !errors.Is(err, ErrNoHelperImage) {
			t.Errorf("no containers, no image: %v, want ErrNoHelperImage", err)
		}
		fx.e.replica("app", 0, fx.img, replicaOpts{noStart: true})
		g, err := OpenFiles(ctx, fx.e.cli, opts)
		if err != nil || g.image != fx.img {
			t.Fatalf("default image: %v, %v", g, err)
		}
		if l := list(t, g, ""); !strings.Contains(names(l), "victim.txt") {
			t.Errorf("root through the project's image: %s", names(l))
		}
		bins := []string{"files_test.go"}
		if dynamic(t, os.Args[0]) { // as a -race test binary is
			bins = append(bins, os.Args[0])
		}
		for _, bin := range bins {
			bad := opts
			bad.HelperBinary = bin
			if _, err := OpenFiles(ctx, fx.e.cli, bad); err == nil {
				t.Errorf("helper binary %s accepted", bin)
			}
		}
		for _, bad := range []FilesOptions{
			{Instance: "someone-else", Project: fx.e.project, Volume: "data"},
			{Instance: fx.e.instance, Project: fx.e.project, Volume: "missing"},
		} {
			if _, err := OpenFiles(ctx, fx.e.cli, bad); !errors.Is(err, ErrNotFound) {
				t.Errorf("%+v: %v, want ErrNotFound", bad, err)
			}
		}
	})

	t.Run("upload, list, download round trip", func(t *testing.T) {
		if err := f.Mkdir(ctx, "dir"); err != nil {
			t.Fatal(err)
		}
		body := randomBytes(t, 3<<20+17)
		write(t, f, "dir/blob.bin", body)
		l := list(t, f, "dir")
		if names(l) != "blob.bin" || l.Truncated {
			t.Fatalf("listing = %s (truncated %v)", names(l), l.Truncated)
		}
		if e := l.Entries[0]; e.Type != TypeFile || e.Size != int64(len(body)) || e.Mode != 0o644 || e.UID != 0 || e.ModTime.IsZero() {
			t.Errorf("entry = %+v", e)
		}
		got, info := read(t, f, "dir/blob.bin")
		if !bytes.Equal(got, body) || info.Size != int64(len(body)) || info.Name != "blob.bin" {
			t.Fatalf("downloaded %d bytes (equal %v), info %+v", len(got), bytes.Equal(got, body), info)
		}
		// Replace with other content.
		body = randomBytes(t, 1<<20+3)
		write(t, f, "dir/blob.bin", body)
		if got, _ := read(t, f, "dir/blob.bin"); !bytes.Equal(got, body) {
			t.Fatal("replaced content differs")
		}
		if l := list(t, f, "dir"); names(l) != "blob.bin" {
			t.Errorf("after replacing: %s", names(l))
		}
	})

	t.Run("owners and modes", func(t *testing.T) {
		write(t, f, "owned/new.txt", []byte("new"))
		write(t, f, "owned/keep.sh", []byte("#!new"))
		l := list(t, f, "owned")
		if e := entry(t, l, "new.txt"); e.UID != 1000 || e.GID != 1000 || e.Mode != 0o644 {
			t.Errorf("new file in a uid-1000 directory = %+v", e)
		}
		if e := entry(t, l, "keep.sh"); e.UID != 1000 || e.GID != 1000 || e.Mode != 0o750 {
			t.Errorf("replaced file = %+v, want its owner and mode kept", e)
		}
		if err := f.Mkdir(ctx, "owned/sub"); err != nil {
			t.Fatal(err)
		}
		if e := entry(t, list(t, f, "owned"), "sub"); e.Type != TypeDir || e.UID != 1000 || e.Mode != 0o755 {
			t.Errorf("new directory = %+v", e)
		}
		if got, _ := read(t, f, "owned/keep.sh"); string(got) != "#!new" {
			t.Errorf("keep.sh = %q", got)
		}
	})

	t.Run("mkdir, rename, delete", func(t *testing.T) {
		if err := f.Mkdir(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if err := f.Mkdir(ctx, "a"); !errors.Is(err, ErrExist) {
			t.Errorf("mkdir twice: %v", err)
		}
		if err := f.Mkdir(ctx, "nope/b"); !errors.Is(err, ErrNotFound) {
			t.Errorf("mkdir without parent: %v", err)
		}
		if err := f.Mkdir(ctx, "victim.txt/b"); !errors.Is(err, ErrNotDir) {
			t.Errorf("mkdir under a file: %v", err)
		}
		write(t, f, "a/f.txt", []byte("f"))
		write(t, f, "a/h.txt", []byte("h"))
		if err := f.Rename(ctx, "a/f.txt", "a/g.txt"); err != nil {
			t.Fatal(err)
		}
		if err := f.Rename(ctx, "a/g.txt", "a/h.txt"); !errors.Is(err, ErrExist) {
			t.Errorf("rename onto a file: %v", err)
		}
		if err := f.Rename(ctx, "a/missing", "a/x"); !errors.Is(err, ErrNotFound) {
			t.Errorf("rename a missing file: %v", err)
		}
		if err := f.Rename(ctx, "a", "b"); err != nil {
			t.Fatal(err)
		}
		if got := names(list(t, f, "b")); got != "g.txt,h.txt" {
			t.Errorf("renamed directory holds %s", got)
		}
		if err := f.Delete(ctx, "b"); err != nil {
			t.Fatal(err)
		}
		if err := f.Delete(ctx, "spare-link"); err != nil { // the link, not /etc
			t.Fatal(err)
		}
		root := names(list(t, f, ""))
		if strings.Contains(root, "b,") || strings.Contains(root, "spare-link") || !strings.Contains(root, "etc-link") {
			t.Errorf("root after deletes: %s", root)
		}
		if err := f.Delete(ctx, "b"); !errors.Is(err, ErrNotFound) {
			t.Errorf("delete twice: %v", err)
		}
		if _, err := os.Stat("/etc/passwd"); err != nil {
			t.Errorf("host /etc: %v", err)
		}
	})

	t.Run("size limit and failed uploads", func(t *testing.T) {
		if err := f.Write(ctx, "big", bytes.NewReader(make([]byte, 2000)), 2000, 1000); !errors.Is(err, ErrTooLarge) {
			t.Errorf("over the limit: %v", err)
		}
		write(t, f, "keep.txt", []byte("original"))
		for name, r := range map[string]io.Reader{
			"short body": bytes.NewReader(make([]byte, 500)),
			"long body":  bytes.NewReader(make([]byte, 1001)),
		} {
			if err := f.Write(ctx, "keep.txt", r, 1000, 1<<20); !errors.Is(err, ErrSizeMismatch) {
				t.Errorf("%s: %v, want ErrSizeMismatch", name, err)
			}
		}
		failing := iotest.TimeoutReader(bytes.NewReader(make([]byte, 100<<10)))
		if err := f.Write(ctx, "keep.txt", failing, 100<<10, 1<<20); err == nil {
			t.Error("a failing body was accepted")
		}
		if err := f.Write(ctx, "keep.txt", bytes.NewReader(nil), -1, 1<<20); err == nil {
			t.Error("an unknown size was accepted")
		}
		if got, _ := read(t, f, "keep.txt"); string(got) != "original" {
			t.Errorf("keep.txt = %q after failed uploads", got)
		}
		root := names(list(t, f, ""))
		if strings.Contains(root, uploadPrefix) || strings.Contains(root, "big") {
			t.Errorf("leftovers in the root: %s", root)
		}
		if err := f.Write(ctx, "owned", bytes.NewReader([]byte("x")), 1, 10); !errors.Is(err, ErrIsDir) {
			t.Errorf("write over a directory: %v", err)
		}
	})

	t.Run("listing bounds", func(t *testing.T) {
		if err := f.Mkdir(ctx, "many"); err != nil {
			t.Fatal(err)
		}
		write(t, f, "many/a-big", randomBytes(t, 2<<20))
		write(t, f, "many/b", []byte("b"))
		write(t, f, "many/c", []byte("c"))
		if err := f.Mkdir(ctx, "many/d"); err != nil {
			t.Fatal(err)
		}
		write(t, f, "many/d/deep", []byte("deep"))

		// The archive carries a-big's content before b: past the budget,
		// the helper lists instead.
		l := list(t, fx.open(t, FilesOptions{ListByteBudget: 1 << 20}), "many")
		if names(l) != "a-big,b,c,d" || l.Truncated || entry(t, l, "a-big").Size != 2<<20 || entry(t, l, "d").Type != TypeDir {
			t.Errorf("over budget, with helper: %s truncated=%v %+v", names(l), l.Truncated, l.Entries)
		}
		l = list(t, fx.open(t, FilesOptions{ListByteBudget: 1 << 20, HelperBinary: "-"}), "many")
		if names(l) != "a-big" || !l.Truncated {
			t.Errorf("over budget, no helper: %s truncated=%v", names(l), l.Truncated)
		}
		l = list(t, fx.open(t, FilesOptions{MaxListEntries: 2}), "many")
		if names(l) != "a-big,b" || !l.Truncated {
			t.Errorf("at most 2: %s truncated=%v", names(l), l.Truncated)
		}
		root := list(t, f, "")
		if e := entry(t, root, "etc-link"); e.Type != TypeSymlink || e.LinkTarget != "/etc" {
			t.Errorf("a link is listed as such: %+v", e)
		}
	})

	t.Run("traversal attempts are refused", func(t *testing.T) {
		suffix := randomHex(4)
		bad := []string{
			"../x", "..%2fx", "..%2Fx", "%2e%2e/etc/passwd", "/etc/passwd", "a/../../x", `a\..\x`, "a\x00b",
			"etc-link/panelx-marker", "etc-link/evil-" + suffix, "up/etc/panelx-marker", "up/evil-" + suffix,
			"up/v/victim.txt",
		}
		var returned bytes.Buffer // everything the refused calls gave back
		check := func(op, p string, err error) {
			t.Helper()
			if !errors.Is(err, ErrInvalidPath) {
				t.Errorf("%s %q: %v, want ErrInvalidPath", op, p, err)
			}
			if err != nil {
				returned.WriteString(err.Error())
			}
		}
		for _, p := range bad {
			l, err := f.List(ctx, p)
			check("list", p, err)
			returned.WriteString(names(l))
			rc, _, err := f.Read(ctx, p)
			check("read", p, err)
			if rc != nil {
				b, _ := io.ReadAll(rc)
				returned.Write(b)
				rc.Close()
			}
			check("write", p, f.Write(ctx, p, strings.NewReader("evil"), 4, 100))
			check("mkdir", p, f.Mkdir(ctx, p))
			check("rename from", p, f.Rename(ctx, p, "stolen-"+suffix))
			check("rename to", p, f.Rename(ctx, "victim.txt", p))
			check("delete", p, f.Delete(ctx, p))
		}
		// The links themselves cannot be listed or read through either.
		for _, p := range []string{"etc-link", "up"} {
			_, err := f.List(ctx, p)
			check("list", p, err)
			_, _, err = f.Read(ctx, p)
			check("read", p, err)
		}
		for _, secret := range []string{fx.imageSecret, fx.otherSecret} {
			if strings.Contains(returned.String(), secret) {
				t.Errorf("a refused call returned data from outside the volume (%s)", secret)
			}
		}

		// Nothing was written outside the volume, nor inside it.
		for _, p := range []string{"/etc/evil-" + suffix, "/evil-" + suffix, "/stolen-" + suffix} {
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("%s exists on the host", p)
			}
		}
		tree := fx.e.tree(fx.raw)
		for name := range tree {
			if strings.Contains(name, suffix) {
				t.Errorf("%s written into the volume", name)
			}
		}
		if tree["v/victim.txt"] != "victim" || tree["v/etc-link"] != "/etc" {
			t.Errorf("victim.txt = %q, etc-link -> %q", tree["v/victim.txt"], tree["v/etc-link"])
		}
		other := fx.e.tree(fx.rawOther)
		if len(other) != 2 || other["v/secret.txt"] != fx.otherSecret {
			t.Errorf("the other volume changed: %v", other)
		}
		// And no readable file of the volume holds anything from outside.
		for name, body := range tree {
			for _, secret := range []string{fx.imageSecret, fx.otherSecret} {
				if strings.Contains(body, secret) {
					t.Errorf("%s holds %s", name, secret)
				}
			}
		}
	})

	// Where the TOCTOU window lands: between PanelX's checks and Docker's
	// use of a path, the volume's own app could swap a directory for a link.
	// Docker then resolves it inside the helper container's root file system
	// (the helper image's files, not the host's), and refuses to write
	// anywhere but the volume because that root is read-only.
	t.Run("Docker resolves links inside the helper's root", func(t *testing.T) {
		ro, err := f.newBox(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		defer ro.remove(ctx)
		rc, _, err := fx.e.cli.CopyFromContainer(ctx, ro.id, volPath("etc-link/panelx-marker"))
		if err != nil {
			t.Fatalf("unchecked read through the link: %v", err)
		}
		tr := tar.NewReader(rc)
		if _, err := tr.Next(); err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(tr)
		rc.Close()
		if string(got) != fx.imageSecret {
			t.Fatalf("the link resolved to %q, want the helper image's /etc/panelx-marker", got)
		}
		if _, err := os.Stat("/etc/os-release"); err == nil {
			if _, err := ro.stat(ctx, "etc-link/os-release"); !errors.Is(err, ErrNotFound) {
				t.Errorf("the host's /etc/os-release is visible through the link: %v", err)
			}
		}

		rw, err := f.newBox(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		defer rw.remove(ctx)
		for _, p := range []string{"etc-link", "up"} {
			hdr := &tar.Header{Typeflag: tar.TypeReg, Name: "evil", Mode: 0o644, Size: 4}
			err := copyTar(ctx, fx.e.cli, rw.id, volPath(p), hdr, strings.NewReader("evil"))
			if err == nil || !strings.Contains(err.Error(), "read-only") {
				t.Errorf("unchecked write through %s: %v, want Docker's read-only refusal", p, err)
			}
		}
	})

	t.Run("a canceled upload cleans up", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		r, w := io.Pipe()
		defer w.Close()
		go func() {
			w.Write(make([]byte, 64<<10))
			cancel() // the client goes away mid-upload
		}()
		if err := f.Write(cctx, "partial.bin", r, 1<<20, 1<<20); err == nil {
			t.Fatal("a canceled upload succeeded")
		}
		if left := fx.e.helpers(); len(left) != 0 {
			t.Fatalf("%d helper containers left after a canceled upload", len(left))
		}
		if root := names(list(t, f, "")); strings.Contains(root, "partial") || strings.Contains(root, uploadPrefix) {
			t.Errorf("leftovers: %s", root)
		}
	})

	t.Run("helper containers are removed", func(t *testing.T) {
		if left := fx.e.helpers(); len(left) != 0 {
			t.Fatalf("%d helper containers left", len(left))
		}
		if _, err := f.newBox(ctx, false); err != nil { // an orphan
			t.Fatal(err)
		}
		n, err := RemoveHelpers(ctx, fx.e.cli, fx.e.instance, 0)
		if err != nil || n != 1 || len(fx.e.helpers()) != 0 {
			t.Fatalf("RemoveHelpers = %d, %v; %d left", n, err, len(fx.e.helpers()))
		}
		// Only helpers: the raw containers and the replica stay.
		list, err := fx.e.cli.ContainerList(ctx, container.ListOptions{All: true})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(list, func(c container.Summary) bool { return c.ID == fx.raw }) {
			t.Error("RemoveHelpers removed a container that is not a helper")
		}
	})
}

func dynamic(t *testing.T, path string) bool {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return slices.ContainsFunc(f.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP })
}
