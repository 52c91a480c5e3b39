package auth

import (
	"crypto/sha256"
	"sync"
	"time"
)

// verifiedCache remembers tokens whose signature and claims checked out, so
// that a client sending the same token on every request (a dashboard, a
// CLI loop) is not parsed and verified again each time. An entry is used
// until the token expires and for at most verifiedFor after it was checked;
// a token checked against JWKS keys only while that same key set is held
// and fresh, so a refetch that retires a key retires its tokens at once.
// Only successes are kept: a refused token is checked again on every
// request. Keys are SHA-256 digests, never the tokens.
type verifiedCache struct {
	mu      sync.Mutex
	entries map[[sha256.Size]byte]verifiedEntry
}

type verifiedEntry struct {
	claims Claims
	until  time.Time
	// keysAt is when the JWKS key set that verified the token was fetched
	// (zero for HS256, whose secret never changes while PanelX runs).
	keysAt time.Time
}

const (
	verifiedFor = time.Minute
	// verifiedMax bounds the memory held; when full, the cache starts over.
	verifiedMax = 10000
)

// get returns the claims of a token verified before; keysValid says
// whether the key set fetched at keysAt still stands.
func (c *verifiedCache) get(digest [sha256.Size]byte, now time.Time, keysValid func(keysAt time.Time) bool) (*Claims, bool) {
	c.mu.Lock()
	e, ok := c.entries[digest]
	c.mu.Unlock()
	if !ok || !now.Before(e.until) || (!e.keysAt.IsZero() && !keysValid(e.keysAt)) {
		return nil, false
	}
	claims := e.claims // a copy: callers may not change what others see
	return &claims, true
}

func (c *verifiedCache) put(digest [sha256.Size]byte, claims *Claims, now, keysAt time.Time) {
	until := now.Add(verifiedFor)
	if claims.ExpiresAt.Before(until) {
		until = claims.ExpiresAt
	}
	if !now.Before(until) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= verifiedMax {
		c.entries = make(map[[sha256.Size]byte]verifiedEntry)
	}
	c.entries[digest] = verifiedEntry{claims: *claims, until: until, keysAt: keysAt}
}
