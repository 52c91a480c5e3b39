// Package apiserver is PanelX's REST API: the chi router and its middleware
// (request ids, access log, panic recovery, CORS, authentication), the
// resource handlers (projects, services, volumes, members, events, API
// tokens, registry credentials), RFC 9457 problem documents, and the
// OpenAPI document generated from the same route table that builds the
// router. Authorization is decided by apiserver/authz and the spec policy by
// apiserver/policy; this package only asks them.
package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/cors"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/panelx/panelx/apiserver/auth"
	"github.com/panelx/panelx/apiserver/authz"
	"github.com/panelx/panelx/apiserver/policy"
	"github.com/panelx/panelx/builder/buildctx"
	"github.com/panelx/panelx/builder/buildlog"
	"github.com/panelx/panelx/internal/version"
	"github.com/panelx/panelx/seal"
	"github.com/panelx/panelx/store"
	"github.com/panelx/panelx/web"
)

// DefaultMaxBodyBytes bounds request bodies unless configured otherwise.
const DefaultMaxBodyBytes = 1 << 20

// Options configure the HTTP layer.
type Options struct {
	Store  store.Store
	Logger *zap.Logger
	// Verifier checks Supabase JWTs; nil: only API tokens authenticate.
	Verifier *auth.Verifier
	// AdminUsers are the user ids of the server administrators.
	AdminUsers []string
	// Policy is the spec policy (default policy.DefaultConfig()).
	Policy *policy.Config
	// CORSOrigins may call the API from a browser ("*": any).
	CORSOrigins []string
	// MaxBodyBytes bounds request bodies (default DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// Metrics, when set, receives the API's request metrics, and Gatherer
	// is served at /metrics (to administrators).
	Metrics  prometheus.Registerer
	Gatherer prometheus.Gatherer
	// Stats feeds the live metrics stream; nil: not collected.
	Stats StatsSource
	// Operations serves logs, terminals and volume files; nil: those
	// routes answer 503.
	Operations Operations
	// MaxUploadBytes bounds a file upload (default DefaultMaxUploadBytes).
	MaxUploadBytes int64
	// StreamRecheck is how often logs streams and terminals check the
	// caller's access again (default DefaultStreamRecheck).
	StreamRecheck time.Duration
	// ExecIdleTimeout ends a terminal without input or output for this
	// long (default DefaultExecIdleTimeout).
	ExecIdleTimeout time.Duration
	// Keyring seals secrets and registry passwords; nil: secrets cannot be
	// written or read (503 saying why), everything else works.
	Keyring *seal.Keyring
	// BuildLogs are the logs of the builds this process runs (nil: none).
	BuildLogs *buildlog.Logs
	// BuildContexts keeps uploaded build contexts (nil: uploads are 503).
	BuildContexts *buildctx.Store
	// Dashboard answers / and /ui/… (nil: web.Handler(), the dashboard
	// without Supabase sign-in); it goes through the router's middleware
	// like every request (request ID, access log).
	Dashboard http.Handler
}

// Server holds the router and what the handlers need.
type Server struct {
	store    store.Store
	log      *zap.Logger
	router   chi.Router
	authn    *authz.Authenticator
	authz    *authz.Authorizer
	origins  *authz.Origins
	policy   policy.Config
	maxBody  int64
	now      func() time.Time
	routes   []route
	openapi  []byte
	metrics  *httpMetrics
	gatherer prometheus.Gatherer
	stats    StatsSource
	// stopping closes when the server shuts down: long-lived streams end
	// then, while ordinary requests drain.
	stopping chan struct{}
	stopOnce sync.Once
	ops      opsSettings
	keyring  *seal.Keyring
	// authCache keeps verified tokens and memberships while FollowChanges
	// runs (off otherwise).
	authCache *authz.Cache
	// renders keeps the answers of single-object GETs (see renderCache).
	renders *renderCache
	builds  *buildlog.Logs
	// contexts keeps uploaded build contexts.
	contexts *buildctx.Store
	// dashboard answers / and /ui/… (Options.Dashboard).
	dashboard http.Handler
	hooks     deliveries
	// access writes the request log: no caller (it is always the same
	// line, and finding it costs a stack walk per request).
	access *zap.Logger
}

