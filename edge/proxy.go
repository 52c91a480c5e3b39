package edge

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panelx/panelx/api/routing"
)

type routeKey struct{}

func routeFrom(ctx context.Context) *routing.Route {
	r, _ := ctx.Value(routeKey{}).(*routing.Route)
	return r
}

// requestHost is the request's hostname as routes spell it: lower case,
// without port or trailing dot.
func requestHost(r *http.Request) string {
	h := r.Host
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

// serve is the handler of both listeners.
func (e *Edge) serve(w http.ResponseWriter, r *http.Request, secure bool) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	label := unmatchedHost
	defer func() {
		status, at := sw.result(start)
		e.m.observe(label, status, at.Sub(start))
	}()
	host := requestHost(r)
	// ACME's HTTP-01 challenge is answered before anything else, so no
	// redirect or missing route can ever block it; one the edge does not
	// know goes to the service, never to a redirect.
	challenge := !secure && strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/")
	if challenge && e.certs.handleHTTPChallenge(sw, r) {
		return
	}
	st := e.state.Load()
	route := st.index.Match(host, r.URL.Path)
	if route == nil {
		if st.index.HasHost(host) {
			page(sw, http.StatusNotFound, reasonNoRoute, "no service of %s serves the path %s", host, r.URL.Path)
		} else {
			page(sw, http.StatusNotFound, reasonNoRoute, "no service answers for %q on this server", host)
		}
		return
	}
	label = route.Host
	switch {
	case !secure && route.TLS && route.RedirectHTTPS && !challenge:
		if ok, why := e.certs.ready(host); !ok {
			page(sw, http.StatusServiceUnavailable, reasonCertPending, "the certificate for %s is pending: %s", host, why)
			return
		}
		http.Redirect(sw, r, "https://"+e.httpsAuthority(host)+r.URL.RequestURI(), http.StatusPermanentRedirect)
		return
	case secure && !route.TLS:
		page(sw, http.StatusMisdirectedRequest, reasonPlainOnly, "%s is served over plain HTTP only (tls: Off): use http://%s", host, host)
		return
	case secure:
		if ok, why := e.certs.ready(host); !ok {
			page(sw, http.StatusServiceUnavailable, reasonCertPending, "the certificate for %s is pending: %s", host, why)
			return
		}
	}
	if len(route.Endpoints) == 0 {
		e.m.upstreamErrors.WithLabelValues(label, reasonNoReplica).Inc()
		page(sw, http.StatusServiceUnavailable, reasonNoReplica, "no ready replica of %s in project %s", route.Service, route.Project)
		return
	}
	if route.MaxBodyBytes > 0 {
		if r.ContentLength > route.MaxBodyBytes {
			page(sw, http.StatusRequestEntityTooLarge, reasonTooLarge, "the request body is larger than %d bytes, the limit of %s%s", route.MaxBodyBytes, route.Host, route.Path)
			return
		}
		r.Body = http.MaxBytesReader(sw, r.Body, route.MaxBodyBytes)
	}
	e.proxy.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), routeKey{}, route)))
}

// httpsAuthority is host, with the HTTPS port when it is not 443.
func (e *Edge) httpsAuthority(host string) string {
	if e.httpsPort == 443 || e.httpsPort == 0 {
		return host
	}
	return net.JoinHostPort(host, strconv.Itoa(e.httpsPort))
}

func (e *Edge) newReverseProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			// The transport picks the replica; the client's own
			// X-Forwarded-* headers were removed before Rewrite.
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", "replica.invalid"
			pr.SetXForwarded()
			pr.Out.Host = pr.In.Host
			pr.Out.Header.Del("Forwarded")
		},
		Transport:    &upstreamTransport{e: e},
		BufferPool:   bufferPool{},
		ErrorHandler: e.proxyError,
	}
}

// errUpstreamTimeout: the replica did not send its response headers in time.
var errUpstreamTimeout = errors.New("the replica did not answer in time")

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func (e *Edge) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	route := routeFrom(r.Context())
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		page(w, http.StatusRequestEntityTooLarge, reasonTooLarge, "the request body is larger than %d bytes, the limit of %s%s", mbe.Limit, route.Host, route.Path)
	case r.Context().Err() != nil:
		// The client left; nobody reads an answer.
		if sw, ok := w.(*statusWriter); ok {
			sw.status = 499
		}
	case errors.Is(err, errUpstreamTimeout):
		e.m.upstreamErrors.WithLabelValues(route.Host, reasonTimeout).Inc()
		page(w, http.StatusGatewayTimeout, reasonTimeout, "%s in project %s did not answer within %s", route.Service, route.Project, e.timeout(route))
	case isDialError(err):
		// Counted per attempt in the transport.
		page(w, http.StatusBadGateway, reasonRefused, "no replica of %s in project %s accepted the connection on port %d (is the app listening on it?)", route.Service, route.Project, route.Port)
	default:
		e.m.upstreamErrors.WithLabelValues(route.Host, reasonUpstream).Inc()
		page(w, http.StatusBadGateway, reasonUpstream, "%s in project %s closed the connection without an answer", route.Service, route.Project)
	}
}

func (e *Edge) timeout(r *routing.Route) time.Duration {
	if r.Timeout > 0 {
		return r.Timeout
	}
	return e.opts.DefaultTimeout
}

