package edge_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/apiserver"
	"github.com/panelx/panelx/edge"
	"github.com/panelx/panelx/store"
)

func off() *bool { f := false; return &f }

// TestRoutingAndHeaders: requests reach the replica of the route for their
// host and path; the replica sees the original Host and the edge's
// X-Forwarded-* headers, never the client's copies; what cannot be served
// says why.
func TestRoutingAndHeaders(t *testing.T) {
	w := newWorld(t)
	w.replica("127.0.0.2", "web", nil)
	apiRep := w.replica("127.0.0.3", "api", nil)
	w.service("web", []string{"127.0.0.2"}, api.Domain{Host: "app.example.test", TLS: api.TLSOff})
	w.service("api", []string{"127.0.0.3"}, api.Domain{Host: "api.example.test", TLS: api.TLSOff}, api.Domain{Host: "api.example.test", Path: "/v2", TLS: api.TLSOff})
	w.service("idle", nil, api.Domain{Host: "idle.example.test", TLS: api.TLSOff})
	e := w.edge(t.TempDir())
	e.waitRoutes(t, "4 routes", func(n int, _ []string) bool { return n == 4 })

	for _, tc := range []struct {
		host, path string
		status     int
		body       string
	}{
		{"app.example.test", "/", 200, "web /"},
		{"APP.example.test:80", "/x", 200, "web /x"},
		{"api.example.test", "/v2/items", 200, "api /v2/items"},
		{"idle.example.test", "/", 503, "no ready replica of idle in project shop"},
		{"nobody.example.test", "/", 404, `no service answers for "nobody.example.test"`},
	} {
		resp, body := e.get(t, tc.host, tc.path)
		if resp.StatusCode != tc.status || !strings.Contains(body, tc.body) {
			t.Errorf("%s%s: %d %q, want %d %q", tc.host, tc.path, resp.StatusCode, body, tc.status, tc.body)
		}
	}
	resp, _ := e.get(t, "idle.example.test", "/")
	if resp.Header.Get("Retry-After") == "" || resp.Header.Get("X-PanelX-Edge") != "no-ready-replica" {
		t.Errorf("503 headers: %v", resp.Header)
	}

	e.get(t, "api.example.test", "/v2", "X-Forwarded-For", "6.6.6.6", "X-Forwarded-Host", "evil.test", "X-Forwarded-Proto", "https", "Forwarded", "for=6.6.6.6")
	got := apiRep.last()
	if got.Host != "api.example.test" || got.Header.Get("X-Forwarded-For") != "127.0.0.1" || got.Header.Get("X-Forwarded-Host") != "api.example.test" ||
		got.Header.Get("X-Forwarded-Proto") != "http" || got.Header.Get("Forwarded") != "" {
		t.Errorf("the replica saw Host %q and %v", got.Host, got.Header)
	}
}

