package apiserver_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
)

// TestConcurrentPutsWithOneIfMatch: ten PUTs carrying the same If-Match at
// once — exactly one wins, the other nine get 412.
func TestConcurrentPutsWithOneIfMatch(t *testing.T) {
	e := newEnv(t)
	tok := e.jwtFor("alice")
	e.project(t, tok, "shop")
	etag := e.service(t, tok, "shop", "web").Header.Get("ETag")
	for round := range 3 {
		statuses := make(chan int, 10)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				body := manifest("services", "web", map[string]any{"env": []any{map[string]any{"name": "WRITER", "value": fmt.Sprint(i)}}})
				statuses <- e.do(t, req{method: "PUT", path: "/api/v1/projects/shop/services/web", token: tok, body: body,
					header: map[string]string{"If-Match": etag}}).Status
			}()
		}
		close(start)
		wg.Wait()
		close(statuses)
		count := map[int]int{}
		for s := range statuses {
			count[s]++
		}
		if count[http.StatusOK] != 1 || count[http.StatusPreconditionFailed] != 9 {
			t.Fatalf("round %d: statuses %v, want one 200 and nine 412", round, count)
		}
		etag = e.must(t, http.StatusOK, req{method: "GET", path: "/api/v1/projects/shop/services/web", token: tok}).Header.Get("ETag")
	}
}

// TestConcurrentPatchesWithoutIfMatchLoseNothing: unconditional patches
// are read-modify-write cycles retried on conflict, so every one lands.
func TestConcurrentPatchesWithoutIfMatchLoseNothing(t *testing.T) {
	e := newEnv(t)
	tok := e.jwtFor("alice")
	e.project(t, tok, "shop")
	e.service(t, tok, "shop", "web")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.do(t, req{method: "PATCH", path: "/api/v1/projects/shop/services/web", token: tok,
				body: fmt.Sprintf(`{"metadata": {"labels": {"l%d": "v"}}}`, i)})
			if r.Status != http.StatusOK && r.Status != http.StatusConflict {
				t.Errorf("patch %d: %d %s", i, r.Status, r.Body)
			}
		}()
	}
	wg.Wait()
	labels := e.must(t, http.StatusOK, req{method: "GET", path: "/api/v1/projects/shop/services/web", token: tok}).JSON(t)["metadata"].(map[string]any)["labels"].(map[string]any)
	if len(labels) < 6 {
		t.Errorf("only %d of 8 concurrent label patches landed: %v", len(labels), labels)
	}
}
