package apiserver_test

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/panelx/panelx/apiserver"
)

// TestRevokedTokenEndsStreams: every stream verifies its credential again
// on the same rhythm; revoking an API token ends a watch that uses it.
func TestRevokedTokenEndsStreams(t *testing.T) {
	e := newEnv(t, func(o *apiserver.Options) { o.StreamRecheck = 200 * time.Millisecond })
	alice := e.jwtFor("alice")
	e.project(t, alice, "shop")
	tok, id := e.apiToken(t, alice, nil)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hr, _ := http.NewRequestWithContext(ctx, "GET", e.URL+"/api/v1/watch", nil)
	hr.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	synced := false
	for sc.Scan() && !synced {
		synced = strings.HasPrefix(sc.Text(), "event: synced")
	}
	if !synced {
		t.Fatal("no SYNCED event")
	}
	revoked := time.Now()
	e.must(t, http.StatusNoContent, req{method: "DELETE", path: "/api/v1/tokens/" + id, token: alice})
	var last string
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") {
			last = sc.Text()
		}
	}
	if ctx.Err() != nil {
		t.Fatal("the watch of a revoked token did not end")
	}
	if !strings.Contains(last, "no longer valid") {
		t.Errorf("last event %q", last)
	}
	t.Logf("the stream ended %v after the revocation", time.Since(revoked))
}
