package authz

import (
	"testing"
	"time"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/store"
)

func TestCache(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	live := true
	c := NewCache(func() time.Time { return now }, func() bool { return live })
	hash := []byte("h")
	tok := store.APIToken{ID: "t1", UserID: "u"}

	// Off until the feed says it is live.
	c.PutToken(c.Generation(), hash, tok)
	if _, ok := c.Token(hash); ok {
		t.Fatal("cached before the feed was live")
	}
	c.Changed(store.Change{Type: store.ChangeResync})
	c.PutToken(c.Generation(), hash, tok)
	c.PutMember(c.Generation(), "shop", "u", store.RoleViewer)
	c.PutMember(c.Generation(), "blog", "u", "")
	if got, ok := c.Token(hash); !ok || got.ID != "t1" {
		t.Fatal("token not cached")
	}
	if role, ok := c.Member("blog", "u"); !ok || role != "" {
		t.Fatal("a non-member is not remembered as such")
	}

	// A read that raced with a change is not kept.
	gen := c.Generation()
	c.Changed(store.Change{Type: store.ChangeUpsert, Kind: store.KindMember, Key: api.Key{Project: "shop", Name: "u"}})
	c.PutMember(gen, "shop", "u", store.RoleOwner)
	if _, ok := c.Member("shop", "u"); ok {
		t.Fatal("a stale read was cached over a change")
	}
	if _, ok := c.Member("blog", "u"); !ok {
		t.Fatal("a change of one membership dropped another")
	}

	// A token change drops the tokens; a dropped feed turns the cache off;
	// entries age out.
	c.Changed(store.Change{Type: store.ChangeRemoved, Kind: store.KindAPIToken, Key: api.Key{Name: "t9"}})
	if _, ok := c.Token(hash); ok {
		t.Fatal("tokens kept across a token change")
	}
	c.PutToken(c.Generation(), hash, tok)
	live = false
	if _, ok := c.Token(hash); ok {
		t.Fatal("used while the feed is down")
	}
	live = true
	now = now.Add(CacheMaxAge)
	if _, ok := c.Token(hash); ok {
		t.Fatal("used past CacheMaxAge")
	}
	c.Off()
	c.PutToken(c.Generation(), hash, tok)
	if _, ok := c.Token(hash); ok {
		t.Fatal("used after Off")
	}
	var none *Cache
	if _, ok := none.Token(hash); ok || none.Generation() != 0 {
		t.Fatal("a nil cache caches")
	}
	none.PutMember(0, "p", "u", store.RoleOwner)
}
