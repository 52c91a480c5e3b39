package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/panelx/panelx/internal/testenv"
	"github.com/panelx/panelx/internal/testimage"
	"github.com/panelx/panelx/web"
)

// TestDashboard drives the web dashboard in a real Chromium (headless):
// sign-in (a refused token shows the API's reason), the overview and a
// project page updated live from the watch stream while the CLI applies a
// project — the service reaches Ready, then Degraded with the registry's
// message, without a reload; a second user sees none of the first user's
// projects; no console error or exception on any page. Each page is saved
// as a PNG in $PANELX_TEST_ARTIFACTS (default: a temporary directory).
func TestDashboard(t *testing.T) {
	chromium := findChromium(t)
	e, dbURL, aliceToken := newDashboardEnv(t)
	bobToken := createToken(t, e.bin, dbURL, "bob")
	artifacts := os.Getenv("PANELX_TEST_ARTIFACTS")
	if artifacts == "" {
		artifacts = t.TempDir()
	} else if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", artifacts)

	// The server answers the page, its files and the API side by side.
	resp, err := http.Get(e.base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Security-Policy") != web.ContentSecurityPolicy {
		t.Fatalf("GET / = %d, CSP %q", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}
	for path, want := range map[string]int{"/healthz": 200, "/api/v1/nope": 404, "/api/v1/projects": 401, "/ui/nope.js": 404} {
		resp, err := http.Get(e.base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, want)
		}
		if strings.HasPrefix(path, "/api/") && resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("GET %s: %q, want a problem document (the dashboard must not shadow the API)", path, resp.Header.Get("Content-Type"))
		}
	}

	reg := testimage.StartRegistry(t, testimage.RegistryOptions{})
	img := reg.Push(t, "dash/web:1", testimage.Image(t, testimage.ImageOptions{Version: "1"}))
	project := uniqueName("dash")

	b := newBrowser(t, chromium, artifacts)
	alice := b.tab(t, "alice")

	// Sign-in: a token the API refuses shows the API's reason.
	alice.step("sign-in page")
	alice.do(t, chromedp.Navigate(e.base+"/"))
	alice.waitJS(t, `!!document.querySelector('#signin input#token')`)
	alice.shot(t, "01-signin")
	alice.step("refused token", "401")
	reason := apiRefusal(t, e.base, "pnx_not-a-real-token")
	alice.do(t, chromedp.SendKeys(chromedp.ID("token"), "pnx_not-a-real-token\n"))
	alice.waitJS(t, `!document.querySelector('#signin-error').hidden`)
	if got := alice.text(t, "#signin-error"); !strings.Contains(got, reason) || !strings.Contains(got, "401") {
		t.Errorf("refused sign-in shows %q, want the API's reason %q", got, reason)
	}
	alice.shot(t, "02-signin-refused")

	alice.step("sign in")
	alice.do(t, chromedp.Clear(chromedp.ID("token")), chromedp.SendKeys(chromedp.ID("token"), aliceToken+"\n"))
	alice.waitJS(t, `document.querySelector('h1')?.textContent === 'Projects' && document.querySelector('#live')?.textContent === 'Live'
		&& !document.querySelector('.empty').hidden`)
	if got := alice.eval(t, `location.href + ' ' + document.title`); strings.Contains(got, aliceToken) {
		t.Errorf("the token is in the URL or title: %s", got)
	}
	if got := alice.eval(t, `sessionStorage.getItem('panelx.token') === `+jsString(aliceToken)+` ? 'kept' : 'missing'`); got != "kept" {
		t.Errorf("token in sessionStorage: %s", got)
	}
	if got := alice.text(t, "#who"); got != "alice" {
		t.Errorf("signed in as %q, want alice", got)
	}
	alice.shot(t, "03-overview-empty")
	// A reload would drop this, and record every state and generation the
	// page shows from here on.
	alice.eval(t, `window.__noReload = 'still here';
		window.__seen = [];
		new MutationObserver(() => {
			for (const el of document.querySelectorAll('[data-service] .state, .applying')) {
				const v = el.matches('.applying') ? el.textContent : el.closest('[data-service]').dataset.service + ':' + el.dataset.state;
				if (window.__seen[window.__seen.length - 1] !== v && !window.__seen.includes(v)) window.__seen.push(v);
			}
		}).observe(document.getElementById('main'), {subtree: true, childList: true, characterData: true}); 'ok'`)

	// The CLI applies a project while the overview watches: it appears, and
	// its service goes to Ready on the project page, without a reload.
	alice.step("apply and watch")
	manifests := e.write("dash.yaml", fmt.Sprintf(`apiVersion: panelx.dev/v1
kind: Project
metadata: {name: %[1]s}
spec: {displayName: Dashboard demo}
---
apiVersion: panelx.dev/v1
kind: Service
metadata: {project: %[1]s, name: web}
spec:
  image: %[2]s
  replicas: 2
  env: [{name: LISTEN_DELAY, value: 3s}]
  healthcheck: {command: [/testapp, -check], interval: 1s}
`, project, img))
	applied := make(chan string, 1)
	go func() {
		cmd := exec.Command(e.bin, "apply", "-f", manifests, "--wait", "--timeout", "120s")
		cmd.Env = append(os.Environ(), e.env...)
		out, err := cmd.CombinedOutput()
		applied <- fmt.Sprintf("err=%v\n%s", err, out)
	}()
	link := `a.project-link[href="#/projects/` + project + `"]`
	alice.waitJS(t, `!!document.querySelector('`+link+`')`)
	alice.shot(t, "04-overview-applying")
	// By keyboard: Tab to the project's link, Enter.
	alice.eval(t, `document.activeElement?.blur(); 'ok'`)
	for i := 0; alice.eval(t, `document.activeElement?.matches('`+link+`') ? 'yes' : 'no'`) != "yes"; i++ {
		if i == 10 {
			t.Fatalf("ten Tabs did not reach the project's link (focus on %s)", alice.eval(t, `document.activeElement?.outerHTML.slice(0, 80) ?? 'nothing'`))
		}
		alice.do(t, chromedp.KeyEvent(kb.Tab))
	}
	alice.do(t, chromedp.KeyEvent(kb.Enter))
	alice.waitJS(t, `document.querySelector('[data-service="web"] .state')?.dataset.state === 'Ready'`, 150*time.Second)
	select {
	case out := <-applied:
		if !strings.HasPrefix(out, "err=<nil>") {
			t.Fatalf("apply --wait: %s", out)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("apply --wait did not return after the page showed Ready")
	}
	card := alice.text(t, `[data-service="web"]`)
	for _, want := range []string{"Ready", "Running", "2/2 ready", img, "AllReplicasReady", "1, applied"} {
		if !strings.Contains(card, want) {
			t.Errorf("the service card lacks %q:\n%s", want, card)
		}
	}
	if n := alice.eval(t, `String(document.querySelectorAll('[data-service="web"] time[title]').length)`); n == "0" {
		t.Errorf("no condition time with its absolute time in a title")
	}
	seen := alice.seen(t)
	if i := slices.Index(seen, "web:Ready"); i < 1 || !slices.Contains(seen[:i], "web:Progressing") {
		t.Errorf("the page did not show the service progressing, then Ready, live: %q", seen)
	}
	alice.shot(t, "05-project-ready")

	// A missing image: Degraded with the registry's reason, within 2 s of the
	// controller writing it, and the page shows the new generation applying.
	alice.step("missing image")
	broken := e.write("broken.yaml", strings.Replace(mustRead(t, manifests), img, reg.Host()+"/dash/missing:1", 1))
	start := time.Now()
	e.mustRun("apply", "-f", broken)
	alice.waitJS(t, `document.querySelector('[data-service="web"] .state')?.dataset.state === 'Degraded'`, 90*time.Second)
	t.Logf("Degraded shown %v after apply returned", time.Since(start).Round(time.Millisecond))
	card = alice.text(t, `[data-service="web"]`)
	for _, want := range []string{"Degraded", "dash/missing"} {
		if !strings.Contains(card, want) {
			t.Errorf("the degraded card lacks %q:\n%s", want, card)
		}
	}
	seen = alice.seen(t)
	t.Logf("states and generations the page showed, in order: %q", seen)
	alice.shot(t, "06-project-degraded")
	// "applying generation N…" while the controller has not caught up: the
	// page's own card for such a status (the live window can be shorter
	// than a frame).
	applying := alice.eval(t, `import(new URL('ui/app.js', document.baseURI)).then((m) => m.serviceCard({
		metadata: {name: 'x', project: 'p', generation: 7, resourceVersion: '1'}, spec: {image: 'i', replicas: 2},
		status: {observedGeneration: 6, phase: 'Progressing', readyReplicas: 1,
			conditions: [{type: 'Ready', status: 'False', reason: 'NotReady', message: '1/2 replicas ready', lastTransitionTime: new Date(Date.now() - 120000).toISOString()}]}}).textContent)`)
	for _, want := range []string{"applying generation 7…", "1/2 ready", "NotReady", "1/2 replicas ready", "2 min"} {
		if !strings.Contains(applying, want) {
			t.Errorf("a card of a status behind its spec lacks %q: %q", want, applying)
		}
	}

	// Phone width: the same pages, readable.
	alice.step("phone")
	alice.do(t, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	alice.shot(t, "07-project-phone")
	alice.do(t, chromedp.Click(chromedp.CSS(`.crumbs a[href="#/"]`)))
	alice.waitJS(t, `document.querySelector('h1')?.textContent === 'Projects' && !!document.querySelector('`+link+`')`)
	alice.shot(t, "08-overview-phone")
	alice.do(t, chromedp.EmulateViewport(1280, 800))
	alice.waitJS(t, `document.querySelectorAll('.events li.warning').length > 0`, 30*time.Second)
	if got := alice.text(t, ".events"); !strings.Contains(got, "dash/missing") || !strings.Contains(got, project) {
		t.Errorf("the newest warnings do not show the pull failure of %s:\n%s", project, got)
	}
	if got := alice.text(t, link); !strings.Contains(got, "0 Ready") || !strings.Contains(got, "1 Degraded") || !strings.Contains(got, "Dashboard demo") {
		t.Errorf("the overview's row of the project: %q", got)
	}
	alice.shot(t, "09-overview")
	if got := alice.eval(t, `String(window.__noReload)`); got != "still here" {
		t.Errorf("the page was reloaded (marker %q)", got)
	}

	// Another user sees none of it: not the project, not its name.
	bob := b.tab(t, "bob")
	bob.step("bob signs in")
	bob.do(t, chromedp.Navigate(e.base+"/"))
	bob.waitJS(t, `!!document.querySelector('#signin input#token')`)
	bob.do(t, chromedp.SendKeys(chromedp.ID("token"), bobToken+"\n"))
	bob.waitJS(t, `document.querySelector('h1')?.textContent === 'Projects' && document.querySelector('#live')?.textContent === 'Live'
		&& !document.querySelector('.empty').hidden && document.querySelector('section.panel p')?.textContent !== 'Loading…'`)
	for _, secret := range []string{project, "Dashboard demo", "dash/missing"} {
		if body := bob.text(t, "body"); strings.Contains(body, secret) {
			t.Errorf("bob's overview shows %q:\n%s", secret, body)
		}
	}
	if got := bob.text(t, "#who"); got != "bob" {
		t.Errorf("bob's tab is signed in as %q", got)
	}
	bob.shot(t, "10-overview-bob")
	bob.step("bob opens alice's project", "404")
	bob.eval(t, `location.hash = '#/projects/`+project+`'; 'ok'`)
	bob.waitJS(t, `!!document.querySelector('.problem')`)
	if got := bob.text(t, ".problem"); !strings.Contains(got, "404") || !strings.Contains(got, "not found") {
		t.Errorf("bob on alice's project sees %q, want the API's 404", got)
	}
	for _, secret := range []string{"Dashboard demo", "dash/", "Ready", "Degraded"} {
		if body := bob.text(t, "main"); strings.Contains(body, secret) {
			t.Errorf("bob's page of alice's project shows %q:\n%s", secret, body)
		}
	}
	bob.shot(t, "11-project-bob-refused")

	// Behind a reverse proxy that serves PanelX under /panel/: every URL of
	// the page is relative, the watch stream included.
	bob.step("behind a path prefix")
	target, _ := url.Parse(e.base)
	prefixed := httptest.NewServer(http.StripPrefix("/panel", httputil.NewSingleHostReverseProxy(target)))
	t.Cleanup(func() { prefixed.CloseClientConnections(); prefixed.Close() })
	bob.do(t, chromedp.Navigate(prefixed.URL+"/panel/"))
	bob.waitJS(t, `!!document.querySelector('#signin input#token')`)
	bob.do(t, chromedp.SendKeys(chromedp.ID("token"), bobToken+"\n"))
	bob.waitJS(t, `document.querySelector('h1')?.textContent === 'Projects' && document.querySelector('#live')?.textContent === 'Live'
		&& !document.querySelector('.empty').hidden`)
	if got := bob.eval(t, `performance.getEntriesByType('resource').map((r) => new URL(r.name).pathname).filter((p) => !p.startsWith('/panel/')).join(' ')`); got != "" {
		t.Errorf("behind /panel/ the page requested %s", got)
	}
	bob.do(t, chromedp.Navigate("about:blank")) // ends its watch stream through the proxy

	// Sign out: the token leaves the tab.
	alice.step("sign out")
	alice.do(t, chromedp.Click(chromedp.ID("signout")))
	alice.waitJS(t, `!!document.querySelector('#signin input#token')`)
	if got := alice.eval(t, `String(sessionStorage.getItem('panelx.token'))`); got != "null" {
		t.Errorf("after sign-out the token is still stored: %q", got)
	}
	alice.shot(t, "12-signed-out")

	// First load of the overview, signed in, in a fresh browser context
	// (empty cache): bytes and time to the first status shown.
	first := b.tab(t, "first-load")
	first.step("first load")
	first.do(t, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
			Source: `try { if (location.origin === ` + jsString(e.base) + `) sessionStorage.setItem('panelx.token', ` + jsString(aliceToken) + `); } catch (e) {}`})
		return err
	}))
	first.do(t, chromedp.Navigate(e.base+"/"))
	first.waitJS(t, `performance.getEntriesByName('panelx:first-status').length > 0 && !!document.querySelector('`+link+`')`)
	var load struct {
		Nav         float64 `json:"nav"`
		FirstStatus float64 `json:"firstStatus"`
		DCL         float64 `json:"dcl"`
		Resources   []struct {
			Name     string  `json:"name"`
			Transfer float64 `json:"transfer"`
			Body     float64 `json:"body"`
		} `json:"resources"`
	}
	raw := first.eval(t, `JSON.stringify((() => {
		const nav = performance.getEntriesByType('navigation')[0];
		return {nav: nav.transferSize, dcl: nav.domContentLoadedEventEnd,
			firstStatus: performance.getEntriesByName('panelx:first-status')[0].startTime,
			resources: performance.getEntriesByType('resource').map((r) => ({name: r.name, transfer: r.transferSize, body: r.encodedBodySize}))};
	})())`)
	if err := json.Unmarshal([]byte(raw), &load); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	assets, total := 0.0, load.Nav
	for _, r := range load.Resources {
		total += r.Transfer
		if strings.Contains(r.Name, "/ui/") {
			assets += r.Transfer
		}
	}
	embedded, bundles := 0, 0
	for p, n := range web.Assets() {
		if strings.HasPrefix(p, "/ui/lib/") {
			bundles += n
		} else {
			embedded += n
		}
	}
	for _, r := range load.Resources {
		if strings.Contains(r.Name, "/ui/lib/") || strings.HasSuffix(r.Name, "/ui/auth.js") {
			t.Errorf("the overview's first load fetched %s", r.Name)
		}
	}
	t.Logf("first load of the overview: %.0f bytes transferred (page %.0f + assets %.0f + API %.0f; the page's files are %d bytes, the npm bundles, not loaded, %d), DOMContentLoaded %.0f ms, first status shown at %.0f ms",
		total, load.Nav, assets, total-load.Nav-assets, embedded, bundles, load.DCL, load.FirstStatus)
	if load.FirstStatus > 5000 {
		t.Errorf("the first status took %.0f ms", load.FirstStatus)
	}
	first.shot(t, "13-overview-first-load")

	b.checkConsole(t)
}

