package volumemove

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"strings"
	"time"
)

// stagingPrefix starts the name of the directory of the volume a fetch
// extracts into; its entries move up once the trailer checks out. A
// restarted fetch removes what a failed one left.
const stagingPrefix = ".panelx-move-"

// errNotEmpty is the refusal of a target volume that holds data.
var errNotEmpty = errors.New("volume already holds data on this node: refusing to mix")

// fetch receives the volume from the source at cfg.addr into cfg.root.
func fetch(ctx context.Context, cfg config) (Result, error) {
	if err := checkToken(cfg.token); err != nil {
		return Result{}, err
	}
	if _, _, err := net.SplitHostPort(cfg.addr); err != nil {
		return Result{}, fmt.Errorf("%s %q: %w", EnvSource, cfg.addr, err)
	}
	root, err := os.OpenRoot(cfg.root)
	if err != nil {
		return Result{}, fmt.Errorf("open volume: %w", err)
	}
	defer root.Close()
	if err := prepareEmpty(root); err != nil {
		return Result{}, err
	}
	conn, err := dialRetry(ctx, cfg)
	if err != nil {
		return Result{}, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	staging := stagingPrefix + randomHex(8)
	res, err := receive(root, staging, conn, cfg)
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", err, context.Cause(ctx))
		}
		// Tell the source why (it logs it), and leave the volume empty.
		_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(conn, "error: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		_ = root.RemoveAll(staging)
		return Result{}, err
	}
	return res, nil
}

// prepareEmpty refuses a volume with data. What a failed fetch left (its
// staging directory) is removed, and an empty lost+found (a new
// filesystem's) is allowed.
func prepareEmpty(root *os.Root) error {
	d, err := root.Open(".")
	if err != nil {
		return fmt.Errorf("open volume: %w", err)
	}
	entries, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return fmt.Errorf("read volume: %w", err)
	}
	var leftovers []string
	for _, e := range entries {
		switch {
		case strings.HasPrefix(e.Name(), stagingPrefix) && e.IsDir():
			leftovers = append(leftovers, e.Name())
		case e.Name() == "lost+found" && e.IsDir() && isEmptyDir(root, e.Name()):
		default:
			return errNotEmpty
		}
	}
	for _, n := range leftovers {
		if err := root.RemoveAll(n); err != nil {
			return fmt.Errorf("remove what an earlier attempt left: %w", err)
		}
	}
	return nil
}

func isEmptyDir(root *os.Root, name string) bool {
	d, err := root.Open(name)
	if err != nil {
		return false
	}
	defer d.Close()
	names, err := d.Readdirnames(1)
	return len(names) == 0 && errors.Is(err, io.EOF)
}

// dialRetry dials the source until it answers or cfg.dialTimeout passes:
// the overlay's DNS name of the source task appears a moment after the
// task starts, and its listener a moment after that. Every dial error is
// retried (no such host, connection refused, unreachable, timeouts).
func dialRetry(ctx context.Context, cfg config) (net.Conn, error) {
	deadline := time.Now().Add(cfg.dialTimeout)
	d := net.Dialer{Timeout: 10 * time.Second}
	wait := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		conn, err := dialOnce(ctx, &d, cfg.addr)
		if err == nil {
			return conn, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("reach source %s: %w", cfg.addr, err)
		}
		if time.Now().Add(wait).After(deadline) {
			return nil, fmt.Errorf("reach source %s within %v (%d attempts): %w", cfg.addr, cfg.dialTimeout, attempt, err)
		}
		if attempt == 1 {
			fmt.Fprintf(cfg.stderr, "volume-move fetch: %v; retrying for %v\n", err, cfg.dialTimeout)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("reach source %s: %w", cfg.addr, context.Cause(ctx))
		case <-time.After(wait):
		}
		wait = min(wait*2, 2*time.Second)
	}
}

// dialOnce resolves the source's name with a short deadline, then dials
// it. A name the overlay's DNS does not know yet (the source task is just
// starting) goes past Docker's embedded DNS to the node's own resolvers,
// which on a node without reachable ones answer after resolv.conf's 5 s
// timeout: measured, every other move waited 5 s for it. IPv4 only, as
// overlay networks are.
func dialOnce(ctx context.Context, d *net.Dialer, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	lctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
	ips, err := net.DefaultResolver.LookupIP(lctx, "ip4", host)
	cancel()
	if err != nil {
		return nil, err
	}
	return d.DialContext(ctx, "tcp4", net.JoinHostPort(ips[0].String(), port))
}

