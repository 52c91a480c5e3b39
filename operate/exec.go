package operate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/errdefs"

	"github.com/panelx/panelx/naming"
)

// Bounds of an exec request.
const (
	MaxExecArgs     = 64
	MaxExecArgBytes = 4096
	MaxTermSize     = 1000 // rows and columns
)

var (
	// ErrNotRunning: the replica's container exists but does not run.
	ErrNotRunning = errors.New("container is not running")
	// ErrNoShell: no command was given and the image has none of the
	// default shells.
	ErrNoShell = errors.New("no shell found in the container (looked for /bin/bash, /bin/sh, /busybox); give a command")
	// ErrInvalidCommand: the command is empty, too long or malformed.
	ErrInvalidCommand = errors.New("invalid command")
	// ErrInvalidSize: terminal rows or columns out of 1..MaxTermSize.
	ErrInvalidSize = errors.New("invalid terminal size")
)

// defaultShells are tried in order when no command is given.
var defaultShells = [][]string{{"/bin/bash"}, {"/bin/sh"}, {"/busybox", "sh"}}

// detachKeys replaces Docker's default detach sequence (ctrl-p ctrl-q),
// which a terminal user types by accident (ctrl-p is shell history) and
// which would hold back every ctrl-p until the next key.
const detachKeys = "ctrl-^,ctrl-_,ctrl-^,ctrl-_"

// ExecTarget names the replica to run a command in.
type ExecTarget struct {
	Instance string
	Project  string
	Service  string
	Replica  int
}

// ExecOptions is what a request may choose. User, privileges, working
// directory and environment are deliberately absent: the command runs as
// the container's configured user, in its working directory, with its
// environment.
type ExecOptions struct {
	// Cmd is the argument vector, passed to Docker as is (never joined
	// into a shell string). Empty: the first default shell the image has.
	Cmd []string
	// Rows and Cols set the initial terminal size (0: Docker's default).
	Rows, Cols uint
}

// ExecRecord is what an audit event of the session needs.
type ExecRecord struct {
	ContainerID string
	Container   string // container name
	ExecID      string
	Cmd         []string
	Started     time.Time
	Ended       time.Time // zero until Wait returned
	ExitCode    int       // -1 until Wait returned
}

// Duration is how long the session ran (until now while it runs).
func (r ExecRecord) Duration() time.Duration {
	if r.Ended.IsZero() {
		return time.Since(r.Started)
	}
	return r.Ended.Sub(r.Started)
}

// Session is a running exec with a terminal. Read Output until EOF (it ends
// when the process exits) while writing Stdin, then Wait for the exit code;
// Close always.
type Session struct {
	cli    Docker
	resp   types.HijackedResponse
	output *sessionOutput

	mu     sync.Mutex
	record ExecRecord

	closeOnce sync.Once
}

// Exec starts a command with a TTY in the running container of a replica.
func Exec(ctx context.Context, cli Docker, target ExecTarget, opts ExecOptions) (*Session, error) {
	if err := checkExec(opts); err != nil {
		return nil, err
	}
	c, err := runningReplica(ctx, cli, target)
	if err != nil {
		return nil, err
	}
	return execIn(ctx, cli, c, opts)
}

// checkExec checks a request before anything is looked up.
func checkExec(opts ExecOptions) error {
	if len(opts.Cmd) > 0 {
		if err := ValidateCommand(opts.Cmd); err != nil {
			return err
		}
	}
	if (opts.Rows != 0 || opts.Cols != 0) && !validSize(opts.Rows, opts.Cols) {
		return fmt.Errorf("%w: %dx%d", ErrInvalidSize, opts.Rows, opts.Cols)
	}
	return nil
}

