package web

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
)

func serve(t *testing.T, method, path string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	Handler().ServeHTTP(w, r)
	return w
}

func checkSecurityHeaders(t *testing.T, path string, w *httptest.ResponseRecorder) {
	t.Helper()
	want := map[string]string{
		"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
	}
	for k, v := range want {
		if got := w.Header().Get(k); got != v {
			t.Errorf("%s: %s = %q, want %q", path, k, got, v)
		}
	}
}

func TestIndexAndAssets(t *testing.T) {
	w := serve(t, "GET", "/")
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET / = %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	checkSecurityHeaders(t, "/", w)
	index := w.Body.String()
	if !strings.Contains(index, `<script type="module" src="ui/app.js">`) {
		t.Errorf("index does not load ui/app.js as a module:\n%s", index)
	}
	if w.Header().Get("Cache-Control") != "no-cache" || w.Header().Get("ETag") == "" {
		t.Errorf("GET / caching: Cache-Control %q, ETag %q", w.Header().Get("Cache-Control"), w.Header().Get("ETag"))
	}

	// Every file the page names is served, with its type; URLs are relative
	// (the page works behind a path prefix).
	types := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
	refs := regexp.MustCompile(`(?:src|href)="([^"#]+)"`).FindAllStringSubmatch(index, -1)
	if len(refs) < 3 {
		t.Fatalf("index names only %d files", len(refs))
	}
	for _, m := range refs {
		ref := m[1]
		if strings.HasPrefix(ref, "/") || strings.Contains(ref, "://") {
			t.Errorf("index names %q: not a relative URL", ref)
			continue
		}
		w := serve(t, "GET", "/"+ref)
		ext := ref[strings.LastIndex(ref, "."):]
		if w.Code != http.StatusOK || w.Header().Get("Content-Type") != types[ext] {
			t.Errorf("GET /%s = %d %q, want 200 %q", ref, w.Code, w.Header().Get("Content-Type"), types[ext])
		}
		checkSecurityHeaders(t, ref, w)
	}
	if w := serve(t, "GET", "/ui/api.js"); !strings.Contains(w.Body.String(), "import.meta.url") {
		t.Errorf("api.js does not derive the API's base from its own URL")
	}
}

