package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

const (
	// jwksMaxBytes bounds the JWKS response; real ones are a few KiB.
	jwksMaxBytes = 1 << 20
	// jwksMaxKeys bounds the key set, because a token without kid is tried
	// against every key of its type.
	jwksMaxKeys = 32
	// jwksFetchTimeout bounds one fetch, whatever the caller's deadline.
	jwksFetchTimeout = 5 * time.Second

	rsaMinBits = 2048
	// rsaMaxBits keeps a hostile or broken JWKS from making every RS256
	// verification expensive.
	rsaMaxBits = 8192
	// p256CoordLen is the fixed length of a P-256 coordinate (RFC 7518 §6.2.1.2).
	p256CoordLen = 32
)

// publicKey is one usable verification key from the JWKS.
type publicKey struct {
	kid string
	alg string // the one algorithm this key may verify: algES256 or algRS256
	key any    // *ecdsa.PublicKey on P-256, or *rsa.PublicKey of rsaMinBits..rsaMaxBits
}

// jwksCache holds the keys of one JWKS URL. Fetches happen lazily, at most
// one at a time and at most once per refreshMin, so that tokens with made-up
// kids cannot turn PanelX into a request amplifier against the JWKS host.
type jwksCache struct {
	url        string
	client     *http.Client
	ttl        time.Duration
	refreshMin time.Duration
	now        func() time.Time

	mu          sync.Mutex
	keys        []publicKey
	fetchedAt   time.Time     // last successful fetch
	attemptedAt time.Time     // last fetch started, successful or not
	lastErr     error         // error of the last fetch, nil after a success
	inflight    chan struct{} // closed when the running fetch ends; nil if none
}

// snapshot returns the current keys and whether they are fresh.
func (c *jwksCache) snapshot() (keys []publicKey, fresh bool, lastErr error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fresh = !c.fetchedAt.IsZero() && c.now().Sub(c.fetchedAt) < c.ttl
	return c.keys, fresh, c.lastErr
}

// keysFrom returns when the key set held now was fetched (zero: none yet).
func (c *jwksCache) keysFrom() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fetchedAt
}

// stillHeld tells whether the key set fetched at keysAt is the one held
// and still fresh.
func (c *jwksCache) stillHeld(keysAt time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fetchedAt.Equal(keysAt) && c.now().Sub(c.fetchedAt) < c.ttl
}

// lookup returns the keys that may verify a token signed with alg and
// carrying kid ("" when the token has none), refetching the JWKS when the
// cache is stale or the kid is unknown (subject to the refresh bound).
func (c *jwksCache) lookup(ctx context.Context, alg, kid string) ([]any, error) {
	if _, fresh, _ := c.snapshot(); !fresh {
		c.refresh(ctx)
	}
	keys, _, lastErr := c.snapshot()
	found, err := selectKeys(keys, alg, kid)
	if errors.Is(err, errNoSuchKey) {
		// An unknown kid is how key rotation shows up: refetch once.
		c.refresh(ctx)
		keys, _, lastErr = c.snapshot()
		found, err = selectKeys(keys, alg, kid)
	}
	switch {
	case err == nil:
		return found, nil
	case errors.Is(err, errNoSuchKey) && len(keys) == 0 && lastErr != nil:
		return nil, unauthenticated(reasonKeysUnavail, lastErr)
	case errors.Is(err, errNoSuchKey):
		return nil, unauthenticated(reasonUnknownKey, err)
	default:
		return nil, unauthenticated(reasonKeyMismatch, err)
	}
}

var (
	errNoSuchKey   = errors.New("no key with this kid")
	errKeyMismatch = errors.New("key type does not match token algorithm")
)

// selectKeys picks the keys for alg: the one(s) named by kid, or every key
// of alg's type when the token has no kid.
func selectKeys(keys []publicKey, alg, kid string) ([]any, error) {
	var found []any
	named := false
	for _, k := range keys {
		if kid != "" && k.kid != kid {
			continue
		}
		named = true
		if k.alg == alg {
			found = append(found, k.key)
		}
	}
	switch {
	case len(found) > 0:
		return found, nil
	case kid != "" && named:
		return nil, fmt.Errorf("kid %q: %w", kid, errKeyMismatch)
	case kid != "":
		return nil, fmt.Errorf("kid %q: %w", kid, errNoSuchKey)
	default:
		return nil, fmt.Errorf("no %s key: %w", alg, errNoSuchKey)
	}
}

// refresh starts a fetch unless one is running or the last one started less
// than refreshMin ago, then waits for the running fetch or for ctx. The
// fetch runs detached from ctx (but with its own timeout) so that one
// impatient client cannot fail it for everyone waiting on it.
func (c *jwksCache) refresh(ctx context.Context) {
	c.mu.Lock()
	done := c.inflight
	if done == nil {
		now := c.now()
		if !c.attemptedAt.IsZero() && now.Sub(c.attemptedAt) < c.refreshMin {
			c.mu.Unlock()
			return
		}
		c.attemptedAt = now
		done = make(chan struct{})
		c.inflight = done
		go c.fetchAndStore(context.WithoutCancel(ctx), done)
	}
	c.mu.Unlock()

	select {
	case <-done:
	case <-ctx.Done():
	}
}

