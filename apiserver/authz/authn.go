package authz

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/panelx/panelx/apiserver/auth"
	"github.com/panelx/panelx/store"
)

// ErrUnauthenticated is wrapped by every authentication failure: answer 401
// and show [Reason] to the client.
var ErrUnauthenticated = auth.ErrUnauthenticated

// Client-safe reasons of the failures decided here (apiserver/auth has its own
// for JWTs).
const (
	reasonMissing         = "missing token"
	reasonMalformedHeader = "the Authorization header must be: Bearer <token>"
	reasonSeveralHeaders  = "several Authorization headers"
	reasonTooLarge        = "token too large"
	reasonMalformed       = "malformed token"
	reasonUnknownToken    = "unknown or revoked API token"
	reasonTokenExpired    = "token expired"
	reasonNoJWT           = "JWT authentication is not configured on this server; use an API token"
	reasonAnonymous       = "anonymous sign-ins are not accepted"
	reasonNotAUser        = "the token's role is not authenticated: only a signed-in user's access token is accepted"
	reasonBadSubject      = "invalid subject"
	reasonTokenInURL      = "tokens in the URL are not accepted; send an Authorization header"
	reasonTwoCredentials  = "more than one credential"
)

// AuthError is an authentication failure with a client-safe reason; the
// cause is for logs only.
type AuthError struct {
	Reason string
	cause  error
}

func unauthenticated(reason string, cause error) error {
	return &AuthError{Reason: reason, cause: cause}
}

func (e *AuthError) Error() string { return ErrUnauthenticated.Error() + ": " + e.Reason }

func (e *AuthError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrUnauthenticated}
	}
	return []error{ErrUnauthenticated, e.cause}
}

// Reason returns the client-safe reason of an authentication failure, from
// this package or from apiserver/auth; "" when err is not one.
func Reason(err error) string {
	var ae *AuthError
	if errors.As(err, &ae) {
		return ae.Reason
	}
	if r := auth.Reason(err); r != "" {
		return r
	}
	if errors.Is(err, ErrUnauthenticated) {
		return "unauthenticated"
	}
	return ""
}

// touchInterval is how often the last use of an API token is written: a
// dashboard of "last used" needs minutes, not every request.
const touchInterval = time.Minute

// AuthenticatorOptions configure an Authenticator.
type AuthenticatorOptions struct {
	// Verifier checks Supabase JWTs; nil refuses every JWT (API tokens only).
	Verifier *auth.Verifier
	// Tokens looks API tokens up and records their use.
	Tokens func() store.Tokens
	// AdminUsers are the user ids of the server administrators.
	AdminUsers []string
	Logger     *zap.Logger
	// Now is the clock (for tests); default time.Now.
	Now func() time.Time
	// Cache, when set, keeps verified API tokens (see Cache).
	Cache *Cache
}

// Authenticator turns bearer credentials into principals. It is safe for
// concurrent use.
type Authenticator struct {
	verifier *auth.Verifier
	tokens   func() store.Tokens
	admins   map[string]bool
	log      *zap.Logger
	now      func() time.Time
	cache    *Cache

	mu      sync.Mutex
	touched map[string]time.Time // token id → last Touch written
}

// NewAuthenticator builds an Authenticator.
func NewAuthenticator(opts AuthenticatorOptions) *Authenticator {
	a := &Authenticator{
		verifier: opts.Verifier,
		tokens:   opts.Tokens,
		admins:   map[string]bool{},
		log:      opts.Logger,
		now:      opts.Now,
		cache:    opts.Cache,
		touched:  map[string]time.Time{},
	}
	for _, u := range opts.AdminUsers {
		if u = strings.TrimSpace(u); u != "" {
			a.admins[u] = true
		}
	}
	if a.log == nil {
		a.log = zap.NewNop()
	}
	if a.now == nil {
		a.now = time.Now
	}
	return a
}

// IsAdminUser reports whether userID is listed as a server administrator.
func (a *Authenticator) IsAdminUser(userID string) bool { return a.admins[userID] }

// AuthenticateRequest authenticates the Authorization header of r. A token
// in the query string is refused outright: URLs end up in logs and
// browser histories.
func (a *Authenticator) AuthenticateRequest(r *http.Request) (*Principal, error) {
	if tokenInURL(r) {
		return nil, unauthenticated(reasonTokenInURL, nil)
	}
	tok, err := BearerToken(r)
	if err != nil {
		return nil, err
	}
	return a.Authenticate(r.Context(), tok)
}

func tokenInURL(r *http.Request) bool {
	q := r.URL.Query()
	return q.Has("access_token") || q.Has("token")
}

