package reconcile_test

import (
	"context"
	"testing"
	"time"

	"github.com/panelx/panelx/reconcile"
	"github.com/panelx/panelx/reconcile/memruntime"
)

// testFence is a lease that holds while ctx does.
type testFence struct {
	ctx context.Context
}

func (f testFence) Valid() bool              { return f.ctx.Err() == nil }
func (f testFence) Context() context.Context { return f.ctx }
func (f testFence) Epoch() int64             { return 7 }

// TestFencedEventsEndWithTheLease: the events stream (whose task poll, on
// Swarm, sweeps unused secrets) ends when the lease does, not only when
// its caller's context does.
func TestFencedEventsEndWithTheLease(t *testing.T) {
	lease, end := context.WithCancel(context.Background())
	rt := reconcile.FencedRuntime{Runtime: memruntime.New("test", nil), Fence: testFence{lease}}
	evs, errs := rt.Events(t.Context())
	select {
	case <-errs:
		t.Fatal("the stream ended while the lease holds")
	case <-time.After(100 * time.Millisecond):
	}
	end()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-evs:
			if !ok {
				return
			}
		case <-errs:
			return
		case <-deadline:
			t.Fatal("the stream still runs after the lease ended")
		}
	}
}