// TestNoInlineScriptOrStyle: the CSP forbids them, so none may be written
// (the npm bundles in lib/ are not ours; term.js turns xterm.js's inline
// styles into their CSSOM equivalents, element.style among them).
func TestNoInlineScriptOrStyle(t *testing.T) {
	for p := range Assets() {
		if strings.HasPrefix(p, "/ui/lib/") {
			continue
		}
		body := serve(t, "GET", p).Body.String()
		for _, bad := range []string{"style=", "innerHTML", "javascript:", "eval(", "new Function", ".style."} {
			if bad == ".style." && p == "/ui/term.js" {
				continue
			}
			if strings.Contains(body, bad) {
				t.Errorf("%s contains %q", p, bad)
			}
		}
		if strings.HasSuffix(p, ".html") {
			if regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`).MatchString(body) || strings.Contains(body, "<style") {
				t.Errorf("%s has an inline script or style element", p)
			}
			if regexp.MustCompile(`\son[a-z]+=`).MatchString(body) {
				t.Errorf("%s has an inline event handler", p)
			}
		}
	}
}

func TestNotFoundAndMethods(t *testing.T) {
	for _, p := range []string{"/ui/nope.js", "/ui/", "/ui", "/index.html", "/ui/../web.go", "/api/v1/projects"} {
		w := serve(t, "GET", p)
		if w.Code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", p, w.Code)
		}
		checkSecurityHeaders(t, p, w)
	}
	if w := serve(t, "POST", "/"); w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST / = %d, Allow %q", w.Code, w.Header().Get("Allow"))
	}
	if w := serve(t, "HEAD", "/ui/app.css"); w.Code != http.StatusOK || w.Body.Len() != 0 {
		t.Errorf("HEAD /ui/app.css = %d with %d bytes", w.Code, w.Body.Len())
	}
}

func TestETagRevalidation(t *testing.T) {
	first := serve(t, "GET", "/ui/app.js")
	etag := first.Header().Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	if w := serve(t, "GET", "/ui/app.js", "If-None-Match", etag); w.Code != http.StatusNotModified || w.Body.Len() != 0 {
		t.Errorf("revalidation = %d with %d bytes, want 304", w.Code, w.Body.Len())
	}
	if w := serve(t, "GET", "/ui/app.js", "If-None-Match", `"other"`); w.Code != http.StatusOK {
		t.Errorf("a stale ETag = %d, want 200", w.Code)
	}
}

func TestGzip(t *testing.T) {
	plain := serve(t, "GET", "/ui/app.js")
	zipped := serve(t, "GET", "/ui/app.js", "Accept-Encoding", "br, gzip;q=0.8")
	if zipped.Header().Get("Content-Encoding") != "gzip" || zipped.Body.Len() >= plain.Body.Len() {
		t.Fatalf("gzip: Content-Encoding %q, %d bytes (plain %d)", zipped.Header().Get("Content-Encoding"), zipped.Body.Len(), plain.Body.Len())
	}
	zr, err := gzip.NewReader(zipped.Body)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(got, plain.Body.Bytes()) {
		t.Errorf("the gzipped body is not the file (%v)", err)
	}
	if zipped.Header().Get("ETag") == plain.Header().Get("ETag") || zipped.Header().Get("Vary") != "Accept-Encoding" || plain.Header().Get("Vary") != "Accept-Encoding" {
		t.Errorf("ETags %q and %q, Vary %q and %q", zipped.Header().Get("ETag"), plain.Header().Get("ETag"), zipped.Header().Get("Vary"), plain.Header().Get("Vary"))
	}
	checkSecurityHeaders(t, "/ui/app.js (gzip)", zipped)
	if w := serve(t, "GET", "/ui/app.js", "Accept-Encoding", "gzip;q=0"); w.Header().Get("Content-Encoding") != "" {
		t.Errorf("gzip;q=0 got %q", w.Header().Get("Content-Encoding"))
	}
	if w := serve(t, "GET", "/ui/app.js", "Accept-Encoding", "gzip", "If-None-Match", zipped.Header().Get("ETag")); w.Code != http.StatusNotModified {
		t.Errorf("revalidating the gzipped file = %d", w.Code)
	}
}

// TestModulesLoaded: index.html preloads every module the first page
// needs, so the browser fetches them at once instead of one import after
// another; the others (the service page, the apply box, Supabase sign-in,
// the npm bundles) are imported on demand by a module, with what they
// import, and none of the first page's modules imports them statically (a
// module nobody loads is noticed too).
func TestModulesLoaded(t *testing.T) {
	index := serve(t, "GET", "/").Body.String()
	dynamic := regexp.MustCompile(`import\('\./([a-z/]+\.js)'\)`)
	static := regexp.MustCompile(`from '\./([a-z/]+\.js)'`)
	onDemand := map[string]bool{}
	for p := range Assets() {
		if !strings.HasSuffix(p, ".js") || strings.HasPrefix(p, "/ui/lib/") {
			continue
		}
		for _, m := range dynamic.FindAllStringSubmatch(serve(t, "GET", p).Body.String(), -1) {
			onDemand[m[1]] = true
		}
	}
	for name := range onDemand {
		if strings.HasPrefix(name, "lib/") {
			continue
		}
		for _, dep := range static.FindAllStringSubmatch(serve(t, "GET", "/ui/"+name).Body.String(), -1) {
			if !strings.Contains(index, `href="ui/`+dep[1]+`"`) {
				onDemand[dep[1]] = true
			}
		}
	}
	for _, want := range []string{"service.js", "apply.js", "auth.js", "lib/supabase.js", "lib/xterm.js"} {
		if !onDemand[want] {
			t.Errorf("%s is not imported on demand", want)
		}
	}
	for p := range Assets() {
		name := strings.TrimPrefix(p, "/ui/")
		if !strings.HasSuffix(p, ".js") || name == "app.js" {
			continue
		}
		preloaded := strings.Contains(index, `<link rel="modulepreload" href="ui/`+name+`">`)
		if preloaded == onDemand[name] {
			t.Errorf("%s: preloaded by index.html %v, loaded on demand %v: want one of them", p, preloaded, onDemand[name])
		}
		if preloaded || name == "app.js" {
			for _, dep := range static.FindAllStringSubmatch(serve(t, "GET", p).Body.String(), -1) {
				if onDemand[dep[1]] {
					t.Errorf("%s, on the first page, imports %s statically", p, dep[1])
				}
			}
		}
	}
}

// TestConfig: what the page is told (config.json) and the policy that goes
// with it: without Supabase nothing beyond 'self'; with it, its Auth API
// only. A configuration that would leave the page unable to sign in, or
// write a bad header, is refused.
func TestConfig(t *testing.T) {
	get := func(h http.Handler, path string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		return w
	}
	plain := get(Handler(), "/ui/config.json")
	if plain.Code != 200 || strings.TrimSpace(plain.Body.String()) != `{"supabase":null}` || plain.Header().Get("Content-Type") != "application/json" {
		t.Errorf("config.json without Supabase: %d %q %q", plain.Code, plain.Body.String(), plain.Header().Get("Content-Type"))
	}
	checkSecurityHeaders(t, "/ui/config.json", plain)

	key := "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.c2lnbmF0dXJl"
	h, err := New(Config{SupabaseURL: "https://abcd.supabase.co/", SupabaseAnonKey: key})
	if err != nil {
		t.Fatal(err)
	}
	w := get(h, "/ui/config.json")
	var cfg struct {
		Supabase struct{ URL, AnonKey string }
	}
	if err := json.Unmarshal(w.Body.Bytes(), &cfg); err != nil || cfg.Supabase.URL != "https://abcd.supabase.co" || cfg.Supabase.AnonKey != key {
		t.Errorf("config.json with Supabase: %s (%v)", w.Body.String(), err)
	}
	want := strings.Replace(ContentSecurityPolicy, "connect-src 'self';", "connect-src 'self' https://abcd.supabase.co/auth/v1/;", 1)
	for _, p := range []string{"/", "/ui/app.js", "/ui/config.json", "/ui/nope"} {
		if got := get(h, p).Header().Get("Content-Security-Policy"); got != want {
			t.Errorf("%s: CSP %q, want %q", p, got, want)
		}
	}
	if w := get(h, "/"); w.Code != 200 || !strings.Contains(w.Body.String(), "ui/app.js") {
		t.Errorf("GET / with Supabase: %d", w.Code)
	}
	self, err := Config{SupabaseURL: "http://127.0.0.1:54321/supabase", SupabaseAnonKey: key}.ContentSecurityPolicy()
	if err != nil || !strings.Contains(self, "connect-src 'self' http://127.0.0.1:54321/supabase/auth/v1/;") {
		t.Errorf("a self-hosted Supabase under a path: %q %v", self, err)
	}

	for name, c := range map[string]Config{
		"URL without key":    {SupabaseURL: "https://abcd.supabase.co"},
		"key without URL":    {SupabaseAnonKey: key},
		"not http":           {SupabaseURL: "ftp://abcd.supabase.co", SupabaseAnonKey: key},
		"relative":           {SupabaseURL: "abcd.supabase.co", SupabaseAnonKey: key},
		"query":              {SupabaseURL: "https://abcd.supabase.co/?x=1", SupabaseAnonKey: key},
		"user info":          {SupabaseURL: "https://u:p@abcd.supabase.co", SupabaseAnonKey: key},
		"ends the directive": {SupabaseURL: "https://abcd.supabase.co/a;script-src", SupabaseAnonKey: key},
		"IPv6":               {SupabaseURL: "http://[::1]:54321", SupabaseAnonKey: key},
		"key with a space":   {SupabaseURL: "https://abcd.supabase.co", SupabaseAnonKey: "anon key with spaces"},
		"key with a quote":   {SupabaseURL: "https://abcd.supabase.co", SupabaseAnonKey: `anon"keyanonkeyanonkey`},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), key) {
			t.Errorf("%s: the error repeats the key: %v", name, err)
		}
	}
}

// TestBundles: the npm bundles (web/build.sh) are served like the page's
// files and preloaded by nothing. `go test` alone may run without them (a
// fresh clone before make ui); in CI, which runs make test, they must be
// there.
func TestBundles(t *testing.T) {
	if err := Built(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	index := serve(t, "GET", "/").Body.String()
	for _, p := range Bundles {
		w := serve(t, "GET", p, "Accept-Encoding", "gzip")
		want := "text/javascript; charset=utf-8"
		if strings.HasSuffix(p, ".css") {
			want = "text/css; charset=utf-8"
		}
		if w.Code != 200 || w.Header().Get("Content-Type") != want || w.Header().Get("Content-Encoding") != "gzip" {
			t.Errorf("GET %s = %d %q %q", p, w.Code, w.Header().Get("Content-Type"), w.Header().Get("Content-Encoding"))
		}
		if strings.Contains(index, strings.TrimPrefix(p, "/")) {
			t.Errorf("index.html names %s: it is for the pages that need it", p)
		}
	}
}
