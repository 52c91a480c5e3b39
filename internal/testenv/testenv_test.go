package testenv

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestServicesArePresent is the canary of the test environment: it fails in
// CI when .ci/run did not bring up PostgreSQL or Docker.
func TestServicesArePresent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t.Run("PostgreSQL", func(t *testing.T) {
		conn, err := pgx.Connect(ctx, NewDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var v string
		if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&v); err != nil {
			t.Fatal(err)
		}
		t.Logf("PostgreSQL %s", v)
	})
	t.Run("Docker", func(t *testing.T) {
		cli := Docker(t)
		v, err := cli.ServerVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("Docker Engine %s, API %s (client negotiated %s)", v.Version, v.APIVersion, cli.ClientVersion())
	})
}

// TestPrometheusScrapes: the metrics tests' Prometheus runs and scrapes.
func TestPrometheusScrapes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "# TYPE canary gauge\ncanary 42")
	})}
	go srv.Serve(ln)
	defer srv.Close()
	p := StartPrometheus(t, ln.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		got, err := p.Query(ctx, "canary")
		if err == nil && len(got) == 1 && got[0].Value == 42 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("canary never scraped: %v %v", got, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