// fetchAndStore runs one fetch; on failure the old keys stay in place.
func (c *jwksCache) fetchAndStore(ctx context.Context, done chan struct{}) {
	keys, err := c.fetch(ctx)

	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.lastErr = err
	} else {
		c.keys, c.fetchedAt, c.lastErr = keys, c.now(), nil
	}
	c.inflight = nil
	close(done)
}

func (c *jwksCache) fetch(ctx context.Context) ([]publicKey, error) {
	ctx, cancel := context.WithTimeout(ctx, jwksFetchTimeout)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks: build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jwks: fetch: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks: fetch: unexpected status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, jwksMaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("jwks: read body: %w", err)
	}
	if len(body) > jwksMaxBytes {
		return nil, fmt.Errorf("jwks: response larger than %d bytes", jwksMaxBytes)
	}
	return parseJWKS(body)
}

// parseJWKS decodes a JWK Set, skipping keys PanelX cannot or must not use.
// A well-formed set with no usable key is not an error: it replaces the old
// keys, so a revoked key stops working.
func parseJWKS(body []byte) ([]publicKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("jwks: decode: %w", err)
	}
	if set.Keys == nil {
		return nil, errors.New(`jwks: decode: no "keys" array`)
	}
	keys := make([]publicKey, 0, min(len(set.Keys), jwksMaxKeys))
	for _, raw := range set.Keys {
		if len(keys) == jwksMaxKeys {
			break
		}
		if k, err := parseJWK(raw); err == nil {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// jwk holds the JWK members PanelX reads (RFC 7517, RFC 7518 §6).
type jwk struct {
	Kty    string   `json:"kty"`
	Kid    string   `json:"kid"`
	Alg    string   `json:"alg"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
	Crv    string   `json:"crv"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
	N      string   `json:"n"`
	E      string   `json:"e"`
}

// parseJWK turns one JWK into a publicKey pinned to a single algorithm.
func parseJWK(raw json.RawMessage) (publicKey, error) {
	var k jwk
	if err := json.Unmarshal(raw, &k); err != nil {
		return publicKey{}, fmt.Errorf("jwk: decode: %w", err)
	}
	if k.Use != "" && k.Use != "sig" {
		return publicKey{}, fmt.Errorf("jwk %q: use %q is not sig", k.Kid, k.Use)
	}
	if k.KeyOps != nil && !slices.Contains(k.KeyOps, "verify") {
		return publicKey{}, fmt.Errorf("jwk %q: key_ops lacks verify", k.Kid)
	}
	switch k.Kty {
	case "EC":
		return parseECKey(k)
	case "RSA":
		return parseRSAKey(k)
	default:
		return publicKey{}, fmt.Errorf("jwk %q: unsupported kty %q", k.Kid, k.Kty)
	}
}

func parseECKey(k jwk) (publicKey, error) {
	if k.Alg != "" && k.Alg != algES256 {
		return publicKey{}, fmt.Errorf("jwk %q: EC key with alg %q", k.Kid, k.Alg)
	}
	if k.Crv != "P-256" {
		return publicKey{}, fmt.Errorf("jwk %q: unsupported curve %q", k.Kid, k.Crv)
	}
	x, errX := decodeB64URL(k.X)
	y, errY := decodeB64URL(k.Y)
	if err := errors.Join(errX, errY); err != nil {
		return publicKey{}, fmt.Errorf("jwk %q: %w", k.Kid, err)
	}
	if len(x) != p256CoordLen || len(y) != p256CoordLen {
		return publicKey{}, fmt.Errorf("jwk %q: P-256 coordinates must be %d bytes", k.Kid, p256CoordLen)
	}
	point := append(append([]byte{4}, x...), y...)
	// ParseUncompressedPublicKey rejects points not on the curve.
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	if err != nil {
		return publicKey{}, fmt.Errorf("jwk %q: %w", k.Kid, err)
	}
	return publicKey{kid: k.Kid, alg: algES256, key: pub}, nil
}

func parseRSAKey(k jwk) (publicKey, error) {
	if k.Alg != "" && k.Alg != algRS256 {
		return publicKey{}, fmt.Errorf("jwk %q: RSA key with alg %q", k.Kid, k.Alg)
	}
	nb, errN := decodeB64URL(k.N)
	eb, errE := decodeB64URL(k.E)
	if err := errors.Join(errN, errE); err != nil {
		return publicKey{}, fmt.Errorf("jwk %q: %w", k.Kid, err)
	}
	n := new(big.Int).SetBytes(nb)
	if bits := n.BitLen(); bits < rsaMinBits || bits > rsaMaxBits {
		return publicKey{}, fmt.Errorf("jwk %q: RSA modulus of %d bits, want %d..%d", k.Kid, bits, rsaMinBits, rsaMaxBits)
	}
	e := new(big.Int).SetBytes(eb)
	if e.BitLen() > 31 || e.Int64() < 3 || e.Bit(0) == 0 {
		return publicKey{}, fmt.Errorf("jwk %q: invalid RSA exponent", k.Kid)
	}
	pub := &rsa.PublicKey{N: n, E: int(e.Int64())}
	return publicKey{kid: k.Kid, alg: algRS256, key: pub}, nil
}

// decodeB64URL decodes base64url, tolerating the padding some JWKS
// publishers add despite RFC 7515.
func decodeB64URL(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("empty base64url value")
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, fmt.Errorf("base64url: %w", err)
	}
	return b, nil
}
