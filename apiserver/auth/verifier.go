package auth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	algHS256 = "HS256"
	algES256 = "ES256"
	algRS256 = "RS256"

	// MinSecretLen is the shortest HS256 secret NewVerifier accepts: HS256
	// needs at least 256 bits of key to keep its security level.
	MinSecretLen = 32
	// MaxTokenLen bounds the tokens Verify looks at; Supabase access tokens
	// are around 1 KiB.
	MaxTokenLen = 16 << 10

	defaultAudience       = "authenticated"
	defaultLeeway         = 30 * time.Second
	defaultJWKSRefreshMin = 30 * time.Second
	defaultJWKSTTL        = 10 * time.Minute
)

// Config configures a Verifier. At least one of HS256Secret and JWKSURL
// must be set; each enables only its own algorithms.
type Config struct {
	// HS256Secret is the Supabase project's legacy JWT secret, as the raw
	// bytes of the string the dashboard shows (Supabase does not
	// base64-decode it). It enables HS256 and nothing else.
	HS256Secret []byte
	// JWKSURL is https://<project>.supabase.co/auth/v1/.well-known/jwks.json.
	// It enables ES256 (P-256 keys) and RS256 (RSA keys ≥ 2048 bits). It
	// must be https, except on a loopback host (the local Supabase CLI).
	JWKSURL string
	// Audience must be among the token's aud; default "authenticated".
	Audience string
	// Issuer, when set, must equal the token's iss
	// (https://<project>.supabase.co/auth/v1).
	Issuer string
	// Leeway is the clock skew allowed on exp, nbf and iat; default 30s.
	Leeway time.Duration
	// HTTPClient fetches the JWKS; default a client with a 5s timeout.
	HTTPClient *http.Client
	// JWKSRefreshMin is the least time between two JWKS fetches, which is
	// how often an unknown kid may trigger a refetch; default 30s.
	JWKSRefreshMin time.Duration
	// JWKSTTL is how long fetched keys are used before refetching; default 10m.
	JWKSTTL time.Duration
}

// Verifier verifies Supabase JWTs. It is safe for concurrent use.
type Verifier struct {
	secret  []byte                 // nil when HS256 is not configured
	jwks    *jwksCache             // nil when no JWKS URL is configured
	parsers map[string]*jwt.Parser // one per enabled algorithm
	now     func() time.Time       // replaced by tests
	checked verifiedCache
}

// NewVerifier checks cfg and builds a Verifier. It does no I/O: the JWKS is
// fetched on first use.
func NewVerifier(cfg Config) (*Verifier, error) {
	cfg, err := withDefaults(cfg)
	if err != nil {
		return nil, err
	}
	v := &Verifier{now: time.Now, parsers: make(map[string]*jwt.Parser)}
	clock := func() time.Time { return v.now() }

	if cfg.HS256Secret != nil {
		v.secret = append([]byte(nil), cfg.HS256Secret...)
		v.parsers[algHS256] = newParser(cfg, algHS256, clock)
	}
	if cfg.JWKSURL != "" {
		v.jwks = &jwksCache{
			url:        cfg.JWKSURL,
			client:     cfg.HTTPClient,
			ttl:        cfg.JWKSTTL,
			refreshMin: cfg.JWKSRefreshMin,
			now:        clock,
		}
		v.parsers[algES256] = newParser(cfg, algES256, clock)
		v.parsers[algRS256] = newParser(cfg, algRS256, clock)
	}
	return v, nil
}

func withDefaults(cfg Config) (Config, error) {
	if cfg.HS256Secret == nil && cfg.JWKSURL == "" {
		return cfg, errors.New("auth: config: set HS256Secret, JWKSURL or both")
	}
	if cfg.HS256Secret != nil && len(cfg.HS256Secret) < MinSecretLen {
		return cfg, fmt.Errorf("auth: config: HS256Secret is %d bytes, want at least %d", len(cfg.HS256Secret), MinSecretLen)
	}
	if cfg.JWKSURL != "" {
		if err := checkJWKSURL(cfg.JWKSURL); err != nil {
			return cfg, fmt.Errorf("auth: config: JWKSURL: %w", err)
		}
	}
	if cfg.Leeway < 0 || cfg.JWKSRefreshMin < 0 || cfg.JWKSTTL < 0 {
		return cfg, errors.New("auth: config: durations must not be negative")
	}
	if cfg.Audience == "" {
		cfg.Audience = defaultAudience
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = defaultLeeway
	}
	if cfg.JWKSRefreshMin == 0 {
		cfg.JWKSRefreshMin = defaultJWKSRefreshMin
	}
	if cfg.JWKSTTL == 0 {
		cfg.JWKSTTL = defaultJWKSTTL
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: jwksFetchTimeout}
	}
	return cfg, nil
}

// checkJWKSURL insists on https: whoever controls the JWKS response can
// mint tokens for any user. Plain http is allowed only on loopback, where
// the Supabase CLI serves it.
func checkJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Host == "" {
		return errors.New("no host")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return errors.New("plain http is only allowed on a loopback host")
	default:
		return fmt.Errorf("unsupported scheme %q", u.Scheme)
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// newParser builds the parser for one algorithm. Pinning WithValidMethods
// to that single algorithm means a token can never be checked with a key
// meant for another one.
func newParser(cfg Config, alg string, clock func() time.Time) *jwt.Parser {
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{alg}),
		jwt.WithExpirationRequired(),
		jwt.WithAudience(cfg.Audience),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(clock),
		jwt.WithStrictDecoding(),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	return jwt.NewParser(opts...)
}

