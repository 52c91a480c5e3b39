package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/panelx/panelx/web"
)

// TestDashboardSupabase: a server configured for a Supabase project
// (--supabase-url, --supabase-anon-key, and --jwt-secret to verify its
// tokens) offers email and password on the sign-in page. In Chromium: a
// wrong password shows Supabase Auth's own message; the right one signs in
// through supabase-js, and the overview, read from the API with the
// session's access token as a Bearer JWT, shows the user's projects live;
// supabase-js refreshes the token (it lives 60 s here) and the page keeps
// going on the new one past the first token's expiry, its watch stream
// included; a second user sees none of the first user's projects, and gets
// the API's 404 for one of them; signing out ends the session on Auth too.
// The session stays in this tab (sessionStorage). See
// dashboard_supabase_auth_test.go for the real or fake Supabase Auth.
func TestDashboardSupabase(t *testing.T) {
	const tokenLife = 60 * time.Second
	chromium := findChromium(t)
	requireBundles(t)
	secret := randomHex(t, 24) // 48 bytes, as --jwt-secret wants at least 32
	sb := startSupabaseProject(t, secret, tokenLife)
	t.Logf("Supabase Auth: real %v", sb.Real)
	e := newCLIEnv(t, "PANELX_JWT_SECRET="+secret, "PANELX_SUPABASE_URL="+sb.URL, "PANELX_SUPABASE_ANON_KEY="+sb.AnonKey)
	artifacts := artifactsDir(t)
	sb.addUser(t, "alice@example.test", "correct horse battery")
	sb.addUser(t, "bob@example.test", "staple of bob")

	// What the page is told, and the policy that lets it reach Auth (and
	// only Auth) of this project.
	resp, err := http.Get(e.base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	wantCSP := strings.Replace(web.ContentSecurityPolicy, "connect-src 'self';", "connect-src 'self' "+sb.URL+"/auth/v1/;", 1)
	if got := resp.Header.Get("Content-Security-Policy"); got != wantCSP {
		t.Errorf("CSP of a Supabase server:\n%s\nwant\n%s", got, wantCSP)
	}
	var cfg struct {
		Supabase struct{ URL, AnonKey string }
	}
	if body := getJSON(t, e.base+"/ui/config.json", &cfg); cfg.Supabase.URL != sb.URL || cfg.Supabase.AnonKey != sb.AnonKey {
		t.Errorf("config.json: %s", body)
	}

	// Alice's projects, applied through the API with her access token.
	aliceJWT := sb.accessToken(t, "alice@example.test", "correct horse battery")
	projects := []string{uniqueName("sba"), uniqueName("sba")}
	for i, p := range projects {
		applyAs(t, e.base, aliceJWT, fmt.Sprintf("apiVersion: panelx.dev/v1\nkind: Project\nmetadata: {name: %s}\nspec: {displayName: Alice's shop %d}\n", p, i+1))
	}

	b := newBrowser(t, chromium, artifacts)
	alice := b.tab(t, "alice")
	auths := alice.recordAuthorizations(t, e.base)
	alice.step("sign-in page")
	alice.do(t, chromedp.Navigate(e.base+"/"))
	alice.waitJS(t, `!!document.querySelector('#signin-supabase input#sb-email') && document.activeElement?.id === 'sb-email'`)
	alice.shot(t, "40-signin-supabase")

	// A wrong password: the page shows what Supabase Auth says.
	alice.step("wrong password", "400")
	status, body := sb.passwordGrant(t, "alice@example.test", "wrong password")
	var refusal struct {
		Message string `json:"message"`
		Msg     string `json:"msg"`
	}
	_ = json.Unmarshal(body, &refusal)
	authSays := refusal.Message + refusal.Msg
	if status != 400 || authSays == "" {
		t.Fatalf("Supabase Auth's answer to a wrong password: %d %s", status, body)
	}
	alice.do(t, chromedp.SendKeys(chromedp.ID("sb-email"), "alice@example.test"),
		chromedp.SendKeys(chromedp.ID("sb-password"), "wrong password\n"))
	alice.waitJS(t, `!document.querySelector('#signin-error').hidden`)
	if got := alice.text(t, "#signin-error"); !strings.Contains(got, authSays) || !strings.Contains(got, "400") {
		t.Errorf("a wrong password shows %q, want Supabase Auth's %q", got, authSays)
	}
	alice.shot(t, "41-signin-wrong-password")

	alice.step("sign in")
	alice.do(t, chromedp.Clear(chromedp.ID("sb-password")), chromedp.SendKeys(chromedp.ID("sb-password"), "correct horse battery\n"))
	signedIn := time.Now()
	alice.waitJS(t, `document.querySelector('h1')?.textContent === 'Projects' && document.querySelector('#live')?.textContent === 'Live'
		&& document.querySelectorAll('a.project-link').length === 2`)
	for i, p := range projects {
		if got := alice.text(t, `a.project-link[href="#/projects/`+p+`"]`); !strings.Contains(got, fmt.Sprintf("Alice's shop %d", i+1)) {
			t.Errorf("alice's overview shows %q for %s", got, p)
		}
	}
	if got := alice.text(t, "#who"); got != "alice@example.test" {
		t.Errorf("signed in as %q", got)
	}
	storage := alice.eval(t, `JSON.stringify({session: Object.keys(sessionStorage), local: Object.keys(localStorage), url: location.href})`)
	if !strings.Contains(storage, `"session":["panelx.supabase"]`) || !strings.Contains(storage, `"local":[]`) || strings.Contains(storage, "eyJ") {
		t.Errorf("after sign-in: %s (want the session in this tab's sessionStorage only)", storage)
	}
	alice.shot(t, "42-overview-supabase")
	alice.eval(t, `window.__live = [];
		new MutationObserver(() => window.__live.push(document.getElementById('live').textContent))
			.observe(document.getElementById('live'), {subtree: true, childList: true, characterData: true}); 'ok'`)

	// Bob signs in as well and sees none of it.
	bob := b.tab(t, "bob")
	bob.step("bob signs in")
	bob.do(t, chromedp.Navigate(e.base+"/"))
	bob.waitJS(t, `!!document.querySelector('#signin-supabase input#sb-email')`)
	bob.do(t, chromedp.SendKeys(chromedp.ID("sb-email"), "bob@example.test"), chromedp.SendKeys(chromedp.ID("sb-password"), "staple of bob\n"))
	bob.waitJS(t, `document.querySelector('h1')?.textContent === 'Projects' && document.querySelector('#live')?.textContent === 'Live'
		&& !document.querySelector('.empty').hidden && document.querySelector('section.panel p')?.textContent !== 'Loading…'`)
	for _, secret := range append([]string{"Alice's shop", "alice@"}, projects...) {
		if body := bob.text(t, "body"); strings.Contains(body, secret) {
			t.Errorf("bob's overview shows %q:\n%s", secret, body)
		}
	}
	if got := bob.text(t, "#who"); got != "bob@example.test" {
		t.Errorf("bob's tab is signed in as %q", got)
	}
	bob.shot(t, "43-overview-bob-supabase")
	bob.step("bob opens alice's project", "404")
	bob.eval(t, `location.hash = '#/projects/`+projects[0]+`'; 'ok'`)
	bob.waitJS(t, `!!document.querySelector('.problem')`)
	if got := bob.text(t, ".problem"); !strings.Contains(got, "404") {
		t.Errorf("bob on alice's project sees %q", got)
	}
	if body := bob.text(t, "main"); strings.Contains(body, "Alice's shop") {
		t.Errorf("bob's page of alice's project shows its name:\n%s", body)
	}
	bob.step("bob signs out")
	bob.do(t, chromedp.Click(chromedp.ID("signout")))
	bob.waitJS(t, `!!document.querySelector('#signin-supabase') && sessionStorage.length === 0`)
	alice.step("phone")
	alice.do(t, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	alice.shot(t, "44-overview-supabase-phone")
	alice.do(t, chromedp.EmulateViewport(1280, 800))

	// Past the first access token's life: the page
	// runs on refreshed tokens, and its watch stream, which the server ends
	// when the token it started with expires, comes back on one.
	alice.step("refreshed")
	if wait := time.Until(signedIn.Add(tokenLife + 8*time.Second)); wait > 0 {
		t.Logf("waiting %v for the first access token to expire", wait.Round(time.Second))
		time.Sleep(wait)
	}
	late := uniqueName("sba")
	applyAs(t, e.base, sb.accessToken(t, "alice@example.test", "correct horse battery"),
		fmt.Sprintf("apiVersion: panelx.dev/v1\nkind: Project\nmetadata: {name: %s}\nspec: {displayName: Alice's late shop}\n", late))
	alice.waitJS(t, `!!document.querySelector('a.project-link[href="#/projects/`+late+`"]') && document.querySelector('#live')?.textContent === 'Live'`)
	if n := sb.count("POST /token?refresh_token"); n < 1 {
		t.Errorf("supabase-js refreshed the session %d times", n)
	}
	watch, tokens := auths()
	if len(tokens) < 2 {
		t.Errorf("the API saw %d different access tokens from alice's tab, want the first and a refreshed one", len(tokens))
	}
	if len(watch) < 2 || watch[len(watch)-1] == watch[0] {
		t.Errorf("the watch stream was opened %d times, the last with the first token %v: want it reopened with a refreshed one", len(watch), len(watch) > 0 && watch[len(watch)-1] == watch[0])
	}
	t.Logf("%d refreshes, %d access tokens used, the watch opened %d times; the live indicator showed %s",
		sb.count("POST /token?refresh_token"), len(tokens), len(watch), alice.eval(t, `JSON.stringify(window.__live)`))
	if got := alice.eval(t, `JSON.stringify(window.__live)`); strings.Contains(got, "Sign in") {
		t.Errorf("the page fell back to sign-in: %s", got)
	}

	// Signing out ends the session on Auth (its refresh token stops working).
	alice.step("sign out")
	alice.do(t, chromedp.Click(chromedp.ID("signout")))
	alice.waitJS(t, `!!document.querySelector('#signin-supabase') && sessionStorage.length === 0`)
	if n := sb.count("POST /logout?"); n != 2 {
		t.Errorf("%d logouts reached Auth, want 2 (alice and bob)", n)
	}
	alice.shot(t, "45-signed-out-supabase")
	b.checkConsole(t)
}

func getJSON(t testing.TB, u string, v any) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || json.Unmarshal(body, v) != nil {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, body)
	}
	return string(body)
}

func applyAs(t testing.TB, base, bearer, manifests string) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/api/v1/apply", strings.NewReader(manifests))
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Content-Type", "application/yaml")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("apply: %d %s", resp.StatusCode, body)
	}
}

// recordAuthorizations records the bearer tokens of the tab's requests to
// the API: those of the watch stream in order, and every distinct one.
func (tb *tab) recordAuthorizations(t testing.TB, base string) func() (watch, distinct []string) {
	t.Helper()
	var mu sync.Mutex
	var watch, distinct []string
	err := chromedp.Listen(tb.ctx, func(ev any) {
		e, ok := ev.(*network.EventRequestWillBeSent)
		if !ok || !strings.HasPrefix(e.Request.URL, base+"/api/") {
			return
		}
		v, _ := e.Request.Headers["Authorization"].(string)
		tok, ok := strings.CutPrefix(v, "Bearer ")
		if !ok {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if strings.HasPrefix(e.Request.URL, base+"/api/v1/watch") {
			watch = append(watch, tok)
		}
		if !slices.Contains(distinct, tok) {
			distinct = append(distinct, tok)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return func() ([]string, []string) {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(watch), slices.Clone(distinct)
	}
}
