package authz

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/panelx/panelx/apiserver/auth"
	"github.com/panelx/panelx/store"
)

const testSecret = "a-test-secret-of-at-least-thirty-two-bytes"

// fakeTokens and fakeMembers stand in for the store: these tests are about
// decisions; the HTTP tests run the same code against PostgreSQL.
type fakeTokens struct {
	store.Tokens
	mu      sync.Mutex
	byHash  map[string]store.APIToken
	touches int
}

func (f *fakeTokens) GetByHash(_ context.Context, h []byte) (store.APIToken, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t, ok := f.byHash[string(h)]; ok {
		return t, nil
	}
	return store.APIToken{}, store.ErrNotFound
}

func (f *fakeTokens) Touch(context.Context, string, time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.touches++
	return nil
}

// touchesSettled waits for the asynchronous touches to land, then counts.
func (f *fakeTokens) touchesSettled() int {
	time.Sleep(100 * time.Millisecond)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.touches
}

type fakeMembers struct {
	store.Members
	roles map[[2]string]store.Role // project, user → role
}

func (f fakeMembers) Get(_ context.Context, project, user string) (store.Member, error) {
	if r, ok := f.roles[[2]string{project, user}]; ok {
		return store.Member{Project: project, UserID: user, Role: r}, nil
	}
	return store.Member{}, store.ErrNotFound
}

