package apiserver

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/coder/websocket"

	"github.com/panelx/panelx/apiserver/authz"
	"github.com/panelx/panelx/store"
)

// stream is one long-lived request — Server-Sent Events, NDJSON or a
// WebSocket: the watch, logs, the terminal, live metrics and the edges'
// route feed. They all open, accept and re-check the same way, here:
//
//   - before anything is sent: the Origin is checked, and the credential
//     comes from the Authorization header or, for a WebSocket, a
//     panelx.bearer.<token> subprotocol — never from the URL;
//   - the stream's context ends with the request and when the server
//     shuts down;
//   - its guard ends it when the credential expires, and every
//     Options.StreamRecheck verifies the credential again (a revoked
//     token) and, for a project stream, the caller's role in it (a
//     removed or demoted member).
type stream struct {
	s         *Server
	p         *authz.Principal
	bearer    string
	protocols []string // subprotocols offered besides the token's
	ctx       context.Context
	cancel    context.CancelFunc
}

// openStream authenticates a stream request. The caller answers an error
// as a plain HTTP problem (nothing was upgraded or sent yet).
func (s *Server) openStream(w http.ResponseWriter, r *http.Request) (*stream, error) {
	st := &stream{s: s}
	if isWebSocket(r) {
		up, err := s.authn.AuthenticateUpgrade(r, s.origins)
		if err != nil {
			return nil, err
		}
		st.p, st.protocols, st.bearer = up.Principal, up.Protocols, up.Bearer
	} else {
		if err := s.origins.Check(r); err != nil {
			return nil, err
		}
		tok, err := authz.BearerToken(r)
		if err == nil {
			st.p, err = s.authn.AuthenticateRequest(r)
		}
		if err != nil {
			return nil, err
		}
		st.bearer = tok
	}
	if info, ok := r.Context().Value(infoKey).(*requestInfo); ok {
		info.userID = st.p.UserID
	}
	w.Header().Set("Cache-Control", "no-store")
	st.ctx, st.cancel = s.streamContext(authz.WithPrincipal(r.Context(), st.p))
	return st, nil
}

// close ends the stream's context.
func (st *stream) close() { st.cancel() }

// accept upgrades to a WebSocket. The Origin was checked when the stream
// was opened: the library's own check would refuse the allowed
// cross-origin dashboards.
func (st *stream) accept(w http.ResponseWriter, r *http.Request, readLimit int64) (*websocket.Conn, error) {
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: st.protocols, InsecureSkipVerify: true})
	if err != nil {
		return nil, err
	}
	conn.SetReadLimit(readLimit)
	return conn, nil
}

// errAccessEnded and errCredentialExpired end long sessions.
var (
	errAccessEnded       = errors.New("access to the project ended")
	errCredentialExpired = errors.New("the credential expired: reconnect with a new one")
	errCredentialRevoked = errors.New("the credential is no longer valid")
)

// accessGuard is a stream's one access rule: see stream.
type accessGuard struct {
	st      *stream
	project string // "" for a stream of no single project
	action  authz.Action
	expired <-chan time.Time
	recheck *time.Ticker
	timer   *time.Timer
}

// guard returns the stream's guard for project ("" for none) and action.
func (st *stream) guard(project string, action authz.Action) *accessGuard {
	g := &accessGuard{st: st, project: project, action: action, recheck: time.NewTicker(st.s.ops.recheck)}
	if !st.p.ExpiresAt.IsZero() {
		g.timer = time.NewTimer(time.Until(st.p.ExpiresAt))
		g.expired = g.timer.C
	}
	return g
}

func (g *accessGuard) stop() {
	g.recheck.Stop()
	if g.timer != nil {
		g.timer.Stop()
	}
}

// check verifies the credential and the role again. Fail closed: access
// that cannot be confirmed is not assumed — except while the database is
// unreachable: nothing can be revoked then (revoking writes to it), so the
// check waits for the next round.
func (g *accessGuard) check(ctx context.Context) error {
	if _, err := g.st.s.authn.Authenticate(ctx, g.st.bearer); err != nil {
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, store.ErrUnavailable):
			return nil
		}
		return errCredentialRevoked
	}
	if g.project == "" {
		return nil
	}
	if _, err := g.st.s.authz.Authorize(ctx, g.st.p, g.project, g.action); err != nil {
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, store.ErrUnavailable):
			return nil
		}
		return errAccessEnded
	}
	return nil
}
