package auth

import (
	"context"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

func TestIsAdmin(t *testing.T) {
	admins := map[string]bool{"user-admin": true}
	tests := []struct {
		name   string
		claims *Claims
		want   bool
	}{
		{"listed subject", &Claims{Subject: "user-admin"}, true},
		{"app_metadata admin", &Claims{Subject: "u1", AppMetadata: map[string]any{"panelx_role": "admin"}}, true},
		{"plain user", &Claims{Subject: "u1", AppMetadata: map[string]any{"provider": "email"}}, false},
		{"app_metadata other role", &Claims{Subject: "u1", AppMetadata: map[string]any{"panelx_role": "viewer"}}, false},
		{"app_metadata role differently cased", &Claims{Subject: "u1", AppMetadata: map[string]any{"panelx_role": "Admin"}}, false},
		{"app_metadata role not a string", &Claims{Subject: "u1", AppMetadata: map[string]any{"panelx_role": true}}, false},
		{"supabase role is not panelx admin", &Claims{Subject: "u1", Role: "service_role"}, false},
		{"no subject", &Claims{AppMetadata: map[string]any{"panelx_role": "admin"}}, false},
		{"nil claims", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.claims.IsAdmin(admins); got != tt.want {
				t.Errorf("IsAdmin = %v, want %v", got, tt.want)
			}
		})
	}
	if (&Claims{Subject: "user-admin"}).IsAdmin(nil) {
		t.Error("IsAdmin with a nil admin list")
	}
}

// TestIsAdminIgnoresUserMetadata: Supabase users can write their own
// user_metadata (supabase.auth.updateUser({data: …})), so a panelx_role in
// it must never make them admin, however the token is signed.
func TestIsAdminIgnoresUserMetadata(t *testing.T) {
	e := newTestEnv(t, nil)
	now := e.clock.Now()
	selfPromoted := with(validClaims(now), "user_metadata", map[string]any{"panelx_role": "admin", "role": "admin"})
	promoted := with(validClaims(now), "app_metadata", map[string]any{"provider": "email", "panelx_role": "admin"})

	tests := []struct {
		name  string
		token string
		admin bool
	}{
		{"user_metadata HS256", sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", selfPromoted), false},
		{"user_metadata ES256", sign(t, jwt.SigningMethodES256, ecKey, kidEC, selfPromoted), false},
		{"app_metadata ES256", sign(t, jwt.SigningMethodES256, ecKey, kidEC, promoted), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := e.v.Verify(context.Background(), tt.token)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got := c.IsAdmin(nil); got != tt.admin {
				t.Errorf("IsAdmin = %v, want %v (claims %+v)", got, tt.admin, c)
			}
		})
	}
}

// TestIsAnonymousClaim: Supabase marks tokens of anonymous sign-ins with
// is_anonymous; the claim must reach Claims so the API can refuse them.
func TestIsAnonymousClaim(t *testing.T) {
	e := newTestEnv(t, nil)
	now := e.clock.Now()
	tests := []struct {
		name   string
		claims jwt.MapClaims
		want   bool
	}{
		{"anonymous", with(validClaims(now), "is_anonymous", true), true},
		{"signed in", with(validClaims(now), "is_anonymous", false), false},
		{"claim absent", validClaims(now), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := e.v.Verify(context.Background(), sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", tt.claims))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.IsAnonymous != tt.want {
				t.Errorf("IsAnonymous = %v, want %v", c.IsAnonymous, tt.want)
			}
		})
	}
	// A non-boolean is_anonymous is not a Supabase token: refuse it rather
	// than guess.
	tok := sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", with(validClaims(now), "is_anonymous", "true"))
	if _, err := e.v.Verify(context.Background(), tok); err == nil {
		t.Error("Verify accepted is_anonymous as a string")
	}
}
