package operate

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"

	"github.com/panelx/panelx/naming"
)

// maxListHeaders bounds the archive entries (the directory's whole
// subtree) a listing reads before it gives up on the archive API.
const maxListHeaders = 100000

// box is a created, never started helper container whose only mount is the
// volume: a place for Docker's archive API (stat, copy from, copy to),
// which works on stopped containers and needs no process and no host path.
// Its root file system is read-only, so Docker refuses any extraction that
// would land outside the volume, and it has no network and no capabilities
// should anything ever start it (its entrypoint does not exist).
type box struct {
	f  *Files
	id string
}

func (f *Files) helperLabels() map[string]string {
	return map[string]string{
		naming.LabelManaged:  "true",
		naming.LabelInstance: f.opts.Instance,
		naming.LabelProject:  f.opts.Project,
		LabelHelper:          helperKindFiles,
		LabelHelperVolume:    f.volume,
	}
}

// volumeMount mounts the volume, never copying image content into it
// (Docker fills an empty volume from the image's directory otherwise).
func (f *Files) volumeMount(readOnly bool) mount.Mount {
	return mount.Mount{Type: mount.TypeVolume, Source: f.volume, Target: helperMount, ReadOnly: readOnly,
		VolumeOptions: &mount.VolumeOptions{NoCopy: true}}
}

// lockedHost is the host configuration every helper container starts from.
func lockedHost(m mount.Mount) *container.HostConfig {
	return &container.HostConfig{
		NetworkMode: "none",
		CapDrop:     []string{"ALL"},
		SecurityOpt: []string{"no-new-privileges"},
		Mounts:      []mount.Mount{m},
	}
}

func (f *Files) newBox(ctx context.Context, writable bool) (*box, error) {
	cfg := &container.Config{
		Image:           f.image,
		Entrypoint:      []string{"/.panelx-never-started"},
		Labels:          f.helperLabels(),
		NetworkDisabled: true,
		Healthcheck:     &container.HealthConfig{Test: []string{"NONE"}},
	}
	host := lockedHost(f.volumeMount(!writable))
	host.ReadonlyRootfs = true
	host.LogConfig = container.LogConfig{Type: "none"}
	id, err := f.create(ctx, cfg, host)
	if err != nil {
		return nil, err
	}
	return &box{f: f, id: id}, nil
}

func (f *Files) create(ctx context.Context, cfg *container.Config, host *container.HostConfig) (string, error) {
	var resp container.CreateResponse
	err := withTimeout(ctx, func(ctx context.Context) (err error) {
		resp, err = f.cli.ContainerCreate(ctx, cfg, host, nil, nil, "panelx-helper-"+randomHex(6))
		return err
	})
	if err != nil {
		return "", fmt.Errorf("create helper container from image %s: %w", f.image, err)
	}
	return resp.ID, nil
}

// removeContainer removes a helper container even when ctx has ended;
// RemoveVolumes removes the anonymous volumes an image's VOLUME lines made,
// never a named volume.
func removeContainer(ctx context.Context, cli Docker, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), callTimeout)
	defer cancel()
	// An error leaves an orphan with the helper label: RemoveHelpers.
	_ = cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
}

func (b *box) remove(ctx context.Context) { removeContainer(ctx, b.f.cli, b.id) }

// volPath is p's path inside a helper container.
func volPath(p string) string {
	if p == "" {
		return helperMount
	}
	return helperMount + "/" + p
}

// stat reports p without following it if it is a symbolic link (Docker
// resolves the parent directories inside the container's root file system).
func (b *box) stat(ctx context.Context, p string) (container.PathStat, error) {
	var st container.PathStat
	err := withTimeout(ctx, func(ctx context.Context) (err error) {
		st, err = b.f.cli.ContainerStatPath(ctx, b.id, volPath(p))
		return err
	})
	if isNotExist(err) {
		return st, fmt.Errorf("%s: %w", displayPath(p), ErrNotFound)
	}
	if err != nil {
		return st, fmt.Errorf("stat %s: %w", displayPath(p), err)
	}
	return st, nil
}

