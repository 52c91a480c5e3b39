package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	testSecret   = "super-secret-jwt-token-with-at-least-32-characters-long"
	testIssuer   = "https://abcdefgh.supabase.co/auth/v1"
	testSubject  = "9f0c3a52-1b7e-4d7a-9a55-2f1e8c1d0b11"
	testAudience = "authenticated"
)

// Keys are generated once: RSA generation is slow under -race.
var (
	testKeysOnce sync.Once
	ecKey        *ecdsa.PrivateKey
	ecKey2       *ecdsa.PrivateKey
	rsaKey       *rsa.PrivateKey
	rsaKey1024   *rsa.PrivateKey
)

func keys(t testing.TB) {
	t.Helper()
	testKeysOnce.Do(func() {
		ecKey = must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
		ecKey2 = must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
		rsaKey = must(rsa.GenerateKey(rand.Reader, 2048))
		rsaKey1024 = must(rsa.GenerateKey(rand.Reader, 1024))
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// fakeClock drives both token validation and the JWKS cache in tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now().Truncate(time.Second)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// jwksServer is a JWKS endpoint on 127.0.0.1 whose body can be swapped and
// whose requests are counted.
type jwksServer struct {
	*httptest.Server
	body   atomic.Pointer[[]byte]
	status atomic.Int32
	delay  atomic.Int64 // nanoseconds to wait before answering
	hits   atomic.Int64
}

func newJWKSServer(t testing.TB, keys ...map[string]any) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.status.Store(http.StatusOK)
	s.setKeys(t, keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		time.Sleep(time.Duration(s.delay.Load()))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(int(s.status.Load()))
		_, _ = w.Write(*s.body.Load())
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) setKeys(t testing.TB, keys ...map[string]any) {
	t.Helper()
	if keys == nil {
		keys = []map[string]any{}
	}
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	s.setBody(b)
}

func (s *jwksServer) setBody(b []byte) { s.body.Store(&b) }

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// ecJWK renders a P-256 public key the way Supabase publishes it.
func ecJWK(kid string, pub *ecdsa.PublicKey) map[string]any {
	raw, err := pub.Bytes() // 0x04 || X || Y
	if err != nil {
		panic(err)
	}
	return map[string]any{
		"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
		"x": b64(raw[1:33]), "y": b64(raw[33:]), "key_ops": []string{"verify"},
	}
}

func rsaJWK(kid string, pub *rsa.PublicKey) map[string]any {
	return map[string]any{
		"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
		"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes()),
	}
}

// validClaims are the claims of a typical Supabase access token at now.
func validClaims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"sub":           testSubject,
		"aud":           testAudience,
		"iss":           testIssuer,
		"exp":           now.Add(time.Hour).Unix(),
		"iat":           now.Unix(),
		"email":         "ada@example.com",
		"role":          "authenticated",
		"app_metadata":  map[string]any{"provider": "email"},
		"user_metadata": map[string]any{"name": "Ada"},
	}
}

// sign builds a token with method and key; kid "" leaves the header out.
func sign(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return s
}

// handBuilt assembles a token from raw header and claims JSON and a raw
// signature, for tokens the jwt library refuses to produce.
func handBuilt(t testing.TB, header, claims any, sig []byte) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return b64(h) + "." + b64(c) + "." + b64(sig)
}

// testEnv is a verifier with both HS256 and a JWKS of one EC, one RSA and
// one weak RSA key, on a fake clock.
type testEnv struct {
	v     *Verifier
	srv   *jwksServer
	clock *fakeClock
}

const (
	kidEC      = "ec-1"
	kidEC2     = "ec-2"
	kidRSA     = "rsa-1"
	kidRSA1024 = "rsa-weak"
)

func newTestEnv(t testing.TB, mutate func(*Config)) *testEnv {
	t.Helper()
	keys(t)
	srv := newJWKSServer(t,
		ecJWK(kidEC, &ecKey.PublicKey),
		rsaJWK(kidRSA, &rsaKey.PublicKey),
		rsaJWK(kidRSA1024, &rsaKey1024.PublicKey),
	)
	cfg := Config{
		HS256Secret: []byte(testSecret),
		JWKSURL:     srv.URL + "/auth/v1/.well-known/jwks.json",
		Issuer:      testIssuer,
		HTTPClient:  srv.Client(),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	clock := newFakeClock()
	v.now = clock.Now
	return &testEnv{v: v, srv: srv, clock: clock}
}

func ecdsaP384() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P384(), rand.Reader) }
