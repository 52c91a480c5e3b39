package controller_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"k8s.io/client-go/util/workqueue"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/controller"
	"github.com/panelx/panelx/internal/testenv"
	"github.com/panelx/panelx/internal/testimage"
	"github.com/panelx/panelx/reconcile"
	dockerruntime "github.com/panelx/panelx/reconcile/docker"
	"github.com/panelx/panelx/store"
	"github.com/panelx/panelx/store/postgres"
	"github.com/panelx/panelx/store/sqlite"
	"github.com/panelx/panelx/store/storetest"
)

// env is one end-to-end test's world: a fresh database, the real Docker
// Engine, an in-process registry and a unique installation ID, so parallel
// tests never see each other's objects.
type env struct {
	t        testing.TB
	ctx      context.Context
	dbURL    string
	store    migratedStore
	docker   *client.Client
	reg      *testimage.Registry
	instance string
	log      *zap.Logger
	ctrl     *controller.Controller // the last one startController started
}

// migratedStore is what both backends offer.
type migratedStore interface {
	store.Store
	Migrate(ctx context.Context) ([]int64, error)
}

// newEnvSQLite is newEnv on the embedded backend.
func newEnvSQLite(t testing.TB) *env {
	t.Helper()
	e := newEnvWith(t, func() migratedStore {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "panelx.db"), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		return s
	})
	return e
}

func newEnv(t testing.TB) *env {
	t.Helper()
	var url string
	e := newEnvWith(t, func() migratedStore {
		url = testenv.NewDatabase(t)
		return openStore(t, url)
	})
	e.dbURL = url
	return e
}

func newEnvWith(t testing.TB, open func() migratedStore) *env {
	t.Helper()
	timeout := 5 * time.Minute
	if _, bench := t.(*testing.B); bench {
		timeout = 30 * time.Minute // several rounds of a hundred services
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx, docker: testenv.Docker(t), instance: "test-" + randomHex(6)}
	e.log = zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
	if _, bench := t.(*testing.B); bench {
		if os.Getenv("BENCH_LOG") == "" {
			e.log = zap.NewNop() // keep benchmark output readable
		}
	}
	e.store = open()
	e.reg = testimage.StartRegistry(t, testimage.RegistryOptions{})
	t.Cleanup(e.removeDockerObjects)
	return e
}

func openStore(t testing.TB, url string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// removeDockerObjects deletes everything labelled with the test's instance.
func (e *env) removeDockerObjects() {
	testenv.RemoveLabelled(e.docker, reconcile.LabelInstance+"="+e.instance)
}

// uniq returns a project name unique to this test: Docker object names are
// global to the host, so parallel tests must not share project names.
func (e *env) uniq(name string) string { return name + "-" + e.instance[len(e.instance)-6:] }

// controllerOptions are fast settings for tests.
func (e *env) controllerOptions() controller.Options {
	return controller.Options{
		Store:          e.store,
		Runtime:        dockerruntime.NewRuntime(e.docker, e.instance),
		Instance:       e.instance,
		Log:            e.log,
		ResyncInterval: 30 * time.Second,
		PullInterval:   time.Second,
		RateLimiter:    workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Key](100*time.Millisecond, 2*time.Second),
	}
}

