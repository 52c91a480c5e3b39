package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/apiserver/authz"
	"github.com/panelx/panelx/store"
)

// Terminal protocol bounds.
const (
	// execClientMaxBytes bounds one client message (stdin chunk or
	// control message).
	execClientMaxBytes = 64 << 10
	// execStartTimeout: the client must send its start message this soon
	// after the upgrade.
	execStartTimeout = 10 * time.Second
	// execOutputChunk is the largest binary message of terminal output.
	execOutputChunk = 32 << 10
	// execStdinQueue bounds stdin messages waiting for the process: a
	// client that types faster than the program reads is held back.
	execStdinQueue = 16
	// execWaitTimeout bounds the wait for the exit code once output ended.
	execWaitTimeout = 30 * time.Second
	// execEventCmdBytes bounds the command name in the audit event.
	execEventCmdBytes = 256
)

// Close codes of a terminal beyond the standard ones: 4000 + the HTTP
// status the problem would have had (4400 bad message, 4404 no container,
// 4408 idle or no start message, 4409 container not running, 4422 no
// shell, 4500 internal error, 4503 Docker unavailable).
func closeCodeFor(status int) websocket.StatusCode { return websocket.StatusCode(4000 + status) }

// ExecClientMessage and ExecServerMessage are the terminal's control
// messages (api.ExecClientMessage, api.ExecServerMessage).
type (
	ExecClientMessage = api.ExecClientMessage
	ExecServerMessage = api.ExecServerMessage
)

