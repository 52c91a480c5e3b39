package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// warm verifies one good ES256 token, so the JWKS has been fetched once.
func (e *testEnv) warm(t *testing.T) {
	t.Helper()
	tok := sign(t, jwt.SigningMethodES256, ecKey, kidEC, validClaims(e.clock.Now()))
	if _, err := e.v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("warm-up Verify: %v", err)
	}
	e.wantHits(t, 1)
}

func (e *testEnv) wantHits(t *testing.T, want int64) {
	t.Helper()
	if got := e.srv.hits.Load(); got != want {
		t.Fatalf("JWKS requests = %d, want %d", got, want)
	}
}

// verifyConcurrently runs n verifications of token at once and returns
// their errors.
func (e *testEnv) verifyConcurrently(n int, token string) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			_, errs[i] = e.v.Verify(context.Background(), token)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

func TestJWKSUnknownKidSharesOneRefetch(t *testing.T) {
	e := newTestEnv(t, nil)
	e.warm(t)
	e.clock.Advance(31 * time.Second) // past JWKSRefreshMin

	// A new key appears; the slow answer makes the 20 callers overlap.
	e.srv.setKeys(t, ecJWK(kidEC, &ecKey.PublicKey), ecJWK(kidEC2, &ecKey2.PublicKey))
	e.srv.delay.Store(int64(100 * time.Millisecond))
	tok := sign(t, jwt.SigningMethodES256, ecKey2, kidEC2, validClaims(e.clock.Now()))
	for i, err := range e.verifyConcurrently(20, tok) {
		if err != nil {
			t.Errorf("caller %d: %v", i, err)
		}
	}
	e.wantHits(t, 2)

	// Another unknown kid within JWKSRefreshMin must not refetch.
	tok = sign(t, jwt.SigningMethodES256, ecKey2, "ec-3", validClaims(e.clock.Now()))
	if _, err := e.v.Verify(context.Background(), tok); Reason(err) != reasonUnknownKey {
		t.Fatalf("err = %v, want %q", err, reasonUnknownKey)
	}
	e.wantHits(t, 2)
}

func TestJWKSUnknownKidRefetchIsBounded(t *testing.T) {
	e := newTestEnv(t, nil)
	e.warm(t)
	e.clock.Advance(31 * time.Second)

	for round, kid := range []string{"bogus-1", "bogus-2"} {
		tok := sign(t, jwt.SigningMethodES256, ecKey2, kid, validClaims(e.clock.Now()))
		for i, err := range e.verifyConcurrently(20, tok) {
			if Reason(err) != reasonUnknownKey {
				t.Errorf("round %d caller %d: err = %v, want %q", round, i, err, reasonUnknownKey)
			}
		}
		e.wantHits(t, 2) // one refetch for the first kid, none for the second
	}

	e.clock.Advance(31 * time.Second)
	tok := sign(t, jwt.SigningMethodES256, ecKey2, "bogus-3", validClaims(e.clock.Now()))
	if _, err := e.v.Verify(context.Background(), tok); Reason(err) != reasonUnknownKey {
		t.Fatalf("err = %v, want %q", err, reasonUnknownKey)
	}
	e.wantHits(t, 3)
}

func TestJWKSKeyRotation(t *testing.T) {
	e := newTestEnv(t, nil)
	e.warm(t)

	// The project rotates: only the new key is published from now on.
	e.srv.setKeys(t, ecJWK(kidEC2, &ecKey2.PublicKey))
	newTok := func() string { return sign(t, jwt.SigningMethodES256, ecKey2, kidEC2, validClaims(e.clock.Now())) }
	oldTok := func() string { return sign(t, jwt.SigningMethodES256, ecKey, kidEC, validClaims(e.clock.Now())) }

	e.clock.Advance(10 * time.Second) // still within JWKSRefreshMin
	if _, err := e.v.Verify(context.Background(), newTok()); Reason(err) != reasonUnknownKey {
		t.Fatalf("new key before the refresh interval: err = %v, want %q", err, reasonUnknownKey)
	}
	e.wantHits(t, 1)

	e.clock.Advance(25 * time.Second) // past JWKSRefreshMin
	if _, err := e.v.Verify(context.Background(), newTok()); err != nil {
		t.Fatalf("new key after the refresh interval: %v", err)
	}
	e.wantHits(t, 2)

	// The retired key is gone with the refetch.
	if _, err := e.v.Verify(context.Background(), oldTok()); Reason(err) != reasonUnknownKey {
		t.Fatalf("retired key: err = %v, want %q", err, reasonUnknownKey)
	}
	e.wantHits(t, 2)
}

func TestJWKSRefetchedAfterTTL(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.JWKSTTL = time.Minute })
	e.warm(t)
	tok := sign(t, jwt.SigningMethodES256, ecKey, kidEC, validClaims(e.clock.Now()))

	e.clock.Advance(59 * time.Second)
	if _, err := e.v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	e.wantHits(t, 1)

	e.clock.Advance(2 * time.Second)
	if _, err := e.v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	e.wantHits(t, 2)
}

