package auth

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzVerify feeds arbitrary strings to Verify: it must never panic, and must
// return either claims or an ErrUnauthenticated error with a reason.
// Run with: go test -run '^$' -fuzz FuzzVerify ./apiserver/auth/
func FuzzVerify(f *testing.F) {
	e := newTestEnv(f, nil)
	now := e.clock.Now()
	secret := []byte(testSecret)
	seeds := []string{
		"",
		".",
		"..",
		"...",
		"a.b.c",
		"eyJ.eyJ.",
		"pnx_" + strings.Repeat("A", 43),
		sign(f, jwt.SigningMethodHS256, secret, "", validClaims(now)),
		sign(f, jwt.SigningMethodES256, ecKey, kidEC, validClaims(now)),
		sign(f, jwt.SigningMethodRS256, rsaKey, kidRSA, validClaims(now)),
		sign(f, jwt.SigningMethodES256, ecKey, "", validClaims(now)),
		sign(f, jwt.SigningMethodRS256, rsaKey, kidEC, validClaims(now)),
		sign(f, jwt.SigningMethodHS256, secret, "", with(validClaims(now), "exp", 1e300)),
		sign(f, jwt.SigningMethodHS256, secret, "", with(validClaims(now), "aud", []any{1, nil, "x"})),
		sign(f, jwt.SigningMethodHS256, secret, "", with(validClaims(now), "app_metadata", []int{1})),
		handBuilt(f, map[string]any{"alg": "none"}, validClaims(now), nil),
		handBuilt(f, map[string]any{"alg": "ES256", "kid": []int{1}}, validClaims(now), make([]byte, 64)),
		handBuilt(f, map[string]any{"alg": "RS256", "kid": kidRSA}, validClaims(now), make([]byte, 256)),
		handBuilt(f, map[string]any{"alg": "HS256", "crit": "x"}, "not an object", nil),
		handBuilt(f, []int{1}, validClaims(now), nil),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		c, err := e.v.Verify(context.Background(), token)
		if (c == nil) == (err == nil) {
			t.Fatalf("claims %v with error %v", c, err)
		}
		if err != nil && (!errors.Is(err, ErrUnauthenticated) || Reason(err) == "") {
			t.Fatalf("error %v lacks ErrUnauthenticated or a reason", err)
		}
		if c != nil && c.Subject == "" {
			t.Fatal("accepted a token without subject")
		}
	})
}