// upstreamTransport sends a request to one of the route's replicas: the
// one with the fewest requests in flight (ties broken round-robin), and on
// to the next when a connection cannot even be opened — nothing was sent,
// so any request can go elsewhere.
type upstreamTransport struct {
	e *Edge
}

func (t *upstreamTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	e := t.e
	route := routeFrom(req.Context())
	eps := route.Endpoints
	first := e.pick(eps)
	port := strconv.Itoa(int(route.Port))
	// Every replica once, then a few more rounds with short pauses: a
	// replica that was just started may take a moment to listen, and a
	// refused connection sent nothing, so trying again is always safe.
	attempts := max(len(eps), 3) + len(eps)*2
	var lastErr error
	for i := 0; i < attempts; i++ {
		if i >= len(eps) && i%len(eps) == 0 {
			select {
			case <-time.After(retryPause << (i/len(eps) - 1)):
			case <-req.Context().Done():
				return nil, req.Context().Err()
			}
		}
		ip := eps[(first+i)%len(eps)]
		req.URL.Host = net.JoinHostPort(ip, port)
		resp, err := t.once(req, route, ip)
		if err == nil {
			return resp, nil
		}
		if !isDialError(err) || req.Context().Err() != nil {
			return nil, err
		}
		e.m.upstreamErrors.WithLabelValues(route.Host, reasonRefused).Inc()
		lastErr = err
	}
	return nil, lastErr
}

// retryPause is the first pause after every replica refused (it doubles).
const retryPause = 100 * time.Millisecond

// once is one attempt on one replica; the request counts as in flight on
// it until its response body is closed (a WebSocket: until it ends).
func (t *upstreamTransport) once(req *http.Request, route *routing.Route, ip string) (*http.Response, error) {
	e := t.e
	n := e.inflight(ip)
	n.Add(1)
	ctx, cancel := context.WithCancel(req.Context())
	var timedOut atomic.Bool
	timer := time.AfterFunc(e.timeout(route), func() { timedOut.Store(true); cancel() })
	resp, err := e.transport.RoundTrip(req.WithContext(ctx))
	timer.Stop()
	done := func() {
		cancel()
		if n.Add(-1) == 0 {
			e.drained(ip)
		}
	}
	if err != nil {
		done()
		if timedOut.Load() {
			return nil, errUpstreamTimeout
		}
		return nil, err
	}
	var once sync.Once
	finish := func() { once.Do(done) }
	if rw, ok := resp.Body.(io.ReadWriteCloser); ok && resp.StatusCode == http.StatusSwitchingProtocols {
		resp.Body = &trackedConn{ReadWriteCloser: rw, finish: finish}
	} else {
		resp.Body = &trackedBody{ReadCloser: resp.Body, finish: finish}
	}
	return resp, nil
}

type trackedBody struct {
	io.ReadCloser
	finish func()
}

func (b *trackedBody) Close() error {
	err := b.ReadCloser.Close()
	b.finish()
	return err
}

// trackedConn keeps the writer of an upgraded (WebSocket) connection, which
// the reverse proxy needs.
type trackedConn struct {
	io.ReadWriteCloser
	finish func()
}

func (c *trackedConn) Close() error {
	err := c.ReadWriteCloser.Close()
	c.finish()
	return err
}

// pick returns the index of the endpoint with the fewest requests in
// flight, starting the scan at a rotating offset so equals take turns.
func (e *Edge) pick(eps []string) int {
	start := int(e.rr.Add(1) % uint64(len(eps)))
	best, bestN := start, int64(math.MaxInt64)
	for i := range eps {
		j := (start + i) % len(eps)
		if n := e.inflight(eps[j]).Load(); n < bestN {
			best, bestN = j, n
		}
	}
	return best
}

// inflight returns the in-flight counter of a replica address.
func (e *Edge) inflight(ip string) *atomic.Int64 {
	if v, ok := e.flights.Load(ip); ok {
		return v.(*atomic.Int64)
	}
	v, _ := e.flights.LoadOrStore(ip, new(atomic.Int64))
	return v.(*atomic.Int64)
}

// drained is called when an address has no request in flight any more:
// if it left the routes, the controller may now stop it — tell it soon.
func (e *Edge) drained(ip string) {
	if st := e.state.Load(); st != nil && !st.active[ip] {
		e.poke()
	}
}

// draining lists the addresses no longer routed that still have requests
// in flight, and forgets idle ones.
func (e *Edge) draining(st *state) []string {
	var out []string
	e.flights.Range(func(k, v any) bool {
		ip := k.(string)
		if st.active[ip] {
			return true
		}
		if v.(*atomic.Int64).Load() > 0 {
			out = append(out, ip)
		} else {
			e.flights.CompareAndDelete(k, v)
		}
		return true
	})
	return out
}

// statusWriter remembers the status and when the headers went out, for
// the metrics; it passes through flushing and hijacking (WebSockets).
type statusWriter struct {
	http.ResponseWriter
	status   int
	headerAt time.Time
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 || w.status < 200 {
		w.status, w.headerAt = code, time.Now()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status, w.headerAt = http.StatusOK, time.Now()
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status, w.headerAt = http.StatusOK, time.Now()
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.status == 0 {
		w.status, w.headerAt = http.StatusSwitchingProtocols, time.Now()
	}
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) result(start time.Time) (int, time.Time) {
	if w.status == 0 {
		return 499, time.Now() // nothing was written: the client left
	}
	return w.status, w.headerAt
}

// bufferPool recycles the proxy's copy buffers.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *(buffers.Get().(*[]byte)) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }
