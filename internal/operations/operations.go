// Package operations implements the API's apiserver.Operations (a service's
// logs, its web terminal, a volume's files) over package operate, which
// talks to the Docker Engine. It translates between the two packages'
// types and maps operate's errors to the kinds the API turns into HTTP
// statuses, so that apiserver never imports Docker.
package operations

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"
	"time"

	"github.com/docker/docker/client"

	"github.com/panelx/panelx/apiserver"
	"github.com/panelx/panelx/operate"
)

// Options configure the Docker side.
type Options struct {
	// Instance is the installation ID (the dev.panelx.instance label).
	Instance string
	// HelperBinary is a static Linux executable that runs
	// operate.VolumeHelperMain when called with operate.HelperCommand: the
	// panelx binary itself. Empty: file writes, renames and deletes answer
	// 503 (listing and reading work).
	HelperBinary string
	// HelperImage creates the helper containers of file operations;
	// empty: the image of one of the project's containers.
	HelperImage string
	// Swarm: the services are Swarm services (PANELX_RUNTIME=swarm), whose
	// logs come from their tasks on any node and whose terminals reach the
	// tasks on this manager's node; the client must be an
	// operate.SwarmDocker. Volume files work the same either way.
	Swarm bool
}

// Docker is apiserver.Operations against a Docker Engine.
type Docker struct {
	cli  operate.Docker
	opts Options

	nodeMu sync.Mutex
	node   string // NodeName, once known
}

var _ apiserver.Operations = (*Docker)(nil)

// New returns the Docker side; cli is a client with API version
// negotiation (dockerclient.New).
func New(cli operate.Docker, opts Options) *Docker {
	return &Docker{cli: cli, opts: opts}
}

// CheckHelperBinary tells whether path can serve as Options.HelperBinary:
// an ELF executable without an interpreter (statically linked), since it
// runs inside any image. A binary built with cgo cannot.
func CheckHelperBinary(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("volume helper binary %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("volume helper binary %s is dynamically linked; build it with CGO_ENABLED=0 (make build)", path)
		}
	}
	return nil
}

// CheckPath is apiserver.Operations' CheckPath without a Docker client.
func CheckPath(p string) error {
	_, err := operate.CleanPath(p)
	return mapErr(err)
}

// CheckPath checks a volume path (no I/O).
func (d *Docker) CheckPath(p string) error { return CheckPath(p) }

// mapErr gives operate's errors the API's kinds (see operate/doc.go for
// the statuses they stand for); the message stays operate's.
func mapErr(err error) error {
	var kind error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, operate.ErrInvalidPath), errors.Is(err, operate.ErrSizeMismatch),
		errors.Is(err, operate.ErrInvalidCommand), errors.Is(err, operate.ErrInvalidSize):
		kind = apiserver.ErrInvalidArgument
	case errors.Is(err, operate.ErrIsDir):
		kind = apiserver.ErrIsDirectory
	case errors.Is(err, operate.ErrNotFound), errors.Is(err, operate.ErrNoContainer):
		kind = apiserver.ErrOpNotFound
	case errors.Is(err, operate.ErrExist), errors.Is(err, operate.ErrNotDir), errors.Is(err, operate.ErrNotRunning),
		errors.Is(err, operate.ErrNoHelperImage), errors.Is(err, operate.ErrOtherNode):
		kind = apiserver.ErrOpConflict
	case errors.Is(err, operate.ErrTooLarge):
		kind = apiserver.ErrOpTooLarge
	case errors.Is(err, operate.ErrNoShell):
		kind = apiserver.ErrOpUnprocessable
	case errors.Is(err, operate.ErrNoHelper):
		kind = apiserver.ErrOpUnavailable
		err = errors.New("file writes need the panelx binary as volume helper, and this server's is not a static build")
	case client.IsErrConnectionFailed(err):
		kind = apiserver.ErrOpUnavailable
		err = errors.New("the Docker Engine cannot be reached")
	default:
		return err // a 500; the API logs it and tells the client nothing
	}
	return apiserver.OpError(kind, err)
}

// Logs streams a service's logs.
func (d *Docker) Logs(ctx context.Context, req apiserver.LogsRequest) (<-chan apiserver.LogLine, error) {
	since, err := operate.ParseSince(req.Since, time.Now())
	if err != nil {
		return nil, apiserver.OpError(apiserver.ErrInvalidArgument, err)
	}
	target := operate.LogTarget{Instance: d.opts.Instance, Project: req.Project, Service: req.Service, Replica: req.Replica}
	opts := operate.LogOptions{Follow: req.Follow, Tail: req.Tail, Since: since}
	var in <-chan operate.LogLine
	if d.opts.Swarm {
		sw, serr := d.swarm()
		if serr != nil {
			return nil, serr
		}
		in, err = operate.SwarmLogs(ctx, sw, target, opts)
	} else {
		in, err = operate.Logs(ctx, d.cli, target, opts)
	}
	if err != nil {
		return nil, mapErr(err)
	}
	out := make(chan apiserver.LogLine)
	go func() {
		defer close(out)
		// operate closes in once ctx ended; draining it until then never
		// leaves its goroutines blocked.
		for l := range in {
			select {
			case out <- apiserver.LogLine{Replica: l.Replica, Container: l.Container, Stream: l.Stream,
				Time: l.Time, Text: l.Text, Partial: l.Partial}:
			case <-ctx.Done():
			}
		}
	}()
	return out, nil
}

// swarm is the client as a Swarm manager's.
func (d *Docker) swarm() (operate.SwarmDocker, error) {
	sw, ok := d.cli.(operate.SwarmDocker)
	if !ok {
		return nil, fmt.Errorf("the Swarm runtime's logs and terminals need a client with the Swarm calls, not %T", d.cli)
	}
	return sw, nil
}

