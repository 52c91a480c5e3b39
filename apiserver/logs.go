package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/panelx/panelx/apiserver/authz"
)

// Bounds of a logs request.
const (
	maxLogTail    = 100000
	maxLogReplica = 10000
	// logBatch lines are written before a flush when they come faster.
	logBatch = 256
	// logClientMaxBytes bounds what a WebSocket client may send (nothing
	// is expected).
	logClientMaxBytes = 1 << 10
)

// Formats of the logs endpoint.
const (
	logFormatNDJSON = "json"
	logFormatText   = "text"
	logFormatSSE    = "sse"
)

type logsQuery struct {
	req        LogsRequest
	timestamps bool
	format     string
}

func parseBoolParam(q map[string][]string, name string) (bool, error) {
	v := ""
	if vs := q[name]; len(vs) > 0 {
		v = vs[0]
	}
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badQuery(name, "must be true or false")
	}
	return b, nil
}

// parseLogsQuery reads follow, tail, since, timestamps, replica and format.
func parseLogsQuery(r *http.Request) (logsQuery, error) {
	q := r.URL.Query()
	var lq logsQuery
	var err error
	if lq.req.Follow, err = parseBoolParam(q, "follow"); err != nil {
		return lq, err
	}
	if lq.timestamps, err = parseBoolParam(q, "timestamps"); err != nil {
		return lq, err
	}
	if v := q.Get("tail"); v != "" && v != "all" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxLogTail {
			return lq, badQuery("tail", fmt.Sprintf("a number of lines from 0 to %d, or all", maxLogTail))
		}
		lq.req.Tail = &n
	}
	if v := q.Get("replica"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxLogReplica {
			return lq, badQuery("replica", "a replica index: 0, 1, …")
		}
		lq.req.Replica = &n
	}
	lq.req.Since = q.Get("since")
	if len(lq.req.Since) > 64 {
		return lq, badQuery("since", "too long")
	}
	switch f := q.Get("format"); f {
	case "", logFormatNDJSON, logFormatText, logFormatSSE:
		lq.format = f
	default:
		return lq, badQuery("format", "json, text or sse")
	}
	if lq.format == "" {
		lq.format = logFormatNDJSON
		if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
			lq.format = logFormatSSE
		}
	}
	return lq, nil
}

