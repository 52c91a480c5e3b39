package authz

import (
	"sync"
	"time"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/store"
)

// CacheMaxAge bounds how long a cached credential or membership is used
// without a fresh read, whatever the change feed says: a safety net. The
// feed itself invalidates within milliseconds.
const CacheMaxAge = 30 * time.Second

// Cache keeps verified API tokens and memberships in memory, so a request
// does not cost a database round trip for each. It is only used while the
// store's change feed is followed and live (Follow): every change of a
// token or a membership drops what it touches, a feed that reconnects (or
// falls behind) drops everything, and a feed that is down turns the cache
// off. A read that raced with a change is not kept (generations).
type Cache struct {
	mu   sync.Mutex
	live bool
	// feedLive, when set, says whether the store's feed is connected now
	// (a dropped LISTEN connection is known before it reconnects).
	feedLive func() bool
	gen      uint64
	tokens   map[string]cachedToken // by token hash
	members  map[memberKey]cachedMember
	now      func() time.Time
}

type cachedToken struct {
	tok store.APIToken
	at  time.Time
}

type memberKey struct{ project, user string }

type cachedMember struct {
	role store.Role // "" when not a member
	at   time.Time
}

// NewCache returns a cache that is off until its feed is live. feedLive
// may be nil (a feed that cannot drop, as the embedded store's).
func NewCache(now func() time.Time, feedLive func() bool) *Cache {
	if now == nil {
		now = time.Now
	}
	return &Cache{tokens: map[string]cachedToken{}, members: map[memberKey]cachedMember{}, now: now, feedLive: feedLive}
}

// on reports whether the cache may be used now; c.mu is held.
func (c *Cache) on() bool { return c.live && (c.feedLive == nil || c.feedLive()) }

// Generation is read before a lookup in the store; pass it to the Put that
// follows, which keeps the result only if nothing changed meanwhile.
func (c *Cache) Generation() uint64 {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

func (c *Cache) fresh(at time.Time) bool { return c.now().Sub(at) < CacheMaxAge }

// Token returns a cached token by its hash.
func (c *Cache) Token(hash []byte) (store.APIToken, bool) {
	if c == nil {
		return store.APIToken{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.tokens[string(hash)]
	if !c.on() || !ok || !c.fresh(e.at) {
		return store.APIToken{}, false
	}
	return e.tok, true
}

// PutToken caches a token read at generation gen.
func (c *Cache) PutToken(gen uint64, hash []byte, tok store.APIToken) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.on() && c.gen == gen {
		c.tokens[string(hash)] = cachedToken{tok: tok, at: c.now()}
	}
}

// Member returns a cached role ("" and true: known not to be a member).
func (c *Cache) Member(project, user string) (store.Role, bool) {
	if c == nil {
		return "", false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.members[memberKey{project, user}]
	if !c.on() || !ok || !c.fresh(e.at) {
		return "", false
	}
	return e.role, true
}

// PutMember caches a role ("" for "not a member") read at generation gen.
func (c *Cache) PutMember(gen uint64, project, user string, role store.Role) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.on() && c.gen == gen {
		c.members[memberKey{project, user}] = cachedMember{role: role, at: c.now()}
	}
}

// Changed handles one change of the store's feed.
func (c *Cache) Changed(ch store.Change) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case ch.Type == store.ChangeResync:
		// (Re)connected or fallen behind: what was missed is unknown.
		c.reset()
		c.live = true
	case ch.Kind == store.KindMember:
		c.gen++
		delete(c.members, memberKey{ch.Key.Project, ch.Key.Name})
	case ch.Kind == store.KindAPIToken:
		// Rare (a token created or revoked): drop them all, rather than
		// keep an index from token ID to hash.
		c.gen++
		clear(c.tokens)
	}
}

// Off turns the cache off (the feed ended or is down) until the next
// Resync marker.
func (c *Cache) Off() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reset()
	c.live = false
}

func (c *Cache) reset() {
	c.gen++
	clear(c.tokens)
	clear(c.members)
}

// ForgetMember drops a membership this server itself just changed, so its
// own next request reads the new value (the feed that tells the other
// servers arrives a few milliseconds later). Call it after the commit.
func (c *Cache) ForgetMember(project, user string) {
	c.Changed(store.Change{Type: store.ChangeUpsert, Kind: store.KindMember, Key: api.Key{Project: project, Name: user}})
}

// ForgetTokens drops the cached tokens after this server revoked one.
func (c *Cache) ForgetTokens() {
	c.Changed(store.Change{Type: store.ChangeRemoved, Kind: store.KindAPIToken})
}