func TestJWKSFailedFetchKeepsOldKeys(t *testing.T) {
	tests := []struct {
		name    string
		breakIt func(*jwksServer)
	}{
		{"status 500", func(s *jwksServer) { s.status.Store(http.StatusInternalServerError) }},
		{"not JSON", func(s *jwksServer) { s.setBody([]byte("<html>oops</html>")) }},
		{"no keys member", func(s *jwksServer) { s.setBody([]byte(`{"error":"x"}`)) }},
		{"keys not an array", func(s *jwksServer) { s.setBody([]byte(`{"keys":"x"}`)) }},
		{"oversized", func(s *jwksServer) {
			s.setBody([]byte(`{"keys":[],"pad":"` + strings.Repeat("a", jwksMaxBytes) + `"}`))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, nil)
			e.warm(t)
			tt.breakIt(e.srv)
			e.clock.Advance(11 * time.Minute) // past JWKSTTL

			tok := sign(t, jwt.SigningMethodES256, ecKey, kidEC, validClaims(e.clock.Now()))
			if _, err := e.v.Verify(context.Background(), tok); err != nil {
				t.Fatalf("Verify after a failed refetch: %v", err)
			}
			e.wantHits(t, 2)
			if _, _, lastErr := e.v.jwks.snapshot(); lastErr == nil {
				t.Error("the failed fetch was not recorded")
			}
		})
	}
}

func TestJWKSTimeout(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.HTTPClient = &http.Client{Timeout: 50 * time.Millisecond} })
	e.srv.delay.Store(int64(time.Second))
	tok := sign(t, jwt.SigningMethodES256, ecKey, kidEC, validClaims(e.clock.Now()))
	start := time.Now()
	_, err := e.v.Verify(context.Background(), tok)
	if Reason(err) != reasonKeysUnavail {
		t.Fatalf("err = %v, want %q", err, reasonKeysUnavail)
	}
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Errorf("Verify took %v despite the client timeout", d)
	}
}

func TestJWKSUnavailable(t *testing.T) {
	e := newTestEnv(t, nil)
	e.srv.status.Store(http.StatusServiceUnavailable)
	tok := sign(t, jwt.SigningMethodES256, ecKey, kidEC, validClaims(e.clock.Now()))
	_, err := e.v.Verify(context.Background(), tok)
	if Reason(err) != reasonKeysUnavail {
		t.Fatalf("err = %v, want %q", err, reasonKeysUnavail)
	}
	e.wantHits(t, 1) // the retry waits for JWKSRefreshMin

	// HS256 does not depend on the JWKS at all.
	hs := sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", validClaims(e.clock.Now()))
	if _, err := e.v.Verify(context.Background(), hs); err != nil {
		t.Fatalf("HS256 while JWKS is down: %v", err)
	}

	e.srv.status.Store(http.StatusOK)
	e.clock.Advance(31 * time.Second)
	tok = sign(t, jwt.SigningMethodES256, ecKey, kidEC, validClaims(e.clock.Now()))
	if _, err := e.v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	e.wantHits(t, 2)
}

// TestJWKSCancelledCaller checks that a caller giving up does not waste the
// fetch it started for the others.
func TestJWKSCancelledCaller(t *testing.T) {
	e := newTestEnv(t, nil)
	e.srv.delay.Store(int64(100 * time.Millisecond))
	tok := sign(t, jwt.SigningMethodES256, ecKey, kidEC, validClaims(e.clock.Now()))

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.v.Verify(ctx, tok); err == nil {
		t.Fatal("Verify with a cancelled context succeeded before any fetch finished")
	}
	if _, err := e.v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("Verify after a cancelled caller: %v", err)
	}
	e.wantHits(t, 1)
}

func TestJWKSTokenWithoutKidTriesEveryKeyOfItsType(t *testing.T) {
	e := newTestEnv(t, nil)
	e.srv.setKeys(t,
		rsaJWK(kidRSA, &rsaKey.PublicKey),
		ecJWK(kidEC, &ecKey.PublicKey),
		ecJWK(kidEC2, &ecKey2.PublicKey),
	)
	tok := sign(t, jwt.SigningMethodES256, ecKey2, "", validClaims(e.clock.Now()))
	if _, err := e.v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("ES256 without kid: %v", err)
	}
}

