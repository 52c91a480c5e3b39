package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/coder/websocket"
	"github.com/go-chi/chi/v5"
	"go.uber.org/zap"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/apiserver/authz"
)

// ContainerStats is one container's live sample, as the stream sends it.
type ContainerStats = api.ContainerStats

// StatsSource gives the latest sample of each container of a project; the
// metrics collector implements it (reading memory, never Docker).
type StatsSource interface {
	ProjectStats(project string) []ContainerStats
}

// statsMessage is one message of the stream: every container of the
// project, sampled at the same tick.
type statsMessage struct {
	Time       time.Time        `json:"time"`
	Interval   string           `json:"interval"`
	Containers []ContainerStats `json:"containers"`
}

// Live stats stream limits.
const (
	minStatsInterval     = time.Second
	maxStatsInterval     = 60 * time.Second
	statsClientMaxBytes  = 1 << 10
	defaultStatsInterval = time.Second
)

func parseStatsInterval(v string) (time.Duration, error) {
	if v == "" {
		return defaultStatsInterval, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		secs, nerr := strconv.Atoi(v)
		if nerr != nil {
			return 0, badQuery("interval", "a duration such as 5s, or whole seconds")
		}
		d = time.Duration(secs) * time.Second
	}
	if d < minStatsInterval || d > maxStatsInterval || d%time.Second != 0 {
		return 0, badQuery("interval", "whole seconds from 1s to 60s")
	}
	return d, nil
}

// metricsStream: GET /api/v1/projects/{project}/metrics/stream (WebSocket).
// Authenticated before the upgrade (Authorization header or a
// panelx.bearer.<token> subprotocol, never the query string), Origin
// checked, then authorized like every project route (any member may read).
// The client may ask for another interval with {"interval": "5s"}. The
// stream ends when the credential expires or the caller loses access.
func (s *Server) metricsStream(w http.ResponseWriter, r *http.Request) {
	project := chi.URLParam(r, "project")
	interval, err := parseStatsInterval(r.URL.Query().Get("interval"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	st, err := s.openStream(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer st.close()
	ctx := st.ctx
	if _, err := s.authz.Authorize(ctx, st.p, project, authz.Read); err != nil {
		s.fail(w, r, err)
		return
	}
	// Only now, so that a stranger learns nothing, not even this. That the
	// metrics are not collected comes before the 426 a plain request gets:
	// a browser cannot read why its WebSocket was refused and asks again
	// with a plain GET, whose answer must be the reason, not "upgrade".
	if s.stats == nil {
		s.fail(w, r, httpErr(http.StatusServiceUnavailable, "live metrics are not collected on this server"))
		return
	}
	if !isWebSocket(r) {
		s.fail(w, r, httpErr(http.StatusUpgradeRequired, "this endpoint is a WebSocket"))
		return
	}
	conn, err := st.accept(w, r, statsClientMaxBytes)
	if err != nil {
		logger(ctx).Debug("websocket accept", zap.Error(err))
		return
	}
	defer conn.CloseNow()
	code, reason := s.streamStats(ctx, conn, st, project, interval)
	conn.Close(code, reason)
}

// streamStats runs the stream; it returns how to close it.
func (s *Server) streamStats(ctx context.Context, conn *websocket.Conn, st *stream, project string, interval time.Duration) (websocket.StatusCode, string) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	intervals := make(chan time.Duration, 1)
	go readIntervalRequests(ctx, cancel, conn, intervals)

	guard := st.guard(project, authz.Read)
	defer guard.stop()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	send := func() error {
		msg := statsMessage{Time: s.now().UTC(), Interval: interval.String(), Containers: s.stats.ProjectStats(project)}
		if msg.Containers == nil {
			msg.Containers = []ContainerStats{}
		}
		data, err := json.Marshal(msg)
		if err != nil {
			return err
		}
		wctx, wcancel := context.WithTimeout(ctx, watchWriteTimeout)
		defer wcancel()
		return conn.Write(wctx, websocket.MessageText, data)
	}
	if err := send(); err != nil {
		return websocket.StatusGoingAway, "write failed"
	}
	for {
		select {
		case <-ctx.Done():
			return websocket.StatusNormalClosure, ""
		case <-guard.expired:
			return websocket.StatusPolicyViolation, "the credential expired"
		case d := <-intervals:
			interval = d
			tick.Reset(d)
		case <-guard.recheck.C:
			if err := guard.check(ctx); err != nil {
				return websocket.StatusPolicyViolation, err.Error()
			}
		case <-tick.C:
			if err := send(); err != nil {
				return websocket.StatusGoingAway, "write failed"
			}
		}
	}
}

// readIntervalRequests reads the client's messages: {"interval": "5s"}
// changes the interval; anything else, or a message over the size limit,
// ends the stream.
func readIntervalRequests(ctx context.Context, cancel context.CancelFunc, conn *websocket.Conn, out chan<- time.Duration) {
	defer cancel()
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			return
		}
		var req struct {
			Interval string `json:"interval"`
		}
		if err := json.Unmarshal(data, &req); err != nil {
			_ = conn.Close(websocket.StatusUnsupportedData, "send {\"interval\": \"5s\"}")
			return
		}
		d, err := parseStatsInterval(req.Interval)
		var ae *apiError
		if errors.As(err, &ae) {
			_ = conn.Close(websocket.StatusPolicyViolation, ae.detail)
			return
		}
		select {
		case out <- d:
		default: // one pending change is enough
		}
	}
}
