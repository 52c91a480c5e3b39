package backup

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"filippo.io/age"
	"github.com/klauspost/compress/gzip"
)

// Source gives a volume's contents as a tar stream whose entries are
// named as Docker's archive API names those of "<dir>/.": "./", "./a".
type Source interface {
	Open(ctx context.Context) (io.ReadCloser, error)
}

// SourceFunc adapts a function to Source.
type SourceFunc func(ctx context.Context) (io.ReadCloser, error)

func (f SourceFunc) Open(ctx context.Context) (io.ReadCloser, error) { return f(ctx) }

// Sink restores a tar stream into a volume: Stage extracts it beside the
// volume's data, then Commit swaps it in (setting the root's owner and
// mode) or Discard throws it away. The volume's data is untouched until
// Commit.
type Sink interface {
	Stage(ctx context.Context, r io.Reader) error
	Commit(ctx context.Context, root *RootAttrs) error
	Discard(ctx context.Context) error
}

// Errors of verification.
var (
	// ErrCorrupt: the archive is not what its record says (size or
	// checksum), or does not decrypt, decompress or parse.
	ErrCorrupt = errors.New("archive is damaged")
	// ErrNoIdentity: the archive is encrypted and no identity opens it.
	ErrNoIdentity = errors.New("archive is encrypted and no given identity opens it")
)

var (
	errUploadEnded     = errors.New("upload ended")
	errExtractionEnded = errors.New("extraction ended")
)

// Options of a backup.
type Options struct {
	Target Target
	// Key is the archive's final key (ArchiveKey).
	Key  string
	Meta Metadata
	// Recipients encrypt the archive with age when not empty;
	// RecipientNames are their strings, for the manifest.
	Recipients     []age.Recipient
	RecipientNames []string
	// Level is the gzip level (0: gzip.DefaultCompression).
	Level int
}

// Result of a backup that succeeded: the archive was read back and matched.
type Result struct {
	Key      string
	Bytes    int64
	SHA256   string
	Manifest Manifest
}

// Backup streams src into an archive on the target under a temporary key,
// reads it back and compares size and SHA-256, and only then promotes it
// to opts.Key and writes the manifest beside it. On any failure nothing is
// left under opts.Key (or its manifest).
func Backup(ctx context.Context, src Source, opts Options) (Result, error) {
	if opts.Target == nil || opts.Key == "" {
		return Result{}, errors.New("backup: target and key are required")
	}
	if err := checkKey(opts.Key); err != nil {
		return Result{}, err
	}
	if opts.Level == 0 {
		opts.Level = gzip.DefaultCompression
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	tmp := partialKey(opts.Key)
	pr, pw := io.Pipe()
	type produced struct {
		sum             hashCount
		content, naming int64
		meta            Metadata
		err             error
	}
	done := make(chan produced, 1)
	go func() {
		var p produced
		p.sum = newHashCount()
		p.meta, p.content, p.naming, p.err = writeArchive(ctx, src, io.MultiWriter(pw, p.sum), opts)
		done <- p
		pw.CloseWithError(p.err) // nil: EOF
	}()
	n, putErr := opts.Target.Put(ctx, tmp, pr)
	pr.CloseWithError(errUploadEnded) // a producer Put stopped reading ends too
	if putErr != nil {
		cancel() // and one blocked reading the volume
	}
	p := <-done
	if p.err != nil || putErr != nil {
		cleanup(opts.Target, tmp)
		// Whichever side failed first caused the other's error: the
		// producer's shows in Put's (the pipe carries it), Put's ends the
		// producer (errUploadEnded, or the canceled context).
		if p.err != nil && !errors.Is(p.err, errUploadEnded) && (putErr == nil || errors.Is(putErr, p.err)) {
			return Result{}, fmt.Errorf("backup: read volume: %w", p.err)
		}
		return Result{}, fmt.Errorf("backup: write %s: %w", opts.Target.Describe(), putErr)
	}
	want := p.sum.result()
	if n != want.bytes {
		cleanup(opts.Target, tmp)
		return Result{}, fmt.Errorf("backup: the target took %d bytes of %d", n, want.bytes)
	}
	// Read back what the target holds, whole.
	got, err := readBack(ctx, opts.Target, tmp)
	if err != nil {
		cleanup(opts.Target, tmp)
		return Result{}, fmt.Errorf("backup: read back %s: %w", tmp, err)
	}
	if got != want {
		cleanup(opts.Target, tmp)
		return Result{}, fmt.Errorf("backup: read back %s: %d bytes, sha256 %s; wrote %d bytes, sha256 %s: %w",
			tmp, got.bytes, got.sum, want.bytes, want.sum, ErrCorrupt)
	}
	if err := opts.Target.Promote(ctx, tmp, opts.Key); err != nil {
		cleanup(opts.Target, tmp)
		cleanup(opts.Target, opts.Key)
		return Result{}, fmt.Errorf("backup: %w", err)
	}
	if size, err := opts.Target.Stat(ctx, opts.Key); err != nil || size != want.bytes {
		cleanup(opts.Target, opts.Key)
		if err == nil {
			err = fmt.Errorf("%s has %d bytes after promotion, %d expected", opts.Key, size, want.bytes)
		}
		return Result{}, fmt.Errorf("backup: %w", err)
	}
	m := Manifest{Metadata: p.meta, ArchiveBytes: want.bytes, SHA256: want.sum, ContentBytes: p.content, Entries: p.naming, Compression: "gzip"}
	if len(opts.Recipients) > 0 {
		m.Encryption, m.Recipients = "age", opts.RecipientNames
	}
	if err := writeManifest(ctx, opts.Target, opts.Key, m); err != nil {
		cleanup(opts.Target, opts.Key)
		return Result{}, fmt.Errorf("backup: manifest: %w", err)
	}
	return Result{Key: opts.Key, Bytes: want.bytes, SHA256: want.sum, Manifest: m}, nil
}

// cleanup removes an object best effort, even after ctx ended.
func cleanup(t Target, key string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = t.Delete(ctx, key)
}

func writeManifest(ctx context.Context, t Target, key string, m Manifest) error {
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp := partialKey(key + ManifestSuffix)
	if _, err := t.Put(ctx, tmp, bytes.NewReader(append(raw, '\n'))); err != nil {
		cleanup(t, tmp)
		return err
	}
	if err := t.Promote(ctx, tmp, key+ManifestSuffix); err != nil {
		cleanup(t, tmp)
		return err
	}
	return nil
}

// ReadManifest reads the manifest beside an archive.
func ReadManifest(ctx context.Context, t Target, key string) (Manifest, error) {
	rc, err := t.Open(ctx, key+ManifestSuffix)
	if err != nil {
		return Manifest{}, err
	}
	defer rc.Close()
	var m Manifest
	if err := json.NewDecoder(io.LimitReader(rc, 1<<20)).Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("manifest of %s: %w", key, err)
	}
	return m, nil
}

