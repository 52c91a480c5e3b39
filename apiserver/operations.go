package apiserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/panelx/panelx/api"
)

// Operations is the Docker side of a service's logs, its web terminal and a
// volume's files. This package never talks to Docker itself: cmd/panelx
// passes an implementation over package operate (internal/operations) in
// Options.Operations. Its errors wrap the Err* values below, which decide
// the HTTP status.
type Operations interface {
	// Logs streams the merged log lines of a service's replicas. Without
	// Follow the channel closes after the last line; with Follow it stays
	// open until ctx ends. Nothing is buffered without bound: a consumer
	// that stops reading stops the producers.
	Logs(ctx context.Context, req LogsRequest) (<-chan LogLine, error)
	// Exec starts a command with a terminal in a running replica.
	Exec(ctx context.Context, req ExecRequest) (ExecSession, error)
	// Files opens a volume of a project.
	Files(ctx context.Context, project, volume string) (VolumeFiles, error)
	// CheckPath checks a path inside a volume without any I/O: only
	// clean relative paths pass (ErrInvalidArgument otherwise). The
	// VolumeFiles methods check again, and refuse paths through links.
	CheckPath(p string) error
}

// Errors an Operations implementation wraps so the API can answer with the
// right status.
var (
	// ErrInvalidArgument: a bad path (traversal, absolute, a link on the
	// way, odd encodings), command, terminal size, since value or body
	// size (400).
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrOpNotFound: no such file, or the service has no container (404).
	ErrOpNotFound = errors.New("not found")
	// ErrOpConflict: exists already, not a directory, is a directory, the
	// container does not run (409).
	ErrOpConflict = errors.New("conflict")
	// ErrOpTooLarge: over the upload limit (413).
	ErrOpTooLarge = errors.New("too large")
	// ErrOpUnprocessable: the request is well formed but cannot be carried
	// out as asked, such as a terminal without a command in an image
	// without a shell (422).
	ErrOpUnprocessable = errors.New("cannot be carried out")
	// ErrOpUnavailable: Docker is not connected (yet), or this server does
	// not run the Docker side (503).
	ErrOpUnavailable = errors.New("not available on this server")
	// ErrIsDirectory: a file operation met a directory (a 409; a GET of
	// files lists it instead).
	ErrIsDirectory = fmt.Errorf("%w: is a directory", ErrOpConflict)
)

// OpError gives err one of the kinds above; its message stays err's, which
// becomes the problem's detail.
func OpError(kind, err error) error { return &opErr{kind: kind, err: err} }

type opErr struct{ kind, err error }

func (e *opErr) Error() string   { return e.err.Error() }
func (e *opErr) Unwrap() []error { return []error{e.kind, e.err} }

// opStatus maps an Operations error to an HTTP status; 0: none of them.
func opStatus(err error) int {
	switch {
	case errors.Is(err, ErrInvalidArgument):
		return http.StatusBadRequest
	case errors.Is(err, ErrOpNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrOpConflict):
		return http.StatusConflict
	case errors.Is(err, ErrOpTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrOpUnprocessable):
		return http.StatusUnprocessableEntity
	case errors.Is(err, ErrOpUnavailable):
		return http.StatusServiceUnavailable
	}
	return 0
}

// opError turns an Operations error into an apiError with its status; the
// operation's message is the detail (it names paths and containers of the
// caller's own project, never host paths). Anything else stays a 500.
func opError(err error) error {
	if st := opStatus(err); st != 0 {
		return &apiError{status: st, detail: err.Error(), cause: err}
	}
	return err
}

// LogsRequest selects the logs of one service.
type LogsRequest struct {
	Project, Service string
	// Replica restricts the logs to one replica index; nil: all.
	Replica *int
	Follow  bool
	// Tail is the number of past lines per replica container; nil: all.
	Tail *int
	// Since is "" (no bound), a duration before now ("10m"), an RFC 3339
	// time or Unix seconds; the implementation parses it (a bad value
	// wraps ErrInvalidArgument).
	Since string
}

// LogLine is one line of one replica's logs (api.LogLine).
type LogLine = api.LogLine

// ExecRequest is what a terminal's client may choose: the replica, the
// argument vector (empty: a shell found in the image) and the terminal
// size. User, privileges, working directory and environment are never
// taken from a request.
type ExecRequest struct {
	Project, Service string
	Replica          int
	Cmd              []string
	Rows, Cols       uint
}

// ExecSession is a running command with a terminal.
type ExecSession interface {
	// Output is the terminal's output; it ends when the process exits.
	Output() io.Reader
	// Stdin is the terminal's input.
	Stdin() io.Writer
	Resize(ctx context.Context, rows, cols uint) error
	// Wait returns the exit code once the process exited.
	Wait(ctx context.Context) (int, error)
	Record() ExecRecord
	// Close ends the session: Docker cannot kill an exec'd process, so it
	// types ctrl-C and ctrl-D into the terminal first.
	Close() error
}

// ExecRecord is what the audit event of a session says.
type ExecRecord struct {
	ContainerID string
	Container   string
	Cmd         []string
	Started     time.Time
	Ended       time.Time // zero while it runs or when never waited for
	ExitCode    int       // -1 when unknown
}

// VolumeFiles are the file operations on one volume. Paths are relative to
// the volume root ("" is the root) and checked by the implementation.
type VolumeFiles interface {
	List(ctx context.Context, dir string) (FileListing, error)
	// Read opens a regular file; close the reader.
	Read(ctx context.Context, path string) (io.ReadCloser, FileEntry, error)
	// Write creates or replaces a regular file with exactly size bytes of r
	// (at most limit).
	Write(ctx context.Context, path string, r io.Reader, size, limit int64) error
	Mkdir(ctx context.Context, path string) error
	Rename(ctx context.Context, from, to string) error
	// Delete removes a file, a link (not its target) or a directory tree.
	Delete(ctx context.Context, path string) error
}

// FileListing is a directory's entries in byte order of their names.
type FileListing struct {
	Entries []FileEntry
	// Truncated: more entries exist than were returned.
	Truncated bool
}

// FileEntry describes a directory entry; links are never followed.
type FileEntry struct {
	Name string
	Type string // file, dir, symlink or other
	Size int64
	// Mode holds the Unix permission bits with setuid 04000, setgid 02000
	// and sticky 01000.
	Mode       uint32
	ModTime    time.Time
	UID, GID   int
	LinkTarget string
}
