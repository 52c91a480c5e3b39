package web

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
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

// TestNoInlineScriptOrStyle: the CSP forbids them, so none may be written.
func TestNoInlineScriptOrStyle(t *testing.T) {
	for p := range Assets() {
		body := serve(t, "GET", p).Body.String()
		for _, bad := range []string{"style=", "innerHTML", "javascript:", "eval(", "new Function", ".style."} {
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
// another; the pages loaded on their first visit are imported on demand by
// app.js, with what they import (and a module nobody loads is noticed).
func TestModulesLoaded(t *testing.T) {
	index := serve(t, "GET", "/").Body.String()
	app := serve(t, "GET", "/ui/app.js").Body.String()
	onDemand := map[string]bool{}
	for _, m := range regexp.MustCompile(`import\('\./([a-z]+\.js)'\)`).FindAllStringSubmatch(app, -1) {
		onDemand[m[1]] = true
		page := serve(t, "GET", "/ui/"+m[1]).Body.String()
		for _, dep := range regexp.MustCompile(`from '\./([a-z]+\.js)'`).FindAllStringSubmatch(page, -1) {
			if !strings.Contains(index, `href="ui/`+dep[1]+`"`) {
				onDemand[dep[1]] = true
			}
		}
	}
	if len(onDemand) == 0 {
		t.Error("app.js imports no page on demand")
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
	}
}
