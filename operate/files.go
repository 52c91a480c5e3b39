package operate

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/errdefs"

	"github.com/panelx/panelx/naming"
)

// Errors of file operations, besides ErrInvalidPath (400).
var (
	ErrNotFound = errors.New("not found")             // 404
	ErrExist    = errors.New("already exists")        // 409
	ErrNotDir   = errors.New("not a directory")       // 409
	ErrIsDir    = errors.New("is a directory")        // 409
	ErrTooLarge = errors.New("larger than the limit") // 413
	// ErrSizeMismatch: the body of an upload did not have the announced size.
	ErrSizeMismatch = errors.New("body size differs from the announced size") // 400
	// ErrNoHelper: the operation runs the helper binary, and none is set.
	ErrNoHelper = errors.New("no volume helper binary configured")
	// ErrNoHelperImage: no image to create helper containers from.
	ErrNoHelperImage = errors.New("no local image for the helper container: the project has no containers; configure an image")
)

// Labels of helper containers, so orphans can be found (RemoveHelpers).
const (
	LabelHelper       = "dev.panelx.helper"
	LabelHelperVolume = "dev.panelx.helper-volume"
	helperKindFiles   = "files"
)

// uploadPrefix starts the name of an upload's temporary file, which the
// helper renames onto the target once complete.
const uploadPrefix = ".panelx-upload-"

// Default budget of bytes a listing reads from the archive API.
const DefaultListByteBudget = 64 << 20

// FileType is the type of a directory entry.
type FileType string

const (
	TypeFile    FileType = "file"
	TypeDir     FileType = "dir"
	TypeSymlink FileType = "symlink"
	TypeOther   FileType = "other" // device, FIFO, socket
)

// FileInfo describes a directory entry. Symbolic links are listed as such,
// with their target as stored, and never followed.
type FileInfo struct {
	Name       string      `json:"name"`
	Type       FileType    `json:"type"`
	Size       int64       `json:"size"`
	Mode       fs.FileMode `json:"mode"` // permission, setuid, setgid and sticky bits
	ModTime    time.Time   `json:"mtime"`
	UID        int         `json:"uid"`
	GID        int         `json:"gid"`
	LinkTarget string      `json:"linkTarget,omitempty"`
}

// Listing is a directory's entries in byte order of their names. Truncated
// says that more entries exist than were returned.
type Listing struct {
	Entries   []FileInfo
	Truncated bool
}

// FilesOptions select a volume and the means to reach it.
type FilesOptions struct {
	Instance string
	Project  string
	Volume   string // the PanelX Volume; the Docker volume is panelx-<project>-<volume>
	// Image creates the helper containers; it must exist locally (it is
	// never pulled) and nothing of it runs except, for helper operations,
	// the copied-in HelperBinary. Empty: the image of one of the project's
	// containers.
	Image string
	// HelperBinary is the path of a static Linux executable that calls
	// VolumeHelperMain when its first argument is HelperCommand: the
	// panelx binary itself (os.Executable()). Write, Rename and Delete need
	// it (ErrNoHelper without); List uses it for a directory too heavy for
	// the archive API, and is Truncated without it.
	HelperBinary string
	// MaxListEntries bounds a listing (default DefaultMaxListEntries, at
	// most MaxListEntries).
	MaxListEntries int
	// ListByteBudget bounds the bytes a listing reads from the archive API,
	// which sends a directory with all its contents (default
	// DefaultListByteBudget).
	ListByteBudget int64
}

// Files operates on one PanelX volume through helper containers; see the
// package documentation for the design and its safety argument.
type Files struct {
	cli    Docker
	opts   FilesOptions
	volume string // Docker volume name
	image  string
}

