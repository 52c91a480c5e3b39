package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"

	"github.com/panelx/panelx/internal/testenv"
)

// The Supabase side of the dashboard's Supabase sign-in test: a project's
// URL whose /auth/v1/ is Supabase Auth (GoTrue), behind a gateway that does
// what Supabase's API gateway does for it (the anon key as the apikey
// header, CORS for the browser, /auth/v1 stripped).
//
// Supabase Auth itself is the real one when PANELX_TEST_SUPABASE_AUTH names
// its binary (github.com/supabase/auth, built from source: `go build .` in
// a checkout), run against a fresh database of the test PostgreSQL
// (`auth migrate`, then `auth serve`). The Go module proxy does not serve
// github.com/supabase/auth (403 for every version: its v2 tags lack a /v2
// module path), so CI cannot build it; without the variable the test runs
// fakeGoTrue below, which answers the four calls supabase-js makes here as
// GoTrue does (shapes copied from a real server's answers): the password
// and refresh-token grants, the user, and logout.

// supabaseProject is the test's Supabase project.
type supabaseProject struct {
	URL     string // the project's URL; Auth is at URL/auth/v1
	AnonKey string
	Real    bool // the real Supabase Auth, not fakeGoTrue
	// addUser creates a confirmed user with a password.
	addUser func(t testing.TB, email, password string)
	// requests counts what reached Auth, by "METHOD path?grant_type".
	mu       sync.Mutex
	requests map[string]int
}

func (p *supabaseProject) count(key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests[key]
}

// accessToken signs in as the browser would and returns the access token.
func (p *supabaseProject) accessToken(t testing.TB, email, password string) string {
	t.Helper()
	status, body := p.passwordGrant(t, email, password)
	var s struct {
		AccessToken string `json:"access_token"`
	}
	if status != 200 || json.Unmarshal(body, &s) != nil || s.AccessToken == "" {
		t.Fatalf("sign in %s: %d %s", email, status, body)
	}
	return s.AccessToken
}

func (p *supabaseProject) passwordGrant(t testing.TB, email, password string) (int, []byte) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	req, _ := http.NewRequest("POST", p.URL+"/auth/v1/token?grant_type=password", bytes.NewReader(body))
	req.Header.Set("apikey", p.AnonKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Supabase-Api-Version", "2024-01-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// startSupabaseProject starts Auth (real or fake) issuing HS256 access
// tokens signed with secret that expire after expiresIn, and the gateway.
func startSupabaseProject(t testing.TB, secret string, expiresIn time.Duration) *supabaseProject {
	t.Helper()
	p := &supabaseProject{AnonKey: "anon-" + randomHex(t, 16), requests: map[string]int{}}
	var upstream string
	gateway := httptest.NewUnstartedServer(nil)
	p.URL = "http://" + gateway.Listener.Addr().String()
	if bin := os.Getenv("PANELX_TEST_SUPABASE_AUTH"); bin != "" {
		p.Real = true
		upstream, p.addUser = startRealGoTrue(t, bin, secret, p.URL, expiresIn)
	} else {
		f := &fakeGoTrue{secret: []byte(secret), issuer: p.URL + "/auth/v1", expiresIn: expiresIn,
			users: map[string]*fakeUser{}, refresh: map[string]*fakeRefresh{}}
		srv := httptest.NewServer(f)
		t.Cleanup(srv.Close)
		upstream, p.addUser = srv.URL, f.addUser
	}
	target, _ := url.Parse(upstream)
	proxy := httputil.NewSingleHostReverseProxy(target)
	gateway.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// CORS as Supabase's gateway answers it: any origin, no cookies.
		if origin := r.Header.Get("Origin"); origin != "" {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Expose-Headers", "X-Supabase-Api-Version, X-Sb-Error-Code")
			h.Add("Vary", "Origin")
			if r.Method == http.MethodOptions {
				h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS")
				h.Set("Access-Control-Allow-Headers", r.Header.Get("Access-Control-Request-Headers"))
				h.Set("Access-Control-Max-Age", "3600")
				w.WriteHeader(http.StatusOK)
				return
			}
		}
		rest, ok := strings.CutPrefix(r.URL.Path, "/auth/v1/")
		if !ok {
			writeGoTrueJSON(w, http.StatusNotFound, map[string]string{"message": "no Route matched with those values"})
			return
		}
		if r.Header.Get("apikey") != p.AnonKey {
			writeGoTrueJSON(w, http.StatusUnauthorized, map[string]string{"message": "Invalid API key"})
			return
		}
		p.mu.Lock()
		p.requests[r.Method+" /"+rest+"?"+r.URL.Query().Get("grant_type")]++
		p.mu.Unlock()
		r.URL.Path = "/" + rest
		r.Header.Del("Origin") // the gateway did CORS
		proxy.ServeHTTP(w, r)
	})
	gateway.Start()
	t.Cleanup(gateway.Close)
	return p
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func writeGoTrueJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// startRealGoTrue runs Supabase Auth against a fresh database; users sign
// up (confirmed at once: GOTRUE_MAILER_AUTOCONFIRM).
func startRealGoTrue(t testing.TB, bin, secret, projectURL string, expiresIn time.Duration) (string, func(testing.TB, string, string)) {
	t.Helper()
	dbURL := testenv.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, "CREATE SCHEMA auth")
	conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(dbURL)
	q := u.Query()
	q.Set("search_path", "auth")
	u.RawQuery = q.Encode()
	port := freeTCPPort(t)
	env := append(os.Environ(),
		"GOTRUE_DB_DRIVER=postgres", "DATABASE_URL="+u.String(),
		"GOTRUE_API_HOST=127.0.0.1", fmt.Sprintf("PORT=%d", port),
		"API_EXTERNAL_URL="+projectURL+"/auth/v1", "GOTRUE_SITE_URL="+projectURL,
		"GOTRUE_JWT_SECRET="+secret, fmt.Sprintf("GOTRUE_JWT_EXP=%d", int(expiresIn.Seconds())),
		"GOTRUE_JWT_AUD=authenticated", "GOTRUE_JWT_DEFAULT_GROUP_NAME=authenticated", "GOTRUE_JWT_ISSUER="+projectURL+"/auth/v1",
		"GOTRUE_MAILER_AUTOCONFIRM=true", "GOTRUE_LOG_LEVEL=warn")
	migrate := exec.Command(bin, "migrate")
	migrate.Env = env
	if out, err := migrate.CombinedOutput(); err != nil {
		t.Fatalf("%s migrate: %v\n%s", bin, err, out)
	}
	var logs bytes.Buffer
	serve := exec.Command(bin, "serve")
	serve.Env = env
	serve.Stdout, serve.Stderr = &logs, &logs
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = serve.Process.Kill()
		_ = serve.Wait()
		if t.Failed() {
			t.Logf("Supabase Auth's log:\n%s", logs.String())
		}
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Supabase Auth did not answer on %s: %v\n%s", base, err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the real Supabase Auth (%s) serves on %s", bin, base)
	return base, func(t testing.TB, email, password string) {
		t.Helper()
		body, _ := json.Marshal(map[string]string{"email": email, "password": password})
		resp, err := http.Post(base+"/signup", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("sign up %s: %d %s", email, resp.StatusCode, out)
		}
	}
}