// newDashboardEnv is newCLIEnv with the database URL (to make tokens for
// other users) and the first user's token.
func newDashboardEnv(t *testing.T) (*cliEnv, string, string) {
	t.Helper()
	e := newCLIEnv(t)
	return e, e.dbURL, e.token
}

func createToken(t testing.TB, bin, dbURL, user string) string {
	t.Helper()
	out, err := exec.Command(bin, "token", "create", "--user", user, "--database-url", dbURL).Output()
	if err != nil {
		t.Fatalf("token create --user %s: %v", user, err)
	}
	return strings.TrimSpace(string(out))
}

// apiRefusal is the detail of the API's answer to a token it refuses.
func apiRefusal(t *testing.T, base, token string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/api/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p struct{ Detail string }
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || resp.StatusCode != 401 || p.Detail == "" {
		t.Fatalf("GET /api/v1/me with a bad token: %d %v %+v", resp.StatusCode, err, p)
	}
	return p.Detail
}

// findChromium: Debian's chromium (scripts/services.sh installs it). In CI
// its absence fails the test.
func findChromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.Missing(t, "no chromium on PATH (apt-get install chromium, or bash scripts/services.sh)")
	return ""
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// browser is one headless Chromium; each tab has its own browser context
// (storage, cache) and its console is recorded, labelled with the test's
// step at the time.
type browser struct {
	ctx       context.Context
	artifacts string
	mu        sync.Mutex
	messages  []consoleEntry
}