// BearerToken returns the token of the request's Authorization header.
func BearerToken(r *http.Request) (string, error) {
	values := r.Header.Values("Authorization")
	switch len(values) {
	case 0:
		return "", unauthenticated(reasonMissing, nil)
	case 1:
	default:
		return "", unauthenticated(reasonSeveralHeaders, nil)
	}
	if strings.TrimSpace(values[0]) == "" {
		return "", unauthenticated(reasonMissing, nil)
	}
	scheme, tok, ok := strings.Cut(strings.TrimSpace(values[0]), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", unauthenticated(reasonMalformedHeader, nil)
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", unauthenticated(reasonMissing, nil)
	}
	if strings.ContainsAny(tok, " \t") {
		return "", unauthenticated(reasonMalformedHeader, nil)
	}
	return tok, nil
}

// Authenticate verifies a bearer token: a personal API token (pnx_…) or a
// Supabase JWT. Every failure wraps ErrUnauthenticated, except a store
// failure while looking a token up, which is returned as it is (a 500, not
// a 401 that would make clients drop a good token).
func (a *Authenticator) Authenticate(ctx context.Context, bearer string) (*Principal, error) {
	switch {
	case bearer == "":
		return nil, unauthenticated(reasonMissing, nil)
	case len(bearer) > auth.MaxTokenLen:
		return nil, unauthenticated(reasonTooLarge, nil)
	case auth.LooksLikeAPIToken(bearer):
		return a.apiToken(ctx, bearer)
	case strings.HasPrefix(bearer, auth.APITokenPrefix):
		return nil, unauthenticated(reasonMalformed, nil)
	case a.verifier == nil:
		return nil, unauthenticated(reasonNoJWT, nil)
	}
	claims, err := a.verifier.Verify(ctx, bearer)
	if err != nil {
		if errors.Is(err, ErrUnauthenticated) {
			return nil, err
		}
		return nil, unauthenticated("invalid token", err)
	}
	if claims.IsAnonymous {
		return nil, unauthenticated(reasonAnonymous, nil)
	}
	// Supabase signs its anon and service_role keys (and tokens minted
	// for them, sometimes with a sub) with the same key as users' access
	// tokens: the role claim is what tells a signed-in user apart.
	if claims.Role != "authenticated" {
		return nil, unauthenticated(reasonNotAUser, fmt.Errorf("role %q", claims.Role))
	}
	if !validUserID(claims.Subject) || claims.Subject == EdgeUserID {
		return nil, unauthenticated(reasonBadSubject, nil)
	}
	return &Principal{
		UserID:    claims.Subject,
		Email:     claims.Email,
		Admin:     claims.IsAdmin(a.admins),
		Method:    MethodJWT,
		ExpiresAt: claims.ExpiresAt,
	}, nil
}

func (a *Authenticator) apiToken(ctx context.Context, bearer string) (*Principal, error) {
	hash := auth.HashAPIToken(bearer)
	tok, ok := a.cache.Token(hash)
	if !ok {
		gen := a.cache.Generation()
		var err error
		tok, err = a.tokens().GetByHash(ctx, hash)
		if errors.Is(err, store.ErrNotFound) {
			return nil, unauthenticated(reasonUnknownToken, nil)
		}
		if err != nil {
			return nil, err
		}
		a.cache.PutToken(gen, hash, tok)
	}
	now := a.now()
	if tok.ExpiresAt != nil && !now.Before(*tok.ExpiresAt) {
		return nil, unauthenticated(reasonTokenExpired, nil)
	}
	a.touch(ctx, tok.ID, now)
	p := &Principal{
		UserID:  tok.UserID,
		Admin:   a.admins[tok.UserID] && tok.UserID != EdgeUserID,
		Method:  MethodAPIToken,
		TokenID: tok.ID,
		Project: tok.Project,
		Edge:    tok.UserID == EdgeUserID,
	}
	if tok.ExpiresAt != nil {
		p.ExpiresAt = *tok.ExpiresAt
	}
	return p, nil
}

// touch records the token's use at most once per touchInterval per process.
// It is best effort: a failure is logged, and the request goes on.
func (a *Authenticator) touch(ctx context.Context, id string, now time.Time) {
	a.mu.Lock()
	last, seen := a.touched[id]
	if seen && now.Sub(last) < touchInterval {
		a.mu.Unlock()
		return
	}
	a.touched[id] = now
	if len(a.touched) > 10_000 { // forget tokens not used lately
		for k, t := range a.touched {
			if now.Sub(t) >= touchInterval {
				delete(a.touched, k)
			}
		}
	}
	a.mu.Unlock()
	// Off the request's path: nobody waits for a "last used" time.
	go func() {
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := a.tokens().Touch(tctx, id, now); err != nil {
			a.log.Warn("record API token use", zap.String("token_id", id), zap.Error(err))
		}
	}()
}

// validUserID accepts the user ids PanelX stores: printable UTF-8, at most
// 255 bytes. Supabase's are UUIDs.
func validUserID(s string) bool {
	if s == "" || len(s) > 255 || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// ValidUserID reports whether s can be a user id (for member routes): the
// edge's reserved user cannot.
func ValidUserID(s string) bool { return validUserID(s) && s != EdgeUserID }