func (f fakeMembers) ProjectsOf(_ context.Context, user string) ([]store.Member, error) {
	var out []store.Member
	for k, r := range f.roles {
		if k[1] == user {
			out = append(out, store.Member{Project: k[0], UserID: user, Role: r})
		}
	}
	return out, nil
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newAuthn(t *testing.T) (*Authenticator, *fakeTokens, *clock) {
	t.Helper()
	v, err := auth.NewVerifier(auth.Config{HS256Secret: []byte(testSecret)})
	if err != nil {
		t.Fatal(err)
	}
	ft := &fakeTokens{byHash: map[string]store.APIToken{}}
	c := &clock{t: time.Now()}
	a := NewAuthenticator(AuthenticatorOptions{Verifier: v, Tokens: func() store.Tokens { return ft }, AdminUsers: []string{"root-user"}, Now: c.now})
	return a, ft, c
}

func jwtFor(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	base := jwt.MapClaims{"sub": "u1", "aud": "authenticated", "role": "authenticated", "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()}
	for k, v := range claims {
		if v == nil {
			delete(base, k)
		} else {
			base[k] = v
		}
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, base).SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func addToken(t *testing.T, ft *fakeTokens, tok store.APIToken) string {
	t.Helper()
	plain, hash, err := auth.GenerateAPIToken()
	if err != nil {
		t.Fatal(err)
	}
	tok.Hash = hash
	ft.byHash[string(hash)] = tok
	return plain
}

func TestAuthenticate(t *testing.T) {
	a, ft, c := newAuthn(t)
	past := c.t.Add(-time.Minute)
	future := c.t.Add(time.Hour)
	good := addToken(t, ft, store.APIToken{ID: "t1", UserID: "u2", Project: "shop", ExpiresAt: &future})
	expired := addToken(t, ft, store.APIToken{ID: "t2", UserID: "u2", ExpiresAt: &past})
	admin := addToken(t, ft, store.APIToken{ID: "t3", UserID: "root-user"})
	unknown, _, _ := auth.GenerateAPIToken()

	tests := []struct {
		name   string
		token  string
		want   *Principal
		reason string
	}{
		{name: "jwt", token: jwtFor(t, nil), want: &Principal{UserID: "u1", Method: MethodJWT}},
		{name: "jwt of a listed admin", token: jwtFor(t, jwt.MapClaims{"sub": "root-user"}), want: &Principal{UserID: "root-user", Method: MethodJWT, Admin: true}},
		{name: "jwt with app_metadata admin", token: jwtFor(t, jwt.MapClaims{"app_metadata": map[string]any{"panelx_role": "admin"}}), want: &Principal{UserID: "u1", Method: MethodJWT, Admin: true}},
		{name: "jwt with user_metadata admin", token: jwtFor(t, jwt.MapClaims{"user_metadata": map[string]any{"panelx_role": "admin"}}), want: &Principal{UserID: "u1", Method: MethodJWT}},
		{name: "anonymous sign-in", token: jwtFor(t, jwt.MapClaims{"is_anonymous": true}), reason: reasonAnonymous},
		{name: "service_role with a sub", token: jwtFor(t, jwt.MapClaims{"role": "service_role"}), reason: reasonNotAUser},
		{name: "anon role with a sub", token: jwtFor(t, jwt.MapClaims{"role": "anon"}), reason: reasonNotAUser},
		{name: "no role", token: jwtFor(t, jwt.MapClaims{"role": nil}), reason: reasonNotAUser},
		{name: "subject with a NUL", token: jwtFor(t, jwt.MapClaims{"sub": "u\x001"}), reason: reasonBadSubject},
		{name: "subject with a space", token: jwtFor(t, jwt.MapClaims{"sub": "u 1"}), reason: reasonBadSubject},
		{name: "api token", token: good, want: &Principal{UserID: "u2", Method: MethodAPIToken, TokenID: "t1", Project: "shop", ExpiresAt: future}},
		{name: "api token of an admin", token: admin, want: &Principal{UserID: "root-user", Method: MethodAPIToken, TokenID: "t3", Admin: true}},
		{name: "expired api token", token: expired, reason: reasonTokenExpired},
		{name: "unknown api token", token: unknown, reason: reasonUnknownToken},
		{name: "truncated api token", token: good[:20], reason: reasonMalformed},
		{name: "empty", token: "", reason: reasonMissing},
		{name: "huge", token: strings.Repeat("a", auth.MaxTokenLen+1), reason: reasonTooLarge},
		{name: "garbage", token: "hello", reason: "malformed token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := a.Authenticate(context.Background(), tt.token)
			if tt.reason != "" {
				if !errors.Is(err, ErrUnauthenticated) || Reason(err) != tt.reason {
					t.Fatalf("err = %v (reason %q), want reason %q", err, Reason(err), tt.reason)
				}
				return
			}
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			p.Email = ""
			if p.Method == MethodJWT {
				p.ExpiresAt = time.Time{}
			}
			if *p != *tt.want {
				t.Errorf("principal = %+v, want %+v", p, tt.want)
			}
		})
	}
}

func TestJWTRefusedWithoutVerifier(t *testing.T) {
	a := NewAuthenticator(AuthenticatorOptions{Tokens: func() store.Tokens { return &fakeTokens{} }})
	_, err := a.Authenticate(context.Background(), jwtFor(t, nil))
	if Reason(err) != reasonNoJWT {
		t.Errorf("err = %v, want %q", err, reasonNoJWT)
	}
}

func TestTouchAtMostOncePerMinute(t *testing.T) {
	a, ft, c := newAuthn(t)
	tok := addToken(t, ft, store.APIToken{ID: "t1", UserID: "u"})
	for i := 0; i < 5; i++ {
		if _, err := a.Authenticate(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
		c.t = c.t.Add(10 * time.Second)
	}
	if n := ft.touchesSettled(); n != 1 {
		t.Errorf("%d touches in 50s, want 1", n)
	}
	c.t = c.t.Add(time.Minute)
	if _, err := a.Authenticate(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	if n := ft.touchesSettled(); n != 2 {
		t.Errorf("%d touches after a minute, want 2", n)
	}
}

func TestBearerToken(t *testing.T) {
	tests := []struct {
		headers []string
		want    string
		reason  string
	}{
		{[]string{"Bearer abc"}, "abc", ""},
		{[]string{"bearer   abc  "}, "abc", ""},
		{nil, "", reasonMissing},
		{[]string{"Bearer "}, "", reasonMalformedHeader},
		{[]string{"Basic dXNlcjpwYXNz"}, "", reasonMalformedHeader},
		{[]string{"abc"}, "", reasonMalformedHeader},
		{[]string{"Bearer a b"}, "", reasonMalformedHeader},
		{[]string{"Bearer a", "Bearer b"}, "", reasonSeveralHeaders},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		for _, h := range tt.headers {
			r.Header.Add("Authorization", h)
		}
		got, err := BearerToken(r)
		if got != tt.want || Reason(err) != tt.reason {
			t.Errorf("%q: got %q, %v; want %q, reason %q", tt.headers, got, err, tt.want, tt.reason)
		}
	}
}

func TestCan(t *testing.T) {
	// The role matrix, written out: a change to permissions must change this table.
	want := map[Action][4]bool{ // owner, admin, editor, viewer
		Read:              {true, true, true, true},
		Write:             {true, true, true, false},
		UpdateProject:     {true, true, false, false},
		ManageMembers:     {true, true, false, false},
		ManageCredentials: {true, true, false, false},
		RevealSecrets:     {true, true, false, false},
		DeleteProject:     {true, false, false, false},
	}
	for action, allowed := range want {
		for i, role := range store.Roles {
			if got := Can(role, action); got != allowed[i] {
				t.Errorf("Can(%s, %s) = %v, want %v", role, action, got, allowed[i])
			}
		}
		if Can("", action) || Can("superuser", action) {
			t.Errorf("a non-role may %s", action)
		}
	}
}

func TestMemberRules(t *testing.T) {
	const (
		o, a, e, v = store.RoleOwner, store.RoleAdmin, store.RoleEditor, store.RoleViewer
	)
	puts := []struct {
		actor, current, next store.Role
		ok                   bool
	}{
		{o, "", o, true}, {o, v, a, true}, {o, o, e, true}, {a, "", e, true}, {a, e, a, true}, {a, a, v, true},
		{a, "", o, false}, {a, o, e, false}, {a, e, o, false}, {e, "", v, false}, {v, "", v, false}, {e, v, e, false},
	}
	for _, tt := range puts {
		err := CheckMemberPut(tt.actor, tt.current, tt.next)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrForbidden)) {
			t.Errorf("%s sets %q → %s: %v, want ok=%v", tt.actor, tt.current, tt.next, err, tt.ok)
		}
	}
	deletes := []struct {
		actor, current store.Role
		self, ok       bool
	}{
		{o, o, false, true}, {o, v, false, true}, {a, e, false, true}, {a, a, false, true},
		{a, o, false, false}, {e, v, false, false}, {v, v, false, false},
		{v, v, true, true}, {e, e, true, true},
	}
	for _, tt := range deletes {
		err := CheckMemberDelete(tt.actor, tt.current, tt.self)
		if (err == nil) != tt.ok {
			t.Errorf("%s removes %s (self %v): %v, want ok=%v", tt.actor, tt.current, tt.self, err, tt.ok)
		}
	}
}

func TestAuthorizer(t *testing.T) {
	z := NewAuthorizer(func() store.Members {
		return fakeMembers{roles: map[[2]string]store.Role{{"shop", "u1"}: store.RoleViewer, {"blog", "u1"}: store.RoleOwner}}
	}, nil)
	ctx := context.Background()
	user := &Principal{UserID: "u1"}
	scoped := &Principal{UserID: "u1", Project: "blog"}
	tests := []struct {
		name    string
		p       *Principal
		project string
		action  Action
		want    error // nil, store.ErrNotFound or ErrForbidden
	}{
		{"viewer reads", user, "shop", Read, nil},
		{"viewer writes", user, "shop", Write, ErrForbidden},
		{"owner deletes", user, "blog", DeleteProject, nil},
		{"not a member", &Principal{UserID: "u2"}, "shop", Read, store.ErrNotFound},
		{"no such project", user, "nope", Read, store.ErrNotFound},
		{"name that cannot exist", user, "../shop", Read, store.ErrNotFound},
		{"scoped token, its project", scoped, "blog", Write, nil},
		{"scoped token, another project", scoped, "shop", Read, store.ErrNotFound},
		{"no principal", nil, "shop", Read, ErrUnauthenticated},
	}
	for _, tt := range tests {
		_, err := z.Authorize(ctx, tt.p, tt.project, tt.action)
		if (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
	if _, err := z.Authorize(ctx, &Principal{UserID: "u2"}, "shop", Read); err.Error() != `project "shop" not found` {
		t.Errorf("not-found message %q must not say why", err)
	}
	names, err := z.Projects(ctx, scoped)
	if err != nil || len(names) != 1 || names[0] != "blog" {
		t.Errorf("Projects(scoped) = %v, %v", names, err)
	}
}

func TestAuthenticateUpgrade(t *testing.T) {
	a, ft, _ := newAuthn(t)
	tok := addToken(t, ft, store.APIToken{ID: "t1", UserID: "u2"})
	origins := NewOrigins([]string{"https://panel.example.com/"})
	tests := []struct {
		name      string
		headers   map[string][]string
		target    string
		wantErr   error
		protocols []string
	}{
		{name: "header", headers: map[string][]string{"Authorization": {"Bearer " + tok}}},
		{name: "subprotocol", headers: map[string][]string{"Sec-WebSocket-Protocol": {"panelx.v1, " + BearerProtocolPrefix + tok}}, protocols: []string{"panelx.v1"}},
		{name: "subprotocol in its own header", headers: map[string][]string{"Sec-WebSocket-Protocol": {"panelx.v1", BearerProtocolPrefix + tok}}, protocols: []string{"panelx.v1"}},
		{name: "allowed origin", headers: map[string][]string{"Authorization": {"Bearer " + tok}, "Origin": {"https://PANEL.example.com"}}},
		{name: "same origin", headers: map[string][]string{"Authorization": {"Bearer " + tok}, "Origin": {"http://api.test"}}},
		{name: "foreign origin", headers: map[string][]string{"Authorization": {"Bearer " + tok}, "Origin": {"https://evil.example"}}, wantErr: ErrOriginNotAllowed},
		{name: "null origin", headers: map[string][]string{"Authorization": {"Bearer " + tok}, "Origin": {"null"}}, wantErr: ErrOriginNotAllowed},
		{name: "no token", wantErr: ErrUnauthenticated},
		{name: "token in the query", target: "/ws?access_token=" + tok, wantErr: ErrUnauthenticated},
		{name: "empty subprotocol token", headers: map[string][]string{"Sec-WebSocket-Protocol": {BearerProtocolPrefix}}, wantErr: ErrUnauthenticated},
		{name: "two tokens", headers: map[string][]string{"Authorization": {"Bearer " + tok}, "Sec-WebSocket-Protocol": {BearerProtocolPrefix + tok}}, wantErr: ErrUnauthenticated},
		{name: "bad token", headers: map[string][]string{"Sec-WebSocket-Protocol": {BearerProtocolPrefix + "nope"}}, wantErr: ErrUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := tt.target
			if target == "" {
				target = "/ws"
			}
			r := httptest.NewRequest(http.MethodGet, "http://api.test"+target, nil)
			for k, vs := range tt.headers {
				for _, v := range vs {
					r.Header.Add(k, v)
				}
			}
			up, err := a.AuthenticateUpgrade(r, origins)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if up.Principal.UserID != "u2" || strings.Join(up.Protocols, ",") != strings.Join(tt.protocols, ",") {
				t.Errorf("upgrade = %+v %v", up.Principal, up.Protocols)
			}
		})
	}
}
