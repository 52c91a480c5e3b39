package apiserver_test

import (
	"strings"
	"testing"

	"github.com/panelx/panelx/apiserver"
)

func TestCORS(t *testing.T) {
	e := newEnv(t, func(o *apiserver.Options) { o.CORSOrigins = []string{"https://panel.example.com"} })
	tok := e.jwtFor("alice")
	pre := e.do(t, req{method: "OPTIONS", path: "/api/v1/projects", header: map[string]string{
		"Origin": "https://panel.example.com", "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "authorization, if-match, content-type"}})
	if pre.Status >= 300 || pre.Header.Get("Access-Control-Allow-Origin") != "https://panel.example.com" ||
		!strings.Contains(strings.ToLower(pre.Header.Get("Access-Control-Allow-Headers")), "if-match") {
		t.Errorf("preflight from an allowed origin: %d %v", pre.Status, pre.Header)
	}
	get := e.do(t, req{method: "GET", path: "/api/v1/projects", token: tok, header: map[string]string{"Origin": "https://panel.example.com"}})
	if exp := get.Header.Get("Access-Control-Expose-Headers"); !strings.Contains(exp, "Etag") && !strings.Contains(exp, "ETag") {
		t.Errorf("exposed headers %q", exp)
	}
	evil := e.do(t, req{method: "OPTIONS", path: "/api/v1/projects", header: map[string]string{
		"Origin": "https://evil.example", "Access-Control-Request-Method": "DELETE"}})
	if evil.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from a foreign origin allowed: %v", evil.Header)
	}
	// With no origins configured there are no CORS headers at all.
	plain := newEnv(t)
	r := plain.do(t, req{method: "GET", path: "/api/v1/projects", token: plain.jwtFor("a"), header: map[string]string{"Origin": "https://panel.example.com"}})
	if r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS without configuration: %v", r.Header)
	}
}

// TestAccessLog: one line per request with the route pattern, status,
// user and request id — and never the token.
func TestAccessLog(t *testing.T) {
	e := newEnv(t)
	tok := e.jwtFor("alice")
	e.project(t, tok, "shop")
	r := e.do(t, req{method: "GET", path: "/api/v1/projects/shop", token: tok, header: map[string]string{"X-Request-Id": "trace-42"}})
	if r.Header.Get("X-Request-Id") != "trace-42" {
		t.Errorf("request id not echoed: %v", r.Header)
	}
	e.do(t, req{method: "GET", path: "/api/v1/projects/shop", token: tok + "x"})
	found := false
	for _, entry := range e.Logs.All() {
		line := entry.Message
		for k, v := range entry.ContextMap() {
			line += " " + k + "=" + strings.TrimSpace(strings.ReplaceAll(toString(v), "\n", " "))
		}
		if strings.Contains(line, tok[20:60]) {
			t.Errorf("a log line carries the token: %s", line)
		}
		m := entry.ContextMap()
		if entry.Message == "request" && m["request_id"] == "trace-42" {
			found = true
			if m["route"] != "/api/v1/projects/{project}" || m["status"] != int64(200) || m["user_id"] != "alice" || m["method"] != "GET" {
				t.Errorf("access log line: %v", m)
			}
		}
	}
	if !found {
		t.Error("no access log line for the request")
	}
}

func toString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(fmtAny(v), "\t", " "), "\n", " "))
}
