package apiserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"regexp"
	"runtime/debug"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"go.uber.org/zap"

	"github.com/panelx/panelx/apiserver/authz"
)

type ctxKey int

const infoKey ctxKey = iota

// requestInfo is the request's id and logger, and what is filled in as the
// request goes, for the access log. One context value, and the logger
// with the id is built only when something logs (most requests log the
// access line alone): the hot path allocates less.
type requestInfo struct {
	id     string
	base   *zap.Logger
	once   sync.Once
	log    *zap.Logger
	userID string
}

func (i *requestInfo) logger() *zap.Logger {
	i.once.Do(func() { i.log = i.base.With(zap.String("request_id", i.id)) })
	return i.log
}

// safeRequestID: an incoming X-Request-Id is kept only when it is short and
// cannot break a log line or a header.
var safeRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

func newRequestID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func requestID(ctx context.Context) string {
	if info, ok := ctx.Value(infoKey).(*requestInfo); ok {
		return info.id
	}
	return ""
}

// logger returns the request's logger (with its request id).
func logger(ctx context.Context) *zap.Logger {
	if info, ok := ctx.Value(infoKey).(*requestInfo); ok {
		return info.logger()
	}
	return zap.NewNop()
}

// withRequest gives the request its id, logger and common headers, logs one
// line when it ends, and turns a panic into a 500 problem.
func (s *Server) withRequest(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !safeRequestID.MatchString(id) {
			id = newRequestID()
		}
		info := &requestInfo{id: id, base: s.log}
		r = r.WithContext(context.WithValue(r.Context(), infoKey, info))

		h := w.Header()
		h.Set("X-Request-Id", id)
		h.Set("X-Content-Type-Options", "nosniff")
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		defer func() {
			if rec := recover(); rec != nil {
				if rec == http.ErrAbortHandler {
					panic(rec)
				}
				info.logger().Error("handler panicked", zap.String("panic", fmt.Sprint(rec)), zap.ByteString("stack", debug.Stack()))
				if ww.Status() == 0 {
					s.fail(ww, r, fmt.Errorf("panic: %v", rec))
				}
			}
			status := ww.Status()
			if status == 0 {
				status = http.StatusOK
			}
			pattern := ""
			if rc := chi.RouteContext(r.Context()); rc != nil {
				pattern = rc.RoutePattern()
			}
			s.metrics.observe(pattern, r.Method, status, time.Since(start))
			level := zap.InfoLevel
			if pattern == "/api/v1/edge/reports/{edge}" && status < 400 {
				level = zap.DebugLevel // every edge's heartbeat, every 5 s
			}
			if ce := s.access.Check(level, "request"); ce != nil {
				ce.Write(zap.String("request_id", id),
					zap.String("method", r.Method),
					zap.String("route", pattern),
					zap.Int("status", status),
					zap.Duration("duration", time.Since(start)),
					zap.Int("bytes", ww.BytesWritten()),
					zap.String("user_id", info.userID))
			}
		}()
		next.ServeHTTP(ww, r)
	})
}

// authenticate requires a valid bearer credential and puts its principal
// in the request context.
// edgeGate keeps edge tokens to the edge routes, and everyone else out of
// them: an edge token reads every project's routing data but may touch no
// project, and a user's token may not read other tenants' routes.
func (s *Server) edgeGate(edgeRoute bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p := authz.PrincipalFrom(r.Context())
			switch {
			case p.Edge && !edgeRoute:
				s.fail(w, r, authz.Forbidden("an edge token reaches the /api/v1/edge routes only"))
			case !p.Edge && edgeRoute:
				s.fail(w, r, authz.Forbidden("this route is for edge tokens (panelx token create --edge)"))
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
}

func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authn.AuthenticateRequest(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if info, ok := r.Context().Value(infoKey).(*requestInfo); ok {
			info.userID = p.UserID
		}
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r.WithContext(authz.WithPrincipal(r.Context(), p)))
	})
}