// serviceLogs: GET /api/v1/projects/{project}/services/{service}/logs —
// the merged lines of the service's replicas, each tagged with its replica
// and stream. As NDJSON (default), Server-Sent Events (Accept:
// text/event-stream), plain text (?format=text), or WebSocket text
// messages (an upgrade). Authenticated and authorized (any member) before
// anything else; a follow stream ends when the credential expires or the
// caller loses access.
func (s *Server) serviceLogs(w http.ResponseWriter, r *http.Request) {
	st, err := s.openStream(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer st.close()
	ctx := st.ctx
	key, err := s.serviceTarget(ctx, r, st.p, authz.Read)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	lq, err := parseLogsQuery(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ops, err := s.operations()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// cancel (above) also ends the Docker side's goroutines.
	lq.req.Project, lq.req.Service = key.Project, key.Name
	lines, err := ops.Logs(ctx, lq.req)
	if err != nil {
		s.fail(w, r, opError(err))
		return
	}
	guard := st.guard(key.Project, authz.Read)
	defer guard.stop()
	if isWebSocket(r) {
		s.logsWebSocket(ctx, w, r, st, lines, guard)
		return
	}
	sink := newHTTPLogSink(w, lq)
	defer sink.rc.SetWriteDeadline(time.Time{}) //nolint:errcheck // the connection may be reused
	if err := pumpLogs(ctx, lines, sink, guard); err != nil {
		logger(ctx).Debug("logs stream ended", zap.Error(err))
		sink.fail(err.Error())
	}
}

func (s *Server) logsWebSocket(ctx context.Context, w http.ResponseWriter, r *http.Request, st *stream, lines <-chan LogLine, guard *accessGuard) {
	conn, err := st.accept(w, r, logClientMaxBytes)
	if err != nil {
		logger(ctx).Debug("websocket accept", zap.Error(err))
		return
	}
	defer conn.CloseNow()
	// Nothing is read; CloseRead notices a client leaving (and closes on
	// any data message).
	ctx = conn.CloseRead(ctx)
	err = pumpLogs(ctx, lines, &wsLogSink{conn: conn}, guard)
	switch {
	case err == nil:
		conn.Close(websocket.StatusNormalClosure, "end of the logs")
	case errors.Is(err, errCredentialExpired), errors.Is(err, errAccessEnded), errors.Is(err, errCredentialRevoked):
		conn.Close(websocket.StatusPolicyViolation, err.Error())
	case ctx.Err() != nil:
	default:
		logger(ctx).Debug("logs stream ended", zap.Error(err))
		conn.Close(websocket.StatusGoingAway, "write failed")
	}
}

// logSink is where lines go.
type logSink interface {
	write(ctx context.Context, l LogLine) error
	flush() error
	ping(ctx context.Context) error
	// end marks a complete stream (all lines sent).
	end(ctx context.Context) error
}

// pumpLogs sends lines until the stream ends (nil), ctx ends (nil), the
// client cannot keep up, or the credential or access ends.
func pumpLogs(ctx context.Context, lines <-chan LogLine, sink logSink, guard *accessGuard) error {
	ping := time.NewTicker(streamPing)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case l, ok := <-lines:
			if !ok {
				return sink.end(ctx)
			}
			open, err := writeBatch(ctx, lines, sink, l)
			if err != nil {
				return err
			}
			if !open {
				return sink.end(ctx)
			}
		case <-ping.C:
			if err := sink.ping(ctx); err != nil {
				return err
			}
		case <-guard.expired:
			return errCredentialExpired
		case <-guard.recheck.C:
			if err := guard.check(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
	}
}

// writeBatch writes l and the lines ready right after it, then flushes;
// open is false once the channel closed.
func writeBatch(ctx context.Context, lines <-chan LogLine, sink logSink, l LogLine) (open bool, err error) {
	if err := sink.write(ctx, l); err != nil {
		return true, err
	}
	for range logBatch {
		select {
		case next, ok := <-lines:
			if !ok {
				return false, sink.flush()
			}
			if err := sink.write(ctx, next); err != nil {
				return true, err
			}
			continue
		default:
		}
		break
	}
	return true, sink.flush()
}

// httpLogSink writes NDJSON, Server-Sent Events or text.
type httpLogSink struct {
	w          http.ResponseWriter
	rc         *http.ResponseController
	format     string
	timestamps bool
}

func newHTTPLogSink(w http.ResponseWriter, lq logsQuery) *httpLogSink {
	switch lq.format {
	case logFormatSSE:
		w.Header().Set("Content-Type", "text/event-stream")
	case logFormatText:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	default:
		w.Header().Set("Content-Type", "application/x-ndjson")
	}
	w.Header().Set("X-Accel-Buffering", "no") // nginx must not buffer the stream
	w.WriteHeader(http.StatusOK)
	k := &httpLogSink{w: w, rc: http.NewResponseController(w), format: lq.format, timestamps: lq.timestamps}
	_ = k.flush() // the client sees the stream open before the first line
	return k
}

func (k *httpLogSink) write(_ context.Context, l LogLine) error {
	_ = k.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	var err error
	switch k.format {
	case logFormatText:
		_, err = fmt.Fprintln(k.w, textLine(l, k.timestamps))
	case logFormatSSE:
		data, _ := json.Marshal(l) // plain data: cannot fail
		_, err = fmt.Fprintf(k.w, "event: line\ndata: %s\n\n", data)
	default:
		data, _ := json.Marshal(l)
		_, err = k.w.Write(append(data, '\n'))
	}
	return err
}

// textLine renders "[replica stream] text", the time first when asked.
func textLine(l LogLine, timestamps bool) string {
	replica := "-"
	if l.Replica >= 0 {
		replica = strconv.Itoa(l.Replica)
	}
	line := "[" + replica + " " + l.Stream + "] " + l.Text
	if timestamps {
		line = l.Time.UTC().Format(time.RFC3339Nano) + " " + line
	}
	return line
}

func (k *httpLogSink) flush() error {
	_ = k.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	return k.rc.Flush()
}

// ping: SSE has comments; NDJSON and text have no room for one, and a
// dead HTTP client is noticed by the server closing the request anyway.
func (k *httpLogSink) ping(context.Context) error {
	if k.format != logFormatSSE {
		return nil
	}
	_ = k.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	if _, err := fmt.Fprint(k.w, ": ping\n\n"); err != nil {
		return err
	}
	return k.rc.Flush()
}

// end: an EventSource reconnects when a stream closes, so SSE says that
// this one is complete.
func (k *httpLogSink) end(context.Context) error {
	if k.format != logFormatSSE {
		return nil
	}
	_ = k.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	if _, err := fmt.Fprint(k.w, "event: end\ndata: {}\n\n"); err != nil {
		return err
	}
	return k.rc.Flush()
}

// fail tells the client why the stream ends early (best effort): an SSE
// error event, or a last system line.
func (k *httpLogSink) fail(reason string) {
	_ = k.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	if k.format == logFormatSSE {
		data, _ := json.Marshal(map[string]string{"message": reason})
		_, _ = fmt.Fprintf(k.w, "event: error\ndata: %s\n\n", data)
	} else {
		_ = k.write(context.Background(), LogLine{Replica: -1, Stream: "system", Time: time.Now().UTC(), Text: "stream ended: " + reason})
	}
	_ = k.rc.Flush()
}

// wsLogSink sends one text message per line.
type wsLogSink struct{ conn *websocket.Conn }

func (k *wsLogSink) write(ctx context.Context, l LogLine) error {
	data, _ := json.Marshal(l)
	ctx, cancel := context.WithTimeout(ctx, streamWriteTimeout)
	defer cancel()
	return k.conn.Write(ctx, websocket.MessageText, data)
}

func (k *wsLogSink) flush() error { return nil }

func (k *wsLogSink) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, streamWriteTimeout)
	defer cancel()
	return k.conn.Ping(ctx)
}

func (k *wsLogSink) end(context.Context) error { return nil }