// TestJWKSSymmetricKeyIgnored: an "oct" JWK must never become an HS256 key,
// or anyone who can read the JWKS could sign tokens.
func TestJWKSSymmetricKeyIgnored(t *testing.T) {
	e := newTestEnv(t, nil)
	oct := []byte(strings.Repeat("k", 32))
	e.srv.setKeys(t, ecJWK(kidEC, &ecKey.PublicKey), map[string]any{"kty": "oct", "kid": "oct", "alg": "HS256", "k": b64(oct)})
	e.warm(t)
	tok := sign(t, jwt.SigningMethodHS256, oct, "oct", validClaims(e.clock.Now()))
	if _, err := e.v.Verify(context.Background(), tok); Reason(err) != reasonBadSignature {
		t.Fatalf("err = %v, want %q", err, reasonBadSignature)
	}
}

func TestParseJWK(t *testing.T) {
	keys(t)
	goodEC := ecJWK(kidEC, &ecKey.PublicKey)
	goodRSA := rsaJWK(kidRSA, &rsaKey.PublicKey)
	edit := func(base map[string]any, kv ...any) map[string]any {
		m := make(map[string]any, len(base))
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
			} else {
				m[kv[i].(string)] = kv[i+1]
			}
		}
		return m
	}
	x, _ := goodEC["x"].(string)

	tests := []struct {
		name    string
		jwk     any
		wantAlg string // "" when the key must be skipped
	}{
		{"EC", goodEC, algES256},
		{"EC without alg, use or key_ops", edit(goodEC, "alg", nil, "use", nil, "key_ops", nil), algES256},
		{"EC padded base64", edit(goodEC, "x", x+"="), algES256},
		{"RSA", goodRSA, algRS256},
		{"RSA without alg", edit(goodRSA, "alg", nil), algRS256},

		{"not an object", 42, ""},
		{"no kty", edit(goodEC, "kty", nil), ""},
		{"oct", map[string]any{"kty": "oct", "k": "c2VjcmV0"}, ""},
		{"OKP", map[string]any{"kty": "OKP", "crv": "Ed25519", "x": x}, ""},
		{"EC with alg RS256", edit(goodEC, "alg", "RS256"), ""},
		{"EC with alg ES384", edit(goodEC, "alg", "ES384"), ""},
		{"EC on P-384", edit(goodEC, "crv", "P-384"), ""},
		{"EC use enc", edit(goodEC, "use", "enc"), ""},
		{"EC key_ops without verify", edit(goodEC, "key_ops", []string{"encrypt"}), ""},
		{"EC short x", edit(goodEC, "x", b64(make([]byte, 31))), ""},
		{"EC point not on curve", edit(goodEC, "x", b64(make([]byte, 32))), ""},
		{"EC x not base64", edit(goodEC, "x", "***"), ""},
		{"EC no y", edit(goodEC, "y", nil), ""},
		{"RSA with alg RS384", edit(goodRSA, "alg", "RS384"), ""},
		{"RSA with alg PS256", edit(goodRSA, "alg", "PS256"), ""},
		{"RSA with alg HS256", edit(goodRSA, "alg", "HS256"), ""},
		{"RSA 1024 bits", rsaJWK("weak", &rsaKey1024.PublicKey), ""},
		{"RSA 9000 bits", edit(goodRSA, "n", b64(append([]byte{1}, make([]byte, 1125)...))), ""},
		{"RSA e=1", edit(goodRSA, "e", b64([]byte{1})), ""},
		{"RSA even e", edit(goodRSA, "e", b64([]byte{1, 0, 0})), ""},
		{"RSA huge e", edit(goodRSA, "e", b64([]byte{1, 0, 0, 0, 1})), ""},
		{"RSA no n", edit(goodRSA, "n", nil), ""},
		{"kid not a string", edit(goodEC, "kid", 5), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := json.Marshal(tt.jwk)
			if err != nil {
				t.Fatal(err)
			}
			k, err := parseJWK(raw)
			if tt.wantAlg == "" {
				if err == nil {
					t.Fatalf("accepted: %+v", k)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseJWK: %v", err)
			}
			if k.alg != tt.wantAlg {
				t.Errorf("alg = %q, want %q", k.alg, tt.wantAlg)
			}
		})
	}
}

func TestParseJWKSSkipsBadKeysAndCaps(t *testing.T) {
	keys(t)
	set := []any{"junk", 1, nil, map[string]any{"kty": "EC"}, ecJWK(kidEC, &ecKey.PublicKey)}
	for i := range jwksMaxKeys + 5 {
		set = append(set, ecJWK(fmt.Sprint("k", i), &ecKey2.PublicKey))
	}
	body, err := json.Marshal(map[string]any{"keys": set})
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseJWKS(body)
	if err != nil {
		t.Fatalf("parseJWKS: %v", err)
	}
	if len(got) != jwksMaxKeys {
		t.Fatalf("%d keys, want %d", len(got), jwksMaxKeys)
	}
	if got[0].kid != kidEC {
		t.Errorf("first key = %q, want %q", got[0].kid, kidEC)
	}

	empty, err := parseJWKS([]byte(`{"keys":[]}`))
	if err != nil || len(empty) != 0 {
		t.Errorf("empty set: %v, %v", empty, err)
	}
}
