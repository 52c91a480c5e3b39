package apiserver_test

import (
	"context"
	"net"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/panelx/panelx/apiserver"
	"github.com/panelx/panelx/client"
)

// TestShutdownEndsStreams: a shutdown does not wait out the drain timeout
// for watch clients that would never leave.
func TestShutdownEndsStreams(t *testing.T) {
	e := newEnv(t)
	alice := e.jwtFor("alice")
	e.project(t, alice, "shop")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- apiserver.Serve(ctx, ln, e.API.Handler(), 30*time.Second, zap.NewNop(), e.API.StopStreams)
	}()
	c, err := client.New("http://"+ln.Addr().String(), alice)
	if err != nil {
		t.Fatal(err)
	}
	events, errs, err := c.Watch(context.Background(), client.WatchFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for ev := range events {
		if ev.Type == "SYNCED" {
			break
		}
	}
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown is waiting for the watch stream")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	for range events { // the stream ends with the server
	}
	<-errs
}
