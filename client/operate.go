package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/internal/version"
)

// LogsOptions select log lines.
type LogsOptions struct {
	Follow bool
	// Tail is the number of past lines per replica container; nil: all.
	Tail *int
	// Since: a duration before now ("10m"), an RFC 3339 time or Unix
	// seconds; "": no bound.
	Since string
	// Replica restricts the logs to one replica index; nil: all.
	Replica *int
}

// LogLine is one line of one replica.
type LogLine = api.LogLine

func servicePath(project, service, what string) string {
	return "/api/v1/projects/" + url.PathEscape(project) + "/services/" + url.PathEscape(service) + "/" + what
}

// Logs streams a service's logs (NDJSON) to fn, line by line, until the
// stream ends (without Follow: after the last line), fn fails, or ctx
// ends (nil).
func (c *Client) Logs(ctx context.Context, project, service string, opts LogsOptions, fn func(LogLine) error) error {
	q := url.Values{"format": {"json"}}
	if opts.Follow {
		q.Set("follow", "true")
	}
	if opts.Tail != nil {
		q.Set("tail", strconv.Itoa(*opts.Tail))
	}
	if opts.Since != "" {
		q.Set("since", opts.Since)
	}
	if opts.Replica != nil {
		q.Set("replica", strconv.Itoa(*opts.Replica))
	}
	req, err := c.newRequest(ctx, request{method: http.MethodGet, path: servicePath(project, service, "logs"), query: q,
		header: http.Header{"Accept": {"application/x-ndjson"}}})
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("logs: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return decodeError(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	// A line is at most 64 KiB of text, which JSON escaping may grow.
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l LogLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return fmt.Errorf("logs: bad line from the server: %w", err)
		}
		if err := fn(l); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("logs: the stream broke off: %w", err)
	}
	return nil
}

// ExecOptions start a terminal session.
type ExecOptions struct {
	// Cmd is the argument vector, run as is (never through a shell on the
	// server); empty: a shell found in the image.
	Cmd     []string
	Replica int
	// Rows and Cols are the initial terminal size (0: Docker's default).
	Rows, Cols uint
}

// ExecError is an error the server reported on a terminal session; Status
// is the HTTP status it stands for.
type ExecError struct {
	Status  int
	Message string
}

func (e *ExecError) Error() string { return fmt.Sprintf("%s (%d)", e.Message, e.Status) }

// ExecSession is a terminal session over a WebSocket. Write sends input;
// Run copies the output until the command exits and returns its exit code.
type ExecSession struct {
	conn *websocket.Conn
	// Container is the container the command runs in.
	Container string

	closeOnce sync.Once
}

// execWriteTimeout bounds one message to the server.
const execWriteTimeout = 30 * time.Second

// Exec opens a terminal session in a replica of a service and starts the
// command. The token travels in the Authorization header, never in the URL.
func (c *Client) Exec(ctx context.Context, project, service string, opts ExecOptions) (*ExecSession, error) {
	u := *c.base
	u.Path = c.base.Path + servicePath(project, service, "exec")
	conn, resp, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{
		HTTPClient: c.http,
		HTTPHeader: http.Header{"Authorization": {"Bearer " + c.token}, "User-Agent": {"panelx-cli/" + version.Version}},
	})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, decodeError(resp)
		}
		return nil, fmt.Errorf("exec: %w", err)
	}
	conn.SetReadLimit(1 << 20)
	s := &ExecSession{conn: conn}
	if err := s.send(ctx, api.ExecClientMessage{Type: "start", Cmd: opts.Cmd, Replica: opts.Replica, Rows: opts.Rows, Cols: opts.Cols}); err != nil {
		s.Close()
		return nil, fmt.Errorf("exec: %w", err)
	}
	typ, data, err := conn.Read(ctx)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("exec: %w", err)
	}
	m, err := decodeExecMessage(typ, data)
	if err == nil && m.Type != "started" {
		err = fmt.Errorf("exec: unexpected %q message", m.Type)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	s.Container = m.Container
	return s, nil
}

func decodeExecMessage(typ websocket.MessageType, data []byte) (api.ExecServerMessage, error) {
	var m api.ExecServerMessage
	if typ != websocket.MessageText {
		return m, errors.New("exec: unexpected binary message")
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("exec: bad message from the server: %w", err)
	}
	if m.Type == "error" {
		return m, &ExecError{Status: m.Status, Message: m.Message}
	}
	return m, nil
}

func (s *ExecSession) send(ctx context.Context, m api.ExecClientMessage) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, execWriteTimeout)
	defer cancel()
	return s.conn.Write(ctx, websocket.MessageText, data)
}