type consoleEntry struct {
	tab, step string
	allowed   []string // network errors the step expects (a refused token: "401")
	msg       chromedp.ConsoleMessage
}

func newBrowser(t testing.TB, chromium, artifacts string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox, // CI runs as root
		chromedp.Headless,
		chromedp.WindowSize(1280, 800),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start %s: %v", chromium, err)
	}
	return &browser{ctx: ctx, artifacts: artifacts}
}

type tab struct {
	b       *browser
	name    string
	ctx     context.Context
	mu      sync.Mutex
	current string
	allowed []string
}

func (b *browser) tab(t testing.TB, name string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	tb := &tab{b: b, name: name, ctx: ctx}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			tb.mu.Lock()
			entry := consoleEntry{tab: name, step: tb.current, allowed: tb.allowed, msg: m}
			tb.mu.Unlock()
			b.mu.Lock()
			b.messages = append(b.messages, entry)
			b.mu.Unlock()
		}
	}()
	tb.do(t, chromedp.EmulateViewport(1280, 800))
	return tb
}

// step names what the tab does now; allowed are the HTTP statuses the API
// is expected to refuse with meanwhile (the browser logs those requests).
func (tb *tab) step(name string, allowed ...string) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.current, tb.allowed = name, allowed
}

func (tb *tab) do(t testing.TB, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v\npage: %s", tb.name, err, tb.pageText())
	}
}

