package controller_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/reconcile"
	dockerruntime "github.com/panelx/panelx/reconcile/docker"
)

// crashingRuntime lets exactly one container creation through, then acts as
// if the process died: every later call blocks until the controller is
// stopped and fails.
type crashingRuntime struct {
	reconcile.Runtime
	crashed chan struct{}
	once    sync.Once
	armed   atomic.Bool
}

func (c *crashingRuntime) dead(ctx context.Context) error {
	select {
	case <-c.crashed:
		<-ctx.Done()
		return errors.New("process gone")
	default:
		return nil
	}
}

func (c *crashingRuntime) CreateContainer(ctx context.Context, spec reconcile.ContainerSpec) (string, error) {
	if err := c.dead(ctx); err != nil {
		return "", err
	}
	id, err := c.Runtime.CreateContainer(ctx, spec)
	if err == nil && c.armed.Load() {
		c.once.Do(func() { close(c.crashed) })
	}
	return id, err
}

func (c *crashingRuntime) StartContainer(ctx context.Context, ref string) error {
	if err := c.dead(ctx); err != nil {
		return err
	}
	return c.Runtime.StartContainer(ctx, ref)
}

func (c *crashingRuntime) StopContainer(ctx context.Context, ref string, grace time.Duration) error {
	if err := c.dead(ctx); err != nil {
		return err
	}
	return c.Runtime.StopContainer(ctx, ref, grace)
}

func (c *crashingRuntime) RemoveContainer(ctx context.Context, ref string) error {
	if err := c.dead(ctx); err != nil {
		return err
	}
	return c.Runtime.RemoveContainer(ctx, ref)
}

func (c *crashingRuntime) RenameContainer(ctx context.Context, ref, name string) error {
	if err := c.dead(ctx); err != nil {
		return err
	}
	return c.Runtime.RenameContainer(ctx, ref, name)
}

// TestKilledMidPlanConvergesWithoutDuplicates: the controller dies right
// after creating a container — for a new service, and halfway through a
// start-first replacement — and a new controller finishes the job with
// exactly one container per replica under its final name.
func TestKilledMidPlanConvergesWithoutDuplicates(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	img := e.image("shop/web:1", "1")
	shop := e.uniq("shop")
	e.createProject(shop)

	crashOnce := func(arm func()) {
		t.Helper()
		rt := &crashingRuntime{Runtime: dockerruntime.NewRuntime(e.docker, e.instance), crashed: make(chan struct{})}
		opts := e.controllerOptions()
		opts.Runtime = rt
		stop := e.startController(opts)
		rt.armed.Store(true)
		arm()
		select {
		case <-rt.crashed:
		case <-time.After(60 * time.Second):
			t.Fatal("the controller never created a container")
		}
		stop()
	}
	checkConverged := func(replicas int) {
		t.Helper()
		e.waitReady(shop, "web")
		cs := e.containers(shop, "web")
		var names []string
		for _, c := range cs {
			names = append(names, strings.TrimPrefix(c.Names[0], "/"))
			if c.State != "running" {
				t.Errorf("container %s is %s", c.Names[0], c.State)
			}
		}
		sort.Strings(names)
		var want []string
		for i := 0; i < replicas; i++ {
			want = append(want, reconcile.ContainerName(shop, "web", i))
		}
		if fmt.Sprint(names) != fmt.Sprint(want) {
			t.Fatalf("containers %v, want %v", names, want)
		}
	}

	two := int32(2)
	crashOnce(func() { e.createService(shop, "web", img, func(s *api.Service) { s.Spec.Replicas = &two }) })
	stop := e.startController(e.controllerOptions())
	checkConverged(2)
	stop()

	crashOnce(func() {
		e.updateService(shop, "web", func(s *api.Service) { s.Spec.Env = []api.EnvVar{{Name: "V", Value: "2"}} })
	})
	e.startController(e.controllerOptions())
	checkConverged(2)
}

// TestOneLeaderAndTakeover: two controllers on one database; exactly one
// acts, and when it dies the other converges a change made afterwards.
func TestOneLeaderAndTakeover(t *testing.T) {
	t.Parallel()
	e := newEnv(t) // PostgreSQL: the backend several servers share
	img := e.image("shop/web:1", "1")
	shop := e.uniq("shop")
	e.createProject(shop)

	var mu sync.Mutex
	leading := map[string]bool{}
	maxLeaders := 0
	track := func(name string) func(bool) {
		return func(on bool) {
			mu.Lock()
			defer mu.Unlock()
			leading[name] = on
			n := 0
			for _, l := range leading {
				if l {
					n++
				}
			}
			maxLeaders = max(maxLeaders, n)
		}
	}
	leaderName := func() string {
		mu.Lock()
		defer mu.Unlock()
		for n, l := range leading {
			if l {
				return n
			}
		}
		return ""
	}
	stops := map[string]func(){}
	for _, name := range []string{"a", "b"} {
		opts := e.controllerOptions()
		opts.Store = openStore(t, e.dbURL) // a server of its own
		opts.OnLeader = track(name)
		stops[name] = e.startController(opts)
	}
	e.createService(shop, "first", img, nil)
	e.waitReady(shop, "first")
	first := leaderName()
	if first == "" {
		t.Fatal("nobody leads")
	}
	stops[first]()
	start := time.Now()
	e.eventually(30*time.Second, "the stand-by taking over", func() (bool, string) {
		l := leaderName()
		return l != "" && l != first, "leader: " + l
	})
	t.Logf("takeover after %v", time.Since(start))
	e.createService(shop, "second", img, nil)
	e.waitReady(shop, "second")
	mu.Lock()
	defer mu.Unlock()
	if maxLeaders != 1 {
		t.Errorf("%d controllers led at once", maxLeaders)
	}
}
