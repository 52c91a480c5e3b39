package apiserver

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestPanicsAreProblemsWithoutInternals(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	s := New(Options{Logger: zap.New(core)})
	h := s.withRequest(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("secret internal state: db password hunter2")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/x", nil))
	if rec.Code != http.StatusInternalServerError || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("panic → %d %s", rec.Code, rec.Body)
	}
	if strings.Contains(rec.Body.String(), "hunter2") || strings.Contains(rec.Body.String(), "secret") {
		t.Errorf("the problem leaks the panic: %s", rec.Body)
	}
	var p Problem
	_ = json.Unmarshal(rec.Body.Bytes(), &p)
	if p.RequestID == "" || p.RequestID != rec.Header().Get("X-Request-Id") {
		t.Errorf("problem %+v", p)
	}
	if logs.FilterMessage("handler panicked").Len() != 1 {
		t.Errorf("panic not logged: %v", logs.All())
	}
}

func TestRequestIDs(t *testing.T) {
	s := New(Options{})
	h := s.withRequest(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, requestID(r.Context()))
	}))
	for in, keep := range map[string]bool{
		"abc-123.DEF_9":             true,
		"":                          false,
		strings.Repeat("a", 65):     false,
		"bad id":                    false,
		"x\r\nSet-Cookie: a=b":      false,
		"<script>alert(1)</script>": false,
	} {
		rq := httptest.NewRequest("GET", "/", nil)
		rq.Header.Set("X-Request-Id", in)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, rq)
		got := rec.Header().Get("X-Request-Id")
		if got != rec.Body.String() || (keep && got != in) || (!keep && (got == in || !safeRequestID.MatchString(got))) {
			t.Errorf("X-Request-Id %q → %q (context %q)", in, got, rec.Body)
		}
	}
}

// TestServeDrainsRequests: on shutdown a request in flight finishes, and
// the listener stops taking new ones.
func TestServeDrainsRequests(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "done")
	})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, ln, h, 10*time.Second, zap.NewNop()) }()
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String())
		if err != nil {
			got <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- string(b)
	}()
	<-entered
	cancel()
	time.Sleep(100 * time.Millisecond)
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Error("a new connection was accepted while draining")
	}
	close(release)
	if body := <-got; body != "done" {
		t.Errorf("request in flight got %q", body)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}