// writeArchive writes the archive (tar → gzip → age) of src to w and
// returns the metadata written, the bytes of file content and the entries.
func writeArchive(ctx context.Context, src Source, w io.Writer, opts Options) (Metadata, int64, int64, error) {
	meta := opts.Meta
	meta.FormatVersion = FormatVersion
	rc, err := src.Open(ctx)
	if err != nil {
		return meta, 0, 0, err
	}
	defer rc.Close()
	// A source blocked in a read ends when ctx does.
	defer context.AfterFunc(ctx, func() { rc.Close() })()
	out := w
	var enc io.WriteCloser
	if len(opts.Recipients) > 0 {
		if enc, err = age.Encrypt(w, opts.Recipients...); err != nil {
			return meta, 0, 0, fmt.Errorf("encrypt: %w", err)
		}
		out = enc
	}
	gz, err := gzip.NewWriterLevel(out, opts.Level)
	if err != nil {
		return meta, 0, 0, err
	}
	tr := tar.NewReader(rc)
	tw := tar.NewWriter(gz)
	first, err := tr.Next()
	if err != nil && !errors.Is(err, io.EOF) {
		return meta, 0, 0, fmt.Errorf("volume archive: %w", err)
	}
	var pending *tar.Header
	if first != nil {
		name, err := cleanEntryName(first.Name)
		if err != nil {
			return meta, 0, 0, err
		}
		if name == "" && first.Typeflag == tar.TypeDir {
			meta.Root = &RootAttrs{Mode: first.Mode & 0o7777, UID: first.Uid, GID: first.Gid}
		} else {
			pending = first
		}
	}
	raw, err := json.Marshal(meta)
	if err != nil {
		return meta, 0, 0, err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: MetadataName, Mode: 0o600, Size: int64(len(raw)), ModTime: meta.CreatedAt}); err != nil {
		return meta, 0, 0, err
	}
	if _, err := tw.Write(raw); err != nil {
		return meta, 0, 0, err
	}
	var content, entries int64
	for {
		hdr := pending
		pending = nil
		if hdr == nil {
			if hdr, err = tr.Next(); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return meta, content, entries, fmt.Errorf("volume archive: %w", err)
			}
		}
		if err := ctx.Err(); err != nil {
			return meta, content, entries, err
		}
		name, err := cleanEntryName(hdr.Name)
		if err != nil {
			return meta, content, entries, err
		}
		if name == "" {
			continue
		}
		hdr.Name = name
		if hdr.Typeflag == tar.TypeDir {
			hdr.Name += "/"
		}
		if hdr.Typeflag == tar.TypeLink {
			if hdr.Linkname, err = cleanEntryName(hdr.Linkname); err != nil {
				return meta, content, entries, err
			}
		}
		hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(hdr); err != nil {
			return meta, content, entries, fmt.Errorf("archive %s: %w", name, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			n, err := io.Copy(tw, tr)
			content += n
			if err != nil {
				return meta, content, entries, fmt.Errorf("archive %s: %w", name, err)
			}
		}
		entries++
	}
	if err := tw.Close(); err != nil {
		return meta, content, entries, err
	}
	if err := gz.Close(); err != nil {
		return meta, content, entries, err
	}
	if enc != nil {
		if err := enc.Close(); err != nil {
			return meta, content, entries, err
		}
	}
	return meta, content, entries, nil
}

