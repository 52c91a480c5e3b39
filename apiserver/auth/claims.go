package auth

import (
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Claims is what PanelX needs from a verified Supabase JWT.
type Claims struct {
	// Subject is the Supabase user id (the JWT "sub").
	Subject string
	Email   string
	// Role is Supabase's database role ("authenticated" for signed-in users).
	Role string
	// AppMetadata is Supabase's app_metadata: only the service role can
	// write it, so it may carry authorisation data.
	AppMetadata map[string]any
	ExpiresAt   time.Time
	Issuer      string
	// IsAnonymous is Supabase's is_anonymous claim, true for users of an
	// anonymous sign-in. Such a token proves only that someone asked for
	// one; the HTTP layer refuses it.
	IsAnonymous bool
}

// adminRoleKey is the app_metadata key that grants PanelX admin rights.
const adminRoleKey = "panelx_role"

// IsAdmin reports whether the user is a PanelX administrator: listed by
// subject in adminUsers (from the server's configuration), or carrying
// app_metadata.panelx_role == "admin". user_metadata is never consulted:
// Supabase users can edit their own user_metadata, so trusting it would let
// anyone make themselves admin.
func (c *Claims) IsAdmin(adminUsers map[string]bool) bool {
	if c == nil || c.Subject == "" {
		return false
	}
	if adminUsers[c.Subject] {
		return true
	}
	role, _ := c.AppMetadata[adminRoleKey].(string)
	return role == "admin"
}

// tokenClaims is the JSON shape of a Supabase access token. Fields PanelX
// does not use (user_metadata among them) are deliberately not decoded.
type tokenClaims struct {
	jwt.RegisteredClaims
	Email       string         `json:"email"`
	Role        string         `json:"role"`
	AppMetadata map[string]any `json:"app_metadata"`
	IsAnonymous bool           `json:"is_anonymous"`
}

func (tc *tokenClaims) toClaims() *Claims {
	c := &Claims{
		Subject:     tc.Subject,
		Email:       tc.Email,
		Role:        tc.Role,
		AppMetadata: tc.AppMetadata,
		Issuer:      tc.Issuer,
		IsAnonymous: tc.IsAnonymous,
	}
	if tc.ExpiresAt != nil {
		c.ExpiresAt = tc.ExpiresAt.Time
	}
	return c
}