// OpenFiles checks that the volume belongs to the project of this
// installation and finds the helper image.
func OpenFiles(ctx context.Context, cli Docker, opts FilesOptions) (*Files, error) {
	if opts.Instance == "" || opts.Project == "" || opts.Volume == "" {
		return nil, errors.New("files: instance, project and volume are required")
	}
	if opts.MaxListEntries <= 0 || opts.MaxListEntries > MaxListEntries {
		opts.MaxListEntries = DefaultMaxListEntries
	}
	if opts.ListByteBudget <= 0 {
		opts.ListByteBudget = DefaultListByteBudget
	}
	if opts.HelperBinary != "" {
		if err := checkStatic(opts.HelperBinary); err != nil {
			return nil, fmt.Errorf("files: %w", err)
		}
	}
	f := &Files{cli: cli, opts: opts, volume: naming.VolumeName(opts.Project, opts.Volume), image: opts.Image}
	err := withTimeout(ctx, func(ctx context.Context) error {
		v, err := cli.VolumeInspect(ctx, f.volume)
		if errdefs.IsNotFound(err) {
			return fmt.Errorf("volume %s: %w", f.volume, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("inspect volume %s: %w", f.volume, err)
		}
		l := v.Labels
		if l[naming.LabelManaged] != "true" || l[naming.LabelInstance] != opts.Instance ||
			l[naming.LabelProject] != opts.Project || l[naming.LabelVolume] != opts.Volume {
			return fmt.Errorf("volume %s is not a volume of project %s: %w", f.volume, opts.Project, ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("files: %w", err)
	}
	if f.image == "" {
		if f.image, err = projectImage(ctx, cli, opts.Instance, opts.Project); err != nil {
			return nil, fmt.Errorf("files: %w", err)
		}
	}
	return f, nil
}

// checkStatic refuses a helper binary that cannot run in any image: not
// ELF, or dynamically linked (it would need the image's loader and libc).
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("volume helper binary %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("volume helper binary %s is dynamically linked; it must be static (CGO_ENABLED=0)", path)
		}
	}
	return nil
}

// projectImage returns the image ID of one of the project's containers: it
// exists locally as long as the container does.
func projectImage(ctx context.Context, cli Docker, instance, project string) (string, error) {
	var list []container.Summary
	err := withTimeout(ctx, func(ctx context.Context) (err error) {
		list, err = cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
			filters.Arg("label", naming.LabelManaged+"=true"),
			filters.Arg("label", naming.LabelInstance+"="+instance),
			filters.Arg("label", naming.LabelProject+"="+project),
			filters.Arg("label", naming.LabelService),
		)})
		return err
	})
	if err != nil {
		return "", fmt.Errorf("list containers of project %s: %w", project, err)
	}
	for _, c := range list {
		if c.ImageID != "" {
			return c.ImageID, nil
		}
	}
	return "", ErrNoHelperImage
}

// List returns the entries of a directory ("" is the volume root).
//
// It reads the directory through the archive API of a never-started helper
// container, which sends the whole subtree: it stops after MaxListEntries
// entries (Truncated) or ListByteBudget bytes, and in the latter case asks
// the helper binary to list instead (or returns what it has, Truncated).
func (f *Files) List(ctx context.Context, dir string) (Listing, error) {
	dir, err := CleanPath(dir)
	if err != nil {
		return Listing{}, err
	}
	box, err := f.newBox(ctx, false)
	if err != nil {
		return Listing{}, err
	}
	defer box.remove(ctx)
	if err := box.checkDir(ctx, dir); err != nil {
		return Listing{}, err
	}
	l, complete, err := box.listArchive(ctx, dir)
	if err != nil {
		return Listing{}, err
	}
	if complete || f.opts.HelperBinary == "" {
		l.Truncated = l.Truncated || !complete
		return l, nil
	}
	resp, err := f.runHelper(ctx, helperRequest{Op: "ls", Path: dir, Limit: f.opts.MaxListEntries})
	if err != nil {
		return Listing{}, err
	}
	return Listing{Entries: resp.Entries, Truncated: resp.Truncated}, nil
}

// Read opens a regular file. The reader streams from Docker; Close it
// (that also removes the helper container).
func (f *Files) Read(ctx context.Context, p string) (io.ReadCloser, FileInfo, error) {
	p, err := cleanNonRoot(p)
	if err != nil {
		return nil, FileInfo{}, err
	}
	box, err := f.newBox(ctx, false)
	if err != nil {
		return nil, FileInfo{}, err
	}
	rc, info, err := box.open(ctx, p)
	if err != nil {
		box.remove(ctx)
		return nil, FileInfo{}, err
	}
	return &fileReader{Reader: rc, rc: rc, done: func() { box.remove(ctx) }}, info, nil
}

