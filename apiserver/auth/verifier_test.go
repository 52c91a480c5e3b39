package auth

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestVerifyValid(t *testing.T) {
	e := newTestEnv(t, nil)
	now := e.clock.Now()

	tests := []struct {
		name  string
		token string
	}{
		{"HS256", sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", validClaims(now))},
		{"ES256", sign(t, jwt.SigningMethodES256, ecKey, kidEC, validClaims(now))},
		{"RS256", sign(t, jwt.SigningMethodRS256, rsaKey, kidRSA, validClaims(now))},
		{"ES256 without kid", sign(t, jwt.SigningMethodES256, ecKey, "", validClaims(now))},
		{"RS256 without kid", sign(t, jwt.SigningMethodRS256, rsaKey, "", validClaims(now))},
		{"aud as array", sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", with(validClaims(now), "aud", []string{"other", testAudience}))},
		{"expired within leeway", sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", with(validClaims(now), "exp", now.Add(-20*time.Second).Unix()))},
		{"nbf within leeway", sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", with(validClaims(now), "nbf", now.Add(20*time.Second).Unix()))},
		{"nbf in the past", sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", with(validClaims(now), "nbf", now.Add(-time.Minute).Unix()))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := e.v.Verify(context.Background(), tt.token)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.Subject != testSubject || c.Email != "ada@example.com" || c.Role != "authenticated" || c.Issuer != testIssuer {
				t.Errorf("claims = %+v", c)
			}
			if c.AppMetadata["provider"] != "email" {
				t.Errorf("AppMetadata = %v", c.AppMetadata)
			}
			if c.ExpiresAt.IsZero() {
				t.Error("ExpiresAt not set")
			}
		})
	}
}

// with returns claims with key set to value, or removed when value is nil.
func with(c jwt.MapClaims, key string, value any) jwt.MapClaims {
	if value == nil {
		delete(c, key)
	} else {
		c[key] = value
	}
	return c
}

func TestVerifyRefused(t *testing.T) {
	e := newTestEnv(t, nil)
	now := e.clock.Now()
	secret := []byte(testSecret)
	hs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, secret, "", c) }

	rsaDER, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsaDER})
	rsaPKCS1PEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)})
	ecDER, err := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ecPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecDER})
	ecRaw, err := ecKey.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}

	valid := hs(validClaims(now))
	parts := strings.Split(valid, ".")

	tests := []struct {
		name   string
		token  string
		reason string
	}{
		{"empty", "", reasonMissing},
		{"garbage", "not a token", reasonMalformed},
		{"two segments", parts[0] + "." + parts[1], reasonMalformed},
		{"four segments", valid + ".x", reasonMalformed},
		{"header not base64", "!!!." + parts[1] + "." + parts[2], reasonMalformed},
		{"header not JSON", b64([]byte("nope")) + "." + parts[1] + "." + parts[2], reasonMalformed},
		{"header without alg", handBuilt(t, map[string]any{"typ": "JWT"}, validClaims(now), nil), reasonMalformed},
		{"alg not a string", handBuilt(t, map[string]any{"alg": 256}, validClaims(now), nil), reasonMalformed},
		{"claims not JSON", parts[0] + "." + b64([]byte("{")) + "." + parts[2], reasonMalformed},
		{"claim of wrong type", hs(with(validClaims(now), "exp", "tomorrow")), reasonMalformed},
		{"signature not base64", parts[0] + "." + parts[1] + ".***", reasonMalformed},
		{"bad signature", parts[0] + "." + parts[1] + "." + b64([]byte("0123456789abcdef0123456789abcdef")), reasonBadSignature},
		{"wrong secret", sign(t, jwt.SigningMethodHS256, []byte(strings.Repeat("x", 32)), "", validClaims(now)), reasonBadSignature},
		{"tampered claims", parts[0] + "." + b64([]byte(`{"sub":"someone-else","aud":"authenticated","exp":9999999999}`)) + "." + parts[2], reasonBadSignature},

		{"alg none", handBuilt(t, map[string]any{"alg": "none", "typ": "JWT"}, validClaims(now), nil), reasonAlgNotAllowed},
		{"alg None", handBuilt(t, map[string]any{"alg": "None"}, validClaims(now), nil), reasonAlgNotAllowed},
		{"alg none with signature", handBuilt(t, map[string]any{"alg": "none"}, validClaims(now), []byte("sig")), reasonAlgNotAllowed},
		{"alg empty", handBuilt(t, map[string]any{"alg": ""}, validClaims(now), nil), reasonAlgNotAllowed},
		{"HS512", sign(t, jwt.SigningMethodHS512, secret, "", validClaims(now)), reasonAlgNotAllowed},
		{"ES384", sign(t, jwt.SigningMethodES384, must(ecdsaP384()), "", validClaims(now)), reasonAlgNotAllowed},
		{"PS256", sign(t, jwt.SigningMethodPS256, rsaKey, kidRSA, validClaims(now)), reasonAlgNotAllowed},
		{"EdDSA", handBuilt(t, map[string]any{"alg": "EdDSA"}, validClaims(now), []byte("sig")), reasonAlgNotAllowed},
		{"crit header", handBuilt(t, map[string]any{"alg": "HS256", "crit": []string{"b64"}, "b64": false}, validClaims(now), nil), reasonUnsupportedCrit},

		// The key-confusion attack: HS256 keyed with public key bytes.
		{"HS256 with RSA public key PEM", sign(t, jwt.SigningMethodHS256, rsaPEM, kidRSA, validClaims(now)), reasonBadSignature},
		{"HS256 with RSA public key PKCS1 PEM", sign(t, jwt.SigningMethodHS256, rsaPKCS1PEM, kidRSA, validClaims(now)), reasonBadSignature},
		{"HS256 with RSA public key DER", sign(t, jwt.SigningMethodHS256, rsaDER, kidRSA, validClaims(now)), reasonBadSignature},
		{"HS256 with EC public key PEM", sign(t, jwt.SigningMethodHS256, ecPEM, kidEC, validClaims(now)), reasonBadSignature},
		{"HS256 with EC public key DER", sign(t, jwt.SigningMethodHS256, ecDER, kidEC, validClaims(now)), reasonBadSignature},
		{"HS256 with EC public key raw point", sign(t, jwt.SigningMethodHS256, ecRaw, kidEC, validClaims(now)), reasonBadSignature},

		{"RS256 with kid of EC key", sign(t, jwt.SigningMethodRS256, rsaKey, kidEC, validClaims(now)), reasonKeyMismatch},
		{"ES256 with kid of RSA key", sign(t, jwt.SigningMethodES256, ecKey, kidRSA, validClaims(now)), reasonKeyMismatch},
		{"ES256 signed by another key", sign(t, jwt.SigningMethodES256, ecKey2, kidEC, validClaims(now)), reasonBadSignature},
		{"RS256 with 1024-bit key", sign(t, jwt.SigningMethodRS256, rsaKey1024, kidRSA1024, validClaims(now)), reasonUnknownKey},
		{"RS256 with 1024-bit key, no kid", sign(t, jwt.SigningMethodRS256, rsaKey1024, "", validClaims(now)), reasonBadSignature},
		{"unknown kid", sign(t, jwt.SigningMethodES256, ecKey2, "no-such-kid", validClaims(now)), reasonUnknownKey},
		{"kid not a string", handBuilt(t, map[string]any{"alg": "ES256", "kid": 7}, validClaims(now), make([]byte, 64)), reasonMalformed},

		{"expired", hs(with(validClaims(now), "exp", now.Add(-time.Hour).Unix())), reasonExpired},
		{"expired just past leeway", hs(with(validClaims(now), "exp", now.Add(-31*time.Second).Unix())), reasonExpired},
		{"no exp", hs(with(validClaims(now), "exp", nil)), reasonMissingExp},
		{"wrong aud", hs(with(validClaims(now), "aud", "anon")), reasonWrongAudience},
		{"no aud", hs(with(validClaims(now), "aud", nil)), reasonWrongAudience},
		{"wrong iss", hs(with(validClaims(now), "iss", "https://evil.supabase.co/auth/v1")), reasonWrongIssuer},
		{"no iss", hs(with(validClaims(now), "iss", nil)), reasonWrongIssuer},
		{"nbf in the future", hs(with(validClaims(now), "nbf", now.Add(time.Hour).Unix())), reasonNotYetValid},
		{"iat in the future", hs(with(validClaims(now), "iat", now.Add(time.Hour).Unix())), reasonIssuedInFuture},
		{"no sub", hs(with(validClaims(now), "sub", nil)), reasonMissingSubject},
		{"empty sub", hs(with(validClaims(now), "sub", "")), reasonMissingSubject},
		{"supabase anon key", hs(anonKeyClaims(now)), reasonWrongIssuer},
		{"oversized", hs(with(validClaims(now), "pad", strings.Repeat("a", MaxTokenLen))), reasonTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := e.v.Verify(context.Background(), tt.token)
			if err == nil {
				t.Fatalf("Verify accepted the token: %+v", c)
			}
			if c != nil {
				t.Errorf("claims = %+v alongside error", c)
			}
			if !errors.Is(err, ErrUnauthenticated) {
				t.Errorf("error %v does not wrap ErrUnauthenticated", err)
			}
			if got := Reason(err); got != tt.reason {
				t.Errorf("reason = %q, want %q (cause: %v)", got, tt.reason, cause(err))
			}
		})
	}
}

