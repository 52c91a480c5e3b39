package apiserver_test

import (
	"net/http"
	"strings"
	"testing"
)

// fuzzTarget is one server for a whole fuzz run (a database per input
// would measure PostgreSQL, not the handlers).
func fuzzTarget(f *testing.F) (*env, string) {
	e := newEnv(f)
	tok := e.jwtFor("fuzzer")
	e.project(f, tok, "shop")
	e.service(f, tok, "shop", "web")
	return e, tok
}

var fuzzSeeds = []string{
	`{"metadata": {"name": "a"}, "spec": {"image": "nginx:1"}}`,
	"metadata:\n  name: b\nspec:\n  image: nginx:1\n  ports:\n  - containerPort: 80\n    hostPort: 8080\n",
	`{"metadata": {"name": "c", "annotations": {"x": "\u0000"}}, "spec": {"image": "nginx:1"}}`,
	`{"metadata": {"name": "d", "labels": {"\u0000": "x"}}, "spec": {"image": "nginx:1"}}`,
	`{"metadata": {"name": "e"}, "spec": {"image": "nginx:1", "replicas": 99999999999999999999}}`,
	`{"metadata": {"name": "f"}, "spec": {"image": "nginx:1", "resources": {"cpus": 1e308, "memory": "9999999999999999999Gi"}}}`,
	`{"metadata": {"name": "g"}, "spec": {"image": "nginx:1", "healthcheck": {"command": ["x"], "interval": "9999999999h"}}}`,
	`{"metadata": {"name": "h", "creationTimestamp": "not a time", "uid": 5}, "spec": {"image": "nginx:1"}}`,
	`{"metadata": {"name": "i"}, "spec": {"image": "nginx:1", "volumes": [{"hostPath": "/var/run/../run/docker.sock", "mountPath": "/x"}]}}`,
	`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`,
	"a: &a [*a, *a]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b, *b]\n",
	"--- \n---\nmetadata: {name: j}\n",
	`{"metadata": {"name": "k"}, "spec": {"image": "nginx:1"}} {"metadata": {"name": "l"}}`,
	"\xff\xfe\x00",
	``,
	`null`,
	`{"spec": {"image": "nginx:1", "env": [{"name": "A", "value": "` + "\xff" + `"}]}}`,
	`{"metadata": {"name": "m", "project": "other"}, "spec": {"image": "nginx:1", "sysctls": {"a": "b"}, "devices": ["/dev/sda"]}}`,
	"!!binary aGVsbG8=",
	`{"kind": "Volume", "apiVersion": "v2"}`,
}

// FuzzCreateService posts arbitrary bodies to the service collection and
// merges arbitrary patches into a service: whatever comes in, the answer
// is a 2xx or a 4xx, never a 5xx. The seeds run in `go test`.
func FuzzCreateService(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), "application/json")
		f.Add([]byte(s), "application/yaml")
	}
	f.Add([]byte(`{}`), "")
	f.Add([]byte(`x`), "text/plain; charset=\xff")
	e, tok := fuzzTarget(f)
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		if strings.ContainsFunc(contentType, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
			t.Skip("not a header value an HTTP client can send")
		}
		r := e.do(t, req{method: "POST", path: "/api/v1/projects/shop/services", token: tok, body: body,
			header: map[string]string{"Content-Type": contentType}})
		if r.Status >= 500 {
			t.Fatalf("POST → %d\n%s", r.Status, r.Body)
		}
		if r.Status >= 400 && r.Header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("error without a problem document: %d %s", r.Status, r.Body)
		}
		if r.Status == http.StatusCreated {
			// Anything accepted reads back and deletes cleanly.
			name := r.JSON(t)["metadata"].(map[string]any)["name"].(string)
			e.must(t, http.StatusOK, req{method: "GET", path: "/api/v1/projects/shop/services/" + name, token: tok})
			e.must(t, http.StatusAccepted, req{method: "DELETE", path: "/api/v1/projects/shop/services/" + name, token: tok})
		}
		p := e.do(t, req{method: "PATCH", path: "/api/v1/projects/shop/services/web", token: tok, body: body})
		if p.Status >= 500 {
			t.Fatalf("PATCH → %d\n%s", p.Status, p.Body)
		}
	})
}

// FuzzListQuery sends arbitrary query strings to the list routes: bad
// limits, continue tokens and selectors are 400s, never 5xx.
func FuzzListQuery(f *testing.F) {
	for _, q := range []string{
		"limit=2", "limit=-1", "limit=99999999999999999999", "continue=eyJwIjoiXHUwMDAwIiwibiI6IngifQ",
		"continue=%00", "labelSelector=a%3Db%2Cc%20in%20(d%2Ce)", "labelSelector=%21%21", "labelSelector=a%20notin%20()",
		"labelSelector=" + strings.Repeat("a%2C", 500), "kind=Service&name=web&limit=5", "purgeVolumes=%ff",
	} {
		f.Add(q)
	}
	e, tok := fuzzTarget(f)
	f.Fuzz(func(t *testing.T, query string) {
		for _, path := range []string{"/api/v1/projects", "/api/v1/projects/shop/services", "/api/v1/projects/shop/events"} {
			hr, err := http.NewRequest("GET", e.URL+path+"?"+query, nil)
			if err != nil {
				t.Skip("not a URL a client can send")
			}
			hr.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(hr)
			if err != nil {
				t.Skip("not a request a client can send")
			}
			resp.Body.Close()
			if resp.StatusCode >= 500 {
				t.Fatalf("GET %s?%s → %d", path, query, resp.StatusCode)
			}
		}
	})
}
