package controller_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/reconcile"
	dockerruntime "github.com/panelx/panelx/reconcile/docker"
)

// deafRuntime drops the engine's events while deaf is set: what changes
// then is found by a resync alone.
type deafRuntime struct {
	reconcile.Runtime
	deaf atomic.Bool
}

func (d *deafRuntime) Events(ctx context.Context) (<-chan reconcile.RuntimeEvent, <-chan error) {
	in, errs := d.Runtime.Events(ctx)
	out := make(chan reconcile.RuntimeEvent)
	go func() {
		defer close(out)
		for ev := range in {
			if d.deaf.Load() {
				continue
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, errs
}

// callCounter counts Docker API calls by operation.
type callCounter struct {
	mu    sync.Mutex
	calls map[string]int
}

func (c *callCounter) observe(op string, _ time.Duration, _ error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[op]++
}

// take returns the counts so far and starts again from zero.
func (c *callCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	got := c.calls
	c.calls = map[string]int{}
	return got
}

func total(calls map[string]int) (n int) {
	for _, v := range calls {
		n += v
	}
	return n
}

// countingController starts a controller whose Docker calls are counted
// and whose events can be switched off.
func (e *env) countingController() (*deafRuntime, *callCounter) {
	counter := &callCounter{calls: map[string]int{}}
	docker := dockerruntime.NewRuntime(e.docker, e.instance)
	docker.Observe = counter.observe
	rt := &deafRuntime{Runtime: docker}
	opts := e.controllerOptions()
	opts.Runtime = rt
	opts.ResyncInterval = time.Hour // only the resyncs the test asks for
	e.startController(opts)
	return rt, counter
}

// TestResyncFromTheList: a resync with nothing changed costs one list per
// kind of Docker object and nothing more; with the events stream deaf,
// a stopped container and one taken off its network are found by the
// resync's list alone and repaired, and a container restarted behind
// PanelX's back is looked at again.
func TestResyncFromTheList(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rt, counter := e.countingController()
	img := e.image("shop/web:1", "1")
	shop := e.uniq("shop")
	e.createProject(shop)
	names := []string{"stopped", "unplugged", "restarted", "calm"}
	for _, n := range names {
		e.createService(shop, n, img, nil)
	}
	for _, n := range names {
		e.waitReady(shop, n)
	}
	rt.deaf.Store(true)
	// Once the last status writes and events have settled, a resync with
	// no drift makes the three lists and nothing else.
	want := map[string]int{"container_list": 1, "network_list": 1, "volume_list": 1}
	quiet := func(what string) {
		e.eventually(30*time.Second, what, func() (bool, string) {
			counter.take()
			if err := e.ctrl.Resync(e.ctx); err != nil {
				t.Fatal(err)
			}
			got := counter.take()
			return maps.Equal(got, want), fmt.Sprint(slices.Sorted(maps.Keys(got)), got)
		})
	}
	quiet("a resync with no drift")

	// Behind PanelX's back, with its events stream deaf.
	one := func(service string) container.Summary {
		cs := e.containers(shop, service)
		if len(cs) != 1 {
			t.Fatalf("%s: %d containers", service, len(cs))
		}
		return cs[0]
	}
	timeout := 2
	if err := e.docker.ContainerStop(e.ctx, one("stopped").ID, container.StopOptions{Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	if err := e.docker.NetworkDisconnect(e.ctx, reconcile.NetworkName(shop), one("unplugged").ID, true); err != nil {
		t.Fatal(err)
	}
	restarted := one("restarted").ID
	if err := e.docker.ContainerRestart(e.ctx, restarted, container.StopOptions{Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	calm := one("calm").ID
	if err := e.ctrl.Resync(e.ctx); err != nil {
		t.Fatal(err)
	}
	calls := counter.take()
	t.Logf("a resync after drift made %d Docker calls: %v", total(calls), calls)
	if calls["container_inspect"] < 3 {
		t.Errorf("the three changed containers were not all inspected: %v", calls)
	}
	// The list alone set the repairs going: the stopped one started again,
	// the unplugged one's replacement created.
	if calls["container_start"] < 1 || calls["container_create"] < 1 {
		t.Errorf("the resync started no repair: %v", calls)
	}
	// The rest of the repair is an ordinary rollout, which the events
	// stream follows (a replacement's readiness, its rename): hear again.
	// (Once, in CI under load, the unplugged one's replacement did not
	// complete within 60 s with the stream still muted; see the note.)
	rt.deaf.Store(false)

	e.eventually(60*time.Second, "the drift repaired", func() (bool, string) {
		var bad []string
		for _, n := range names {
			cs := e.containers(shop, n)
			if len(cs) != 1 || cs[0].State != "running" || cs[0].NetworkSettings == nil {
				var states []string
				for _, c := range cs {
					states = append(states, c.Names[0]+" "+c.State+" "+c.Status)
				}
				svc, _ := e.store.Services().Get(e.ctx, api.Key{Project: shop, Name: n})
				summary := ""
				if svc != nil {
					summary = statusSummary(svc)
				}
				bad = append(bad, fmt.Sprintf("%s: %d containers %v; %s", n, len(cs), states, summary))
				continue
			}
			if _, ok := cs[0].NetworkSettings.Networks[reconcile.NetworkName(shop)]; !ok {
				bad = append(bad, n+": not on the project network")
			}
		}
		return len(bad) == 0, fmt.Sprint(bad)
	})
	if id := one("restarted").ID; id != restarted {
		t.Errorf("the restarted container was replaced (%s → %s); it needed no repair", restarted, id)
	}
	if id := one("calm").ID; id != calm {
		t.Errorf("the untouched container was replaced")
	}
	for _, n := range names {
		e.waitReady(shop, n)
	}
	quiet("a quiet resync once repaired")
}
