// Package web is PanelX's dashboard: static files (HTML, one CSS file,
// JavaScript modules) embedded in the binary and served by `panelx server`
// at / and /ui/. The page's own modules in ui/ are what the browser runs, as
// written; the npm packages it uses (supabase-js for Supabase sign-in,
// xterm.js for the terminal) are bundled by web/build.sh into ui/lib/ (not in
// git: `make build` runs it first), loaded only by the pages that need them.
// The page holds no data; every data call it makes goes to the authenticated
// API with the credential the user signs in with (kept in sessionStorage,
// never in a URL).
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"
)

//go:embed ui
var files embed.FS

// ContentSecurityPolicy is sent with every response of the dashboard of a
// server without Supabase sign-in: no inline script or style, nothing from
// another origin, no framing. With Supabase sign-in, connect-src also names
// the project's Auth API (Config.ContentSecurityPolicy).
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// Bundles are the files web/build.sh makes from npm packages, under /ui/.
var Bundles = []string{"/ui/lib/supabase.js", "/ui/lib/xterm.js", "/ui/lib/xterm.css"}

// Config is what the page is told about the server (GET /ui/config.json,
// public: nothing in it is secret).
type Config struct {
	// SupabaseURL is the Supabase project's URL (https://<ref>.supabase.co,
	// or a self-hosted one); with SupabaseAnonKey the sign-in page offers
	// email and password through supabase-js, whose calls go to
	// <SupabaseURL>/auth/v1/. The API must verify the tokens it issues
	// (--jwt-secret or --jwks-url).
	SupabaseURL string
	// SupabaseAnonKey is the project's anon (publishable) key, public by
	// design: every browser of a Supabase app has it.
	SupabaseAnonKey string
}

// pageConfig is config.json.
type pageConfig struct {
	Supabase *supabaseConfig `json:"supabase"`
}

type supabaseConfig struct {
	URL     string `json:"url"`
	AnonKey string `json:"anonKey"`
}

var (
	// cspHost: a host a CSP source expression can name (no IPv6 literal,
	// nothing that would end the directive).
	cspHost = regexp.MustCompile(`^[A-Za-z0-9.-]+(:[0-9]{1,5})?$`)
	cspPath = regexp.MustCompile(`^[A-Za-z0-9._~/%-]*$`)
	anonKey = regexp.MustCompile(`^[A-Za-z0-9._-]{16,1000}$`)
)

// check validates the configuration and returns the Supabase Auth API's
// URL ("" without Supabase sign-in).
func (c Config) check() (string, error) {
	if c.SupabaseURL == "" && c.SupabaseAnonKey == "" {
		return "", nil
	}
	if c.SupabaseURL == "" || c.SupabaseAnonKey == "" {
		return "", errors.New("Supabase sign-in needs both the project's URL and its anon key")
	}
	u, err := url.Parse(c.SupabaseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" || !cspHost.MatchString(u.Host) || !cspPath.MatchString(u.EscapedPath()) {
		return "", fmt.Errorf("the Supabase URL %q is not an http(s) URL such as https://<ref>.supabase.co", c.SupabaseURL)
	}
	if !anonKey.MatchString(c.SupabaseAnonKey) {
		return "", errors.New("the Supabase anon key is not a key (its dashboard's API settings show it: a JWT or sb_publishable_…)")
	}
	return strings.TrimSuffix(u.Scheme+"://"+u.Host+u.EscapedPath(), "/") + "/auth/v1/", nil
}

// ContentSecurityPolicy is the policy the dashboard sends with this
// configuration: with Supabase sign-in, connect-src also allows the
// project's Auth API (<url>/auth/v1/), nothing else of it.
func (c Config) ContentSecurityPolicy() (string, error) {
	authURL, err := c.check()
	if err != nil || authURL == "" {
		return ContentSecurityPolicy, err
	}
	return strings.Replace(ContentSecurityPolicy, "connect-src 'self';", "connect-src 'self' "+authURL+";", 1), nil
}

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
	for p, a := range embedded() {
		out[p] = len(a.body)
	}
	return out
}

// Built reports whether the npm bundles are in the binary: a binary built
// with `go build` alone, without web/build.sh, has none, and its terminal
// and Supabase sign-in say so.
func Built() error {
	assets := embedded()
	for _, p := range Bundles {
		if _, ok := assets[p]; !ok {
			return fmt.Errorf("web: %s is not in this binary: build the dashboard's npm bundles first (make ui, or make build)", p)
		}
	}
	return nil
}

func newAsset(body []byte, ctype string) asset {
	sum := sha256.Sum256(body)
	a := asset{body: body, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write(body)
	_ = zw.Close()
	if buf.Len() < len(body)*9/10 {
		a.gz, a.gzEtag = buf.Bytes(), `"`+hex.EncodeToString(sum[:12])+`-gz"`
	}
	return a
}

// embedded reads and gzips the files once per process (the bundles take a
// moment; every test server of the process shares the result).
var embedded = sync.OnceValue(func() map[string]asset {
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
		out["/"+p] = newAsset(body, ctype)
		return nil
	})
	if err != nil {
		panic("web: read the embedded files: " + err.Error())
	}
	return out
})

// Handler serves the dashboard of a server without Supabase sign-in (see
// New).
func Handler() http.Handler {
	h, err := New(Config{})
	if err != nil {
		panic(err) // the zero Config is valid
	}
	return h
}

// New serves the dashboard: / is the page, /ui/<file> its files,
// /ui/config.json what the page is told of cfg; anything else is 404.
// The API's router hands it / and /ui/… (apiserver.Options.Dashboard). Every response
// carries the security headers; files are revalidated on each load
// (no-cache, with an ETag), so a new binary's page is seen at once, and go
// gzipped (compressed once, at start) to clients that accept it.
func New(cfg Config) (http.Handler, error) {
	csp, err := cfg.ContentSecurityPolicy()
	if err != nil {
		return nil, err
	}
	pc := pageConfig{}
	if cfg.SupabaseURL != "" {
		pc.Supabase = &supabaseConfig{URL: strings.TrimSuffix(cfg.SupabaseURL, "/"), AnonKey: cfg.SupabaseAnonKey}
	}
	body, err := json.Marshal(pc)
	if err != nil {
		return nil, err
	}
	assets := map[string]asset{"/ui/config.json": newAsset(body, contentTypes[".json"])}
	for p, a := range embedded() {
		assets[p] = a
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
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
	}), nil
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