// TestVerifyAlgorithmsNeedTheirKeys checks that each algorithm is enabled
// only by its own configuration.
func TestVerifyAlgorithmsNeedTheirKeys(t *testing.T) {
	keys(t)
	srv := newJWKSServer(t, ecJWK(kidEC, &ecKey.PublicKey), rsaJWK(kidRSA, &rsaKey.PublicKey))
	now := time.Now()
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(&rsaKey.PublicKey))})

	jwksOnly := must(NewVerifier(Config{JWKSURL: srv.URL, HTTPClient: srv.Client()}))
	secretOnly := must(NewVerifier(Config{HS256Secret: []byte(testSecret)}))

	tests := []struct {
		name  string
		v     *Verifier
		token string
	}{
		{"HS256 without secret", jwksOnly, sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", validClaims(now))},
		{"HS256 keyed with RSA PEM, JWKS only", jwksOnly, sign(t, jwt.SigningMethodHS256, rsaPEM, kidRSA, validClaims(now))},
		{"ES256 without JWKS", secretOnly, sign(t, jwt.SigningMethodES256, ecKey, kidEC, validClaims(now))},
		{"RS256 without JWKS", secretOnly, sign(t, jwt.SigningMethodRS256, rsaKey, kidRSA, validClaims(now))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.v.Verify(context.Background(), tt.token)
			if !errors.Is(err, ErrUnauthenticated) || Reason(err) != reasonAlgNotAllowed {
				t.Fatalf("err = %v, want %q", err, reasonAlgNotAllowed)
			}
		})
	}
	if srv.hits.Load() != 0 {
		t.Errorf("JWKS fetched %d times for tokens that need no JWKS", srv.hits.Load())
	}
}