// Verify checks token's signature and claims and returns its claims. Every
// error wraps ErrUnauthenticated; see Reason for the client-safe reason.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	if token == "" {
		return nil, unauthenticated(reasonMissing, nil)
	}
	if len(token) > MaxTokenLen {
		return nil, unauthenticated(reasonTooLarge, nil)
	}
	digest := sha256.Sum256([]byte(token))
	if claims, ok := v.checked.get(digest, v.now(), v.keysStillHeld); ok {
		return claims, nil
	}
	hdr, err := peekHeader(token)
	if err != nil {
		return nil, unauthenticated(reasonMalformed, err)
	}
	if hdr.hasCrit {
		// RFC 7515 §4.1.11: extensions we do not understand must be refused.
		return nil, unauthenticated(reasonUnsupportedCrit, nil)
	}
	parser, ok := v.parsers[hdr.alg]
	if !ok {
		return nil, unauthenticated(reasonAlgNotAllowed, fmt.Errorf("alg %q", hdr.alg))
	}

	var keysAt time.Time
	if hdr.alg != algHS256 {
		keysAt = v.jwks.keysFrom()
	}
	var tc tokenClaims
	if _, err := parser.ParseWithClaims(token, &tc, v.keyfunc(ctx, hdr.alg)); err != nil {
		return nil, classify(err, &tc)
	}
	if tc.Subject == "" {
		return nil, unauthenticated(reasonMissingSubject, nil)
	}
	claims := tc.toClaims()
	// Remember the token only when the key set did not change while it was
	// checked, so that keysAt names the keys that verified it.
	if hdr.alg == algHS256 || (!keysAt.IsZero() && v.jwks.keysFrom().Equal(keysAt)) {
		v.checked.put(digest, claims, v.now(), keysAt)
	}
	return claims, nil
}

func (v *Verifier) keysStillHeld(keysAt time.Time) bool {
	return v.jwks != nil && v.jwks.stillHeld(keysAt)
}

// keyfunc returns the key material for a token whose header said alg. It
// re-checks the method the parser resolved, so a key type can never be
// paired with another algorithm even if the parser options were changed.
func (v *Verifier) keyfunc(ctx context.Context, alg string) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		switch {
		case alg == algHS256 && t.Method == jwt.SigningMethodHS256 && v.secret != nil:
			// Only the configured secret: never JWKS material, which is public.
			return v.secret, nil
		case alg == algES256 && t.Method == jwt.SigningMethodES256 && v.jwks != nil,
			alg == algRS256 && t.Method == jwt.SigningMethodRS256 && v.jwks != nil:
			return v.jwksKeys(ctx, t, alg)
		default:
			return nil, unauthenticated(reasonAlgNotAllowed, nil)
		}
	}
}

// jwksKeys returns the JWKS keys of alg's type that the token's kid names
// (all of them when it names none).
func (v *Verifier) jwksKeys(ctx context.Context, t *jwt.Token, alg string) (any, error) {
	kid, err := headerKid(t.Header)
	if err != nil {
		return nil, unauthenticated(reasonMalformed, err)
	}
	keys, err := v.jwks.lookup(ctx, alg, kid)
	if err != nil {
		return nil, err
	}
	set := jwt.VerificationKeySet{Keys: make([]jwt.VerificationKey, len(keys))}
	for i, k := range keys {
		set.Keys[i] = k
	}
	return set, nil
}

// headerKid returns the kid header, "" when absent.
func headerKid(h map[string]any) (string, error) {
	raw, ok := h["kid"]
	if !ok {
		return "", nil
	}
	kid, ok := raw.(string)
	if !ok {
		return "", errors.New("kid header is not a string")
	}
	return kid, nil
}

type tokenHeader struct {
	alg     string
	hasCrit bool
}

// peekHeader decodes the JOSE header to choose the parser. It decodes into a
// map, as the jwt library does, so both read the same "alg" even when the
// header has odd casing or duplicate members.
func peekHeader(token string) (tokenHeader, error) {
	seg, _, ok := strings.Cut(token, ".")
	if !ok {
		return tokenHeader{}, errors.New("not a JWS compact serialization")
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(seg)
	if err != nil {
		return tokenHeader{}, fmt.Errorf("header: %w", err)
	}
	var h map[string]any
	if err := json.Unmarshal(raw, &h); err != nil {
		return tokenHeader{}, fmt.Errorf("header: %w", err)
	}
	alg, ok := h["alg"].(string)
	if !ok {
		return tokenHeader{}, errors.New("header: alg missing or not a string")
	}
	_, hasCrit := h["crit"]
	return tokenHeader{alg: alg, hasCrit: hasCrit}, nil
}

// classify turns a jwt library error into a client-safe reason. Reasons set
// by the keyfunc win; claim checks go from most to least specific.
func classify(err error, tc *tokenClaims) error {
	var ae *authError
	if errors.As(err, &ae) {
		return ae
	}
	reason := reasonInvalidClaims
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed), errors.Is(err, jwt.ErrTokenUnverifiable):
		reason = reasonMalformed
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		reason = reasonBadSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		reason = reasonExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		reason = reasonNotYetValid
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		reason = reasonIssuedInFuture
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		reason = reasonWrongAudience
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		reason = reasonWrongIssuer
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		reason = missingClaimReason(tc)
	}
	return unauthenticated(reason, err)
}

// missingClaimReason names which required claim was absent.
func missingClaimReason(tc *tokenClaims) string {
	switch {
	case tc.ExpiresAt == nil:
		return reasonMissingExp
	case len(tc.Audience) == 0:
		return reasonWrongAudience
	case tc.Issuer == "":
		return reasonWrongIssuer
	default:
		return reasonMissingClaim
	}
}
