package testenv

import (
	"context"
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