func TestVerifyIssuerOptional(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.Issuer = "" })
	now := e.clock.Now()
	tok := sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", with(validClaims(now), "iss", "anything"))
	if _, err := e.v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("Verify without configured issuer: %v", err)
	}
	// Supabase's anon and service_role keys are HS256 JWTs without aud or
	// sub: they must never pass as a user.
	for _, role := range []string{"anon", "service_role"} {
		tok := sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", with(anonKeyClaims(now), "role", role))
		if _, err := e.v.Verify(context.Background(), tok); Reason(err) != reasonWrongAudience {
			t.Errorf("%s key: err = %v, want %q", role, err, reasonWrongAudience)
		}
	}
}

// anonKeyClaims are the claims of a Supabase project's anon API key.
func anonKeyClaims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{"iss": "supabase", "ref": "abcdefgh", "role": "anon", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
}

// cause returns the log-only detail behind a verification error.
func cause(err error) error {
	var ae *authError
	if errors.As(err, &ae) {
		return ae.cause
	}
	return err
}

func TestVerifyCustomAudienceAndLeeway(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.Audience = "panelx"; c.Leeway = time.Second })
	now := e.clock.Now()
	tests := []struct {
		name   string
		claims jwt.MapClaims
		reason string
	}{
		{"custom audience", with(validClaims(now), "aud", "panelx"), ""},
		{"default audience refused", validClaims(now), reasonWrongAudience},
		{"expired beyond 1s leeway", with(with(validClaims(now), "aud", "panelx"), "exp", now.Add(-5*time.Second).Unix()), reasonExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.v.Verify(context.Background(), sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", tt.claims))
			if Reason(err) != tt.reason {
				t.Fatalf("err = %v, want reason %q", err, tt.reason)
			}
		})
	}
}

