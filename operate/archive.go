package operate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
)

// Volume archives for backups. They use the same helper containers as the
// file operations: a created, never-started box whose only mount is the
// volume streams its whole contents through Docker's archive API (no
// process, no host path), and a restore extracts into a staging directory
// in the volume through the same API, after which the helper binary swaps
// it in (see helperSwap).

// restorePrefix starts the name of a restore's staging directory, and
// restoreOldPrefix that of the directory the replaced data moves to
// until the swap is complete.
const (
	restorePrefix    = ".panelx-restore-"
	restoreOldPrefix = ".panelx-replaced-"
)

// Archive streams the volume's contents as a tar whose entries are
// named "./", "./a", "./dir/b" (Docker's archive of "<volume>/."). The
// volume is mounted read-only. Close the reader; that also removes the
// helper container.
func (f *Files) Archive(ctx context.Context) (io.ReadCloser, error) {
	b, err := f.newBox(ctx, false)
	if err != nil {
		return nil, err
	}
	rc, _, err := f.cli.CopyFromContainer(ctx, b.id, helperMount+"/.")
	if err != nil {
		b.remove(ctx)
		return nil, fmt.Errorf("archive volume %s: %w", f.volume, err)
	}
	return &fileReader{Reader: rc, rc: rc, done: func() { b.remove(ctx) }}, nil
}

// RootAttrs are the owner and mode the volume's root gets after a restore.
type RootAttrs struct {
	Mode int64 `json:"mode"`
	UID  int   `json:"uid"`
	GID  int   `json:"gid"`
}

// VolumeRestore stages a tar stream in a new directory of the volume and
// swaps it in on Commit; the volume's data is untouched until then.
type VolumeRestore struct {
	f       *Files
	box     *box
	staging string
}

// BeginRestore creates the staging directory. It needs the helper binary
// (the swap runs it).
func (f *Files) BeginRestore(ctx context.Context) (*VolumeRestore, error) {
	if f.opts.HelperBinary == "" {
		return nil, ErrNoHelper
	}
	staging := restorePrefix + randomHex(8)
	if err := f.Mkdir(ctx, staging); err != nil {
		return nil, fmt.Errorf("restore: staging directory: %w", err)
	}
	b, err := f.newBox(ctx, true)
	if err != nil {
		_ = f.discard(ctx, staging, nil)
		return nil, err
	}
	return &VolumeRestore{f: f, box: b, staging: staging}, nil
}

// Stage extracts a tar stream (relative entry names) into the staging
// directory. Ownership, modes, links and times come from the archive.
func (r *VolumeRestore) Stage(ctx context.Context, tr io.Reader) error {
	pr, pw := io.Pipe()
	go func() {
		_, err := io.Copy(pw, tr)
		pw.CloseWithError(err)
	}()
	// The HTTP client waits for its read of the body even when canceled.
	stop := context.AfterFunc(ctx, func() { pr.CloseWithError(ctx.Err()) })
	defer stop()
	err := r.f.cli.CopyToContainer(ctx, r.box.id, volPath(r.staging), pr, container.CopyToContainerOptions{})
	pr.CloseWithError(errUploadEnded)
	if err != nil {
		return fmt.Errorf("extract into volume %s: %w", r.f.volume, err)
	}
	return nil
}

// Commit replaces the volume's contents with the staging directory's and
// gives the root the owner and mode (when set). The replaced data moves
// aside first and is removed last, so a helper that dies midway leaves
// both versions in the volume, never neither.
func (r *VolumeRestore) Commit(ctx context.Context, root *RootAttrs) error {
	defer r.box.remove(ctx)
	_, err := r.f.runHelper(ctx, helperRequest{Op: "swap", Path: r.staging, Root: root})
	if err != nil {
		return fmt.Errorf("swap restored data into volume %s: %w", r.f.volume, err)
	}
	return nil
}

// Discard removes the staging directory.
func (r *VolumeRestore) Discard(ctx context.Context) error {
	defer r.box.remove(ctx)
	return r.f.discard(ctx, r.staging, nil)
}

// HookResult is how a command run for a backup ended.
type HookResult struct {
	ExitCode int
	// Output is the start of what it printed (at most 4 KiB).
	Output    string
	Container string
}

// RunCommand runs an argument vector (no shell) in a replica's running
// container through the exec path of the terminal, waits for it to end
// within timeout, and returns its exit code and the start of its output.
func RunCommand(ctx context.Context, cli Docker, target ExecTarget, cmd []string, timeout time.Duration) (HookResult, error) {
	if len(cmd) == 0 {
		return HookResult{}, fmt.Errorf("%w: empty", ErrInvalidCommand)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	s, err := Exec(ctx, cli, target, ExecOptions{Cmd: cmd})
	if err != nil {
		return HookResult{}, err
	}
	defer s.Close()
	out := &limitedBuffer{max: 4096}
	copied := make(chan error, 1)
	go func() { _, err := io.Copy(out, s.Output()); copied <- err }()
	select {
	case <-copied:
	case <-ctx.Done():
		return HookResult{}, fmt.Errorf("command %s did not end within %v", cmd[0], timeout)
	}
	code, err := s.Wait(ctx)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return HookResult{}, fmt.Errorf("command %s did not end within %v", cmd[0], timeout)
		}
		return HookResult{}, err
	}
	return HookResult{ExitCode: code, Output: strings.ReplaceAll(out.String(), "\r\n", "\n"), Container: s.Record().Container}, nil
}