// fakeGoTrue answers as Supabase Auth does the calls the dashboard makes.
type fakeGoTrue struct {
	secret    []byte
	issuer    string
	expiresIn time.Duration

	mu      sync.Mutex
	users   map[string]*fakeUser    // by email
	refresh map[string]*fakeRefresh // by refresh token
	serial  atomic.Int64
}

type fakeUser struct {
	ID, Email, Password string
	Created             time.Time
}

type fakeRefresh struct {
	user    *fakeUser
	session string
	// used: rotated to a new token at this time. GoTrue takes a used token
	// again for 10 s (two tabs refreshing at once), then refuses it.
	used time.Time
	// revoked by a logout.
	revoked bool
}

func (f *fakeGoTrue) addUser(t testing.TB, email, password string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users[email] = &fakeUser{ID: newUUID(t), Email: email, Password: password, Created: time.Now().UTC()}
}

func newUUID(t testing.TB) string {
	h := randomHex(t, 16)
	return h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:]
}

// goTrueError writes an error as GoTrue does: the 2024-01-01 shape to
// clients that ask for it (supabase-js does), the older one otherwise.
func goTrueError(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	w.Header().Set("X-Sb-Error-Code", code)
	if v := r.Header.Get("X-Supabase-Api-Version"); v >= "2024-01-01" {
		w.Header().Set("X-Supabase-Api-Version", "2024-01-01")
		writeGoTrueJSON(w, status, map[string]any{"code": code, "message": message})
		return
	}
	writeGoTrueJSON(w, status, map[string]any{"code": status, "error_code": code, "msg": message})
}