// Exec starts a terminal session.
func (d *Docker) Exec(ctx context.Context, req apiserver.ExecRequest) (apiserver.ExecSession, error) {
	target := operate.ExecTarget{Instance: d.opts.Instance, Project: req.Project, Service: req.Service, Replica: req.Replica}
	opts := operate.ExecOptions{Cmd: req.Cmd, Rows: req.Rows, Cols: req.Cols}
	var s *operate.Session
	var err error
	if d.opts.Swarm {
		sw, serr := d.swarm()
		if serr != nil {
			return nil, serr
		}
		s, err = operate.SwarmExec(ctx, sw, target, opts)
	} else {
		s, err = operate.Exec(ctx, d.cli, target, opts)
	}
	if err != nil {
		return nil, mapErr(err)
	}
	return execSession{s}, nil
}

type execSession struct{ s *operate.Session }

func (e execSession) Output() io.Reader { return e.s.Output() }
func (e execSession) Stdin() io.Writer  { return e.s.Stdin() }
func (e execSession) Close() error      { return e.s.Close() }

func (e execSession) Resize(ctx context.Context, rows, cols uint) error {
	return mapErr(e.s.Resize(ctx, rows, cols))
}

func (e execSession) Wait(ctx context.Context) (int, error) {
	code, err := e.s.Wait(ctx)
	return code, mapErr(err)
}

func (e execSession) Record() apiserver.ExecRecord {
	r := e.s.Record()
	return apiserver.ExecRecord{ContainerID: r.ContainerID, Container: r.Container, Cmd: r.Cmd,
		Started: r.Started, Ended: r.Ended, ExitCode: r.ExitCode}
}

// Files opens a volume.
func (d *Docker) Files(ctx context.Context, project, volume string) (apiserver.VolumeFiles, error) {
	f, err := operate.OpenFiles(ctx, d.cli, operate.FilesOptions{Instance: d.opts.Instance, Project: project, Volume: volume,
		Image: d.opts.HelperImage, HelperBinary: d.opts.HelperBinary})
	if err != nil {
		return nil, mapErr(err)
	}
	return volumeFiles{f}, nil
}

type volumeFiles struct{ f *operate.Files }

func (v volumeFiles) List(ctx context.Context, dir string) (apiserver.FileListing, error) {
	l, err := v.f.List(ctx, dir)
	if err != nil {
		return apiserver.FileListing{}, mapErr(err)
	}
	out := apiserver.FileListing{Truncated: l.Truncated, Entries: make([]apiserver.FileEntry, len(l.Entries))}
	for i, e := range l.Entries {
		out.Entries[i] = entry(e)
	}
	return out, nil
}

func (v volumeFiles) Read(ctx context.Context, p string) (io.ReadCloser, apiserver.FileEntry, error) {
	rc, info, err := v.f.Read(ctx, p)
	if err != nil {
		return nil, apiserver.FileEntry{}, mapErr(err)
	}
	return rc, entry(info), nil
}

func (v volumeFiles) Write(ctx context.Context, p string, r io.Reader, size, limit int64) error {
	return mapErr(v.f.Write(ctx, p, r, size, limit))
}

func (v volumeFiles) Mkdir(ctx context.Context, p string) error { return mapErr(v.f.Mkdir(ctx, p)) }

func (v volumeFiles) Rename(ctx context.Context, from, to string) error {
	return mapErr(v.f.Rename(ctx, from, to))
}

func (v volumeFiles) Delete(ctx context.Context, p string) error { return mapErr(v.f.Delete(ctx, p)) }

func entry(i operate.FileInfo) apiserver.FileEntry {
	return apiserver.FileEntry{Name: i.Name, Type: string(i.Type), Size: i.Size, Mode: unixMode(i.Mode),
		ModTime: i.ModTime, UID: i.UID, GID: i.GID, LinkTarget: i.LinkTarget}
}

// unixMode turns Go's file mode bits into the Unix ones (setuid is 1<<23
// in Go, 04000 in Unix).
func unixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}

var _ apiserver.VolumeOperations = (*Docker)(nil)

// DockerVolumes lists the installation's Docker volumes.
func (d *Docker) DockerVolumes(ctx context.Context) ([]apiserver.DockerVolume, error) {
	vols, err := operate.ListVolumes(ctx, d.cli, d.opts.Instance)
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]apiserver.DockerVolume, len(vols))
	for i, v := range vols {
		out[i] = apiserver.DockerVolume{Name: v.Name, Project: v.Project, Volume: v.Volume, CreatedAt: v.CreatedAt, UsedBy: v.UsedBy}
	}
	return out, nil
}

// RemoveDockerVolume removes one of the installation's Docker volumes.
func (d *Docker) RemoveDockerVolume(ctx context.Context, name string) error {
	return mapErr(operate.RemoveVolume(ctx, d.cli, d.opts.Instance, name))
}

var _ apiserver.NodeNamer = (*Docker)(nil)

// NodeName is the swarm node whose engine this reaches ("" on one engine):
// volume files are this node's volumes only.
func (d *Docker) NodeName(ctx context.Context) (string, error) {
	if !d.opts.Swarm {
		return "", nil
	}
	sw, err := d.swarm()
	if err != nil {
		return "", err
	}
	d.nodeMu.Lock()
	defer d.nodeMu.Unlock()
	if d.node == "" {
		info, err := sw.Info(ctx)
		if err != nil {
			return "", fmt.Errorf("find this engine's node: %w", err)
		}
		d.node = info.Name
	}
	return d.node, nil
}
