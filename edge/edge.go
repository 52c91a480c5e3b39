package edge

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/panelx/panelx/api/routing"
)

// Defaults of Options.
const (
	DefaultHTTPAddr       = ":80"
	DefaultHTTPSAddr      = ":443"
	DefaultAdminAddr      = "127.0.0.1:9465"
	DefaultTimeout        = 60 * time.Second
	DefaultReportInterval = 5 * time.Second
	shutdownGrace         = 10 * time.Second
)

// Options configure an edge.
type Options struct {
	// HTTPAddr and HTTPSAddr are where the proxy listens.
	HTTPAddr, HTTPSAddr string
	// AdminAddr serves /metrics, /healthz and /readyz. Keep it on loopback:
	// managed containers cannot reach the host's loopback.
	AdminAddr string
	// StateDir keeps the last route table, the edge's id and (without
	// shared storage) certificates.
	StateDir string
	// Server is the PanelX API the edge follows; Token an edge token.
	Server, Token string
	// ID identifies this edge to the server (default: kept in StateDir);
	// Name is shown in reports (default: the hostname).
	ID, Name string
	ACME     ACMEOptions
	// DefaultTimeout bounds the wait for a replica's response headers when
	// the route sets none.
	DefaultTimeout time.Duration
	// ReportInterval is the heartbeat of reports.
	ReportInterval time.Duration
	Log            *zap.Logger
	// Registry, when set, gets the edge's metrics (and serves them on AdminAddr).
	Registry *prometheus.Registry
	// Client talks to the server (default: a plain client).
	Client *http.Client
}

// Edge is one edge process's proxy.
type Edge struct {
	opts      Options
	log       *zap.Logger
	m         *metrics
	certs     *certManager
	client    *http.Client
	proxy     http.Handler
	transport *http.Transport
	httpsPort int

	state   atomic.Pointer[state]
	applyMu sync.Mutex
	flights sync.Map // replica IP → *atomic.Int64 requests in flight
	rr      atomic.Uint64
	pokes   chan struct{}

	httpLn, httpsLn, adminLn net.Listener
}

// New checks the options, loads the kept routes and binds the listeners
// (so a port already in use fails here, with its address).
func New(opts Options) (*Edge, error) {
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	if opts.StateDir == "" {
		return nil, errors.New("edge: a state directory is required")
	}
	if opts.Server == "" || opts.Token == "" {
		return nil, errors.New("edge: the server's URL and an edge token are required")
	}
	opts.Server = strings.TrimRight(opts.Server, "/")
	if opts.DefaultTimeout <= 0 {
		opts.DefaultTimeout = DefaultTimeout
	}
	if opts.ReportInterval <= 0 {
		opts.ReportInterval = DefaultReportInterval
	}
	if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("edge state directory: %w", err)
	}
	if opts.ID == "" {
		id, err := edgeID(opts.StateDir)
		if err != nil {
			return nil, err
		}
		opts.ID = id
	}
	if opts.Name == "" {
		opts.Name, _ = os.Hostname()
	}
	e := &Edge{opts: opts, log: opts.Log.Named("edge"), pokes: make(chan struct{}, 1)}
	var reg prometheus.Registerer
	if opts.Registry != nil {
		reg = opts.Registry
	}
	e.m = newMetrics(reg)
	e.client = opts.Client
	if e.client == nil {
		e.client = &http.Client{}
	}
	e.transport = &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       60 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true, // pass bodies through as they are
	}
	rp := e.newReverseProxy()
	rp.ErrorLog = zap.NewStdLog(e.log.Named("proxy").WithOptions(zap.IncreaseLevel(zap.WarnLevel)))
	e.proxy = rp

	var err error
	if e.httpLn, err = net.Listen("tcp", opts.HTTPAddr); err != nil {
		return nil, fmt.Errorf("edge: listen for HTTP on %s: %w", opts.HTTPAddr, err)
	}
	if e.httpsLn, err = net.Listen("tcp", opts.HTTPSAddr); err != nil {
		e.closeListeners()
		return nil, fmt.Errorf("edge: listen for HTTPS on %s: %w", opts.HTTPSAddr, err)
	}
	if opts.AdminAddr != "" {
		if e.adminLn, err = net.Listen("tcp", opts.AdminAddr); err != nil {
			e.closeListeners()
			return nil, fmt.Errorf("edge: listen for metrics on %s: %w", opts.AdminAddr, err)
		}
	}
	host, httpPort := splitAddr(e.httpLn.Addr())
	_, e.httpsPort = splitAddr(e.httpsLn.Addr())
	storage, localCache := opts.ACME.Storage, certmagic.Storage(nil)
	if storage == nil {
		storage = &certmagic.FileStorage{Path: filepath.Join(opts.StateDir, "certificates")}
	} else {
		localCache = &certmagic.FileStorage{Path: filepath.Join(opts.StateDir, "certificates-cache")}
	}
	if e.certs, err = newCertManager(e.log.Named("certs"), opts.ACME, storage, localCache, host, httpPort, e.httpsPort, e.m, e.poke); err != nil {
		e.closeListeners()
		return nil, err
	}

	t, ok, err := loadTable(opts.StateDir)
	if err != nil {
		e.log.Warn("kept routes unusable", zap.Error(err))
	}
	if !ok {
		t = routing.Table{Routes: []routing.Route{}}
	}
	if err := e.apply(t, false); err != nil {
		e.closeListeners()
		return nil, err
	}
	if ok {
		e.log.Info("serving the kept routes until the server answers", zap.Int("routes", len(t.Routes)), zap.String("version", t.Version))
	}
	return e, nil
}

