package reconcile_test

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/reconcile"
)

// running converges shop/web with n replicas and returns the service.
func (w *world) running(n int32) *api.Service {
	w.t.Helper()
	img := w.rt.Registry().Push("127.0.0.1:5000/shop/web:1", "1")
	svc := service(img, func(s *api.Service) { s.Spec.Replicas = &n })
	if plan, results := w.converge(svc); plan.Blocked != "" || failed(results) != nil {
		w.t.Fatalf("blocked %q, %v", plan.Blocked, failed(results))
	}
	return svc
}

// TestResyncAsksOnlyForChanges: a resync lists each kind once and inspects
// only the containers whose list entry changed; after the events stream
// reconnected (full) it inspects them all.
func TestResyncAsksOnlyForChanges(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.running(3)
	w.clock.Add(time.Minute)
	w.rt.Calls()
	if err := w.cache.Sync(w.ctx, false); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"container_list": 1, "network_list": 1, "volume_list": 1}
	if got := w.rt.Calls(); !maps.Equal(got, want) {
		t.Errorf("resync without drift asked %v, want %v", got, want)
	}

	stopped := w.cache.Containers("shop", "web")[1]
	if err := w.rt.Outside().StopContainer(stopped.ID); err != nil {
		t.Fatal(err)
	}
	if err := w.cache.Sync(w.ctx, false); err != nil {
		t.Fatal(err)
	}
	want["container_inspect"] = 1
	if got := w.rt.Calls(); !maps.Equal(got, want) {
		t.Errorf("resync after one stop asked %v, want %v", got, want)
	}
	for _, c := range w.cache.Containers("shop", "web") {
		if wantState := map[bool]string{true: "exited", false: "running"}[c.ID == stopped.ID]; c.State != wantState {
			t.Errorf("%s: %s in the cache, want %s", c.Name, c.State, wantState)
		}
	}

	if err := w.cache.Sync(w.ctx, true); err != nil {
		t.Fatal(err)
	}
	want["container_inspect"] = 3
	if got := w.rt.Calls(); !maps.Equal(got, want) {
		t.Errorf("full resync asked %v, want %v", got, want)
	}
}

// TestCacheFollowsEvents: what a person does at the engine reaches the
// cache through the events stream alone, and names the keys to look at.
func TestCacheFollowsEvents(t *testing.T) {
	t.Parallel()
	web := reconcile.ServiceKey("shop", "web")
	for _, c := range []struct {
		name     string
		act      func(w *world) error
		wantKeys []reconcile.Key
		check    func(t *testing.T, w *world)
	}{
		{
			name:     "docker rm -f",
			act:      func(w *world) error { return w.rt.Outside().RemoveContainer("panelx-shop-web-0") },
			wantKeys: []reconcile.Key{web},
			check: func(t *testing.T, w *world) {
				if cs := w.cache.Containers("shop", "web"); len(cs) != 1 || cs[0].Name != "panelx-shop-web-1" {
					t.Errorf("cache: %+v", cs)
				}
			},
		},
		{
			name:     "docker stop",
			act:      func(w *world) error { return w.rt.Outside().StopContainer("panelx-shop-web-1") },
			wantKeys: []reconcile.Key{web},
			check: func(t *testing.T, w *world) {
				for _, c := range w.cache.Containers("shop", "web") {
					if c.Name == "panelx-shop-web-1" && (c.State != "exited" || c.ExitCode != 143) {
						t.Errorf("stopped container in the cache: %s, exit %d", c.State, c.ExitCode)
					}
				}
			},
		},
		{
			name:     "a crash the restart policy repairs",
			act:      func(w *world) error { return w.rt.Outside().Crash("panelx-shop-web-0", 2) },
			wantKeys: []reconcile.Key{web},
			check: func(t *testing.T, w *world) {
				for _, c := range w.cache.Containers("shop", "web") {
					if c.Name == "panelx-shop-web-0" && (c.State != "running" || c.RestartCount != 1) {
						t.Errorf("restarted container in the cache: %s, %d restarts", c.State, c.RestartCount)
					}
				}
			},
		},
		{
			name: "taken off its network, then the network removed",
			act: func(w *world) error {
				for _, n := range []string{"panelx-shop-web-0", "panelx-shop-web-1"} {
					if err := w.rt.Outside().Disconnect("panelx-shop", n); err != nil {
						return err
					}
				}
				return w.rt.Outside().RemoveNetwork("panelx-shop")
			},
			wantKeys: []reconcile.Key{web, reconcile.ProjectKey("shop")},
			check: func(t *testing.T, w *world) {
				if w.cache.Network("shop") != nil {
					t.Error("the removed network is still in the cache")
				}
				for _, c := range w.cache.Containers("shop", "web") {
					if len(c.Networks) != 0 {
						t.Errorf("%s still on %v", c.Name, c.Networks)
					}
				}
			},
		},
		{
			name: "a tag moved and pulled by hand",
			act: func(w *world) error {
				w.rt.Registry().Push("127.0.0.1:5000/shop/web:1", "2")
				return w.rt.Outside().Pull("127.0.0.1:5000/shop/web:1")
			},
			check: func(t *testing.T, w *world) {
				id, err := w.cache.ImageID(w.ctx, "127.0.0.1:5000/shop/web:1")
				if err != nil {
					t.Fatal(err)
				}
				if cs := w.cache.Containers("shop", "web"); id == cs[0].ImageID {
					t.Errorf("the cache still names the old image %s", id)
				}
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			w.running(2)
			if _, err := w.cache.ImageID(w.ctx, "127.0.0.1:5000/shop/web:1"); err != nil { // cached
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(w.ctx)
			defer cancel()
			events, errs := w.rt.Events(ctx)
			if err := c.act(w); err != nil {
				t.Fatal(err)
			}
			keys := map[reconcile.Key]bool{}
			for quiet := false; !quiet; {
				select {
				case ev := <-events:
					ks, err := w.cache.Apply(w.ctx, ev)
					if err != nil {
						t.Fatalf("apply %+v: %v", ev, err)
					}
					for _, k := range ks {
						keys[k] = true
					}
				case err := <-errs:
					t.Fatalf("events ended: %v", err)
				case <-time.After(50 * time.Millisecond):
					quiet = true
				}
			}
			for _, k := range c.wantKeys {
				if !keys[k] {
					t.Errorf("no %s among the keys %v", k, slices.Collect(maps.Keys(keys)))
				}
			}
			c.check(t, w)
		})
	}
}

// TestSlowEventReaderIsCutOff: a reader that falls behind loses its
// stream with an error (and the controller then re-lists), never blocks
// the engine.
func TestSlowEventReaderIsCutOff(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	_, errs := w.rt.Events(w.ctx)
	w.running(1)
	for i := 0; i < 1100; i++ {
		if err := w.rt.Outside().SetHealth("panelx-shop-web-0", "healthy"); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-errs:
		if err == nil {
			t.Fatal("nil error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a reader 1100 events behind still has its stream")
	}
}