func (tb *tab) eval(t testing.TB, js string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: evaluate %s: %v", tb.name, js, err)
	}
	return v
}

func (tb *tab) text(t testing.TB, selector string) string {
	t.Helper()
	return tb.eval(t, `(document.querySelector(`+jsString(selector)+`)?.innerText ?? '(no '+`+jsString(selector)+`+')')`)
}

func (tb *tab) pageText() string {
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	v, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
	return v
}

// waitJS waits until the expression is true (default: 30 s).
func (tb *tab) waitJS(t testing.TB, js string, timeout ...time.Duration) {
	t.Helper()
	limit := 30 * time.Second
	if len(timeout) > 0 {
		limit = timeout[0]
	}
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`Boolean(`+js+`)`))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			tb.shot(t, "timeout-"+tb.name)
			t.Fatalf("%s: waited %v for %s (%v)\npage:\n%s", tb.name, limit, js, err, tb.pageText())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// seen is what the page's MutationObserver recorded: service states and
// "applying generation" texts, in the order shown.
func (tb *tab) seen(t testing.TB) []string {
	t.Helper()
	var out []string
	if err := json.Unmarshal([]byte(tb.eval(t, `JSON.stringify(window.__seen || [])`)), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func (tb *tab) shot(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	time.Sleep(150 * time.Millisecond) // the last render's frame
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(tb.b.artifacts, name+".png"), buf, 0o644); err != nil {
		t.Error(err)
	}
}

// shotOf saves a screenshot of one element (a panel at phone width).
func (tb *tab) shotOf(t testing.TB, selector, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	time.Sleep(150 * time.Millisecond)
	buf, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(selector)))
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(tb.b.artifacts, name+".png"), buf, 0o644); err != nil {
		t.Error(err)
	}
}