func splitAddr(a net.Addr) (string, int) {
	host, port, _ := net.SplitHostPort(a.String())
	p, _ := strconv.Atoi(port)
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = ""
	}
	return host, p
}

func (e *Edge) closeListeners() {
	for _, ln := range []net.Listener{e.httpLn, e.httpsLn, e.adminLn} {
		if ln != nil {
			ln.Close()
		}
	}
}

// edgeID returns the id kept in dir, making one on the first start.
func edgeID(dir string) (string, error) {
	path := filepath.Join(dir, "edge-id")
	data, err := os.ReadFile(path)
	if err == nil {
		if id := strings.TrimSpace(string(data)); id != "" {
			return id, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read edge id: %w", err)
	}
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	id := sanitizeID(host) + "-" + hex.EncodeToString(b[:])
	if err := writeFileAtomic(path, []byte(id+"\n"), 0o600); err != nil {
		return "", err
	}
	return id, nil
}

func sanitizeID(s string) string {
	out := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.', r == '_':
			return r
		}
		return '-'
	}, s)
	if len(out) > 40 {
		out = out[:40]
	}
	if out == "" {
		out = "edge"
	}
	return out
}

// apply makes t the table being served: kept on disk first (persist), so
// a restart serves what was last served, then swapped in whole.
func (e *Edge) apply(t routing.Table, persist bool) error {
	e.applyMu.Lock()
	defer e.applyMu.Unlock()
	old := e.state.Load()
	if old != nil && old.table.Version == t.Version {
		e.poke() // a (re)connect: let the controller know this edge is current
		return nil
	}
	if persist {
		if err := saveTable(e.opts.StateDir, t); err != nil {
			return err
		}
	}
	st := newState(t)
	e.state.Store(st)
	e.certs.sync(t)
	e.m.tableChanged(old, st)
	e.poke()
	if old != nil {
		// Connections kept open to replicas that left are of no use.
		e.transport.CloseIdleConnections()
		e.log.Debug("routes changed", zap.String("version", t.Version), zap.Int("routes", len(t.Routes)))
	}
	return nil
}

// Run serves until ctx ends, then shuts the listeners down gracefully.
func (e *Edge) Run(ctx context.Context) error {
	defer e.certs.stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errLog := log.New(zapWriter{e.log.Named("http")}, "", 0)
	httpSrv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { e.serve(w, r, false) }),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          errLog,
	}
	tlsCfg := &tls.Config{
		GetCertificate: e.certs.getCertificate,
		NextProtos:     []string{"h2", "http/1.1", "acme-tls/1"},
		MinVersion:     tls.VersionTLS12,
	}
	httpsSrv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { e.serve(w, r, true) }),
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          errLog,
	}
	servers := []*http.Server{httpSrv, httpsSrv}
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	serve := func(srv *http.Server, ln net.Listener, tlsOn bool) {
		defer wg.Done()
		var err error
		if tlsOn {
			err = srv.ServeTLS(ln, "", "") // sets up HTTP/2 too
		} else {
			err = srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- err
			cancel()
		}
	}
	wg.Add(2)
	go serve(httpSrv, e.httpLn, false)
	go serve(httpsSrv, e.httpsLn, true)
	if e.adminLn != nil {
		adminSrv := &http.Server{Handler: e.adminHandler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: errLog}
		servers = append(servers, adminSrv)
		wg.Add(1)
		go serve(adminSrv, e.adminLn, false)
	}
	var bg sync.WaitGroup
	bg.Add(3)
	go func() { defer bg.Done(); e.follow(ctx) }()
	go func() { defer bg.Done(); e.report(ctx) }()
	go func() { defer bg.Done(); e.certs.run(ctx) }()
	e.log.Info("edge serving", zap.String("http", e.httpLn.Addr().String()), zap.String("https", e.httpsLn.Addr().String()),
		zap.String("id", e.opts.ID), zap.String("server", e.opts.Server))

	<-ctx.Done()
	sctx, scancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer scancel()
	for _, srv := range servers {
		_ = srv.Shutdown(sctx)
	}
	wg.Wait()
	bg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// Addrs returns where the proxy listens (tests bind port 0).
func (e *Edge) Addrs() (httpAddr, httpsAddr string) {
	return e.httpLn.Addr().String(), e.httpsLn.Addr().String()
}

// Table returns the route table being served.
func (e *Edge) Table() routing.Table { return e.state.Load().table }

func (e *Edge) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintln(w, `{"status":"ok"}`)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		st := e.state.Load()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"ok","routes":%d,"version":%q}`+"\n", len(st.table.Routes), st.table.Version)
	})
	if e.opts.Registry != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(e.opts.Registry, promhttp.HandlerOpts{}))
	}
	return mux
}

// zapWriter routes the standard library's server log lines to zap.
type zapWriter struct{ log *zap.Logger }

func (w zapWriter) Write(p []byte) (int, error) {
	w.log.Debug(strings.TrimSpace(string(p)))
	return len(p), nil
}
