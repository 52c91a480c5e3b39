package auth

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestVerifiedTokensAreRememberedNoLongerThanTheyHold: a token checked once
// is not checked again, but the memory never outlives the token's expiry,
// verifiedFor, or the JWKS key set that verified it.
func TestVerifiedTokensAreRememberedNoLongerThanTheyHold(t *testing.T) {
	ctx := context.Background()
	t.Run("expiry", func(t *testing.T) {
		e := newTestEnv(t, func(c *Config) { c.Leeway = time.Second })
		c := validClaims(e.clock.Now())
		c["exp"] = e.clock.Now().Add(20 * time.Second).Unix()
		tok := sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", c)
		for range 3 {
			if _, err := e.v.Verify(ctx, tok); err != nil {
				t.Fatal(err)
			}
		}
		e.clock.Advance(22 * time.Second) // past exp and the leeway
		if _, err := e.v.Verify(ctx, tok); Reason(err) != reasonExpired {
			t.Fatalf("expired token: err = %v, want %q", err, reasonExpired)
		}
	})
	t.Run("claims are copies", func(t *testing.T) {
		e := newTestEnv(t, nil)
		tok := sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", validClaims(e.clock.Now()))
		first, err := e.v.Verify(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		first.Subject = "mallory"
		second, err := e.v.Verify(ctx, tok)
		if err != nil || second.Subject != testSubject {
			t.Fatalf("second Verify = %+v, %v; want subject %s", second, err, testSubject)
		}
	})
	t.Run("a retired JWKS key retires its tokens", func(t *testing.T) {
		e := newTestEnv(t, nil)
		e.warm(t)
		old := sign(t, jwt.SigningMethodES256, ecKey, kidEC, validClaims(e.clock.Now()))
		if _, err := e.v.Verify(ctx, old); err != nil {
			t.Fatal(err)
		}
		// Rotation: only the new key is published; a token under it makes
		// PanelX refetch.
		e.srv.setKeys(t, ecJWK(kidEC2, &ecKey2.PublicKey))
		e.clock.Advance(35 * time.Second)
		if _, err := e.v.Verify(ctx, sign(t, jwt.SigningMethodES256, ecKey2, kidEC2, validClaims(e.clock.Now()))); err != nil {
			t.Fatal(err)
		}
		if _, err := e.v.Verify(ctx, old); Reason(err) != reasonUnknownKey {
			t.Fatalf("token of the retired key, verified before the rotation: err = %v, want %q", err, reasonUnknownKey)
		}
	})
	t.Run("no longer than verifiedFor", func(t *testing.T) {
		e := newTestEnv(t, nil)
		tok := sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", validClaims(e.clock.Now()))
		if _, err := e.v.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
		digest := sha256.Sum256([]byte(tok))
		if _, ok := e.v.checked.get(digest, e.clock.Now(), e.v.keysStillHeld); !ok {
			t.Fatal("a verified token is not remembered")
		}
		if _, ok := e.v.checked.get(digest, e.clock.Now().Add(verifiedFor), e.v.keysStillHeld); ok {
			t.Fatal("remembered past verifiedFor")
		}
	})
}