// receive sends the token, extracts the archive into the staging
// directory, checks the trailer, moves the data into place, syncs and
// acknowledges.
func receive(root *os.Root, staging string, conn net.Conn, cfg config) (Result, error) {
	dc := deadlineConn{c: conn, idle: cfg.idleTimeout}
	if _, err := fmt.Fprintf(dc, "%s\n", cfg.token); err != nil {
		return Result{}, fmt.Errorf("send token: %w", err)
	}
	br := bufio.NewReaderSize(dc, bufSize)
	d := newDigest()
	if err := root.Mkdir(staging, 0o700); err != nil {
		return Result{}, fmt.Errorf("staging directory: %w", err)
	}
	x := &extractor{root: root, base: staging, buf: make([]byte, bufSize)}
	tr := tar.NewReader(io.TeeReader(br, d))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Result{}, fmt.Errorf("read archive after %d entries: %w", x.files, err)
		}
		if err := x.entry(hdr, tr); err != nil {
			return Result{}, err
		}
	}
	if x.files == 0 {
		return Result{}, errors.New("the source closed the connection without sending the volume (wrong token?)")
	}
	if err := x.closeDirs(); err != nil {
		return Result{}, err
	}
	got := d.trailer(x.files)
	line, err := readLine(br, maxTrailerLine)
	if err != nil {
		return Result{}, fmt.Errorf("read trailer: %w", err)
	}
	var want trailer
	dec := json.NewDecoder(strings.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&want); err != nil {
		return Result{}, fmt.Errorf("read trailer: %w", err)
	}
	if got != want {
		return Result{}, fmt.Errorf("archive check failed: received %d entries, %d bytes, sha256 %s; the source sent %d entries, %d bytes, sha256 %s",
			got.Files, got.Bytes, got.SHA256, want.Files, want.Bytes, want.SHA256)
	}
	if err := x.moveUp(); err != nil {
		return Result{}, err
	}
	// The data is in place and synced: a source that misses the answer
	// keeps serving until PanelX removes it, which is no failure here.
	if _, err := fmt.Fprintf(dc, "ok\n"); err != nil {
		fmt.Fprintf(cfg.stderr, "volume-move fetch: warning: the source missed the acknowledgement: %v\n", err)
	}
	return Result{Files: got.Files, Bytes: got.Bytes, SHA256: got.SHA256}, nil
}

// attrs are what an entry restores after its contents.
type attrs struct {
	mode     fs.FileMode
	uid, gid int
	mtime    time.Time
}

func attrsOf(hdr *tar.Header) attrs {
	mode := fs.FileMode(hdr.Mode & 0o777)
	if hdr.Mode&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if hdr.Mode&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if hdr.Mode&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	return attrs{mode: mode, uid: hdr.Uid, gid: hdr.Gid, mtime: hdr.ModTime}
}

// openDir is a directory on the path of the walk: its attributes are set
// when the walk leaves it, after its contents.
type openDir struct {
	name string // in the archive; "." for the root
	a    attrs
}

// extractor writes entries under base (the staging directory) through
// root, which confines every operation to the volume. On top of that it
// takes only the stream its source writes: relative names without "..",
// the root first, each entry's parent a directory of the stream that is
// still open in the depth-first walk (so never through a link), no name
// twice, and hard links only to regular files received before.
type extractor struct {
	root  *os.Root
	base  string
	dirs  []openDir // the root first
	top   []openDir // top-level directories, whose times the move up changes
	files int64
	buf   []byte
}

// cleanName checks an entry's name and returns it cleaned ("." for the root).
func cleanName(name string) (string, error) {
	n := strings.TrimSuffix(name, "/")
	if n == "" || strings.HasPrefix(n, "/") || strings.ContainsRune(n, 0) {
		return "", fmt.Errorf("entry %q: not a relative name", name)
	}
	for _, part := range strings.Split(n, "/") {
		if part == ".." {
			return "", fmt.Errorf("entry %q: leaves the volume", name)
		}
	}
	return path.Clean(n), nil
}