// hashCount is a writer that counts and hashes.
type hashCount struct {
	h hash.Hash
	n *int64
}

type sum struct {
	bytes int64
	sum   string
}

func newHashCount() hashCount { return hashCount{h: sha256.New(), n: new(int64)} }

func (h hashCount) Write(p []byte) (int, error) {
	*h.n += int64(len(p))
	return h.h.Write(p)
}

func (h hashCount) result() sum { return sum{bytes: *h.n, sum: hex.EncodeToString(h.h.Sum(nil))} }

func readBack(ctx context.Context, t Target, key string) (sum, error) {
	rc, err := t.Open(ctx, key)
	if err != nil {
		return sum{}, err
	}
	defer rc.Close()
	hc := newHashCount()
	if _, err := io.Copy(hc, ctxReader{ctx: ctx, r: rc}); err != nil {
		return sum{}, err
	}
	return hc.result(), nil
}

// Expect is what a run recorded of its archive.
type Expect struct {
	Bytes  int64
	SHA256 string
	// Project and Volume, when set, must match the archive's metadata.
	Project, Volume string
}

// Verify reads the whole archive and checks it as a restore would before
// touching anything: size and SHA-256, decryption, decompression, the tar
// structure and the metadata. It returns the metadata.
func Verify(ctx context.Context, t Target, key string, want Expect, ids []age.Identity) (Metadata, error) {
	rc, err := t.Open(ctx, key)
	if err != nil {
		return Metadata{}, err
	}
	defer rc.Close()
	var meta Metadata
	err = readArchive(ctx, rc, want, ids, func(m Metadata) error { meta = m; return nil }, nil)
	return meta, err
}

// readArchive reads an archive from r to its end, checking it against
// want; onMeta gets the metadata, onEntry each entry after it (nil: the
// content is read and dropped). The checksum is compared only after the
// last byte, so a caller must not act on the entries until it returns nil.
func readArchive(ctx context.Context, r io.Reader, want Expect, ids []age.Identity, onMeta func(Metadata) error, onEntry func(*tar.Header, io.Reader) error) error {
	hc := newHashCount()
	raw := io.TeeReader(ctxReader{ctx: ctx, r: r}, hc)
	var in io.Reader = raw
	br := &peekReader{r: raw}
	if br.isAge() {
		if len(ids) == 0 {
			return ErrNoIdentity
		}
		dec, err := age.Decrypt(br, ids...)
		if err != nil {
			var nm *age.NoIdentityMatchError
			if errors.As(err, &nm) {
				return ErrNoIdentity
			}
			return fmt.Errorf("%w: decrypt: %v", ErrCorrupt, err)
		}
		in = dec
	} else {
		in = br
	}
	gz, err := gzip.NewReader(in)
	if err != nil {
		return fmt.Errorf("%w: gzip: %v", ErrCorrupt, err)
	}
	tr := tar.NewReader(gz)
	hdr, err := tr.Next()
	if err != nil || hdr.Name != MetadataName || hdr.Size > 1<<20 {
		return fmt.Errorf("%w: no metadata entry first (%v)", ErrCorrupt, err)
	}
	var meta Metadata
	if err := json.NewDecoder(tr).Decode(&meta); err != nil {
		return fmt.Errorf("%w: metadata: %v", ErrCorrupt, err)
	}
	if meta.FormatVersion < 1 || meta.FormatVersion > FormatVersion {
		return fmt.Errorf("archive format version %d is not one this PanelX reads (%d)", meta.FormatVersion, FormatVersion)
	}
	if want.Project != "" && (meta.Project != want.Project || meta.Volume != want.Volume) {
		return fmt.Errorf("%w: the archive holds %s/%s, not %s/%s", ErrCorrupt, meta.Project, meta.Volume, want.Project, want.Volume)
	}
	if onMeta != nil {
		if err := onMeta(meta); err != nil {
			return err
		}
	}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: tar: %v", ErrCorrupt, err)
		}
		if _, err := cleanEntryName(hdr.Name); err != nil {
			return fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		if hdr.Typeflag == tar.TypeLink {
			if _, err := cleanEntryName(hdr.Linkname); err != nil {
				return fmt.Errorf("%w: %v", ErrCorrupt, err)
			}
		}
		if onEntry != nil {
			if err := onEntry(hdr, tr); err != nil {
				return err
			}
		} else if _, err := io.Copy(io.Discard, tr); err != nil {
			return fmt.Errorf("%w: tar: %v", ErrCorrupt, err)
		}
	}
	// The rest: gzip's trailer (its CRC is checked at EOF), age's last
	// chunk, and anything appended after.
	if _, err := io.Copy(io.Discard, gz); err != nil {
		return fmt.Errorf("%w: gzip: %v", ErrCorrupt, err)
	}
	if _, err := io.Copy(io.Discard, in); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if _, err := io.Copy(io.Discard, raw); err != nil {
		return fmt.Errorf("read archive: %w", err)
	}
	got := hc.result()
	if want.SHA256 != "" && (got.bytes != want.Bytes || got.sum != want.SHA256) {
		return fmt.Errorf("%w: %d bytes with sha256 %s; the backup recorded %d bytes with sha256 %s",
			ErrCorrupt, got.bytes, got.sum, want.Bytes, want.SHA256)
	}
	return nil
}