// Write creates or replaces the regular file p with size bytes from r.
// size must be known up front (the archive format needs it) and at most
// limit. The file is written under a temporary name in the same directory
// and renamed onto p by the helper, so a failed or short upload never
// leaves a truncated file, and readers see the old or the new content. A
// new file gets mode 0644 and the owner of its directory; a replaced file
// keeps its mode and owner.
func (f *Files) Write(ctx context.Context, p string, r io.Reader, size, limit int64) error {
	p, err := cleanNonRoot(p)
	if err != nil {
		return err
	}
	switch {
	case limit <= 0:
		return errors.New("write: a size limit is required")
	case size < 0:
		return fmt.Errorf("write %s: %w: the size must be known", p, ErrSizeMismatch)
	case size > limit:
		return fmt.Errorf("write %s: %d bytes: %w of %d bytes", p, size, ErrTooLarge, limit)
	case f.opts.HelperBinary == "":
		return fmt.Errorf("write %s: %w", p, ErrNoHelper)
	}
	box, err := f.newBox(ctx, true)
	if err != nil {
		return err
	}
	defer box.remove(ctx)
	hdr, err := box.newFileHeader(ctx, p)
	if err != nil {
		return err
	}
	dir, _ := splitPath(p)
	hdr.Name, hdr.Size = uploadPrefix+randomHex(8), size
	tmp := joinPath(dir, hdr.Name)
	if err := box.upload(ctx, dir, hdr, r); err != nil {
		return f.discard(ctx, tmp, fmt.Errorf("write %s: %w", p, err))
	}
	if _, err := f.runHelper(ctx, helperRequest{Op: "mv", Path: tmp, To: p, Replace: true}); err != nil {
		return f.discard(ctx, tmp, fmt.Errorf("write %s: %w", p, err))
	}
	return nil
}

// discard removes a partial upload (best effort, even when ctx ended).
func (f *Files) discard(ctx context.Context, tmp string, err error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), callTimeout)
	defer cancel()
	_, rmErr := f.runHelper(ctx, helperRequest{Op: "rm", Path: tmp})
	if rmErr != nil && !errors.Is(rmErr, ErrNotFound) {
		return errors.Join(err, fmt.Errorf("remove partial upload %s: %w", tmp, rmErr))
	}
	return err
}

// Mkdir creates one directory (its parent must exist), mode 0755, owned
// like its parent.
func (f *Files) Mkdir(ctx context.Context, p string) error {
	p, err := cleanNonRoot(p)
	if err != nil {
		return err
	}
	box, err := f.newBox(ctx, true)
	if err != nil {
		return err
	}
	defer box.remove(ctx)
	dir, name := splitPath(p)
	if err := box.checkDir(ctx, dir); err != nil {
		return err
	}
	switch _, err := box.stat(ctx, p); {
	case err == nil:
		return fmt.Errorf("mkdir %s: %w", p, ErrExist)
	case !errors.Is(err, ErrNotFound):
		return err
	}
	parent, err := box.header(ctx, dir)
	if err != nil {
		return err
	}
	hdr := &tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755,
		Uid: parent.Uid, Gid: parent.Gid, ModTime: time.Now()}
	if err := box.upload(ctx, dir, hdr, nil); err != nil {
		return fmt.Errorf("mkdir %s: %w", p, err)
	}
	return nil
}

// Rename moves from to to; to must not exist, its parent must. A symbolic
// link is renamed itself.
func (f *Files) Rename(ctx context.Context, from, to string) error {
	from, err := cleanNonRoot(from)
	if err != nil {
		return err
	}
	if to, err = cleanNonRoot(to); err != nil {
		return err
	}
	if err := f.precheck(ctx, from, to); err != nil {
		return fmt.Errorf("rename %s to %s: %w", from, to, err)
	}
	if _, err := f.runHelper(ctx, helperRequest{Op: "mv", Path: from, To: to}); err != nil {
		return fmt.Errorf("rename %s to %s: %w", from, to, err)
	}
	return nil
}