// execIn starts the session in a running container of the local engine.
func execIn(ctx context.Context, cli Docker, c replicaContainer, opts ExecOptions) (*Session, error) {
	cmd := opts.Cmd
	var err error
	if len(cmd) == 0 {
		if cmd, err = findShell(ctx, cli, c.ID); err != nil {
			return nil, fmt.Errorf("exec in %s: %w", c.Name, err)
		}
	}
	var created container.ExecCreateResponse
	err = withTimeout(ctx, func(ctx context.Context) (err error) {
		created, err = cli.ContainerExecCreate(ctx, c.ID, container.ExecOptions{
			Cmd: cmd, Tty: true, DetachKeys: detachKeys,
			AttachStdin: true, AttachStdout: true, AttachStderr: true,
		})
		return err
	})
	if errdefs.IsConflict(err) {
		return nil, fmt.Errorf("exec in %s: %w", c.Name, ErrNotRunning)
	}
	if err != nil {
		return nil, fmt.Errorf("exec in %s: create: %w", c.Name, err)
	}
	resp, err := cli.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{Tty: true})
	if err != nil {
		return nil, fmt.Errorf("exec in %s: start: %w", c.Name, err)
	}
	s := &Session{
		cli:    cli,
		resp:   resp,
		output: &sessionOutput{r: resp.Reader, done: make(chan struct{})},
		record: ExecRecord{ContainerID: c.ID, Container: c.Name, ExecID: created.ID,
			Cmd: append([]string(nil), cmd...), Started: time.Now(), ExitCode: -1},
	}
	if opts.Rows != 0 {
		if err := s.Resize(ctx, opts.Rows, opts.Cols); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// ValidateCommand checks an exec argument vector: 1..MaxExecArgs
// non-empty arguments of valid UTF-8 without NUL, each at most
// MaxExecArgBytes.
func ValidateCommand(cmd []string) error {
	if len(cmd) == 0 || len(cmd) > MaxExecArgs {
		return fmt.Errorf("%w: want 1 to %d arguments, got %d", ErrInvalidCommand, MaxExecArgs, len(cmd))
	}
	for i, a := range cmd {
		switch {
		case a == "":
			return fmt.Errorf("%w: argument %d is empty", ErrInvalidCommand, i)
		case len(a) > MaxExecArgBytes:
			return fmt.Errorf("%w: argument %d is longer than %d bytes", ErrInvalidCommand, i, MaxExecArgBytes)
		case strings.IndexByte(a, 0) >= 0:
			return fmt.Errorf("%w: argument %d contains NUL", ErrInvalidCommand, i)
		case !utf8.ValidString(a):
			return fmt.Errorf("%w: argument %d is not valid UTF-8", ErrInvalidCommand, i)
		}
	}
	return nil
}

func validSize(rows, cols uint) bool {
	return rows >= 1 && rows <= MaxTermSize && cols >= 1 && cols <= MaxTermSize
}

// runningReplica picks the replica's running container: during a
// replacement two may run; the one with the final name wins, else the newest.
func runningReplica(ctx context.Context, cli Docker, t ExecTarget) (replicaContainer, error) {
	if t.Replica < 0 {
		return replicaContainer{}, errors.New("exec: replica must not be negative")
	}
	list, err := listReplicas(ctx, cli, t.Instance, t.Project, t.Service, &t.Replica)
	if err != nil {
		return replicaContainer{}, fmt.Errorf("exec: %w", err)
	}
	if len(list) == 0 {
		return replicaContainer{}, fmt.Errorf("exec: %s/%s replica %d: %w", t.Project, t.Service, t.Replica, ErrNoContainer)
	}
	final := naming.ContainerName(t.Project, t.Service, t.Replica)
	var pick *replicaContainer
	for i := range list {
		c := &list[i]
		if !c.Running {
			continue
		}
		if pick == nil || c.Name == final || (pick.Name != final && !c.Created.Before(pick.Created)) {
			pick = c
		}
	}
	if pick == nil {
		return replicaContainer{}, fmt.Errorf("exec: %s: %w", list[0].Name, ErrNotRunning)
	}
	return *pick, nil
}

// findShell looks for the default shells with the archive stat API, which
// needs no process in the container.
func findShell(ctx context.Context, cli Docker, id string) ([]string, error) {
	for _, sh := range defaultShells {
		ok, err := isExecutable(ctx, cli, id, sh[0])
		if err != nil {
			return nil, err
		}
		if ok {
			return sh, nil
		}
	}
	return nil, ErrNoShell
}

// isExecutable: path is (or links to) a regular file with an execute bit.
func isExecutable(ctx context.Context, cli Docker, id, path string) (bool, error) {
	for range 2 { // the path, then at most its link target
		var st container.PathStat
		err := withTimeout(ctx, func(ctx context.Context) (err error) {
			st, err = cli.ContainerStatPath(ctx, id, path)
			return err
		})
		if errdefs.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("stat %s: %w", path, err)
		}
		if st.Mode&os.ModeSymlink != 0 && st.LinkTarget != "" {
			path = st.LinkTarget // resolved by Docker inside the container
			continue
		}
		return st.Mode.IsRegular() && st.Mode&0o111 != 0, nil
	}
	return false, nil
}