// peekReader tells an age file from a gzip stream by its first bytes.
type peekReader struct {
	r    io.Reader
	head []byte
	err  error
	done bool
}

const ageMagic = "age-encryption.org/v1\n"

func (p *peekReader) isAge() bool {
	if !p.done {
		p.done = true
		buf := make([]byte, len(ageMagic))
		n, err := io.ReadFull(p.r, buf)
		p.head, p.err = buf[:n], err
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			p.err = nil
		}
	}
	return string(p.head) == ageMagic
}

func (p *peekReader) Read(b []byte) (int, error) {
	if len(p.head) > 0 {
		n := copy(b, p.head)
		p.head = p.head[n:]
		return n, nil
	}
	if p.err != nil {
		return 0, p.err
	}
	return p.r.Read(b)
}

// Restore checks the whole archive (Verify), then streams its entries
// into sink and commits them only when the second read matched as well.
// Nothing reaches the volume when the archive is damaged.
func Restore(ctx context.Context, t Target, key string, want Expect, ids []age.Identity, sink Sink) (Metadata, error) {
	meta, err := Verify(ctx, t, key, want, ids)
	if err != nil {
		return meta, err
	}
	rc, err := t.Open(ctx, key)
	if err != nil {
		return meta, err
	}
	defer rc.Close()
	pr, pw := io.Pipe()
	produced := make(chan error, 1)
	go func() {
		tw := tar.NewWriter(pw)
		err := readArchive(ctx, rc, want, ids, nil, func(h *tar.Header, r io.Reader) error {
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			if _, err := io.Copy(tw, r); err != nil {
				return fmt.Errorf("%w: tar: %v", ErrCorrupt, err)
			}
			return nil
		})
		if err == nil {
			// The trailer only after the checksum matched: an extraction
			// never ends cleanly on a stream that turned out damaged.
			err = tw.Close()
		}
		produced <- err
		pw.CloseWithError(err)
	}()
	stageErr := sink.Stage(ctx, pr)
	pr.CloseWithError(errExtractionEnded)
	perr := <-produced
	if perr != nil || stageErr != nil {
		if derr := sink.Discard(context.WithoutCancel(ctx)); derr != nil {
			stageErr = errors.Join(stageErr, derr)
		}
		if perr != nil && !errors.Is(perr, errExtractionEnded) {
			return meta, fmt.Errorf("restore: %w", perr)
		}
		return meta, fmt.Errorf("restore: extract: %w", stageErr)
	}
	if err := sink.Commit(ctx, meta.Root); err != nil {
		return meta, fmt.Errorf("restore: %w", err)
	}
	return meta, nil
}

// SweepPartials removes temporary objects under prefix older than
// olderThan: leftovers of writes cut short (a killed process).
func SweepPartials(ctx context.Context, t Target, prefix string, olderThan time.Duration, now time.Time) (int, error) {
	objs, err := t.List(ctx, prefix)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, o := range objs {
		if IsPartial(o.Key) && now.Sub(o.Modified) > olderThan {
			if err := t.Delete(ctx, o.Key); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}
