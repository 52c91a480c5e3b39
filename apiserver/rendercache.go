package apiserver

import (
	"bytes"
	"encoding/json"
	"sync"

	"github.com/panelx/panelx/api"
)

// renderCache keeps the JSON answer of a GET of one object, keyed by kind
// and key and tagged with the uid and resourceVersion it renders. A GET
// still reads the row from the store every time — so it is as fresh as
// without the cache, on every server — but when the row is still that
// version, the store skips decoding it and the handler writes the bytes it
// wrote last time instead of encoding the object again. The body of a GET
// does not depend on who asks (a Secret is always shown redacted), so one
// entry serves every caller.
type renderCache struct {
	mu      sync.Mutex
	entries map[renderKey]*rendered
	bytes   int // sum of the bodies held
	max     int // bytes held at most
}

type renderKey struct {
	kind api.Kind
	key  api.Key
}

// rendered is one cached answer; it is never changed once stored.
type rendered struct {
	uid, rv string
	body    []byte
}

const (
	renderCacheBytes = 16 << 20
	// Bigger answers are encoded every time rather than held in memory.
	renderCacheMaxBody = 64 << 10
)

func newRenderCache(maxBytes int) *renderCache {
	return &renderCache{entries: map[renderKey]*rendered{}, max: maxBytes}
}

func (c *renderCache) get(k renderKey) *rendered {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries[k]
}

// render encodes obj as writeJSON would and keeps the bytes for the next GET.
func (c *renderCache) render(k renderKey, obj api.Object) ([]byte, error) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(obj); err != nil {
		return nil, err
	}
	if c == nil || buf.Len() > renderCacheMaxBody {
		return buf.Bytes(), nil
	}
	m := obj.GetMeta()
	e := &rendered{uid: m.UID, rv: m.ResourceVersion, body: buf.Bytes()}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLocked(k)
	for old := range c.entries { // full: drop arbitrary entries
		if c.bytes+len(e.body) <= c.max {
			break
		}
		c.dropLocked(old)
	}
	c.entries[k] = e
	c.bytes += len(e.body)
	return e.body, nil
}

// forget drops the entry of an object that is gone, so its memory does
// not outlive it (a stale entry would only cost a decode: its uid or
// resourceVersion no longer matches).
func (c *renderCache) forget(k renderKey) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLocked(k)
}

func (c *renderCache) dropLocked(k renderKey) {
	if e, ok := c.entries[k]; ok {
		c.bytes -= len(e.body)
		delete(c.entries, k)
	}
}
