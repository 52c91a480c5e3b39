package buildctx

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Errors of the Store; the API maps them to 413, 400 and 404.
var (
	ErrTooLarge = errors.New("build context too large")
	ErrInvalid  = errors.New("not a build context")
	ErrNotFound = errors.New("build context not found")
)

// Info describes a stored context.
type Info struct {
	Digest  string    `json:"digest"`
	Size    int64     `json:"size"`
	Created time.Time `json:"created"`
}

// Store keeps uploaded build contexts on disk, content-addressed per
// project (<dir>/<project>/<sha256 hex>.tar), so a context one project
// uploaded is never visible to another and an unchanged context is
// uploaded once. A context is written to a temporary file, checked, and
// renamed into place: a crash leaves no half context under a digest.
type Store struct {
	dir string
	max int64
}

// DefaultMaxBytes bounds one uploaded context.
const DefaultMaxBytes = 1 << 30

// NewStore keeps contexts under dir, each at most maxBytes (uncompressed).
func NewStore(dir string, maxBytes int64) *Store {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	return &Store{dir: dir, max: maxBytes}
}

// MaxBytes is the largest context Put takes.
func (s *Store) MaxBytes() int64 { return s.max }

var (
	digestRe  = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	projectRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// ValidDigest says whether d is a context digest ("sha256:" and 64 hex).
func ValidDigest(d string) bool { return digestRe.MatchString(d) }

func (s *Store) file(project, digest string) (string, error) {
	if !projectRe.MatchString(project) {
		return "", fmt.Errorf("%w: bad project name %q", ErrNotFound, project)
	}
	if !ValidDigest(digest) {
		return "", fmt.Errorf("%w: %q is not a digest (sha256:<64 hex>)", ErrInvalid, digest)
	}
	return filepath.Join(s.dir, project, strings.TrimPrefix(digest, "sha256:")+".tar"), nil
}

// Put stores the tar r for project and returns its digest. A body larger
// than MaxBytes is ErrTooLarge; one that is not a tar of relative paths
// (no "..", no devices) is ErrInvalid.
func (s *Store) Put(ctx context.Context, project string, r io.Reader) (Info, error) {
	if !projectRe.MatchString(project) {
		return Info{}, fmt.Errorf("%w: bad project name %q", ErrInvalid, project)
	}
	dir := filepath.Join(s.dir, project)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Info{}, fmt.Errorf("store build context: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".upload-*")
	if err != nil {
		return Info{}, fmt.Errorf("store build context: %w", err)
	}
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(ctxReader{ctx, r}, s.max+1))
	if err != nil {
		return Info{}, fmt.Errorf("store build context: %w", err)
	}
	if n > s.max {
		return Info{}, fmt.Errorf("%w: more than %d bytes (the server's limit)", ErrTooLarge, s.max)
	}
	if err := tmp.Sync(); err != nil {
		return Info{}, fmt.Errorf("store build context: %w", err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return Info{}, fmt.Errorf("store build context: %w", err)
	}
	if err := check(tmp); err != nil {
		return Info{}, err
	}
	digest := "sha256:" + hex.EncodeToString(h.Sum(nil))
	final, _ := s.file(project, digest)
	if err := tmp.Close(); err != nil {
		return Info{}, fmt.Errorf("store build context: %w", err)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return Info{}, fmt.Errorf("store build context: %w", err)
	}
	tmp = nil
	return Info{Digest: digest, Size: n, Created: time.Now().UTC()}, nil
}

// check reads the tar through: every entry a regular file, directory or
// link under a relative path that stays inside the context.
func check(r io.Reader) error {
	tr := tar.NewReader(r)
	entries := 0
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: read the tar: %v", ErrInvalid, err)
		}
		entries++
		name := strings.TrimPrefix(hdr.Name, "./")
		clean := path.Clean(name)
		if name == "" || strings.HasPrefix(name, "/") || clean == ".." || strings.HasPrefix(clean, "../") || strings.ContainsRune(name, 0) {
			return fmt.Errorf("%w: entry %q is not a relative path inside the context", ErrInvalid, hdr.Name)
		}
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink:
		default:
			return fmt.Errorf("%w: entry %q is neither a file, a directory nor a link", ErrInvalid, hdr.Name)
		}
	}
	if entries == 0 {
		return fmt.Errorf("%w: the tar holds no files", ErrInvalid)
	}
	return nil
}

// Stat describes a stored context and marks it as just used, so Prune's
// grace period starts again (an apply is about to name it).
func (s *Store) Stat(project, digest string) (Info, error) {
	p, err := s.file(project, digest)
	if err != nil {
		return Info{}, err
	}
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, fmt.Errorf("%w: no build context %s in project %s", ErrNotFound, digest, project)
	}
	if err != nil {
		return Info{}, fmt.Errorf("stat build context: %w", err)
	}
	now := time.Now()
	_ = os.Chtimes(p, now, now)
	return Info{Digest: digest, Size: fi.Size(), Created: fi.ModTime().UTC()}, nil
}

// Open returns a stored context to stream to the builder.
func (s *Store) Open(project, digest string) (io.ReadCloser, error) {
	p, err := s.file(project, digest)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: build context %s was not uploaded to this server (upload it again: panelx apply -f of the Compose file does)", ErrNotFound, digest)
	}
	if err != nil {
		return nil, fmt.Errorf("open build context: %w", err)
	}
	return f, nil
}

// ReadFile returns the file name (a path in the context, such as the
// Dockerfile) of a stored context, at most max bytes of it.
func (s *Store) ReadFile(project, digest, name string, max int64) ([]byte, error) {
	rc, err := s.Open(project, digest)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	want := path.Clean(name)
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: no %s in build context %s", ErrNotFound, name, digest)
		}
		if err != nil {
			return nil, fmt.Errorf("read build context %s: %w", digest, err)
		}
		if path.Clean(strings.TrimPrefix(hdr.Name, "./")) == want && hdr.Typeflag == tar.TypeReg {
			return io.ReadAll(io.LimitReader(tr, max))
		}
	}
}

// Prune removes the project's contexts that keep does not name and that
// were not used for grace (an upload waits for the apply that names it),
// and temporary files of uploads cut short. It returns the digests
// removed.
func (s *Store) Prune(project string, keep map[string]bool, grace time.Duration) ([]string, error) {
	if !projectRe.MatchString(project) {
		return nil, nil
	}
	entries, err := os.ReadDir(filepath.Join(s.dir, project))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list build contexts: %w", err)
	}
	var removed []string
	cutoff := time.Now().Add(-grace)
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || info.ModTime().After(cutoff) {
			continue
		}
		name := e.Name()
		digest := "sha256:" + strings.TrimSuffix(name, ".tar")
		switch {
		case strings.HasPrefix(name, ".upload-"):
		case strings.HasSuffix(name, ".tar") && ValidDigest(digest):
			if keep[digest] {
				continue
			}
			removed = append(removed, digest)
		default:
			continue
		}
		if err := os.Remove(filepath.Join(s.dir, project, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, fmt.Errorf("remove build context: %w", err)
		}
	}
	_ = os.Remove(filepath.Join(s.dir, project)) // only when empty
	return removed, nil
}

// ctxReader stops a copy when ctx ends (a client that went away).
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
