package store

import (
	"context"
	"sync"
)

// DefaultWatchQueue is how many changes a watcher may fall behind before its
// queue is dropped and replaced by one Resync marker.
const DefaultWatchQueue = 4096

// Hub fans changes out to watchers without ever blocking the publisher: a
// watcher that falls more than its queue behind loses the queued changes and
// gets a Resync marker instead, which level-triggered consumers handle by
// re-listing. Backends feed it: PostgreSQL from its LISTEN connection, an
// embedded backend straight after each commit.
type Hub struct {
	mu        sync.Mutex
	subs      map[*subscriber]struct{}
	connected bool
	queueMax  int
}

// NewHub returns a hub. A backend whose feed is always live (in-process)
// passes connected=true; one with a connection calls Connected after each
// (re)connect.
func NewHub(connected bool, queueMax int) *Hub {
	if queueMax <= 0 {
		queueMax = DefaultWatchQueue
	}
	return &Hub{subs: map[*subscriber]struct{}{}, connected: connected, queueMax: queueMax}
}

type subscriber struct {
	mu     sync.Mutex
	queue  []Change
	resync bool
	wake   chan struct{}
	max    int
}

// Subscribe returns a channel of changes, closed when ctx ends. The first
// item is a Resync marker, sent once the feed is live.
func (h *Hub) Subscribe(ctx context.Context) <-chan Change {
	s := &subscriber{wake: make(chan struct{}, 1), max: h.queueMax}
	out := make(chan Change)
	h.mu.Lock()
	s.resync = h.connected
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	go func() {
		defer close(out)
		defer func() {
			h.mu.Lock()
			delete(h.subs, s)
			h.mu.Unlock()
		}()
		for {
			c, ok := s.next()
			if !ok {
				select {
				case <-s.wake:
					continue
				case <-ctx.Done():
					return
				}
			}
			select {
			case out <- c:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

func (s *subscriber) next() (Change, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.resync {
		s.resync = false
		return Change{Type: ChangeResync}, true
	}
	if len(s.queue) == 0 {
		return Change{}, false
	}
	c := s.queue[0]
	s.queue[0] = Change{}
	s.queue = s.queue[1:]
	return c, true
}

func (s *subscriber) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Publish queues a change for every watcher. It never blocks on a watcher.
func (h *Hub) Publish(c Change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		s.mu.Lock()
		if len(s.queue) >= s.max {
			// Too far behind: what is queued is worth less than a re-list.
			s.queue = nil
			s.resync = true
		} else {
			s.queue = append(s.queue, c)
		}
		s.mu.Unlock()
		s.signal()
	}
}

// Connected marks the feed live again and tells every watcher to resync:
// whatever happened while it was down was not seen.
func (h *Hub) Connected() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.connected = true
	for s := range h.subs {
		s.mu.Lock()
		s.queue = nil
		s.resync = true
		s.mu.Unlock()
		s.signal()
	}
}

// Disconnected marks the feed down; new watchers wait for Connected.
func (h *Hub) Disconnected() {
	h.mu.Lock()
	h.connected = false
	h.mu.Unlock()
}

// Live reports whether the feed is connected.
func (h *Hub) Live() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.connected
}

// Watchers returns the number of current watchers.
func (h *Hub) Watchers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}
