package apiserver_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/panelx/panelx/apiserver"
	"github.com/panelx/panelx/apiserver/authz"
)

type fakeStats struct{}

func (fakeStats) ProjectStats(project string) []apiserver.ContainerStats {
	return []apiserver.ContainerStats{{Name: "panelx-" + project + "-web-0", Service: "web", Replica: "0", CPUPercent: 12.5, MemoryUsedBytes: 1 << 20}}
}

func withStats(o *apiserver.Options) { o.Stats = fakeStats{} }

func dialStats(ctx context.Context, e *env, path, token string, header http.Header) (*websocket.Conn, *http.Response, error) {
	opts := &websocket.DialOptions{HTTPHeader: header}
	if token != "" {
		opts.Subprotocols = []string{"panelx.v1", authz.BearerProtocolPrefix + token}
	}
	return websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.URL, "http")+path, opts)
}

// TestMetricsStream: samples arrive at the requested interval; the client
// can change it; strangers, missing tokens, tokens in the URL and foreign
// origins get nothing.
func TestMetricsStream(t *testing.T) {
	e := newEnv(t, withStats)
	alice, bob := e.jwtFor("alice"), e.jwtFor("bob")
	e.project(t, alice, "shop")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	conn, resp, err := dialStats(ctx, e, "/api/v1/projects/shop/metrics/stream?interval=1s", alice, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.CloseNow()
	if p := resp.Header.Get("Sec-WebSocket-Protocol"); strings.Contains(p, "bearer") {
		t.Errorf("the server echoed the token's subprotocol: %q", p)
	}
	read := func() (time.Time, map[string]any) {
		t.Helper()
		_, data, err := conn.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var msg map[string]any
		if err := json.Unmarshal(data, &msg); err != nil {
			t.Fatal(err)
		}
		return time.Now(), msg
	}
	t0, first := read()
	cs := first["containers"].([]any)
	if len(cs) != 1 || cs[0].(map[string]any)["cpuPercent"].(float64) != 12.5 {
		t.Fatalf("first message: %v", first)
	}
	t1, _ := read()
	if gap := t1.Sub(t0); gap < 800*time.Millisecond || gap > 2*time.Second {
		t.Errorf("interval 1s, got %v between messages", gap)
	}
	if err := conn.Write(ctx, websocket.MessageText, []byte(`{"interval": "2s"}`)); err != nil {
		t.Fatal(err)
	}
	read() // maybe one more at the old pace
	t2, msg := read()
	t3, _ := read()
	if gap := t3.Sub(t2); gap < 1700*time.Millisecond || gap > 3*time.Second || msg["interval"] == "1s" && gap < time.Second {
		t.Errorf("interval 2s, got %v", gap)
	}
	conn.Close(websocket.StatusNormalClosure, "")

	// Refusals happen before any upgrade: plain HTTP answers.
	for _, c := range []struct {
		name   string
		path   string
		token  string
		header http.Header
		want   int
	}{
		{"no token", "/api/v1/projects/shop/metrics/stream", "", nil, http.StatusUnauthorized},
		{"token in the query", "/api/v1/projects/shop/metrics/stream?access_token=" + alice, "", nil, http.StatusUnauthorized},
		{"another tenant", "/api/v1/projects/shop/metrics/stream", bob, nil, http.StatusNotFound},
		{"foreign origin", "/api/v1/projects/shop/metrics/stream", alice, http.Header{"Origin": {"https://evil.example"}}, http.StatusForbidden},
		{"interval out of range", "/api/v1/projects/shop/metrics/stream?interval=90s", alice, nil, http.StatusBadRequest},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, resp, err := dialStats(ctx, e, c.path, c.token, c.header)
			if err == nil {
				conn.CloseNow()
				t.Fatal("upgraded")
			}
			if resp == nil || resp.StatusCode != c.want {
				t.Fatalf("status %v, want %d (%v)", resp, c.want, err)
			}
		})
	}
}

// TestMetricsStreamNotCollected: a server that collects no metrics says so
// (503 with the reason) to a WebSocket and to the plain GET a browser makes
// to learn why its WebSocket was refused — before the 426 that a plain
// request to a working stream gets; a stranger still gets the 404 first.
func TestMetricsStreamNotCollected(t *testing.T) {
	e := newEnv(t) // no Stats
	alice, bob := e.jwtFor("alice"), e.jwtFor("bob")
	e.project(t, alice, "shop")
	const path = "/api/v1/projects/shop/metrics/stream"
	r := e.must(t, http.StatusServiceUnavailable, req{method: "GET", path: path, token: alice})
	if p := r.problem(t); !strings.Contains(p.Detail, "not collected") {
		t.Errorf("plain GET: %+v", p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if conn, resp, err := dialStats(ctx, e, path, alice, nil); err == nil {
		conn.CloseNow()
		t.Fatal("upgraded without metrics")
	} else if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("WebSocket: %v %v", resp, err)
	}
	e.must(t, http.StatusNotFound, req{method: "GET", path: path, token: bob})
}