// TestBalancesAndSkipsDeadReplicas: load goes to every ready replica, and
// a replica that refuses connections costs no failed request.
func TestBalancesAndSkipsDeadReplicas(t *testing.T) {
	w := newWorld(t)
	a := w.replica("127.0.0.2", "a", nil)
	b := w.replica("127.0.0.3", "b", nil)
	// 127.0.0.4: nothing listens (a replica that just died).
	w.service("web", []string{"127.0.0.2", "127.0.0.4", "127.0.0.3"}, api.Domain{Host: "app.example.test", TLS: api.TLSOff})
	e := w.edge(t.TempDir())
	e.waitRoutes(t, "3 endpoints", func(_ int, eps []string) bool { return len(eps) == 3 })
	var wg sync.WaitGroup
	var failed atomic.Int32
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 25; j++ {
				if resp, _ := e.get(t, "app.example.test", "/"); resp.StatusCode != 200 {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Errorf("%d of 200 requests failed", failed.Load())
	}
	if a.count() < 40 || b.count() < 40 {
		t.Errorf("unbalanced: a %d, b %d", a.count(), b.count())
	}
	if metric(t, e, `panelx_edge_upstream_errors_total{host="app.example.test",reason="refused"}`) == 0 {
		t.Error("refused connections were not counted")
	}
	if metric(t, e, `panelx_edge_requests_total{code="2xx",host="app.example.test"}`) != 200 {
		t.Error("requests were not counted per host and class")
	}
}

// metric reads one series from the edge's /metrics.
func metric(t *testing.T, e *runningEdge, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + e.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return 0
}

// TestLimitsTimeoutsAndStreams: per-route body limit and timeout; SSE and
// WebSocket pass through.
func TestLimitsTimeoutsAndStreams(t *testing.T) {
	w := newWorld(t)
	w.replica("127.0.0.2", "web", func(rw http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			time.Sleep(2 * time.Second)
		case "/upload":
			n, err := io.Copy(io.Discard, r.Body)
			fmt.Fprintf(rw, "%d %v", n, err)
		case "/events":
			rw.Header().Set("Content-Type", "text/event-stream")
			for i := 0; i < 3; i++ {
				fmt.Fprintf(rw, "data: %d\n\n", i)
				rw.(http.Flusher).Flush()
				time.Sleep(100 * time.Millisecond)
			}
		case "/ws":
			c, err := websocket.Accept(rw, r, nil)
			if err != nil {
				return
			}
			defer c.CloseNow()
			typ, msg, err := c.Read(r.Context())
			if err == nil {
				_ = c.Write(r.Context(), typ, append([]byte("echo "), msg...))
			}
			c.Close(websocket.StatusNormalClosure, "")
		}
	})
	w.service("web", []string{"127.0.0.2"}, api.Domain{Host: "app.example.test", TLS: api.TLSOff, MaxBodySize: "1Ki",
		Timeout: api.Duration{Duration: 500 * time.Millisecond}})
	e := w.edge(t.TempDir())
	e.waitRoutes(t, "the route", func(_ int, eps []string) bool { return len(eps) == 1 })

	resp, body := e.get(t, "app.example.test", "/slow")
	if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(body, "did not answer within 500ms") {
		t.Errorf("slow replica: %d %q", resp.StatusCode, body)
	}
	for _, n := range []int{1024, 1025} {
		req, _ := http.NewRequest("POST", "http://"+e.http+"/upload", strings.NewReader(strings.Repeat("x", n)))
		req.Host = "app.example.test"
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := 200
		if n > 1024 {
			want = http.StatusRequestEntityTooLarge
		}
		if resp.StatusCode != want {
			t.Errorf("body of %d bytes: %d %s", n, resp.StatusCode, b)
		}
	}

	// SSE arrives event by event, not buffered to the end.
	req, _ := http.NewRequest("GET", "http://"+e.http+"/events", nil)
	req.Host = "app.example.test"
	start := time.Now()
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	if line != "data: 0\n" || time.Since(start) > 150*time.Millisecond {
		t.Errorf("first event %q after %v", line, time.Since(start))
	}
	resp.Body.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+e.http+"/ws", &websocket.DialOptions{Host: "app.example.test"})
	if err != nil {
		t.Fatalf("websocket through the edge: %v", err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := c.Read(ctx); err != nil || string(msg) != "echo hi" {
		t.Errorf("websocket echo: %q %v", msg, err)
	}
}

// TestDrainIsReported: a replica that leaves the routes while a request is
// in flight is reported as draining until the request ends — the
// controller stops it only then.
func TestDrainIsReported(t *testing.T) {
	w := newWorld(t)
	release := make(chan struct{})
	w.replica("127.0.0.2", "old", func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/long" {
			<-release
		}
		fmt.Fprint(rw, "old")
	})
	w.replica("127.0.0.3", "new", nil)
	w.service("web", []string{"127.0.0.2"}, api.Domain{Host: "app.example.test", TLS: api.TLSOff})
	e := w.edge(t.TempDir())
	e.waitRoutes(t, "the old replica", func(_ int, eps []string) bool { return len(eps) == 1 })
	report := func() store.EdgeReport {
		list, err := w.store.Edges().List(context.Background())
		if err != nil || len(list) != 1 {
			t.Fatalf("edges %v %v", list, err)
		}
		return list[0]
	}
	waitReport := func(what string, ok func(store.EdgeReport) bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if list, _ := w.store.Edges().List(context.Background()); len(list) == 1 && ok(list[0]) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("the edge never reported %s: %+v", what, report())
	}
	waitReport("the old replica active", func(r store.EdgeReport) bool { return len(r.Active) == 1 && r.Active[0] == "127.0.0.2" })

	done := make(chan string)
	go func() { _, body := e.get(t, "app.example.test", "/long"); done <- body }()
	time.Sleep(100 * time.Millisecond)
	w.endpoints("web", "127.0.0.3")
	waitReport("the old replica draining", func(r store.EdgeReport) bool {
		return len(r.Active) == 1 && r.Active[0] == "127.0.0.3" && len(r.Draining) == 1 && r.Draining[0] == "127.0.0.2"
	})
	if _, body := e.get(t, "app.example.test", "/"); body != "new /" {
		t.Errorf("a new request went to %q", body)
	}
	close(release)
	if body := <-done; body != "old" {
		t.Errorf("the request in flight ended with %q", body)
	}
	waitReport("the drain finished", func(r store.EdgeReport) bool { return len(r.Draining) == 0 })
}

