package authz

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// BearerProtocolPrefix marks the Sec-WebSocket-Protocol entry that carries
// a bearer token, for browsers, whose WebSocket API cannot set headers:
// new WebSocket(url, ["panelx.v1", "panelx.bearer." + token]).
const BearerProtocolPrefix = "panelx.bearer."

// ErrOriginNotAllowed: a browser request from an origin that is neither
// this server nor one of the allowed origins (403).
var ErrOriginNotAllowed = errors.New("origin not allowed")

// Origins are the browser origins allowed to call the API besides the
// server's own (PANELX_CORS_ORIGINS).
type Origins struct {
	allowed map[string]bool
	any     bool
}

// NewOrigins accepts origins such as https://panel.example.com; "*"
// allows every origin.
func NewOrigins(list []string) *Origins {
	o := &Origins{allowed: map[string]bool{}}
	for _, s := range list {
		s = strings.TrimRight(strings.ToLower(strings.TrimSpace(s)), "/")
		switch s {
		case "":
		case "*":
			o.any = true
		default:
			o.allowed[s] = true
		}
	}
	return o
}

// List returns the configured origins.
func (o *Origins) List() []string {
	var out []string
	if o.any {
		out = append(out, "*")
	}
	for s := range o.allowed {
		out = append(out, s)
	}
	return out
}

// Allowed reports whether origin is one of the configured origins (the
// CORS rule; the server's own origin needs no CORS).
func (o *Origins) Allowed(origin string) bool {
	return o.any || o.allowed[strings.ToLower(origin)]
}

// Check allows requests without an Origin (not from a browser), from the
// server's own origin, and from the allowed origins.
func (o *Origins) Check(r *http.Request) error {
	origin := r.Header.Get("Origin")
	if origin == "" || o.Allowed(origin) {
		return nil
	}
	norm := strings.ToLower(origin)
	if u, err := url.Parse(norm); err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host) {
		return nil
	}
	return ErrOriginNotAllowed
}

// Upgrade is the outcome of authenticating a WebSocket upgrade.
type Upgrade struct {
	Principal *Principal
	// Protocols are the subprotocols the client offered, without the one
	// carrying the token: choose the reply from these, never echo the token.
	Protocols []string
	// Bearer is the credential itself, so a long stream can verify it
	// again (revoked tokens). Never logged, never sent anywhere.
	Bearer string
}

// AuthenticateUpgrade authenticates a WebSocket request before it is
// upgraded: the Origin must be allowed (ErrOriginNotAllowed otherwise), and
// the token comes from the Authorization header or from one
// Sec-WebSocket-Protocol entry "panelx.bearer.<token>" — never from the
// query string. Authorize the project with an Authorizer afterwards, as
// for any other route.
func (a *Authenticator) AuthenticateUpgrade(r *http.Request, origins *Origins) (*Upgrade, error) {
	if err := origins.Check(r); err != nil {
		return nil, err
	}
	if tokenInURL(r) {
		return nil, unauthenticated(reasonTokenInURL, nil)
	}
	var token string
	var protocols []string
	for _, header := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(header, ",") {
			p = strings.TrimSpace(p)
			if t, ok := strings.CutPrefix(p, BearerProtocolPrefix); ok {
				if token != "" {
					return nil, unauthenticated(reasonTwoCredentials, nil)
				}
				if token = t; token == "" {
					return nil, unauthenticated(reasonMissing, nil)
				}
				continue
			}
			if p != "" {
				protocols = append(protocols, p)
			}
		}
	}
	if len(r.Header.Values("Authorization")) > 0 {
		if token != "" {
			return nil, unauthenticated(reasonTwoCredentials, nil)
		}
		t, err := BearerToken(r)
		if err != nil {
			return nil, err
		}
		token = t
	}
	p, err := a.Authenticate(r.Context(), token)
	if err != nil {
		return nil, err
	}
	return &Upgrade{Principal: p, Protocols: protocols, Bearer: token}, nil
}
