package authz

import (
	"context"
	"time"
)

// Method says how a principal authenticated.
type Method string

const (
	MethodJWT      Method = "jwt"
	MethodAPIToken Method = "api-token"
)

// Principal is an authenticated caller.
type Principal struct {
	// UserID is the Supabase user id (the JWT subject) or the owner of the
	// API token.
	UserID string `json:"userId"`
	Email  string `json:"email,omitempty"`
	// Admin: a server administrator (PANELX_ADMIN_USERS, or
	// app_metadata.panelx_role=admin in a JWT). It relaxes the spec policy
	// only; it grants no access to other users' projects.
	Admin  bool   `json:"admin"`
	Method Method `json:"method"`
	// TokenID is the API token's id (API tokens only).
	TokenID string `json:"tokenId,omitempty"`
	// Project, for a project-scoped API token, is the only project this
	// principal can reach.
	Project string `json:"project,omitempty"`
	// ExpiresAt is when the credential expires (zero: never).
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
	// Edge: an edge process's token. It reaches the /api/v1/edge routes
	// (every project's routing data, uploaded certificates included) and
	// nothing else: no project, no token management.
	Edge bool `json:"edge,omitempty"`
}

// EdgeUserID is the reserved user of edge tokens. No JWT subject and no
// member may carry it.
const EdgeUserID = "panelx:edge"

// Scoped reports whether the principal is limited to one project.
func (p *Principal) Scoped() bool { return p != nil && p.Project != "" }

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal of ctx, or nil.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}
