package controller_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/reconcile"
	"github.com/panelx/panelx/store"
)

// TestTeardownInParallel: deleting a project stops its containers in
// parallel — more at once than the controller has workers — and each
// with its service's grace period: processes that ignore SIGTERM are
// killed after their grace, not Docker's 10 s, and the others exit on
// SIGTERM. The project, its containers and its network are gone.
func TestTeardownInParallel(t *testing.T) {
	t.Parallel()
	const stubborn, polite = 8, 4
	e := newEnv(t)
	opts := e.controllerOptions()
	e.startController(opts)
	img := e.image("shop/web:1", "1")
	shop := e.uniq("shop")
	e.createProject(shop)
	for i := 0; i < stubborn; i++ {
		e.createService(shop, fmt.Sprintf("stubborn-%d", i), img, func(s *api.Service) {
			s.Spec.Args = []string{"-stubborn"}
			s.Spec.StopGracePeriod = api.Duration{Duration: 3 * time.Second}
		})
	}
	for i := 0; i < polite; i++ {
		e.createService(shop, fmt.Sprintf("polite-%d", i), img, nil)
	}
	for i := 0; i < stubborn; i++ {
		e.waitReady(shop, fmt.Sprintf("stubborn-%d", i))
	}
	for i := 0; i < polite; i++ {
		e.waitReady(shop, fmt.Sprintf("polite-%d", i))
	}

	// Docker's own account: SIGTERM sent (kill, signal 15), process gone (die).
	f := filters.NewArgs(filters.Arg("type", "container"), filters.Arg("event", "kill"), filters.Arg("event", "die"),
		filters.Arg("label", reconcile.LabelProject+"="+shop))
	msgs, errs := e.docker.Events(e.ctx, events.ListOptions{Filters: f})
	start := time.Now()
	if _, err := e.store.Projects().Delete(e.ctx, api.Key{Name: shop}, store.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually(90*time.Second, "project removed", func() (bool, string) {
		_, err := e.store.Projects().Get(e.ctx, api.Key{Name: shop})
		return errors.Is(err, store.ErrNotFound), fmt.Sprint(err)
	})
	took := time.Since(start)

	termed := map[string]time.Time{}
	stopping, most := 0, 0
	exits := map[string]string{}
	deadline := time.After(10 * time.Second)
collect:
	for len(exits) < stubborn+polite {
		select {
		case m := <-msgs:
			name := m.Actor.Attributes[reconcile.LabelService]
			switch {
			case m.Action == events.ActionKill && m.Actor.Attributes["signal"] == "15":
				termed[name] = time.Unix(0, m.TimeNano)
				stopping++
				most = max(most, stopping)
			case m.Action == events.ActionDie:
				if _, ok := termed[name]; ok {
					stopping--
				}
				exits[name] = m.Actor.Attributes["exitCode"]
				if strings.HasPrefix(name, "stubborn-") {
					if after := time.Unix(0, m.TimeNano).Sub(termed[name]); after < 2500*time.Millisecond || after > 9*time.Second {
						t.Errorf("%s died %v after SIGTERM; its grace is 3s", name, after)
					}
				}
			}
		case err := <-errs:
			t.Fatal(err)
		case <-deadline:
			break collect
		}
	}
	t.Logf("project of %d services removed in %v; at most %d containers stopping at once", stubborn+polite, took.Round(time.Millisecond), most)
	for name, code := range exits {
		want := "0"
		if strings.HasPrefix(name, "stubborn-") {
			want = "137"
		}
		if code != want {
			t.Errorf("%s exited with %s, want %s", name, code, want)
		}
	}
	if len(exits) != stubborn+polite {
		t.Errorf("%d of %d containers seen exiting", len(exits), stubborn+polite)
	}
	if workers := max(opts.Workers, 4); most <= workers {
		t.Errorf("at most %d containers were stopping at once; more than the %d workers should", most, workers)
	}
	if n := len(e.containersOf(reconcile.LabelProject + "=" + shop)); n != 0 {
		t.Errorf("%d containers left", n)
	}
}
