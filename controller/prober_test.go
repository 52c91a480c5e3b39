package controller

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/reconcile"
)

// TestProberVerdicts: a replica is starting until its probe first passes,
// ready then, and unready only after FailureThreshold failures in a row;
// every change of verdict queues the service; Sync stops the workers of
// containers that went.
func TestProberVerdicts(t *testing.T) {
	var status, asked atomic.Int32
	status.Store(http.StatusServiceUnavailable)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		if r.URL.Path != "/ready" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p32, _ := strconv.Atoi(port)

	var mu sync.Mutex
	changes := 0
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := NewProber(ctx, nil, func(api.Key) { mu.Lock(); changes++; mu.Unlock() })
	key := api.Key{Project: "shop", Name: "web"}
	probe := &api.Probe{HTTPGet: &api.HTTPGetAction{Path: "/ready", Port: int32(p32)}, Period: api.Duration{Duration: 20 * time.Millisecond},
		FailureThreshold: 3}
	cs := []reconcile.Container{{ID: "c1", State: "running", IPs: map[string]string{"net": "127.0.0.1"}}}
	p.Sync(key, probe, cs, "net")

	waitVerdict := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			if v, _ := p.Verdict("c1"); v == want {
				return
			}
			if time.Now().After(deadline) {
				v, why := p.Verdict("c1")
				t.Fatalf("verdict %q (%s), want %q", v, why, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// Several failures before the first success: still starting.
	for deadline := time.Now().Add(5 * time.Second); asked.Load() < 4; {
		if time.Now().After(deadline) {
			t.Fatalf("the probe asked %d times in 5 s", asked.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	waitVerdict("starting")
	svc := &api.Service{Spec: api.ServiceSpec{ReadinessProbe: probe}}
	if got := p.withProbes(svc, append([]reconcile.Container(nil), cs...)); got[0].Ready() {
		t.Error("a starting replica counts as ready")
	}
	status.Store(http.StatusOK)
	waitVerdict("ready")
	if got := p.withProbes(svc, append([]reconcile.Container(nil), cs...)); !got[0].Ready() {
		t.Error("a ready replica does not count as ready")
	}
	status.Store(http.StatusInternalServerError)
	waitVerdict("unready")
	mu.Lock()
	if changes != 2 {
		t.Errorf("%d changes queued the service, want 2 (ready, unready)", changes)
	}
	mu.Unlock()

	p.Sync(key, probe, nil, "net") // the container went
	if v, _ := p.Verdict("c1"); v != "" {
		t.Errorf("a gone container keeps verdict %q", v)
	}
}
