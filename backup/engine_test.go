package backup

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/panelx/panelx/internal/testenv/seaweedfs"
)

// dockerTar is a volume as Docker's archive API gives "<dir>/.".
func dockerTar(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "./", Mode: 0o700, Uid: 999, Gid: 998}))
	must(tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "./sub/", Mode: 0o755}))
	for _, name := range []string{"a", "sub/b"} {
		body := files[name]
		must(tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "./" + name, Mode: 0o640, Size: int64(len(body)), Uid: 5}))
		_, err := tw.Write([]byte(body))
		must(err)
	}
	must(tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "./link", Linkname: "/etc/passwd"}))
	must(tw.WriteHeader(&tar.Header{Typeflag: tar.TypeLink, Name: "./hard", Linkname: "./a"}))
	must(tw.Close())
	return buf.Bytes()
}

func bytesSource(b []byte) Source {
	return SourceFunc(func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
}

// memSink keeps what a restore staged.
type memSink struct {
	staged    map[string]*tar.Header
	content   map[string]string
	committed bool
	discarded bool
	root      *RootAttrs
}

func (m *memSink) Stage(ctx context.Context, r io.Reader) error {
	m.staged, m.content = map[string]*tar.Header{}, map[string]string{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return err
		}
		m.staged[h.Name], m.content[h.Name] = h, string(b)
	}
}
func (m *memSink) Commit(ctx context.Context, root *RootAttrs) error {
	m.committed, m.root = true, root
	return nil
}
func (m *memSink) Discard(ctx context.Context) error { m.discarded = true; return nil }