// Delete removes a file, a symbolic link (not its target) or a directory
// with everything in it — recursively, as a file manager's delete does
// after its confirmation; an empty-only rule would make deleting a tree
// one request per file.
func (f *Files) Delete(ctx context.Context, p string) error {
	p, err := cleanNonRoot(p)
	if err != nil {
		return err
	}
	if err := f.precheck(ctx, p, ""); err != nil {
		return fmt.Errorf("delete %s: %w", p, err)
	}
	if _, err := f.runHelper(ctx, helperRequest{Op: "rm", Path: p}); err != nil {
		return fmt.Errorf("delete %s: %w", p, err)
	}
	return nil
}

// precheck refuses, through the archive API and without running the helper
// (which checks again, race-free), a source that is missing or reached
// through a link, and a target that exists or whose directory is missing
// or reached through a link. to is "" for a delete.
func (f *Files) precheck(ctx context.Context, from, to string) error {
	box, err := f.newBox(ctx, false)
	if err != nil {
		return err
	}
	defer box.remove(ctx)
	dir, _ := splitPath(from)
	if err := box.checkDir(ctx, dir); err != nil {
		return err
	}
	if _, err := box.stat(ctx, from); err != nil {
		return err
	}
	if to == "" {
		return nil
	}
	dir, _ = splitPath(to)
	if err := box.checkDir(ctx, dir); err != nil {
		return err
	}
	switch _, err := box.stat(ctx, to); {
	case err == nil:
		return fmt.Errorf("%s: %w", to, ErrExist)
	case !errors.Is(err, ErrNotFound):
		return err
	}
	return nil
}

// fileReader streams one file's content and cleans up on Close.
type fileReader struct {
	io.Reader
	rc   io.Closer
	done func()
}

func (r *fileReader) Close() error {
	err := r.rc.Close()
	r.done()
	return err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return hex.EncodeToString(b)
}

// infoFromFS converts an lstat result (inside the helper).
func infoFromFS(fi fs.FileInfo) FileInfo {
	info := FileInfo{Name: fi.Name(), Type: typeOf(fi.Mode()), Size: fi.Size(),
		Mode: fi.Mode() & permBits, ModTime: fi.ModTime().UTC()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		info.UID, info.GID = int(st.Uid), int(st.Gid)
	}
	if info.Type != TypeFile {
		info.Size = 0
	}
	return info
}

// infoFromHeader converts a tar header of the archive API.
func infoFromHeader(h *tar.Header) FileInfo {
	name := strings.TrimSuffix(h.Name, "/")
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	mode := h.FileInfo().Mode()
	info := FileInfo{Name: name, Type: typeOf(mode), Size: h.Size, Mode: mode & permBits,
		ModTime: h.ModTime.UTC(), UID: h.Uid, GID: h.Gid}
	if info.Type == TypeSymlink {
		info.LinkTarget = h.Linkname
	}
	if info.Type != TypeFile {
		info.Size = 0
	}
	return info
}

const permBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

func typeOf(m fs.FileMode) FileType {
	switch {
	case m.IsRegular():
		return TypeFile
	case m.IsDir():
		return TypeDir
	case m&fs.ModeSymlink != 0:
		return TypeSymlink
	default:
		return TypeOther
	}
}

// helperErrorFor maps a helper response's kind back to this package's
// errors.
func helperErrorFor(resp helperResponse) error {
	var base error
	switch resp.Kind {
	case kindInvalid:
		base = ErrInvalidPath
	case kindNotFound:
		base = ErrNotFound
	case kindExist:
		base = ErrExist
	case kindNotDir:
		base = ErrNotDir
	case kindIsDir:
		base = ErrIsDir
	default:
		return fmt.Errorf("volume helper: %s", resp.Error)
	}
	return fmt.Errorf("%w (volume helper: %s)", base, resp.Error)
}

// isNotExist: Docker's not-found, or a stat of a path under a non-directory.
func isNotExist(err error) bool {
	return errdefs.IsNotFound(err) || errors.Is(err, os.ErrNotExist)
}
