package reconcile

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// DefaultTeardownParallel bounds the containers a Teardown stops and
// removes at once. The work is the engine's (signals, waits, filesystem
// cleanup), so the bound is about the engine's load, not PanelX's.
const DefaultTeardownParallel = 32

// Teardown retires containers in the background: stop with the service's
// grace period, then remove, up to a bound at once. Plans hand it their
// OpRetireContainer ops and move on; the reconcile workers never wait out
// a grace period, and deleting a project or a hundred services stops and
// removes their containers in parallel. Containers in flight are marked
// Retiring for the planner, which leaves them alone.
type Teardown struct {
	ctx   context.Context // the leadership's: retirements end with it
	rt    Runtime
	cache *Cache
	done  func(OpResult)
	sem   chan struct{}

	mu       sync.Mutex
	inflight map[string]bool // container IDs
	wg       sync.WaitGroup
}

// NewTeardown returns a pool of parallel workers (DefaultTeardownParallel
// when 0) retiring through rt until ctx ends; done is called with each
// outcome.
func NewTeardown(ctx context.Context, rt Runtime, cache *Cache, parallel int, done func(OpResult)) *Teardown {
	if parallel <= 0 {
		parallel = DefaultTeardownParallel
	}
	return &Teardown{ctx: ctx, rt: rt, cache: cache, done: done, sem: make(chan struct{}, parallel), inflight: map[string]bool{}}
}

// Retiring reports whether a container is being retired now.
func (t *Teardown) Retiring(id string) bool {
	if t == nil {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.inflight[id]
}

// Submit starts retiring op's container unless it is already; it does
// not wait.
func (t *Teardown) Submit(op Op) {
	ctx := t.ctx
	id := op.ContainerID
	t.mu.Lock()
	if t.inflight[id] {
		t.mu.Unlock()
		return
	}
	t.inflight[id] = true
	t.mu.Unlock()
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		start := time.Now()
		var err error
		select {
		case t.sem <- struct{}{}:
			err = retire(ctx, t.rt, t.cache, op)
			<-t.sem
		case <-ctx.Done():
			err = ctx.Err()
		}
		t.mu.Lock()
		delete(t.inflight, id)
		t.mu.Unlock()
		if t.done != nil {
			t.done(OpResult{Op: op, Err: err, Duration: time.Since(start)})
		}
	}()
}

// Wait returns once every retirement submitted has ended.
func (t *Teardown) Wait() { t.wg.Wait() }

// retire stops (when it runs) and removes one container, writing both
// through to the cache.
func retire(ctx context.Context, rt Runtime, cache *Cache, op Op) error {
	ref := op.ref()
	grace := op.Grace
	if grace <= 0 {
		grace = stopGrace
	}
	switch cache.containerState(ref) {
	case "running", "restarting", "paused":
		if err := rt.StopContainer(ctx, ref, grace); err != nil {
			return err
		}
	}
	if err := rt.RemoveContainer(ctx, ref); err != nil {
		// A failed removal may leave the container dead, which the
		// engine announces with no event: look, so the next plan knows.
		if cache.RefreshContainer(ctx, ref) == nil && cache.containerState(ref) == "dead" {
			return fmt.Errorf("%w: %w", ErrLeftDead, err)
		}
		return err
	}
	cache.ContainerRemoved(ref)
	return nil
}