func (x *extractor) entry(hdr *tar.Header, r io.Reader) error {
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	a := attrsOf(hdr)
	if x.files == 0 {
		if name != "." || hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("entry %q: the archive does not start with the volume root", hdr.Name)
		}
		x.dirs = append(x.dirs, openDir{name: ".", a: a})
		x.files++
		return nil
	}
	if name == "." {
		return fmt.Errorf("entry %q: the volume root twice", hdr.Name)
	}
	parent := path.Dir(name)
	for len(x.dirs) > 1 && x.dirs[len(x.dirs)-1].name != parent {
		if err := x.closeDir(); err != nil {
			return err
		}
	}
	if x.dirs[len(x.dirs)-1].name != parent {
		return fmt.Errorf("entry %q: its directory did not come right before it in the archive", hdr.Name)
	}
	target := x.base + "/" + name
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := x.root.Mkdir(target, 0o700); err != nil {
			return fmt.Errorf("extract: %w", err)
		}
		x.dirs = append(x.dirs, openDir{name: name, a: a})
		if parent == "." {
			x.top = append(x.top, openDir{name: name, a: a})
		}
	case tar.TypeReg:
		if err := x.file(target, r, hdr.Size, a); err != nil {
			return fmt.Errorf("extract %s: %w", name, err)
		}
	case tar.TypeSymlink:
		// The link is stored as it is; nothing here ever follows it.
		if err := x.root.Symlink(hdr.Linkname, target); err != nil {
			return fmt.Errorf("extract: %w", err)
		}
		if err := x.root.Lchown(target, a.uid, a.gid); err != nil {
			return fmt.Errorf("extract: %w", err)
		}
	case tar.TypeLink:
		old, err := cleanName(hdr.Linkname)
		if err != nil || old == "." {
			return fmt.Errorf("entry %q: bad hard link target %q", hdr.Name, hdr.Linkname)
		}
		fi, err := x.root.Lstat(x.base + "/" + old)
		if err != nil || !fi.Mode().IsRegular() {
			return fmt.Errorf("entry %q: hard link to %q, not a regular file received before", hdr.Name, hdr.Linkname)
		}
		if err := x.root.Link(x.base+"/"+old, target); err != nil {
			return fmt.Errorf("extract: %w", err)
		}
	default:
		return fmt.Errorf("entry %q: unsupported type %q", hdr.Name, hdr.Typeflag)
	}
	x.files++
	return nil
}

// file writes a regular file, then its owner (first: chown clears the
// set-id bits), mode and time. moveUp syncs the whole filesystem.
func (x *extractor) file(target string, r io.Reader, size int64, a attrs) error {
	f, err := x.root.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.CopyBuffer(f, r, x.buf)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("%d of %d bytes", n, size)
	}
	if err := f.Chown(a.uid, a.gid); err != nil {
		return err
	}
	if err := f.Chmod(a.mode); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return x.root.Chtimes(target, time.Time{}, a.mtime)
}

// setAttrs gives an extracted directory its owner, mode and time.
func (x *extractor) setAttrs(target string, a attrs) error {
	if err := x.root.Lchown(target, a.uid, a.gid); err != nil {
		return err
	}
	if err := x.root.Chmod(target, a.mode); err != nil {
		return err
	}
	return x.root.Chtimes(target, time.Time{}, a.mtime)
}

// closeDir leaves the innermost open directory (not the root).
func (x *extractor) closeDir() error {
	d := x.dirs[len(x.dirs)-1]
	x.dirs = x.dirs[:len(x.dirs)-1]
	if err := x.setAttrs(x.base+"/"+d.name, d.a); err != nil {
		return fmt.Errorf("extract %s: %w", d.name, err)
	}
	return nil
}

// closeDirs leaves every open directory but the root.
func (x *extractor) closeDirs() error {
	for len(x.dirs) > 1 {
		if err := x.closeDir(); err != nil {
			return err
		}
	}
	return nil
}

// moveUp moves the staged entries into the volume's root, gives the root
// the source root's owner, mode and time, and syncs the directory.
func (x *extractor) moveUp() error {
	d, err := x.root.Open(x.base)
	if err != nil {
		return fmt.Errorf("move into place: %w", err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return fmt.Errorf("move into place: %w", err)
	}
	for _, n := range names {
		if err := x.root.Rename(x.base+"/"+n, n); err != nil {
			return fmt.Errorf("move into place: %w", err)
		}
	}
	if err := x.root.Remove(x.base); err != nil {
		return fmt.Errorf("move into place: %w", err)
	}
	// Moving a directory to another parent rewrites its "..": its time
	// is set again.
	for _, t := range x.top {
		if err := x.root.Chtimes(t.name, time.Time{}, t.a.mtime); err != nil {
			return fmt.Errorf("move into place: %w", err)
		}
	}
	if err := x.setAttrs(".", x.dirs[0].a); err != nil {
		return fmt.Errorf("volume root: %w", err)
	}
	// One syncfs for all the data and names before the "ok".
	d, err = x.root.Open(".")
	if err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	defer d.Close()
	if err := syncFS(d); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