// startController runs a controller until the returned stop is called (or
// the test ends).
func (e *env) startController(opts controller.Options) (stop func()) {
	e.t.Helper()
	c, err := controller.New(opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.ctrl = c
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := c.Run(ctx); err != nil {
			e.t.Errorf("controller: %v", err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	e.t.Cleanup(stop)
	return stop
}

// image pushes a test image and returns its reference.
func (e *env) image(repoTag, version string) string {
	// A repository of this test's own: a registry's port may be one an
	// earlier test's registry had, and its image, still tagged in the
	// engine, would spare this test its pull.
	repoTag = "t" + e.instance[len(e.instance)-6:] + "/" + repoTag
	return e.reg.Push(e.t, repoTag, testimage.Image(e.t, testimage.ImageOptions{Version: version}))
}

func (e *env) createProject(name string) {
	e.t.Helper()
	if _, err := e.store.Projects().Create(e.ctx, storetest.Project(name)); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) createVolume(project, name string) {
	e.t.Helper()
	if _, err := e.store.Volumes().Create(e.ctx, storetest.Volume(project, name)); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) createService(project, name, image string, mutate func(*api.Service)) *api.Service {
	e.t.Helper()
	svc := &api.Service{Metadata: api.ObjectMeta{Project: project, Name: name}, Spec: api.ServiceSpec{Image: image}}
	if mutate != nil {
		mutate(svc)
	}
	svc.Default()
	if errs := svc.Validate(); len(errs) > 0 {
		e.t.Fatalf("invalid test service: %v", errs)
	}
	out, err := e.store.Services().Create(e.ctx, svc)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// updateService applies mutate to the current spec, retrying on conflicts.
func (e *env) updateService(project, name string, mutate func(*api.Service)) *api.Service {
	e.t.Helper()
	for {
		cur, err := e.store.Services().Get(e.ctx, api.Key{Project: project, Name: name})
		if err != nil {
			e.t.Fatal(err)
		}
		mutate(cur)
		cur.Default()
		if errs := cur.Validate(); len(errs) > 0 {
			e.t.Fatalf("invalid test service: %v", errs)
		}
		out, err := e.store.Services().Update(e.ctx, cur)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			e.t.Fatal(err)
		}
		return out
	}
}

// eventually polls cond until it holds, failing with what after timeout.
func (e *env) eventually(timeout time.Duration, what string, cond func() (bool, string)) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %v waiting for %s; last state: %s", timeout, what, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitReady waits until the service reports Ready for its current generation.
func (e *env) waitReady(project, name string) *api.Service {
	e.t.Helper()
	var svc *api.Service
	e.eventually(90*time.Second, fmt.Sprintf("service %s/%s Ready", project, name), func() (bool, string) {
		var err error
		svc, err = e.store.Services().Get(e.ctx, api.Key{Project: project, Name: name})
		if err != nil {
			return false, err.Error()
		}
		return reconcile.ServiceReady(svc), statusSummary(svc)
	})
	return svc
}

// waitCondition waits for a condition type with the given status.
func (e *env) waitCondition(project, name, typ string, status api.ConditionStatus) *api.Service {
	e.t.Helper()
	var svc *api.Service
	e.eventually(90*time.Second, fmt.Sprintf("%s/%s %s=%s", project, name, typ, status), func() (bool, string) {
		var err error
		svc, err = e.store.Services().Get(e.ctx, api.Key{Project: project, Name: name})
		if err != nil {
			return false, err.Error()
		}
		c := api.FindCondition(svc.Status.Conditions, typ)
		return c != nil && c.Status == status && svc.Status.ObservedGeneration == svc.Metadata.Generation, statusSummary(svc)
	})
	return svc
}

func statusSummary(s *api.Service) string {
	var b strings.Builder
	fmt.Fprintf(&b, "gen %d observed %d phase %s ready %d;", s.Metadata.Generation, s.Status.ObservedGeneration, s.Status.Phase, s.Status.ReadyReplicas)
	for _, c := range s.Status.Conditions {
		fmt.Fprintf(&b, " %s=%s(%s: %s)", c.Type, c.Status, c.Reason, c.Message)
	}
	return b.String()
}

// containers lists the test's containers of one service, by Docker.
func (e *env) containers(project, service string) []container.Summary {
	e.t.Helper()
	f := filters.NewArgs(filters.Arg("label", reconcile.LabelInstance+"="+e.instance),
		filters.Arg("label", reconcile.LabelProject+"="+project), filters.Arg("label", reconcile.LabelService+"="+service))
	cs, err := e.docker.ContainerList(e.ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		e.t.Fatal(err)
	}
	return cs
}

// freePort returns a TCP port free on 127.0.0.1 right now.
func freePort(t testing.TB) int32 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return int32(l.Addr().(*net.TCPAddr).Port)
}

// httpGet fetches a path of a published port, retrying while the server
// comes up.
func (e *env) httpGet(port int32, path string) string {
	e.t.Helper()
	var body string
	e.eventually(30*time.Second, fmt.Sprintf("GET :%d%s", port, path), func() (bool, string) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		body = string(data)
		return resp.StatusCode == http.StatusOK, fmt.Sprintf("%d %s", resp.StatusCode, data)
	})
	return body
}

func (e *env) httpPut(port int32, path, body string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("http://127.0.0.1:%d%s", port, path), strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		e.t.Fatalf("PUT %s: %d", path, resp.StatusCode)
	}
}

func (e *env) events(project string) []store.Event {
	evs, err := e.store.Events().List(e.ctx, project, store.EventFilter{Limit: 200})
	if err != nil {
		e.t.Fatal(err)
	}
	return evs
}
