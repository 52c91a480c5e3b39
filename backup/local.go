package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Local is a directory on this host. Keys are paths below it; every file
// is written through os.Root, so no key (nor a link planted in the
// directory) reaches outside it.
type Local struct {
	// Dir is the target's root directory; it is created when missing.
	Dir string
	// Name describes it in records ("local:shop/nightly").
	Name string
}

func (l *Local) Describe() string {
	if l.Name != "" {
		return l.Name
	}
	return "local:" + l.Dir
}

func (l *Local) root() (*os.Root, error) {
	if err := os.MkdirAll(l.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("local target %s: %w", l.Describe(), err)
	}
	r, err := os.OpenRoot(l.Dir)
	if err != nil {
		return nil, fmt.Errorf("local target %s: %w", l.Describe(), err)
	}
	return r, nil
}

func checkKey(key string) error {
	if key == "" || path.Clean(key) != key || strings.HasPrefix(key, "/") || strings.HasPrefix(key, "../") || key == ".." {
		return fmt.Errorf("invalid object key %q", key)
	}
	return nil
}

func (l *Local) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	if err := checkKey(key); err != nil {
		return 0, err
	}
	root, err := l.root()
	if err != nil {
		return 0, err
	}
	defer root.Close()
	if dir := path.Dir(key); dir != "." {
		if err := root.MkdirAll(dir, 0o700); err != nil {
			return 0, fmt.Errorf("local target: create %s: %w", dir, err)
		}
	}
	f, err := root.OpenFile(key, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, fmt.Errorf("local target: create %s: %w", key, err)
	}
	n, err := io.Copy(f, ctxReader{ctx: ctx, r: r})
	if err == nil {
		err = f.Sync() // the read-back must see what the disk holds
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = root.Remove(key)
		return n, fmt.Errorf("local target: write %s: %w", key, err)
	}
	return n, nil
}

func (l *Local) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	root, err := l.root()
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := root.Open(key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("local target: open %s: %w", key, err)
	}
	return f, nil
}

func (l *Local) Stat(ctx context.Context, key string) (int64, error) {
	if err := checkKey(key); err != nil {
		return 0, err
	}
	root, err := l.root()
	if err != nil {
		return 0, err
	}
	defer root.Close()
	fi, err := root.Lstat(key)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("%s: %w", key, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("local target: stat %s: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("local target: %s is not a regular file", key)
	}
	return fi.Size(), nil
}

// Promote renames tmp onto final and syncs the directory, so a crash
// after it leaves the final name.
func (l *Local) Promote(ctx context.Context, tmp, final string) error {
	if err := checkKey(tmp); err != nil {
		return err
	}
	if err := checkKey(final); err != nil {
		return err
	}
	root, err := l.root()
	if err != nil {
		return err
	}
	defer root.Close()
	if err := root.Rename(tmp, final); err != nil {
		return fmt.Errorf("local target: rename %s: %w", tmp, err)
	}
	if d, err := root.Open(path.Dir(final)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

func (l *Local) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	root, err := l.root()
	if err != nil {
		return err
	}
	defer root.Close()
	if err := root.Remove(key); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("local target: delete %s: %w", key, err)
	}
	return nil
}

// List walks the directory of prefix (prefix ends at a slash or names
// the start of file names in that directory).
func (l *Local) List(ctx context.Context, prefix string) ([]Object, error) {
	dir := path.Dir(prefix + "x")
	if dir != "." {
		if err := checkKey(dir); err != nil {
			return nil, err
		}
	}
	base := filepath.Join(l.Dir, filepath.FromSlash(dir))
	var out []Object
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(l.Dir, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		out = append(out, Object{Key: key, Size: fi.Size(), Modified: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("local target: list %s: %w", prefix, err)
	}
	return out, nil
}

// ctxReader ends a copy when ctx ends.
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