func (f *fakeGoTrue) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == "GET" && r.URL.Path == "/health":
		writeGoTrueJSON(w, 200, map[string]string{"name": "GoTrue (fake)"})
	case r.Method == "POST" && r.URL.Path == "/token":
		f.token(w, r)
	case r.Method == "GET" && r.URL.Path == "/user":
		user, _, err := f.bearer(r)
		if err != nil {
			goTrueError(w, r, http.StatusForbidden, "bad_jwt", "invalid JWT: unable to parse or verify signature, "+err.Error())
			return
		}
		writeGoTrueJSON(w, 200, f.userJSON(user))
	case r.Method == "POST" && r.URL.Path == "/logout":
		_, session, err := f.bearer(r)
		if err != nil {
			goTrueError(w, r, http.StatusForbidden, "bad_jwt", "invalid JWT: unable to parse or verify signature, "+err.Error())
			return
		}
		f.mu.Lock()
		for _, rt := range f.refresh {
			if rt.session == session {
				rt.revoked = true
			}
		}
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	default:
		goTrueError(w, r, http.StatusNotFound, "not_found", "Not Found")
	}
}

func (f *fakeGoTrue) token(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Email        string `json:"email"`
		Password     string `json:"password"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&body); err != nil {
		goTrueError(w, r, http.StatusBadRequest, "bad_json", "Could not parse request body as JSON: "+err.Error())
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.URL.Query().Get("grant_type") {
	case "password":
		u := f.users[body.Email]
		if u == nil || u.Password != body.Password {
			goTrueError(w, r, http.StatusBadRequest, "invalid_credentials", "Invalid login credentials")
			return
		}
		f.issue(w, u, fmt.Sprintf("session-%d", f.serial.Add(1)))
	case "refresh_token":
		rt := f.refresh[body.RefreshToken]
		if rt == nil || rt.revoked || (!rt.used.IsZero() && time.Since(rt.used) > 10*time.Second) {
			goTrueError(w, r, http.StatusBadRequest, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")
			return
		}
		if rt.used.IsZero() {
			rt.used = time.Now()
		}
		f.issue(w, rt.user, rt.session)
	default:
		goTrueError(w, r, http.StatusBadRequest, "unsupported_grant_type", "unsupported_grant_type")
	}
}

// issue answers a grant with a new session: an HS256 access token with
// GoTrue's claims and a new refresh token. The caller holds f.mu.
func (f *fakeGoTrue) issue(w http.ResponseWriter, u *fakeUser, session string) {
	now := time.Now()
	claims := jwt.MapClaims{
		"iss": f.issuer, "sub": u.ID, "aud": "authenticated",
		"exp": now.Add(f.expiresIn).Unix(), "iat": now.Unix(),
		"email": u.Email, "phone": "", "role": "authenticated", "aal": "aal1",
		"app_metadata":  map[string]any{"provider": "email", "providers": []string{"email"}},
		"user_metadata": map[string]any{"email": u.Email, "email_verified": true, "phone_verified": false, "sub": u.ID},
		"amr":           []map[string]any{{"method": "password", "timestamp": now.Unix()}},
		"session_id":    session, "is_anonymous": false,
	}
	access, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(f.secret)
	if err != nil {
		goTrueError(w, &http.Request{Header: http.Header{}}, http.StatusInternalServerError, "unexpected_failure", err.Error())
		return
	}
	buf := make([]byte, 9)
	_, _ = rand.Read(buf)
	refresh := hex.EncodeToString(buf)
	f.refresh[refresh] = &fakeRefresh{user: u, session: session}
	writeGoTrueJSON(w, 200, map[string]any{
		"access_token": access, "token_type": "bearer",
		"expires_in": int(f.expiresIn.Seconds()), "expires_at": now.Add(f.expiresIn).Unix(),
		"refresh_token": refresh, "user": f.userJSON(u), "weak_password": nil,
	})
}

// bearer verifies the request's access token: its user and session.
func (f *fakeGoTrue) bearer(r *http.Request) (*fakeUser, string, error) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return nil, "", fmt.Errorf("no bearer token")
	}
	claims := jwt.MapClaims{}
	if _, err := jwt.ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return f.secret, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired()); err != nil {
		return nil, "", err
	}
	email, _ := claims["email"].(string)
	session, _ := claims["session_id"].(string)
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.users[email]
	if u == nil {
		return nil, "", fmt.Errorf("no such user")
	}
	return u, session, nil
}

func (f *fakeGoTrue) userJSON(u *fakeUser) map[string]any {
	ts := u.Created.Format(time.RFC3339Nano)
	return map[string]any{
		"id": u.ID, "aud": "authenticated", "role": "authenticated", "email": u.Email,
		"email_confirmed_at": ts, "phone": "", "confirmed_at": ts, "last_sign_in_at": time.Now().UTC().Format(time.RFC3339Nano),
		"app_metadata":  map[string]any{"provider": "email", "providers": []string{"email"}},
		"user_metadata": map[string]any{"email": u.Email, "email_verified": true, "phone_verified": false, "sub": u.ID},
		"identities":    []any{}, "created_at": ts, "updated_at": ts, "is_anonymous": false,
	}
}
