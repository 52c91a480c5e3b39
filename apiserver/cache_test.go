package apiserver_test

import (
	"net/http"
	"testing"
	"time"
)

// TestRevocationReachesEveryServer: API tokens and memberships are cached
// in memory, yet a revoked token and a removed member stop working within
// a second on another server that had them cached — its cache follows the
// store's change feed.
func TestRevocationReachesEveryServer(t *testing.T) {
	e := newEnv(t)
	other := *e
	other.URL = e.otherServer(t)
	alice, bob := e.jwtFor("alice"), e.jwtFor("bob")
	e.project(t, alice, "shop")
	e.service(t, alice, "shop", "web")
	e.member(t, alice, "shop", "bob", "viewer")
	get := func(token string) req {
		return req{method: "GET", path: "/api/v1/projects/shop/services/web", token: token}
	}
	warm := func(token string) {
		for _, s := range []*env{e, &other} {
			for range 3 {
				s.must(t, http.StatusOK, get(token))
			}
		}
	}
	until := func(what string, rq req, want int) {
		t.Helper()
		start := time.Now()
		for {
			r := other.do(t, rq)
			if r.Status == want {
				t.Logf("%s: the other server answers %d after %v", what, want, time.Since(start).Round(time.Millisecond))
				return
			}
			if time.Since(start) > time.Second {
				t.Fatalf("%s: the other server still answers %d after 1 s", what, r.Status)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	tok, id := e.apiToken(t, bob, nil)
	warm(tok)
	e.must(t, http.StatusNoContent, req{method: "DELETE", path: "/api/v1/tokens/" + id, token: bob})
	until("revoked token", get(tok), http.StatusUnauthorized)

	tok2, _ := e.apiToken(t, bob, nil)
	warm(tok2)
	e.must(t, http.StatusNoContent, req{method: "DELETE", path: "/api/v1/projects/shop/members/bob", token: alice})
	until("removed member", get(tok2), http.StatusNotFound)

	// And a member added again is let back in as promptly (a cached "not a
	// member" goes too).
	e.member(t, alice, "shop", "bob", "editor")
	until("member added back", get(tok2), http.StatusOK)
}