// Write sends terminal input.
func (s *ExecSession) Write(p []byte) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), execWriteTimeout)
	defer cancel()
	if err := s.conn.Write(ctx, websocket.MessageBinary, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Resize sets the terminal size.
func (s *ExecSession) Resize(ctx context.Context, rows, cols uint) error {
	return s.send(ctx, api.ExecClientMessage{Type: "resize", Rows: rows, Cols: cols})
}

// Run copies the terminal's output to out until the command exits, and
// returns its exit code. An error the server reports is an *ExecError.
func (s *ExecSession) Run(ctx context.Context, out io.Writer) (int, error) {
	for {
		typ, data, err := s.conn.Read(ctx)
		if err != nil {
			if st := websocket.CloseStatus(err); st != -1 {
				return -1, fmt.Errorf("exec: the server closed the session (%d)", st)
			}
			return -1, fmt.Errorf("exec: %w", err)
		}
		if typ == websocket.MessageBinary {
			if _, err := out.Write(data); err != nil {
				return -1, err
			}
			continue
		}
		m, err := decodeExecMessage(typ, data)
		if err != nil {
			return -1, err
		}
		if m.Type == "exit" && m.Code != nil {
			s.conn.Close(websocket.StatusNormalClosure, "")
			return *m.Code, nil
		}
	}
}

// Close ends the session; the server types ctrl-C and ctrl-D into the
// terminal of a command still running.
func (s *ExecSession) Close() error {
	s.closeOnce.Do(func() { s.conn.Close(websocket.StatusNormalClosure, "") })
	return nil
}

// FileInfo and FileList are a volume directory's listing.
type (
	FileInfo = api.FileItem
	FileList = api.FileList
)

// filesPath is the URL path of p (relative to the volume root) in a
// volume; each segment is escaped, so the server decodes it once.
func filesPath(project, volume, p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return "/api/v1/projects/" + url.PathEscape(project) + "/volumes/" + url.PathEscape(volume) + "/files/" + strings.Join(segs, "/")
}

// ListFiles lists a directory of a volume ("" is the root).
func (c *Client) ListFiles(ctx context.Context, project, volume, dir string) (FileList, error) {
	var out FileList
	err := c.do(ctx, request{method: http.MethodGet, path: filesPath(project, volume, dir), escaped: true}, &out)
	return out, err
}

// Download opens a file of a volume; close the reader.
func (c *Client) Download(ctx context.Context, project, volume, p string) (io.ReadCloser, error) {
	req, err := c.newRequest(ctx, request{method: http.MethodGet, path: filesPath(project, volume, p), escaped: true})
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", p, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, decodeError(resp)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/octet-stream" {
		resp.Body.Close()
		return nil, fmt.Errorf("download %s: not a file (%s)", p, ct)
	}
	return resp.Body, nil
}

// Upload creates or replaces a file of a volume with size bytes of r.
func (c *Client) Upload(ctx context.Context, project, volume, p string, r io.Reader, size int64) error {
	req, err := c.newRequest(ctx, request{method: http.MethodPut, path: filesPath(project, volume, p), body: r,
		contentType: "application/octet-stream", escaped: true})
	if err != nil {
		return err
	}
	req.ContentLength = size
	if size == 0 {
		req.Body = http.NoBody
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("upload %s: %w", p, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return decodeError(resp)
	}
	return nil
}

// Mkdir makes a directory in a volume.
func (c *Client) Mkdir(ctx context.Context, project, volume, p string) error {
	return c.do(ctx, request{method: http.MethodPost, path: filesPath(project, volume, p), escaped: true, query: url.Values{"op": {"mkdir"}}}, nil)
}

// RenameFile moves from to to within a volume.
func (c *Client) RenameFile(ctx context.Context, project, volume, from, to string) error {
	return c.do(ctx, request{method: http.MethodPost, path: filesPath(project, volume, from), escaped: true,
		query: url.Values{"op": {"rename"}, "to": {to}}}, nil)
}

// DeleteFile deletes a file, a link or a directory tree of a volume.
func (c *Client) DeleteFile(ctx context.Context, project, volume, p string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: filesPath(project, volume, p), escaped: true}, nil)
}

// ContainerStats is one container's live sample of the metrics stream.
type ContainerStats = api.ContainerStats

// StatsMessage is one message of the metrics stream: every container of
// the project at one tick.
type StatsMessage struct {
	Time       time.Time        `json:"time"`
	Interval   string           `json:"interval"`
	Containers []ContainerStats `json:"containers"`
}

// Stats follows a project's live metrics stream (WebSocket), calling fn
// with each message until fn returns an error (returned, unless it is
// ErrStop), ctx ends or the server closes the stream.
func (c *Client) Stats(ctx context.Context, project string, interval time.Duration, fn func(StatsMessage) error) error {
	u := *c.base
	u.Path = c.base.Path + "/api/v1/projects/" + url.PathEscape(project) + "/metrics/stream"
	u.RawQuery = url.Values{"interval": {interval.String()}}.Encode()
	conn, resp, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{
		HTTPClient: c.http,
		HTTPHeader: http.Header{"Authorization": {"Bearer " + c.token}, "User-Agent": {"panelx-cli/" + version.Version}},
	})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return decodeError(resp)
		}
		return fmt.Errorf("metrics stream: %w", err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(4 << 20)
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("metrics stream: %w", err)
		}
		if typ != websocket.MessageText {
			continue
		}
		var m StatsMessage
		if err := json.Unmarshal(data, &m); err != nil {
			return fmt.Errorf("metrics stream: bad message: %w", err)
		}
		if err := fn(m); err != nil {
			if errors.Is(err, ErrStop) {
				conn.Close(websocket.StatusNormalClosure, "")
				return nil
			}
			return err
		}
	}
}

// ErrStop, returned by a Stats callback, ends the stream without an error.
var ErrStop = errors.New("stop")