// checkConsole fails on any console error, warning or uncaught exception,
// except the browser's log line for a request the step expected the API to
// refuse.
func (b *browser) checkConsole(t testing.TB) {
	t.Helper()
	time.Sleep(200 * time.Millisecond)
	b.mu.Lock()
	defer b.mu.Unlock()
	expected := 0
	for _, e := range b.messages {
		m := e.msg
		if m.Type != chromedp.ConsoleError && m.Type != chromedp.ConsoleException && m.Type != chromedp.ConsoleWarning {
			continue
		}
		if m.Source == "network" && slices.ContainsFunc(e.allowed, func(code string) bool { return strings.Contains(m.Text, "status of "+code) }) {
			expected++
			continue
		}
		// Chromium aborts requests in flight when the host's interfaces
		// change, which Docker does whenever another test makes or removes
		// a network: that is the machine, not the page.
		if m.Source == "network" && strings.Contains(m.Text, "net::ERR_NETWORK_CHANGED") {
			t.Logf("tab %s during %q: %s (the host's network changed)", e.tab, e.step, m.Text)
			continue
		}
		t.Errorf("console %s in tab %s during %q: %s (%s:%d)", m.Type, e.tab, e.step, m.Text, m.URL, m.Line+1)
	}
	t.Logf("%d console messages, %d of them the expected refusals", len(b.messages), expected)
}