func TestErrorIsClientSafe(t *testing.T) {
	e := newTestEnv(t, nil)
	_, err := e.v.Verify(context.Background(), "a.b.c")
	if err == nil {
		t.Fatal("accepted garbage")
	}
	if got, want := err.Error(), "unauthenticated: "+reasonMalformed; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if errors.Unwrap(err) != nil {
		t.Error("a multi-error must not unwrap to a single error")
	}
	if Reason(errors.New("other")) != "" || Reason(nil) != "" {
		t.Error("Reason of a non-auth error must be empty")
	}
}

func TestNewVerifierConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{"nothing configured", Config{}, true},
		{"short secret", Config{HS256Secret: []byte("short")}, true},
		{"empty secret", Config{HS256Secret: []byte{}}, true},
		{"secret", Config{HS256Secret: []byte(testSecret)}, false},
		{"https JWKS", Config{JWKSURL: "https://abcdefgh.supabase.co/auth/v1/.well-known/jwks.json"}, false},
		{"http JWKS on loopback", Config{JWKSURL: "http://127.0.0.1:54321/auth/v1/.well-known/jwks.json"}, false},
		{"http JWKS on localhost", Config{JWKSURL: "http://localhost:54321/auth/v1/.well-known/jwks.json"}, false},
		{"http JWKS on IPv6 loopback", Config{JWKSURL: "http://[::1]:54321/jwks.json"}, false},
		{"http JWKS remote", Config{JWKSURL: "http://abcdefgh.supabase.co/auth/v1/.well-known/jwks.json"}, true},
		{"JWKS without host", Config{JWKSURL: "https:///jwks.json"}, true},
		{"JWKS odd scheme", Config{JWKSURL: "file:///etc/jwks.json"}, true},
		{"JWKS unparsable", Config{JWKSURL: "https://[::1"}, true},
		{"negative leeway", Config{HS256Secret: []byte(testSecret), Leeway: -time.Second}, true},
		{"negative refresh", Config{HS256Secret: []byte(testSecret), JWKSRefreshMin: -time.Second}, true},
		{"negative TTL", Config{HS256Secret: []byte(testSecret), JWKSTTL: -time.Second}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewVerifier(tt.cfg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && v == nil {
				t.Fatal("nil Verifier without error")
			}
		})
	}
}

func TestNewVerifierDefaults(t *testing.T) {
	cfg, err := withDefaults(Config{JWKSURL: "https://x.supabase.co/auth/v1/.well-known/jwks.json"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Audience != "authenticated" || cfg.Leeway != 30*time.Second ||
		cfg.JWKSRefreshMin != 30*time.Second || cfg.JWKSTTL != 10*time.Minute || cfg.HTTPClient == nil {
		t.Errorf("defaults = %+v", cfg)
	}
}

func TestNewVerifierCopiesSecret(t *testing.T) {
	secret := []byte(testSecret)
	v := must(NewVerifier(Config{HS256Secret: secret}))
	tok := sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", validClaims(time.Now()))
	secret[0] ^= 0xff
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("changing the caller's slice changed the verifier: %v", err)
	}
}