func displayPath(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

// checkDir checks that dir and each directory above it exists, is a
// directory and is not a symbolic link.
func (b *box) checkDir(ctx context.Context, dir string) error {
	for _, q := range prefixes(dir) {
		st, err := b.stat(ctx, q)
		if err != nil {
			return err
		}
		if st.Mode&os.ModeSymlink != 0 {
			return symlinkError(dir, q)
		}
		if !st.Mode.IsDir() {
			return fmt.Errorf("%s: %w", q, ErrNotDir)
		}
	}
	return nil
}

// checkFile checks that p is a regular file reached without symbolic links.
func (b *box) checkFile(ctx context.Context, p string) error {
	dir, _ := splitPath(p)
	if err := b.checkDir(ctx, dir); err != nil {
		return err
	}
	st, err := b.stat(ctx, p)
	if err != nil {
		return err
	}
	return regularFile(p, st)
}

func regularFile(p string, st container.PathStat) error {
	switch {
	case st.Mode&os.ModeSymlink != 0:
		return symlinkError(p, p)
	case st.Mode.IsDir():
		return fmt.Errorf("%s: %w", p, ErrIsDir)
	case !st.Mode.IsRegular():
		return refuse(p, "not a regular file")
	}
	return nil
}

// open starts the archive of the regular file p and returns its content.
func (b *box) open(ctx context.Context, p string) (io.ReadCloser, FileInfo, error) {
	if err := b.checkFile(ctx, p); err != nil {
		return nil, FileInfo{}, err
	}
	rc, _, err := b.f.cli.CopyFromContainer(ctx, b.id, volPath(p))
	if err != nil {
		return nil, FileInfo{}, fmt.Errorf("read %s: %w", p, err)
	}
	tr := tar.NewReader(rc)
	hdr, err := tr.Next()
	if err != nil {
		rc.Close()
		return nil, FileInfo{}, fmt.Errorf("read %s: archive: %w", p, err)
	}
	if hdr.Typeflag != tar.TypeReg {
		rc.Close()
		return nil, FileInfo{}, refuse(p, "changed while being read: no longer a regular file")
	}
	return readCloser{Reader: tr, Closer: rc}, infoFromHeader(hdr), nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// header returns the archive header of p (owner, mode), reading nothing
// more of the archive.
func (b *box) header(ctx context.Context, p string) (*tar.Header, error) {
	rc, _, err := b.f.cli.CopyFromContainer(ctx, b.id, volPath(p))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", displayPath(p), err)
	}
	defer rc.Close()
	hdr, err := tar.NewReader(rc).Next()
	if err != nil {
		return nil, fmt.Errorf("read %s: archive: %w", displayPath(p), err)
	}
	return hdr, nil
}

// newFileHeader is the header an upload to p gets: a replaced file keeps
// its owner and mode, a new one gets its directory's owner and 0644.
func (b *box) newFileHeader(ctx context.Context, p string) (*tar.Header, error) {
	dir, _ := splitPath(p)
	if err := b.checkDir(ctx, dir); err != nil {
		return nil, err
	}
	src := p
	st, err := b.stat(ctx, p)
	switch {
	case errors.Is(err, ErrNotFound):
		src = dir
	case err != nil:
		return nil, err
	default:
		if err := regularFile(p, st); err != nil {
			return nil, err
		}
	}
	h, err := b.header(ctx, src)
	if err != nil {
		return nil, err
	}
	mode := int64(0o644)
	if src == p {
		mode = h.Mode & 0o7777
	}
	return &tar.Header{Typeflag: tar.TypeReg, Mode: mode, Uid: h.Uid, Gid: h.Gid, ModTime: time.Now()}, nil
}

// upload extracts a one-entry archive into dir.
func (b *box) upload(ctx context.Context, dir string, hdr *tar.Header, r io.Reader) error {
	return copyTar(ctx, b.f.cli, b.id, volPath(dir), hdr, r)
}

var errUploadEnded = errors.New("upload ended")

// copyTar streams a tar of one entry (hdr, then hdr.Size bytes of r) into
// dstDir of a container. The entry's name is a single clean name and it is
// never a link, so the extraction cannot create anything but that entry.
// Docker refuses to replace a directory with a file (noOverwriteDirNonDir).
func copyTar(ctx context.Context, cli Docker, id, dstDir string, hdr *tar.Header, r io.Reader) error {
	if strings.ContainsAny(strings.TrimSuffix(hdr.Name, "/"), "/\\") || hdr.Typeflag == tar.TypeSymlink || hdr.Typeflag == tar.TypeLink {
		return fmt.Errorf("internal error: archive entry %q", hdr.Name)
	}
	pr, pw := io.Pipe()
	produced := make(chan error, 1)
	go func() {
		err := writeTar(pw, hdr, r)
		produced <- err // before the pipe shows the error to Docker
		pw.CloseWithError(err)
	}()
	// The HTTP client waits, even when canceled, for its read of the body:
	// ending ctx must end that read too.
	stop := context.AfterFunc(ctx, func() { pr.CloseWithError(ctx.Err()) })
	err := cli.CopyToContainer(ctx, id, dstDir, pr, container.CopyToContainerOptions{})
	stop()
	pr.CloseWithError(errUploadEnded) // unblocks a producer Docker stopped reading
	if err != nil {
		select {
		case perr := <-produced:
			if perr != nil && !errors.Is(perr, errUploadEnded) {
				return perr // the body's fault: short, long or failing
			}
		default:
			// Docker failed first (or ctx ended) while the producer waits
			// on the body; it stops at its next write.
		}
		return fmt.Errorf("copy into container: %w", err)
	}
	if perr := <-produced; perr != nil && !errors.Is(perr, errUploadEnded) {
		return perr
	}
	return nil
}

// writeTar writes the one-entry archive; r must end (io.EOF) after
// hdr.Size bytes, as an HTTP request body does.
func writeTar(w io.Writer, hdr *tar.Header, r io.Reader) error {
	tw := tar.NewWriter(w)
	err := tw.WriteHeader(hdr)
	if err == nil && hdr.Typeflag == tar.TypeReg {
		err = copyExactly(tw, r, hdr.Size)
	}
	if err == nil {
		err = tw.Close()
	}
	return err
}

// copyExactly copies size bytes and checks that r has no more.
func copyExactly(w io.Writer, r io.Reader, size int64) error {
	n, err := io.Copy(w, io.LimitReader(r, size))
	if err != nil {
		return fmt.Errorf("read upload: %w", err)
	}
	if n < size {
		return fmt.Errorf("%w: %d bytes announced, the body ended after %d", ErrSizeMismatch, size, n)
	}
	var one [1]byte
	if k, _ := io.ReadFull(r, one[:]); k > 0 {
		return fmt.Errorf("%w: the body is longer than the %d bytes announced", ErrSizeMismatch, size)
	}
	return nil
}

// listArchive lists dir from the archive of its subtree, which Docker
// walks in byte order of names, depth first. complete is false when the
// byte or entry budget ran out first: the entries are then the right first
// ones, but more may exist.
func (b *box) listArchive(ctx context.Context, dir string) (l Listing, complete bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // closing early stops Docker's tar of the rest
	rc, _, err := b.f.cli.CopyFromContainer(ctx, b.id, volPath(dir))
	if err != nil {
		return Listing{}, false, fmt.Errorf("list %s: %w", displayPath(dir), err)
	}
	defer rc.Close()
	tr := tar.NewReader(&budgetReader{r: rc, left: b.f.opts.ListByteBudget})
	first, err := tr.Next()
	if err != nil {
		return Listing{}, false, fmt.Errorf("list %s: archive: %w", displayPath(dir), err)
	}
	base := strings.TrimSuffix(first.Name, "/") + "/"
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		switch {
		case errors.Is(err, io.EOF):
			return l, true, nil
		case errors.Is(err, errBudget) || n >= maxListHeaders:
			return l, false, nil
		case err != nil:
			return Listing{}, false, fmt.Errorf("list %s: archive: %w", displayPath(dir), err)
		}
		rel, ok := strings.CutPrefix(strings.TrimSuffix(hdr.Name, "/"), base)
		if !ok || rel == "" || strings.Contains(rel, "/") {
			continue // deeper in the subtree
		}
		if len(l.Entries) == b.f.opts.MaxListEntries {
			l.Truncated = true
			return l, true, nil
		}
		info := infoFromHeader(hdr)
		if hdr.Typeflag == tar.TypeLink { // a hard link's header has no size
			if st, err := b.stat(ctx, joinPath(dir, rel)); err == nil {
				info.Type, info.Size = TypeFile, st.Size
			}
		}
		l.Entries = append(l.Entries, info)
	}
}

var errBudget = errors.New("listing byte budget exhausted")

// budgetReader fails once it has read its budget.
type budgetReader struct {
	r    io.Reader
	left int64
}

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errBudget
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}