// Output is the terminal's output (stdout and stderr together, as a TTY
// has them). It ends when the process exits or the session is closed.
func (s *Session) Output() io.Reader { return s.output }

// Stdin is the terminal's input.
func (s *Session) Stdin() io.Writer { return s.resp.Conn }

// Resize sets the terminal size (1..MaxTermSize rows and columns).
func (s *Session) Resize(ctx context.Context, rows, cols uint) error {
	if !validSize(rows, cols) {
		return fmt.Errorf("%w: %dx%d", ErrInvalidSize, rows, cols)
	}
	err := withTimeout(ctx, func(ctx context.Context) error {
		return s.cli.ContainerExecResize(ctx, s.record.ExecID, container.ResizeOptions{Height: rows, Width: cols})
	})
	if err != nil {
		// A quick command may have exited before its terminal was sized
		// (Engine API 1.41 sizes only a started exec): nothing to size.
		var in container.ExecInspect
		if ierr := withTimeout(ctx, func(ctx context.Context) (err error) {
			in, err = s.cli.ContainerExecInspect(ctx, s.record.ExecID)
			return err
		}); ierr == nil && !in.Running {
			return nil
		}
		return fmt.Errorf("resize exec %s: %w", s.record.ExecID, err)
	}
	return nil
}

// Wait waits for the process to exit and returns its exit code. The exit
// shows in Docker's exec inspection only; it is polled, quickly once the
// output has ended.
func (s *Session) Wait(ctx context.Context) (int, error) {
	for {
		var in container.ExecInspect
		err := withTimeout(ctx, func(ctx context.Context) (err error) {
			in, err = s.cli.ContainerExecInspect(ctx, s.record.ExecID)
			return err
		})
		if err != nil {
			return -1, fmt.Errorf("inspect exec %s: %w", s.record.ExecID, err)
		}
		// Before the process starts, Running is false too: trust it once
		// there is a pid, or once the output ended (a command that failed
		// to start has no pid).
		outputDone := s.output.ended()
		if !in.Running && (in.Pid != 0 || outputDone) {
			s.mu.Lock()
			s.record.ExitCode, s.record.Ended = in.ExitCode, time.Now()
			s.mu.Unlock()
			return in.ExitCode, nil
		}
		wait, ended := 250*time.Millisecond, s.output.done
		if outputDone {
			wait, ended = 20*time.Millisecond, nil
		}
		select {
		case <-ctx.Done():
			return -1, ctx.Err()
		case <-ended:
		case <-time.After(wait):
		}
	}
}

// Record returns what an audit event needs.
func (s *Session) Record() ExecRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.record
	r.Cmd = append([]string(nil), r.Cmd...)
	return r
}

// Close ends the session. Docker keeps an exec's process running when its
// client goes (there is no call to kill it, and a closed attach does not
// close the terminal), so Close first types what a user leaving would:
// ctrl-C, which the terminal turns into SIGINT for the foreground job, then
// ctrl-D, which ends a shell waiting at its prompt. A program that ignores
// both keeps running until it exits by itself.
func (s *Session) Close() error {
	s.closeOnce.Do(func() {
		if !s.output.ended() {
			_ = s.resp.Conn.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := s.resp.Conn.Write([]byte{ctrlC}); err == nil {
				// The terminal discards pending input on SIGINT: let the
				// interrupt land before the EOF.
				time.Sleep(hangupPause)
				_, _ = s.resp.Conn.Write([]byte{ctrlD})
				time.Sleep(hangupPause)
			}
		}
		s.resp.Close()
	})
	return nil
}

const (
	ctrlC       = 0x03
	ctrlD       = 0x04
	hangupPause = 100 * time.Millisecond
)

// sessionOutput notes the end of the output, which Wait uses.
type sessionOutput struct {
	r    io.Reader
	once sync.Once
	done chan struct{}
}

func (o *sessionOutput) Read(p []byte) (int, error) {
	n, err := o.r.Read(p)
	if err != nil {
		o.once.Do(func() { close(o.done) })
	}
	return n, err
}

func (o *sessionOutput) ended() bool {
	select {
	case <-o.done:
		return true
	default:
		return false
	}
}