func newFakeS3(t *testing.T) *S3 {
	t.Helper()
	// TLS, as S3 is spoken in production: over plain HTTP minio-go signs
	// uploads in aws-chunked framing, which gofakes3 stores as it came
	// (the read-back check caught that).
	srv := httptest.NewTLSServer(gofakes3.New(s3mem.New()).Server())
	t.Cleanup(srv.Close)
	ep := strings.TrimPrefix(srv.URL, "https://")
	c, err := minio.New(ep, &minio.Options{Creds: credentials.NewStaticV4("ak", "sk", ""), Secure: true, Transport: srv.Client().Transport})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.MakeBucket(context.Background(), "backups", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	s, err := NewS3(S3Config{Endpoint: ep, Bucket: "backups", Prefix: "panelx", AccessKey: "ak", SecretKey: "sk", Transport: srv.Client().Transport})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newSeaweedS3 is a real S3 server (SeaweedFS) over plain HTTP, where
// minio-go streams uploads in aws-chunked framing.
func newSeaweedS3(t *testing.T) *S3 {
	srv := seaweedfs.Start(t, "backups")
	s, err := NewS3(S3Config{Endpoint: srv.Endpoint, Bucket: "backups", Prefix: "panelx", Insecure: true,
		AccessKey: seaweedfs.AccessKey, SecretKey: seaweedfs.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBackupRestoreRoundTrip(t *testing.T) {
	files := map[string]string{"a": "original bytes of a", "sub/b": strings.Repeat("b", 100000)}
	src := dockerTar(t, files)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		target  func(t *testing.T) Target
		encrypt bool
	}{
		{"local", func(t *testing.T) Target { return &Local{Dir: t.TempDir()} }, false},
		{"local-age", func(t *testing.T) Target { return &Local{Dir: t.TempDir()} }, true},
		{"s3-fake", func(t *testing.T) Target { return newFakeS3(t) }, false},
		{"s3-fake-age", func(t *testing.T) Target { return newFakeS3(t) }, true},
		{"seaweedfs", func(t *testing.T) Target { return newSeaweedS3(t) }, false},
		{"seaweedfs-age", func(t *testing.T) Target { return newSeaweedS3(t) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			tgt := tc.target(t)
			opts := Options{Target: tgt, Key: ArchiveKey("shop", "data", time.Now(), "run1", tc.encrypt),
				Meta: Metadata{Project: "shop", Volume: "data", CreatedAt: time.Now().UTC()}}
			var ids []age.Identity
			if tc.encrypt {
				opts.Recipients, opts.RecipientNames = []age.Recipient{id.Recipient()}, []string{id.Recipient().String()}
				ids = []age.Identity{id}
			}
			res, err := Backup(ctx, bytesSource(src), opts)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := tgt.List(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			if len(objs) != 2 {
				t.Fatalf("objects %v, want the archive and its manifest", objs)
			}
			m, err := ReadManifest(ctx, tgt, res.Key)
			if err != nil || m.SHA256 != res.SHA256 || m.ArchiveBytes != res.Bytes || m.Entries != 5 || m.Root == nil || m.Root.UID != 999 || m.Root.Mode != 0o700 {
				t.Fatalf("manifest %+v, %v", m, err)
			}
			if tc.encrypt {
				raw := readAll(t, tgt, res.Key)
				if bytes.Contains(raw, []byte("\x1f\x8b")) && !bytes.HasPrefix(raw, []byte(ageMagic)) {
					t.Fatal("encrypted archive does not start as an age file")
				}
				if _, err := Verify(ctx, tgt, res.Key, Expect{Bytes: res.Bytes, SHA256: res.SHA256}, nil); !errors.Is(err, ErrNoIdentity) {
					t.Fatalf("verify without identity: %v", err)
				}
				other, _ := age.GenerateX25519Identity()
				if _, err := Verify(ctx, tgt, res.Key, Expect{Bytes: res.Bytes, SHA256: res.SHA256}, []age.Identity{other}); !errors.Is(err, ErrNoIdentity) {
					t.Fatalf("verify with another identity: %v", err)
				}
			}
			sink := &memSink{}
			meta, err := Restore(ctx, tgt, res.Key, Expect{Bytes: res.Bytes, SHA256: res.SHA256, Project: "shop", Volume: "data"}, ids, sink)
			if err != nil {
				t.Fatal(err)
			}
			if !sink.committed || sink.root == nil || sink.root.GID != 998 || meta.Volume != "data" {
				t.Fatalf("sink %+v meta %+v", sink, meta)
			}
			for name, body := range files {
				if sink.content[name] != body {
					t.Fatalf("%s: %q", name, sink.content[name])
				}
			}
			if h := sink.staged["hard"]; h == nil || h.Linkname != "a" {
				t.Fatalf("hard link %+v", h)
			}
			if h := sink.staged["link"]; h == nil || h.Linkname != "/etc/passwd" {
				t.Fatalf("symlink %+v", h)
			}
			if _, ok := sink.staged[MetadataName]; ok {
				t.Fatal("the metadata entry was restored")
			}
			// Another volume's record does not open this archive.
			if _, err := Verify(ctx, tgt, res.Key, Expect{Bytes: res.Bytes, SHA256: res.SHA256, Project: "shop", Volume: "other"}, ids); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("verify as another volume: %v", err)
			}
		})
	}
}

func readAll(t *testing.T, tgt Target, key string) []byte {
	t.Helper()
	rc, err := tgt.Open(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCorruptArchiveIsRefusedBeforeTheSink(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tgt := &Local{Dir: dir}
	res, err := Backup(ctx, bytesSource(dockerTar(t, map[string]string{"a": "x", "sub/b": "y"})), Options{Target: tgt, Key: "v/one.tar.gz", Meta: Metadata{Project: "p", Volume: "v"}})
	if err != nil {
		t.Fatal(err)
	}
	raw := readAll(t, tgt, res.Key)
	for _, tc := range []struct {
		name   string
		damage func([]byte) []byte
	}{
		{"flipped byte", func(b []byte) []byte { b = bytes.Clone(b); b[len(b)/2] ^= 0xff; return b }},
		{"truncated", func(b []byte) []byte { return b[:len(b)-10] }},
		{"appended", func(b []byte) []byte { return append(bytes.Clone(b), 0) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(dir, res.Key), tc.damage(raw), 0o600); err != nil {
				t.Fatal(err)
			}
			sink := &memSink{}
			_, err := Restore(ctx, tgt, res.Key, Expect{Bytes: res.Bytes, SHA256: res.SHA256}, nil, sink)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("restore: %v", err)
			}
			if sink.staged != nil || sink.committed {
				t.Fatal("a damaged archive reached the sink")
			}
		})
	}
}

// failingTarget fails uploads after some bytes, like a full disk.
type failingTarget struct {
	*Local
	after int64
}

func (f *failingTarget) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	return f.Local.Put(ctx, key, io.MultiReader(io.LimitReader(r, f.after), errReader{}))
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("no space left on device") }

func TestFailedWriteLeavesNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tgt := &failingTarget{Local: &Local{Dir: dir}, after: 100}
	_, err := Backup(ctx, bytesSource(dockerTar(t, map[string]string{"a": strings.Repeat("x", 1<<20), "sub/b": "y"})), Options{Target: tgt, Key: "v/one.tar.gz", Level: 1})
	if err == nil || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("backup: %v", err)
	}
	if objs, _ := tgt.List(ctx, ""); len(objs) != 0 {
		t.Fatalf("left behind: %v", objs)
	}
}

func TestCanceledBackupLeavesNoArchive(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	tgt := &Local{Dir: t.TempDir()}
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write(dockerTar(t, map[string]string{"a": "x", "sub/b": "y"})[:1024])
		time.Sleep(100 * time.Millisecond)
		cancel() // the process "dies" mid-stream
	}()
	_, err := Backup(ctx, SourceFunc(func(context.Context) (io.ReadCloser, error) { return pr, nil }), Options{Target: tgt, Key: "v/one.tar.gz"})
	if err == nil {
		t.Fatal("a canceled backup succeeded")
	}
	pw.Close()
	if objs, _ := tgt.List(context.Background(), ""); len(objs) != 0 {
		t.Fatalf("left behind: %v", objs)
	}
}

func TestSweepPartials(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tgt := &Local{Dir: dir}
	for _, k := range []string{"v/a.tar.gz", "v/a.tar.gz.partial-1", "v/b.tar.gz.json.partial-2"} {
		if _, err := tgt.Put(ctx, k, strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
	}
	n, err := SweepPartials(ctx, tgt, "v/", time.Minute, time.Now().Add(time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("swept %d, %v", n, err)
	}
	objs, _ := tgt.List(ctx, "")
	if len(objs) != 1 || objs[0].Key != "v/a.tar.gz" {
		t.Fatalf("left %v", objs)
	}
}

func TestLocalKeysStayInside(t *testing.T) {
	tgt := &Local{Dir: t.TempDir()}
	for _, k := range []string{"../x", "/etc/passwd", "a/../../x", ""} {
		if _, err := tgt.Put(context.Background(), k, strings.NewReader("x")); err == nil {
			t.Errorf("put %q succeeded", k)
		}
	}
}