// TestServesKeptRoutesWithoutServer: the edge keeps serving while the
// server is down, and after its own restart without the server.
func TestServesKeptRoutesWithoutServer(t *testing.T) {
	w := newWorld(t)
	w.replica("127.0.0.2", "web", nil)
	w.service("web", []string{"127.0.0.2"}, api.Domain{Host: "app.example.test", TLS: api.TLSOff})
	dir := t.TempDir()
	e := w.edge(dir)
	e.waitRoutes(t, "the route", func(_ int, eps []string) bool { return len(eps) == 1 })
	w.apiServer.CloseClientConnections()
	w.apiServer.Close() // the server is gone
	if resp, body := e.get(t, "app.example.test", "/"); resp.StatusCode != 200 || body != "web /" {
		t.Errorf("with the server down: %d %q", resp.StatusCode, body)
	}
	e.stop()
	if fi, err := os.Stat(filepath.Join(dir, "routes.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("kept routes: %v %v", fi, err)
	}
	again := w.edge(dir)
	if resp, body := again.get(t, "app.example.test", "/"); resp.StatusCode != 200 || body != "web /" {
		t.Errorf("restarted without the server: %d %q", resp.StatusCode, body)
	}
	if metric(t, again, "panelx_edge_feed_connected") != 0 {
		t.Error("feed reported connected without a server")
	}
}

// TestUploadedCertificate: an uploaded certificate is served as uploaded,
// over HTTP/2; plain HTTP redirects once a certificate is there; a host
// whose certificate is pending says so.
func TestUploadedCertificate(t *testing.T) {
	w := newWorld(t)
	w.replica("127.0.0.2", "web", func(rw http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(rw, "%s %s", r.Proto, r.Header.Get("X-Forwarded-Proto"))
	})
	w.service("web", []string{"127.0.0.2"}, api.Domain{Host: "app.example.test"}, api.Domain{Host: "pending.example.test"})
	certPEM, keyPEM := selfSigned(t, "app.example.test")
	c, errs := apiserver.ParseCertificate("app.example.test", certPEM, keyPEM, time.Now())
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	c.Project = "shop"
	if _, err := w.store.Certificates().PutCustom(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	e := w.edge(t.TempDir())
	e.waitRoutes(t, "the routes with the certificate", func(n int, _ []string) bool { return n == 2 && len(e.Table().Certificates) == 1 })

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(certPEM))
	_, port, _ := net.SplitHostPort(e.https)
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, e.https)
		},
	}}
	resp, err := client.Get("https://app.example.test:" + port + "/")
	if err != nil {
		t.Fatalf("HTTPS with the uploaded certificate: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || string(body) != "HTTP/1.1 https" {
		t.Errorf("over %s the replica said %q", resp.Proto, body)
	}
	if got := resp.TLS.PeerCertificates[0].Subject.CommonName; got != "app.example.test" {
		t.Errorf("served certificate %q", got)
	}

	r, _ := e.get(t, "app.example.test", "/a?b=c")
	if r.StatusCode != http.StatusPermanentRedirect || r.Header.Get("Location") != "https://app.example.test:"+port+"/a?b=c" {
		t.Errorf("plain HTTP: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	r, body2 := e.get(t, "pending.example.test", "/")
	if r.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body2, "the certificate for pending.example.test is pending") {
		t.Errorf("pending certificate: %d %q", r.StatusCode, body2)
	}
	// The ACME challenge path is never redirected: a challenge the edge
	// does not know goes to the service.
	r, body3 := e.get(t, "app.example.test", "/.well-known/acme-challenge/abc")
	if r.StatusCode != http.StatusOK || body3 != "HTTP/1.1 http" {
		t.Errorf("the ACME challenge path: %d %q", r.StatusCode, body3)
	}
	// The edge reports the uploaded certificate as issued.
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, _ := w.store.Certificates().Statuses(context.Background(), []string{"app.example.test"})
		if s, ok := st["app.example.test"]; ok && s.State == api.CertificateIssued && s.Source == "custom" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("certificate status never reported: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var info map[string]any
	hr, err := http.Get("http://" + e.admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(hr.Body).Decode(&info)
	hr.Body.Close()
	if info["routes"] != float64(2) {
		t.Errorf("readyz: %v", info)
	}
}

// TestEdgeRefusesBadStart: ports in use and missing settings fail with the
// reason.
func TestEdgeRefusesBadStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = edge.New(edge.Options{HTTPAddr: ln.Addr().String(), HTTPSAddr: "127.0.0.1:0", StateDir: t.TempDir(), Server: "http://127.0.0.1:1", Token: "x"})
	if err == nil || !strings.Contains(err.Error(), "listen for HTTP on "+ln.Addr().String()) {
		t.Errorf("port in use: %v", err)
	}
	if _, err := edge.New(edge.Options{StateDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "edge token") {
		t.Errorf("no server: %v", err)
	}
}
