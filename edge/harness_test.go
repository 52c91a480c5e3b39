package edge_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/apiserver"
	"github.com/panelx/panelx/apiserver/auth"
	"github.com/panelx/panelx/apiserver/authz"
	"github.com/panelx/panelx/edge"
	"github.com/panelx/panelx/store"
	"github.com/panelx/panelx/store/sqlite"
)

// world is a real PanelX API (embedded store) that an edge follows. The
// replicas are plain HTTP servers on loopback addresses (127.0.0.x share one
// port, as containers on one network do); the controller's part — writing
// endpoints into service status — is done by the test through the store.
type world struct {
	t         *testing.T
	store     store.Store
	apiURL    string
	apiServer *httptest.Server
	edgeToken string
	port      int // the replicas' port
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "panelx.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	plain, hash, err := auth.GenerateAPIToken()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Tokens().Create(ctx, store.APIToken{UserID: authz.EdgeUserID, Name: "edge", Prefix: auth.TokenPrefix(plain), Hash: hash}); err != nil {
		t.Fatal(err)
	}
	h := apiserver.New(apiserver.Options{Store: st, Logger: zap.NewNop()})
	srv := httptest.NewServer(h.Handler())
	t.Cleanup(func() { h.StopStreams(); srv.Close() })
	w := &world{t: t, store: st, apiURL: srv.URL, apiServer: srv, edgeToken: plain, port: freePort(t)}
	if _, err := st.Projects().Create(ctx, &api.Project{TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindProject},
		Metadata: api.ObjectMeta{Name: "shop"}}); err != nil {
		t.Fatal(err)
	}
	return w
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// service writes a service with domains and the given endpoints (as the
// controller would publish them).
func (w *world) service(name string, endpoints []string, domains ...api.Domain) {
	w.t.Helper()
	ctx := context.Background()
	svc := &api.Service{Metadata: api.ObjectMeta{Project: "shop", Name: name},
		Spec: api.ServiceSpec{Image: "web:1", Ports: []api.Port{{ContainerPort: int32(w.port)}}, Domains: domains}}
	svc.Default()
	cur, err := w.store.Services().Get(ctx, api.Key{Project: "shop", Name: name})
	switch {
	case errors.Is(err, store.ErrNotFound):
		if cur, err = w.store.Services().Create(ctx, svc); err != nil {
			w.t.Fatal(err)
		}
	case err != nil:
		w.t.Fatal(err)
	default:
		cur.Spec = svc.Spec
		cur.Metadata.ResourceVersion = ""
		if cur, err = w.store.Services().Update(ctx, cur); err != nil {
			w.t.Fatal(err)
		}
	}
	w.endpoints(name, endpoints...)
}

func (w *world) endpoints(name string, ips ...string) {
	w.t.Helper()
	ctx := context.Background()
	cur, err := w.store.Services().Get(ctx, api.Key{Project: "shop", Name: name})
	if err != nil {
		w.t.Fatal(err)
	}
	cur.Status.Endpoints = nil
	for i, ip := range ips {
		cur.Status.Endpoints = append(cur.Status.Endpoints, api.Endpoint{Replica: int32(i), ContainerID: "c-" + ip, IP: ip})
	}
	cur.Metadata.ResourceVersion = ""
	if _, err := w.store.Services().UpdateStatus(ctx, cur); err != nil {
		w.t.Fatal(err)
	}
}

// replica is an HTTP server on ip:port answering "<name> <path>".
type replica struct {
	srv      *http.Server
	mu       sync.Mutex
	requests []*http.Request
}

func (w *world) replica(ip, name string, handler http.HandlerFunc) *replica {
	w.t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(w.port)))
	if err != nil {
		w.t.Fatal(err)
	}
	r := &replica{}
	if handler == nil {
		handler = func(rw http.ResponseWriter, req *http.Request) { fmt.Fprintf(rw, "%s %s", name, req.URL.Path) }
	}
	r.srv = &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.requests = append(r.requests, req)
		r.mu.Unlock()
		handler(rw, req)
	})}
	go r.srv.Serve(ln) //nolint:errcheck // closed by the test
	w.t.Cleanup(func() { r.srv.Close() })
	return r
}

func (r *replica) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.requests)
}

func (r *replica) last() *http.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.requests) == 0 {
		return nil
	}
	return r.requests[len(r.requests)-1]
}

// runningEdge is an edge on loopback ports following the world's API.
type runningEdge struct {
	*edge.Edge
	http, https string
	admin       string
	cancel      context.CancelFunc
	done        chan error
	reg         *prometheus.Registry
}

func (w *world) edge(stateDir string, mutate ...func(*edge.Options)) *runningEdge {
	w.t.Helper()
	reg := prometheus.NewRegistry()
	admin := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(w.t)))
	opts := edge.Options{HTTPAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0", AdminAddr: admin, StateDir: stateDir,
		Server: w.apiURL, Token: w.edgeToken, ID: "edge-test", Name: "test", Registry: reg,
		ReportInterval: 200 * time.Millisecond, Log: zaptest.NewLogger(w.t, zaptest.Level(zap.WarnLevel)),
		ACME: edge.ACMEOptions{Disabled: true}}
	for _, m := range mutate {
		m(&opts)
	}
	e, err := edge.New(opts)
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	re := &runningEdge{Edge: e, cancel: cancel, done: make(chan error, 1), admin: admin, reg: reg}
	re.http, re.https = e.Addrs()
	go func() { re.done <- e.Run(ctx) }()
	w.t.Cleanup(re.stop)
	return re
}

func (re *runningEdge) stop() {
	if re.cancel == nil {
		return
	}
	re.cancel()
	<-re.done
	re.cancel = nil
}

// waitRoutes waits until the edge serves a table that satisfies ok.
func (re *runningEdge) waitRoutes(t *testing.T, what string, ok func(n int, eps []string) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		tbl := re.Table()
		var eps []string
		for _, r := range tbl.Routes {
			eps = append(eps, r.Endpoints...)
		}
		if ok(len(tbl.Routes), eps) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the edge never served %s: %+v", what, re.Table().Routes)
}

// client sends requests to the edge's HTTP listener with any Host.
func (re *runningEdge) get(t *testing.T, host, path string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+re.http+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

var noRedirect = &http.Client{
	Timeout:       30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Transport:     &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // tests read the edge's stand-in certificate
}

// selfSigned returns a PEM certificate for host, valid now, and its key.
func selfSigned(t testing.TB, host string) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: host},
		DNSNames: []string{host}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
}
