package apiserver_test

import (
	"strings"
	"testing"

	"github.com/panelx/panelx/apiserver"
	"github.com/panelx/panelx/web"
)

// TestDashboardThroughTheRouter: the dashboard a server is given answers
// / and /ui/… behind the router's middleware (a request ID, the access
// log); other unknown paths stay the API's 404.
func TestDashboardThroughTheRouter(t *testing.T) {
	dashboard, err := web.New(web.Config{SupabaseURL: "https://abc.supabase.co", SupabaseAnonKey: "sb_publishable_testkey123"})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(o *apiserver.Options) { o.Dashboard = dashboard })
	for path, want := range map[string]int{"/": 200, "/ui/config.json": 200, "/ui/nope.js": 404, "/uix": 404} {
		r := e.do(t, req{method: "GET", path: path})
		if r.Status != want || r.Header.Get("X-Request-Id") == "" {
			t.Errorf("GET %s: %d (want %d), request id %q", path, r.Status, want, r.Header.Get("X-Request-Id"))
		}
		if path == "/ui/config.json" && !strings.Contains(string(r.Body), "abc.supabase.co") {
			t.Errorf("config.json is not the given dashboard's: %s", r.Body)
		}
	}
	if r := e.do(t, req{method: "GET", path: "/"}); !strings.Contains(r.Header.Get("Content-Security-Policy"), "https://abc.supabase.co/auth/v1/") {
		t.Errorf("CSP %q", r.Header.Get("Content-Security-Policy"))
	}
}