// New builds the router.
func New(opts Options) *Server {
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	s := &Server{
		store:     opts.Store,
		log:       log.Named("http"),
		router:    chi.NewRouter(),
		origins:   authz.NewOrigins(opts.CORSOrigins),
		policy:    policy.DefaultConfig(),
		maxBody:   opts.MaxBodyBytes,
		now:       opts.Now,
		gatherer:  opts.Gatherer,
		renders:   newRenderCache(renderCacheBytes),
		access:    log.Named("http").WithOptions(zap.WithCaller(false)),
		stats:     opts.Stats,
		stopping:  make(chan struct{}),
		ops:       newOpsSettings(opts),
		keyring:   opts.Keyring,
		builds:    opts.BuildLogs,
		contexts:  opts.BuildContexts,
		dashboard: opts.Dashboard,
	}
	if opts.Metrics != nil {
		s.metrics = newHTTPMetrics(opts.Metrics)
	}
	if opts.Policy != nil {
		s.policy = *opts.Policy
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	if s.now == nil {
		s.now = time.Now
	}
	var feedLive func() bool
	if fs, ok := opts.Store.(store.FeedState); ok {
		feedLive = fs.FeedLive
	}
	s.authCache = authz.NewCache(s.now, feedLive)
	s.authn = authz.NewAuthenticator(authz.AuthenticatorOptions{
		Verifier:   opts.Verifier,
		Tokens:     func() store.Tokens { return s.store.Tokens() },
		AdminUsers: opts.AdminUsers,
		Logger:     s.log,
		Now:        s.now,
		Cache:      s.authCache,
	})
	s.authz = authz.NewAuthorizer(func() store.Members { return s.store.Members() }, s.authCache)
	s.routes = s.routeTable()
	s.buildRouter()
	s.openapi = s.openAPIDocument()
	return s
}

// FollowChanges keeps the in-memory caches of credentials and memberships
// in step with the store, until ctx ends; without it they stay off and
// every request reads the store. Run it beside Serve.
func (s *Server) FollowChanges(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		changes, err := s.store.Watch(ctx)
		if err != nil {
			s.authCache.Off()
			s.log.Warn("follow the store's changes; retrying", zap.Error(err), zap.Duration("backoff", backoff))
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		for c := range changes {
			s.authCache.Changed(c)
		}
		s.authCache.Off() // the feed ended: nothing vouches for the cache
	}
}

// StopStreams ends the watch, logs, terminal and metrics streams; pass it
// to Serve so a shutdown does not wait for clients that never leave.
func (s *Server) StopStreams() { s.stopOnce.Do(func() { close(s.stopping) }) }

// streamContext is the context of a long-lived stream: it ends with the
// request or when the server stops.
func (s *Server) streamContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	go func() {
		select {
		case <-s.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// Handler returns the root handler.
func (s *Server) Handler() http.Handler { return s.router }

// Router exposes the chi router (tests walk it).
func (s *Server) Router() chi.Router { return s.router }

// Authenticator, Authorizer and Origins are the pieces the WebSocket
// endpoints reuse: authenticate before upgrading, check the Origin, then
// authorize the project exactly as the REST routes do.
func (s *Server) Authenticator() *authz.Authenticator { return s.authn }
func (s *Server) Authorizer() *authz.Authorizer       { return s.authz }
func (s *Server) Origins() *authz.Origins             { return s.origins }

func (s *Server) buildRouter() {
	r := s.router
	r.Use(s.withRequest)
	if len(s.origins.List()) > 0 {
		r.Use(cors.Handler(cors.Options{
			AllowOriginFunc:  func(_ *http.Request, origin string) bool { return s.origins.Allowed(origin) },
			AllowedMethods:   []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete},
			AllowedHeaders:   []string{"Authorization", "Content-Type", "If-Match", "X-Request-Id"},
			ExposedHeaders:   []string{"ETag", "X-Request-Id", "Location"},
			AllowCredentials: false, // bearer tokens, never cookies
			MaxAge:           600,
		}))
	}
	// The dashboard (web/) answers / and /ui/… — paths no API route has; it
	// is public (it holds no data) and kept out of the route table and the
	// OpenAPI document.
	dashboard := s.dashboard
	if dashboard == nil {
		dashboard = web.Handler()
	}
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" || strings.HasPrefix(r.URL.Path, "/ui/") {
			dashboard.ServeHTTP(w, r)
			return
		}
		s.fail(w, r, httpErr(http.StatusNotFound, "no such route"))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, httpErr(http.StatusMethodNotAllowed, "method %s is not allowed here", r.Method))
	})
	for _, rt := range s.routes {
		if rt.public || rt.selfAuth {
			r.Method(rt.method, rt.pattern, rt.handler)
		} else {
			r.With(s.authenticate, s.edgeGate(rt.edge)).Method(rt.method, rt.pattern, rt.handler)
		}
	}
}

// authorize checks the caller's permission in a project.
func (s *Server) authorize(r *http.Request, project string, action authz.Action) (store.Role, error) {
	return s.authz.Authorize(r.Context(), authz.PrincipalFrom(r.Context()), project, action)
}

// VersionInfo is the server's build, for `panelx version`. It is not
// public: which build runs tells an attacker which flaws to try.
type VersionInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Date    string `json:"date"`
	Go      string `json:"go"`
}

func (s *Server) serverVersion(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, VersionInfo{Version: version.Version, Commit: version.Commit, Date: version.Date, Go: runtime.Version()})
}

// healthz answers while the process can serve HTTP at all.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 only when the store is reachable and migrated.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	if err := s.store.Ready(ctx); err != nil {
		logger(r.Context()).Warn("not ready", zap.Error(err))
		writeProblem(w, Problem{Type: "about:blank", Title: http.StatusText(http.StatusServiceUnavailable),
			Status: http.StatusServiceUnavailable, Detail: err.Error(), Instance: r.URL.Path, RequestID: requestID(r.Context())})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// Serve serves h on ln until ctx ends, then stops accepting, lets requests
// in flight finish for up to drain, and returns. onShutdown runs as the
// shutdown starts (Server.StopStreams ends the streams).
func Serve(ctx context.Context, ln net.Listener, h http.Handler, drain time.Duration, log *zap.Logger, onShutdown ...func()) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}
	for _, f := range onShutdown {
		srv.RegisterOnShutdown(f)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	log.Info("shutting down: draining requests", zap.Duration("timeout", drain))
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		return fmt.Errorf("drain requests: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
