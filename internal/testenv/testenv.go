// Package testenv gives tests the real services they need — a fresh
// PostgreSQL database, a Docker Engine — and enforces the rule that in CI
// (CI=true) a missing service fails the test instead of skipping it.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// InCI reports whether the tests run in CI, where nothing may be skipped.
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing fails the test in CI and skips it elsewhere, saying what is missing.
func Missing(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		tb.Fatalf("required test service missing (CI=true, so this fails instead of skipping): %s", msg)
	}
	tb.Skipf("skipping: %s (run `bash .ci/run` or see README)", msg)
}

// AdminURL returns PANELX_TEST_DATABASE_URL: a role that may create databases.
func AdminURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("PANELX_TEST_DATABASE_URL")
	if u == "" {
		Missing(tb, "PANELX_TEST_DATABASE_URL is not set")
	}
	return u
}

// NewDatabase creates an empty database for one test (or one package, when
// called from TestMain through a testing.TB of its own) and drops it at the
// end. It returns the URL of the new database.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	admin := AdminURL(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		Missing(tb, "cannot connect to PANELX_TEST_DATABASE_URL: %v", err)
	}
	defer conn.Close(ctx)
	name := "panelx_test_" + randomHex(6)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			tb.Errorf("drop test database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		// An autovacuum worker may hold the database for a moment; retry.
		var err2 error
		for attempt := 0; attempt < 5; attempt++ {
			if _, err2 = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err2 == nil {
				return
			}
			time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
		}
		tb.Errorf("drop test database %s: %v", name, err2)
	})
	return withDatabase(tb, admin, name)
}

func withDatabase(tb testing.TB, raw, name string) string {
	tb.Helper()
	if strings.Contains(raw, "://") {
		u, err := url.Parse(raw)
		if err != nil {
			tb.Fatalf("parse PANELX_TEST_DATABASE_URL: %v", err)
		}
		u.Path = "/" + name
		return u.String()
	}
	// key=value form
	return raw + " dbname=" + name
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
