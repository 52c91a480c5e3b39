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

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/errdefs"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/reconcile"
	dockerruntime "github.com/panelx/panelx/reconcile/docker"
	"github.com/panelx/panelx/store"
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

// TestProjectDeleteRemovesExactlyItsObjects: deleting a project removes its
// containers and network and the volumes whose data it may remove, and
// nothing of another project.
func TestProjectDeleteRemovesExactlyItsObjects(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startController(e.controllerOptions())
	img := e.image("shop/web:1", "1")
	shop, blog := e.uniq("shop"), e.uniq("blog")
	for _, p := range []string{shop, blog} {
		e.createProject(p)
		e.createVolume(p, "keep")
		cache := &api.Volume{Metadata: api.ObjectMeta{Project: p, Name: "cache"}, Spec: api.VolumeSpec{ReclaimPolicy: api.ReclaimDelete}}
		cache.Default()
		if _, err := e.store.Volumes().Create(e.ctx, cache); err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"web", "worker"} {
			e.createService(p, s, img, func(s *api.Service) {
				s.Spec.Volumes = []api.VolumeMount{{Name: "keep", MountPath: "/keep"}, {Name: "cache", MountPath: "/cache"}}
			})
		}
	}
	for _, p := range []string{shop, blog} {
		e.waitReady(p, "web")
		e.waitReady(p, "worker")
	}
	if _, err := e.store.Projects().Delete(e.ctx, api.Key{Name: shop}, store.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually(90*time.Second, "project removed", func() (bool, string) {
		_, err := e.store.Projects().Get(e.ctx, api.Key{Name: shop})
		return errors.Is(err, store.ErrNotFound), fmt.Sprint(err)
	})
	for _, s := range []string{"web", "worker"} {
		if cs := e.containers(shop, s); len(cs) != 0 {
			t.Errorf("%d containers of %s/%s left", len(cs), shop, s)
		}
		if cs := e.containers(blog, s); len(cs) != 1 {
			t.Errorf("the other project's %s has %d containers", s, len(cs))
		}
	}
	if _, err := e.docker.NetworkInspect(e.ctx, reconcile.NetworkName(shop), network.InspectOptions{}); !errdefs.IsNotFound(err) {
		t.Errorf("network of the deleted project: %v", err)
	}
	if _, err := e.docker.NetworkInspect(e.ctx, reconcile.NetworkName(blog), network.InspectOptions{}); err != nil {
		t.Errorf("network of the other project: %v", err)
	}
	if _, err := e.docker.VolumeInspect(e.ctx, reconcile.VolumeName(shop, "keep")); err != nil {
		t.Errorf("a Retain volume lost with its project: %v", err)
	}
	if _, err := e.docker.VolumeInspect(e.ctx, reconcile.VolumeName(shop, "cache")); !errdefs.IsNotFound(err) {
		t.Errorf("a Delete volume outlived its project: %v", err)
	}
	for _, v := range []string{"keep", "cache"} {
		if _, err := e.docker.VolumeInspect(e.ctx, reconcile.VolumeName(blog, v)); err != nil {
			t.Errorf("the other project's volume %s: %v", v, err)
		}
	}

	// With purge, even Retain volumes go.
	if _, err := e.store.Projects().Delete(e.ctx, api.Key{Name: blog}, store.DeleteOptions{PurgeVolumes: true}); err != nil {
		t.Fatal(err)
	}
	e.eventually(90*time.Second, "purged project removed", func() (bool, string) {
		_, err := e.store.Projects().Get(e.ctx, api.Key{Name: blog})
		return errors.Is(err, store.ErrNotFound), fmt.Sprint(err)
	})
	if _, err := e.docker.VolumeInspect(e.ctx, reconcile.VolumeName(blog, "keep")); !errdefs.IsNotFound(err) {
		t.Errorf("a purged project's volume survived: %v", err)
	}
}

// TestVolumeDeleteWaitsForUsers: deleting a Volume still mounted by a
// service keeps the data and says why; once the service is gone it is
// removed.
func TestVolumeDeleteWaitsForUsers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startController(e.controllerOptions())
	img := e.image("shop/web:1", "1")
	shop := e.uniq("shop")
	e.createProject(shop)
	e.createVolume(shop, "data")
	e.createService(shop, "web", img, func(s *api.Service) {
		s.Spec.Volumes = []api.VolumeMount{{Name: "data", MountPath: "/data"}}
	})
	e.waitReady(shop, "web")
	if _, err := e.store.Volumes().Delete(e.ctx, api.Key{Project: shop, Name: "data"}, store.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually(30*time.Second, "volume reporting it is in use", func() (bool, string) {
		v, err := e.store.Volumes().Get(e.ctx, api.Key{Project: shop, Name: "data"})
		if err != nil {
			return false, err.Error()
		}
		c := api.FindCondition(v.Status.Conditions, api.ConditionReady)
		return c != nil && strings.Contains(c.Message, "mounted by"), fmt.Sprintf("%+v", v.Status)
	})
	if _, err := e.docker.VolumeInspect(e.ctx, reconcile.VolumeName(shop, "data")); err != nil {
		t.Fatalf("the data of a volume in use is gone: %v", err)
	}
	if _, err := e.store.Services().Delete(e.ctx, api.Key{Project: shop, Name: "web"}, store.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually(60*time.Second, "volume removed", func() (bool, string) {
		_, err := e.store.Volumes().Get(e.ctx, api.Key{Project: shop, Name: "data"})
		return errors.Is(err, store.ErrNotFound), fmt.Sprint(err)
	})
	if _, err := e.docker.VolumeInspect(e.ctx, reconcile.VolumeName(shop, "data")); !errdefs.IsNotFound(err) {
		t.Errorf("docker volume after delete: %v", err)
	}
}