// serviceExec: GET /api/v1/projects/{project}/services/{service}/exec —
// a WebSocket terminal in a replica of the service. Authentication (header
// or subprotocol, Origin checked), authorization (editor and up) and the
// service's existence are checked before the upgrade, so refusals are
// plain HTTP answers. See ExecClientMessage and ExecServerMessage for the
// protocol.
func (s *Server) serviceExec(w http.ResponseWriter, r *http.Request) {
	st, err := s.openStream(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer st.close()
	ctx := st.ctx
	key, err := s.serviceTarget(ctx, r, st.p, authz.Write)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !isWebSocket(r) {
		s.fail(w, r, httpErr(http.StatusUpgradeRequired, "this endpoint is a WebSocket"))
		return
	}
	ops, err := s.operations()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	conn, err := st.accept(w, r, execClientMaxBytes)
	if err != nil {
		logger(ctx).Debug("websocket accept", zap.Error(err))
		return
	}
	defer conn.CloseNow()
	t := &terminal{s: s, st: st, conn: conn, ops: ops, p: st.p, key: key}
	code, reason := t.run(ctx)
	conn.Close(code, closeReason(reason))
}

// closeReason fits a reason into a close frame (at most 123 bytes).
func closeReason(s string) string {
	if len(s) <= 120 {
		return s
	}
	cut := 120
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// terminal is one WebSocket terminal session.
type terminal struct {
	s    *Server
	st   *stream
	conn *websocket.Conn
	ops  Operations
	p    *authz.Principal
	key  api.Key

	lastActive atomic.Int64 // unix nanoseconds of the last input or output
}

func (t *terminal) touch() { t.lastActive.Store(time.Now().UnixNano()) }

// run carries the session and returns how to close the connection. Reads
// use the request's context: canceling a read's context closes the
// connection at once, without the close frame that tells the client why.
func (t *terminal) run(ctx context.Context) (websocket.StatusCode, string) {
	start, err := t.readStart(ctx)
	var ae *apiError
	switch {
	case errors.Is(err, errStartTimeout):
		return closeCodeFor(http.StatusRequestTimeout), err.Error() // closed already
	case errors.As(err, &ae):
		return t.fail(ctx, err) // a bad start message
	case err != nil:
		return websocket.StatusNormalClosure, "" // the client went
	}
	sess, err := t.ops.Exec(ctx, ExecRequest{Project: t.key.Project, Service: t.key.Name,
		Replica: start.Replica, Cmd: start.Cmd, Rows: start.Rows, Cols: start.Cols})
	if err != nil {
		return t.fail(ctx, opError(err))
	}
	defer t.finish(ctx, sess, start.Replica)
	if err := t.send(ctx, ExecServerMessage{Type: "started", Container: sess.Record().Container}); err != nil {
		return websocket.StatusGoingAway, "write failed"
	}
	return t.loop(ctx, sess)
}

// finish closes the session and records it. A session the client left
// gets a moment to exit after Close's ctrl-C and ctrl-D, so that the
// event can say how it ended.
func (t *terminal) finish(ctx context.Context, sess ExecSession, replica int) {
	sess.Close()
	if sess.Record().ExitCode < 0 {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		_, _ = sess.Wait(wctx)
		cancel()
	}
	t.record(ctx, replica, sess.Record())
}

var errStartTimeout = fmt.Errorf("no start message within %s", execStartTimeout)

// readStart reads and checks the first message. A client that sends none
// in time gets an error message and the close code 4408.
func (t *terminal) readStart(ctx context.Context) (ExecClientMessage, error) {
	timer := time.AfterFunc(execStartTimeout, func() {
		_ = t.send(ctx, ExecServerMessage{Type: "error", Status: http.StatusRequestTimeout, Message: errStartTimeout.Error()})
		_ = t.conn.Close(closeCodeFor(http.StatusRequestTimeout), errStartTimeout.Error())
	})
	typ, data, err := t.conn.Read(ctx)
	if !timer.Stop() {
		return ExecClientMessage{}, errStartTimeout
	}
	if err != nil {
		return ExecClientMessage{}, err
	}
	m, err := decodeClientMessage(typ, data)
	if err != nil {
		return m, err
	}
	switch {
	case m.Type != "start":
		return m, httpErr(http.StatusBadRequest, `the first message must be {"type": "start", …}`)
	case m.Replica < 0 || m.Replica > maxLogReplica:
		return m, httpErr(http.StatusBadRequest, "replica: a replica index: 0, 1, …")
	}
	return m, nil
}

func decodeClientMessage(typ websocket.MessageType, data []byte) (ExecClientMessage, error) {
	var m ExecClientMessage
	if typ != websocket.MessageText {
		return m, httpErr(http.StatusBadRequest, "control messages are JSON text frames")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return m, httpErr(http.StatusBadRequest, "bad control message: %v", err)
	}
	return m, nil
}

// fail tells the client why the session ends and picks the close code.
func (t *terminal) fail(ctx context.Context, err error) (websocket.StatusCode, string) {
	var ae *apiError
	var msg ExecServerMessage
	var code websocket.StatusCode
	switch {
	case errors.As(err, &ae):
		msg = ExecServerMessage{Type: "error", Status: ae.status, Message: ae.detail}
		code = closeCodeFor(ae.status)
	case errors.Is(err, errCredentialExpired), errors.Is(err, errAccessEnded):
		msg = ExecServerMessage{Type: "error", Status: http.StatusForbidden, Message: err.Error()}
		code = websocket.StatusPolicyViolation
	case ctx.Err() != nil || websocket.CloseStatus(err) != -1:
		return websocket.StatusNormalClosure, "" // the client went
	default:
		logger(ctx).Error("terminal failed", zap.Error(err))
		msg = ExecServerMessage{Type: "error", Status: http.StatusInternalServerError,
			Message: "an internal error occurred; quote the request id when reporting it: " + requestID(ctx)}
		code = closeCodeFor(http.StatusInternalServerError)
	}
	_ = t.send(ctx, msg)
	return code, msg.Message
}

func (t *terminal) send(ctx context.Context, m ExecServerMessage) error {
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, streamWriteTimeout)
	defer cancel()
	return t.conn.Write(ctx, websocket.MessageText, data)
}

// loop pumps output and input until the process exits, the client goes,
// the session idles, or access ends.
func (t *terminal) loop(ctx context.Context, sess ExecSession) (websocket.StatusCode, string) {
	t.touch()
	outDone := make(chan error, 1)
	inDone := make(chan error, 1)
	go func() { outDone <- t.pumpOutput(ctx, sess) }()
	go func() { inDone <- t.pumpInput(ctx, sess) }()

	guard := t.st.guard(t.key.Project, authz.Write)
	defer guard.stop()
	ping := time.NewTicker(streamPing)
	defer ping.Stop()
	idle := time.NewTicker(max(min(t.s.ops.idle/4, time.Minute), 10*time.Millisecond))
	defer idle.Stop()
	for {
		select {
		case err := <-outDone:
			if err != nil {
				return websocket.StatusGoingAway, "write failed"
			}
			return t.exit(ctx, sess)
		case err := <-inDone:
			var ae *apiError
			if errors.As(err, &ae) {
				return t.fail(ctx, err) // a bad message
			}
			return websocket.StatusNormalClosure, "" // the client closed or went
		case <-ctx.Done():
			return websocket.StatusNormalClosure, ""
		case <-guard.expired:
			return t.fail(ctx, errCredentialExpired)
		case <-guard.recheck.C:
			if err := guard.check(ctx); err != nil {
				return t.fail(ctx, err)
			}
		case <-ping.C:
			pctx, cancel := context.WithTimeout(ctx, streamWriteTimeout)
			err := t.conn.Ping(pctx)
			cancel()
			if err != nil {
				return websocket.StatusGoingAway, "no answer to ping"
			}
		case <-idle.C:
			if time.Since(time.Unix(0, t.lastActive.Load())) >= t.s.ops.idle {
				return t.fail(ctx, httpErr(http.StatusRequestTimeout, "no input or output for %s", t.s.ops.idle))
			}
		}
	}
}

// exit reports the exit code after the output ended.
func (t *terminal) exit(ctx context.Context, sess ExecSession) (websocket.StatusCode, string) {
	wctx, cancel := context.WithTimeout(ctx, execWaitTimeout)
	defer cancel()
	code, err := sess.Wait(wctx)
	if err != nil {
		return t.fail(ctx, fmt.Errorf("wait for the exit code: %w", err))
	}
	if err := t.send(ctx, ExecServerMessage{Type: "exit", Code: &code}); err != nil {
		return websocket.StatusGoingAway, "write failed"
	}
	return websocket.StatusNormalClosure, fmt.Sprintf("exit code %d", code)
}

// pumpOutput sends the terminal's output as binary messages; nil at its end.
func (t *terminal) pumpOutput(ctx context.Context, sess ExecSession) error {
	buf := make([]byte, execOutputChunk)
	for {
		n, err := sess.Output().Read(buf)
		if n > 0 {
			t.touch()
			wctx, cancel := context.WithTimeout(ctx, streamWriteTimeout)
			werr := t.conn.Write(wctx, websocket.MessageBinary, buf[:n])
			cancel()
			if werr != nil {
				return werr
			}
		}
		if err != nil {
			return nil // EOF, or the session was closed
		}
	}
}

// pumpInput reads the client: binary frames are stdin, text frames control
// messages. It returns why the client's side ended.
func (t *terminal) pumpInput(ctx context.Context, sess ExecSession) error {
	stdin := make(chan []byte, execStdinQueue)
	stdinErr := make(chan error, 1)
	go func() {
		for data := range stdin {
			if _, err := sess.Stdin().Write(data); err != nil {
				stdinErr <- err
				return
			}
		}
	}()
	defer close(stdin)
	for {
		typ, data, err := t.conn.Read(ctx)
		if err != nil {
			return err
		}
		t.touch()
		if typ == websocket.MessageBinary {
			select {
			case stdin <- data:
			case err := <-stdinErr:
				return fmt.Errorf("write to the terminal: %w", err)
			case <-ctx.Done():
				return ctx.Err()
			}
			continue
		}
		m, err := decodeClientMessage(typ, data)
		if err != nil {
			return err
		}
		if m.Type != "resize" {
			return httpErr(http.StatusBadRequest, `after "start" only "resize" control messages are accepted`)
		}
		if err := sess.Resize(ctx, m.Rows, m.Cols); err != nil {
			return opError(err)
		}
	}
}

// record writes the session's audit event: who, which container, the
// command's name (never its arguments, which may hold secrets), when, the
// exit code and the duration. Terminal input and output are never logged.
func (t *terminal) record(ctx context.Context, replica int, rec ExecRecord) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	ended := rec.Ended
	if ended.IsZero() {
		ended = time.Now()
	}
	exit := "exit code unknown (the session was closed before the command exited)"
	if rec.ExitCode >= 0 {
		exit = fmt.Sprintf("exit code %d", rec.ExitCode)
	}
	cmd := ""
	if len(rec.Cmd) > 0 {
		cmd = rec.Cmd[0]
		if len(cmd) > execEventCmdBytes {
			cmd = strings.ToValidUTF8(cmd[:execEventCmdBytes], "") + "…"
		}
	}
	id := rec.ContainerID
	if len(id) > 12 {
		id = id[:12]
	}
	msg := fmt.Sprintf("terminal of user %q in container %s (%s, replica %d): command %q (arguments not recorded), started %s, %s, after %s",
		t.p.UserID, rec.Container, id, replica, cmd, rec.Started.UTC().Format(time.RFC3339), exit, ended.Sub(rec.Started).Round(time.Millisecond))
	ev := store.Event{Project: t.key.Project, Kind: api.KindService, Name: t.key.Name,
		Type: store.EventNormal, Reason: "Exec", Message: msg}
	if err := t.s.store.Events().Record(ctx, ev); err != nil {
		logger(ctx).Error("record the terminal session's event", zap.Error(err))
	}
	logger(ctx).Info("terminal session ended", zap.String("user_id", t.p.UserID), zap.String("container", rec.Container),
		zap.Int("exit_code", rec.ExitCode), zap.Duration("duration", ended.Sub(rec.Started)))
}
