package apiserver_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/panelx/panelx/apiserver/auth"
	"github.com/panelx/panelx/store"
)

// noneToken is an "alg": "none" token, which the jwt library will not make.
func noneToken(claims jwt.MapClaims) string {
	h, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT"})
	c, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "."
}

func with(c jwt.MapClaims, k string, v any) jwt.MapClaims {
	if v == nil {
		delete(c, k)
	} else {
		c[k] = v
	}
	return c
}

// TestAuthenticationMatrix: every way a credential can be wrong is a 401
// problem document with a WWW-Authenticate challenge, on every kind of
// route; the good credentials of each kind get through.
func TestAuthenticationMatrix(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	alice := e.jwtFor("alice")
	e.project(t, alice, "shop")
	secret := []byte(jwtSecret)

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaDER, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsaDER})
	ecDER, _ := x509.MarshalPKIXPublicKey(&ecdsaKey(t).PublicKey)
	ecPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecDER})
	ecRaw, _ := ecdsaKey(t).PublicKey.Bytes()
	otherEC, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	es256 := func(key *ecdsa.PrivateKey, kid string) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, claimsFor("alice"))
		tok.Header["kid"] = kid
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	rs256, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claimsFor("alice")).SignedString(rsaKey)
	if err != nil {
		t.Fatal(err)
	}

	// API tokens: revoked through the API; expired written straight to the store.
	revoked, revokedID := e.apiToken(t, alice, nil)
	e.must(t, http.StatusNoContent, req{method: "DELETE", path: "/api/v1/tokens/" + revokedID, token: alice})
	expiredPlain, hash, _ := auth.GenerateAPIToken()
	past := time.Now().Add(-time.Minute)
	if _, err := e.Store.Tokens().Create(ctx, store.APIToken{UserID: "alice", Name: "old", Prefix: auth.TokenPrefix(expiredPlain), Hash: hash, ExpiresAt: &past}); err != nil {
		t.Fatal(err)
	}
	unknown, _, _ := auth.GenerateAPIToken()
	good, _ := e.apiToken(t, alice, nil)

	refused := []struct {
		name, header, reason string
	}{
		{"no token", "", "missing token"},
		{"empty bearer", "Bearer ", "Bearer <token>"},
		{"basic auth", "Basic YWxpY2U6cGFzcw==", "Bearer <token>"},
		{"not a JWT", "Bearer hello", "malformed token"},
		{"two segments", "Bearer eyJhbGciOiJIUzI1NiJ9.e30", "malformed token"},
		{"bad signature", "Bearer " + signHS(t, []byte("another-secret-that-is-32-bytes-long!!"), claimsFor("alice")), "bad signature"},
		{"tampered payload", "Bearer " + tamper(alice), "bad signature"},
		{"alg none", "Bearer " + noneToken(claimsFor("alice")), "algorithm not allowed"},
		{"HS256 with the RSA public key PEM", "Bearer " + signHS(t, rsaPEM, claimsFor("alice")), "bad signature"},
		{"HS256 with the RSA public key DER", "Bearer " + signHS(t, rsaDER, claimsFor("alice")), "bad signature"},
		{"HS256 with the EC public key PEM", "Bearer " + signHS(t, ecPEM, claimsFor("alice")), "bad signature"},
		{"HS256 with the EC public key bytes", "Bearer " + signHS(t, ecRaw, claimsFor("alice")), "bad signature"},
		{"RS256 not in the JWKS", "Bearer " + rs256, "unknown signing key"},
		{"ES256 with an unknown kid", "Bearer " + es256(ecdsaKey(t), "nope"), "unknown signing key"},
		{"ES256 signed by another key", "Bearer " + es256(otherEC, kidEC), "bad signature"},
		{"expired", "Bearer " + signHS(t, secret, with(claimsFor("alice"), "exp", time.Now().Add(-time.Hour).Unix())), "token expired"},
		{"no exp", "Bearer " + signHS(t, secret, with(claimsFor("alice"), "exp", nil)), "missing expiry"},
		{"wrong aud", "Bearer " + signHS(t, secret, with(claimsFor("alice"), "aud", "anon")), "wrong audience"},
		{"no aud", "Bearer " + signHS(t, secret, with(claimsFor("alice"), "aud", nil)), "wrong audience"},
		{"wrong iss", "Bearer " + signHS(t, secret, with(claimsFor("alice"), "iss", "https://evil.supabase.co/auth/v1")), "wrong issuer"},
		{"no sub (an anon or service key)", "Bearer " + signHS(t, secret, with(claimsFor("alice"), "sub", nil)), "missing subject"},
		{"anonymous sign-in", "Bearer " + signHS(t, secret, with(claimsFor("alice"), "is_anonymous", true)), "anonymous"},
		{"service_role with a sub", "Bearer " + signHS(t, secret, with(claimsFor("alice"), "role", "service_role")), "role is not authenticated"},
		{"anon role with a sub", "Bearer " + signHS(t, secret, with(claimsFor("alice"), "role", "anon")), "role is not authenticated"},
		{"revoked API token", "Bearer " + revoked, "unknown or revoked"},
		{"expired API token", "Bearer " + expiredPlain, "token expired"},
		{"unknown API token", "Bearer " + unknown, "unknown or revoked"},
		{"truncated API token", "Bearer " + good[:30], "malformed token"},
		{"huge token", "Bearer " + strings.Repeat("x", 20000), "too large"},
	}
	paths := []struct{ method, path string }{
		{"GET", "/api/v1/projects"}, {"GET", "/api/v1/projects/shop"}, {"DELETE", "/api/v1/projects/shop"},
		{"POST", "/api/v1/projects/shop/services"}, {"GET", "/api/v1/tokens"}, {"GET", "/api/v1/me"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			for _, p := range paths {
				r := e.do(t, req{method: p.method, path: p.path, header: map[string]string{"Authorization": tt.header}})
				if r.Status != http.StatusUnauthorized {
					t.Fatalf("%s %s: status %d, want 401\n%s", p.method, p.path, r.Status, r.Body)
				}
				prob := r.problem(t)
				if !strings.Contains(prob.Detail, tt.reason) {
					t.Errorf("%s %s: detail %q, want it to mention %q", p.method, p.path, prob.Detail, tt.reason)
				}
				challenge := r.Header.Get("WWW-Authenticate")
				if !strings.HasPrefix(challenge, "Bearer") || (tt.header != "" && !strings.Contains(challenge, `error="invalid_token"`)) {
					t.Errorf("WWW-Authenticate = %q", challenge)
				}
			}
		})
	}

	// A token in the query string is refused even when it is valid.
	r := e.do(t, req{method: "GET", path: "/api/v1/projects?access_token=" + good})
	if r.Status != http.StatusUnauthorized || !strings.Contains(r.problem(t).Detail, "URL") {
		t.Errorf("token in the URL: %d %s", r.Status, r.Body)
	}

	for name, tok := range map[string]string{"HS256 JWT": alice, "ES256 JWT from the JWKS": e.es256For("alice"), "API token": good} {
		r := e.do(t, req{method: "GET", path: "/api/v1/projects/shop", token: tok})
		if r.Status != http.StatusOK {
			t.Errorf("%s: status %d %s", name, r.Status, r.Body)
		}
	}
	// The public routes need nothing.
	for _, p := range []string{"/healthz", "/readyz", "/api/v1/openapi.json"} {
		if r := e.do(t, req{method: "GET", path: p}); r.Status != http.StatusOK {
			t.Errorf("GET %s: %d", p, r.Status)
		}
	}
}

// tamper changes the payload of a token and keeps its signature.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	payload = []byte(strings.Replace(string(payload), `"alice"`, `"mallory"`, 1))
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	return strings.Join(parts, ".")
}

// TestAPITokenUseIsRecorded: Touch runs on use (and not on every use: see
// the authz unit test for the once-a-minute rule), off the request's path:
// shortly after, not before the answer.
func TestAPITokenUseIsRecorded(t *testing.T) {
	e := newEnv(t)
	alice := e.jwtFor("alice")
	tok, id := e.apiToken(t, alice, nil)
	e.must(t, http.StatusOK, req{method: "GET", path: "/api/v1/projects", token: tok})
	var last map[string]any
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		last = nil
		for _, it := range e.must(t, http.StatusOK, req{method: "GET", path: "/api/v1/tokens", token: alice}).JSON(t)["items"].([]any) {
			if m := it.(map[string]any); m["id"] == id {
				last = m
			}
		}
		if last == nil {
			t.Fatalf("token %s not listed", id)
		}
		if last["lastUsedAt"] != nil {
			return
		}
	}
	t.Errorf("lastUsedAt not recorded after 5 s: %v", last)
}
