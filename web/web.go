// Package web is PanelX's dashboard: a few static files (HTML, one CSS
// file, JavaScript modules) embedded in the binary and served by
// `panelx server` at / and /ui/. There is no build step and no Node.js:
// the files in ui/ are what the browser runs. The page holds no data; every
// data call it makes goes to the authenticated API with the token the user
// signs in with (kept in sessionStorage, never in a URL).
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed ui
var files embed.FS

// ContentSecurityPolicy is sent with every response of the dashboard: no
// inline script or style, nothing from another origin, no framing.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// contentTypes are set by extension, not from the system's MIME tables
// (which differ between machines, .js included).
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
	".json": "application/json",
}

type asset struct {
	body  []byte
	ctype string
	etag  string
	// gz is the body gzipped, when that is smaller; served to clients
	// that accept it, under an ETag of its own.
	gz     []byte
	gzEtag string
}

// Assets lists the embedded files by the path they are served at (/ui/…),
// with their sizes in bytes.
func Assets() map[string]int {
	out := map[string]int{}
	for p, a := range load() {
		out[p] = len(a.body)
	}
	return out
}

func load() map[string]asset {
	out := map[string]asset{}
	err := fs.WalkDir(files, "ui", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		ctype, ok := contentTypes[path.Ext(p)]
		if !ok {
			ctype = "application/octet-stream"
		}
		sum := sha256.Sum256(body)
		a := asset{body: body, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = zw.Write(body)
		_ = zw.Close()
		if buf.Len() < len(body)*9/10 {
			a.gz, a.gzEtag = buf.Bytes(), `"`+hex.EncodeToString(sum[:12])+`-gz"`
		}
		out["/"+p] = a
		return nil
	})
	if err != nil {
		panic("web: read the embedded files: " + err.Error())
	}
	return out
}

// Handler serves the dashboard: / is the page, /ui/<file> its files;
// anything else is 404. Mount it at / and /ui/* (the API routes stay the
// API's). Every response carries the security headers; files are revalidated
// on each load (no-cache, with an ETag), so a new binary's page is seen at
// once, and go gzipped (compressed once, at start) to clients that accept it.
func Handler() http.Handler {
	assets := load()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		p := r.URL.Path
		if p == "/" || p == "" {
			p = "/ui/index.html"
		}
		a, ok := assets[p]
		if !ok || strings.HasSuffix(p, "/") {
			h.Set("Cache-Control", "no-store")
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		h.Set("Content-Type", a.ctype)
		h.Set("Cache-Control", "no-cache")
		body, etag := a.body, a.etag
		if a.gz != nil {
			h.Add("Vary", "Accept-Encoding")
			if acceptsGzip(r) {
				body, etag = a.gz, a.gzEtag
				h.Set("Content-Encoding", "gzip")
			}
		}
		h.Set("ETag", etag)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	})
}

// acceptsGzip: the request's Accept-Encoding lists gzip (without q=0).
func acceptsGzip(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept-Encoding") {
		for part := range strings.SplitSeq(v, ",") {
			name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if strings.EqualFold(strings.TrimSpace(name), "gzip") {
				q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
				return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
			}
		}
	}
	return false
}
