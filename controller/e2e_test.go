package controller_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/internal/testimage"
	"github.com/panelx/panelx/reconcile"
	"github.com/panelx/panelx/store"
)

// TestServiceLifecycle: a new service answers on its host port; an env
// change recreates it with the new value; volume data survives both the
// recreate and a delete and re-create of the service; a delete removes
// exactly the service's containers.
func TestServiceLifecycle(t *testing.T) {
	t.Parallel()
	testServiceLifecycle(t, newEnv(t))
}

// TestServiceLifecycleOnSQLite runs the same end-to-end test on the
// embedded store.
func TestServiceLifecycleOnSQLite(t *testing.T) {
	t.Parallel()
	testServiceLifecycle(t, newEnvSQLite(t))
}

func testServiceLifecycle(t *testing.T, e *env) {
	e.startController(e.controllerOptions())
	img := e.image("shop/web:1", "1")
	port := freePort(t)
	shop := e.uniq("shop")
	e.createProject(shop)
	e.createVolume(shop, "data")
	spec := func(s *api.Service) {
		s.Spec.Env = []api.EnvVar{{Name: "GREETING", Value: "hello"}, {Name: "DATA_DIR", Value: "/data"}}
		s.Spec.Ports = []api.Port{{ContainerPort: 8080, HostPort: port, HostIP: "127.0.0.1"}}
		s.Spec.Volumes = []api.VolumeMount{{Name: "data", MountPath: "/data"}}
	}
	e.createService(shop, "web", img, spec)
	svc := e.waitReady(shop, "web")
	if got := e.httpGet(port, "/env/GREETING"); got != "hello" {
		t.Fatalf("GREETING = %q, want hello", got)
	}
	e.httpPut(port, "/files/note.txt", "kept across re-creates")
	firstID := svc.Status.Replicas[0].ContainerID

	// An env change recreates the container (stop-first: it has a host port).
	e.updateService(shop, "web", func(s *api.Service) { s.Spec.Env[0].Value = "bonjour" })
	svc = e.waitReady(shop, "web")
	if svc.Status.Replicas[0].ContainerID == firstID {
		t.Fatal("the container was not recreated after an env change")
	}
	if got := e.httpGet(port, "/env/GREETING"); got != "bonjour" {
		t.Fatalf("GREETING after the change = %q, want bonjour", got)
	}
	if got := e.httpGet(port, "/files/note.txt"); got != "kept across re-creates" {
		t.Fatalf("volume data after recreate = %q", got)
	}
	if cs := e.containers(shop, "web"); len(cs) != 1 || cs[0].Names[0] != "/"+reconcile.ContainerName(shop, "web", 0) {
		t.Fatalf("containers after recreate: %+v", cs)
	}
	reasons := map[string]bool{}
	for _, ev := range e.events(shop) {
		reasons[ev.Reason] = true
	}
	for _, want := range []string{"Pulled", "Created", "Removed", "NetworkCreated", "VolumeCreated"} {
		if !reasons[want] {
			t.Errorf("no %s event; events: %v", want, reasons)
		}
	}

	// A neighbour service that must survive the delete.
	e.createService(shop, "other", img, nil)
	e.waitReady(shop, "other")

	// Delete the service: its containers go, then its row; the volume stays.
	if _, err := e.store.Services().Delete(e.ctx, api.Key{Project: shop, Name: "web"}, store.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually(60*time.Second, "service row removed", func() (bool, string) {
		_, err := e.store.Services().Get(e.ctx, api.Key{Project: shop, Name: "web"})
		return errors.Is(err, store.ErrNotFound), fmt.Sprint(err)
	})
	if cs := e.containers(shop, "web"); len(cs) != 0 {
		t.Fatalf("%d containers left after delete", len(cs))
	}
	if cs := e.containers(shop, "other"); len(cs) != 1 {
		t.Fatalf("the neighbour service lost its container: %+v", cs)
	}
	// Re-create: the data is still there.
	e.createService(shop, "web", img, spec)
	e.waitReady(shop, "web")
	if got := e.httpGet(port, "/files/note.txt"); got != "kept across re-creates" {
		t.Fatalf("volume data after delete and re-create = %q", got)
	}
}

// TestScaleAndStartFirst: replicas 1 → 3 → 1, and a change of a service
// without host ports starts the replacement before removing the old one.
func TestScaleAndStartFirst(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startController(e.controllerOptions())
	img := e.image("shop/api:1", "1")
	shop := e.uniq("shop")
	e.createProject(shop)
	e.createService(shop, "api", img, nil)
	e.waitReady(shop, "api")
	for _, n := range []int32{3, 1} {
		e.updateService(shop, "api", func(s *api.Service) { s.Spec.Replicas = &n })
		svc := e.waitReady(shop, "api")
		if cs := e.containers(shop, "api"); len(cs) != int(n) || svc.Status.ReadyReplicas != n {
			t.Fatalf("replicas %d: %d containers, %d ready", n, len(cs), svc.Status.ReadyReplicas)
		}
	}
	// Watch the containers during an update: at every moment at least one
	// runs (start-first), and in the end exactly one, under the final name.
	var minRunning atomic.Int32
	minRunning.Store(99)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			running := int32(0)
			for _, c := range e.containers(shop, "api") {
				if c.State == "running" {
					running++
				}
			}
			if running < minRunning.Load() {
				minRunning.Store(running)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	e.updateService(shop, "api", func(s *api.Service) { s.Spec.Env = []api.EnvVar{{Name: "X", Value: "2"}} })
	e.waitReady(shop, "api")
	close(stop)
	wg.Wait()
	if minRunning.Load() < 1 {
		t.Error("no container was running at some point of a start-first update")
	}
	if cs := e.containers(shop, "api"); len(cs) != 1 || cs[0].Names[0] != "/"+reconcile.ContainerName(shop, "api", 0) {
		t.Fatalf("after update: %+v", cs)
	}
}

// TestRepairsDriftWithoutAPICalls: docker rm -f, docker stop and docker
// network rm behind PanelX's back are all repaired.
func TestRepairsDriftWithoutAPICalls(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startController(e.controllerOptions())
	img := e.image("shop/web:1", "1")
	port := freePort(t)
	shop := e.uniq("shop")
	e.createProject(shop)
	e.createService(shop, "web", img, func(s *api.Service) {
		s.Spec.Ports = []api.Port{{ContainerPort: 8080, HostPort: port, HostIP: "127.0.0.1"}}
	})
	e.waitReady(shop, "web")
	e.httpGet(port, "/healthz")

	running := func(what string) {
		e.eventually(60*time.Second, what, func() (bool, string) {
			cs := e.containers(shop, "web")
			return len(cs) == 1 && cs[0].State == "running", fmt.Sprintf("%d containers", len(cs))
		})
		e.httpGet(port, "/healthz")
	}

	id := e.containers(shop, "web")[0].ID
	if err := e.docker.ContainerRemove(e.ctx, id, container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	running("a replacement after docker rm -f")
	if e.containers(shop, "web")[0].ID == id {
		t.Fatal("same container ID after removal")
	}

	id = e.containers(shop, "web")[0].ID
	timeout := 5
	if err := e.docker.ContainerStop(e.ctx, id, container.StopOptions{Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	running("the container started again after docker stop")

	// docker network rm: Docker refuses while containers are attached, so
	// disconnect them first, as someone cleaning up by hand would.
	netName := reconcile.NetworkName(shop)
	for _, c := range e.containers(shop, "web") {
		if err := e.docker.NetworkDisconnect(e.ctx, netName, c.ID, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.docker.NetworkRemove(e.ctx, netName); err != nil {
		t.Fatal(err)
	}
	e.eventually(60*time.Second, "the network re-created and the container on it", func() (bool, string) {
		n, err := e.docker.NetworkInspect(e.ctx, netName, network.InspectOptions{})
		if err != nil {
			return false, err.Error()
		}
		cs := e.containers(shop, "web")
		if len(cs) != 1 || cs[0].State != "running" || cs[0].NetworkSettings == nil {
			return false, fmt.Sprintf("%d containers", len(cs))
		}
		_, attached := cs[0].NetworkSettings.Networks[netName]
		return attached && cs[0].NetworkSettings.Networks[netName].NetworkID == n.ID, "not attached yet"
	})
	e.httpGet(port, "/healthz")
}

// TestForeignContainersAreNeverTouched: a container without this
// installation's label — one with a PanelX-like name and one of another
// installation — survives everything PanelX does.
func TestForeignContainersAreNeverTouched(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	shop, squat := e.uniq("shop"), e.uniq("squat")
	img := e.image("shop/web:1", "1")
	// Pull through the registry so the foreign containers can use the image.
	rc, err := e.docker.ImagePull(e.ctx, img, imagePullOptions())
	if err != nil {
		t.Fatal(err)
	}
	drain(rc)
	foreign := map[string]map[string]string{
		reconcile.ContainerName(shop, "web", 0) + "-lookalike": nil, // a look-alike name, no labels at all
		reconcile.ContainerName(shop, "web", 1) + "-other-install": {
			reconcile.LabelManaged: "true", reconcile.LabelInstance: "someone-else",
			reconcile.LabelProject: shop, reconcile.LabelService: "web", reconcile.LabelReplica: "1",
		},
	}
	ids := map[string]string{}
	for name, labels := range foreign {
		resp, err := e.docker.ContainerCreate(e.ctx, &container.Config{Image: img, Cmd: []string{"-sleep"}, Labels: labels}, nil, nil, nil, name)
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = resp.ID
		t.Cleanup(func() {
			_ = e.docker.ContainerRemove(context.Background(), resp.ID, container.RemoveOptions{Force: true})
		})
		if err := e.docker.ContainerStart(e.ctx, resp.ID, container.StartOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The exact final name, held by a container PanelX does not own.
	squatter, err := e.docker.ContainerCreate(e.ctx, &container.Config{Image: img, Cmd: []string{"-sleep"}}, nil, nil, nil, reconcile.ContainerName(squat, "web", 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.docker.ContainerRemove(context.Background(), squatter.ID, container.RemoveOptions{Force: true})
	})
	ids["squatter"] = squatter.ID

	e.startController(e.controllerOptions())
	e.createProject(shop)
	e.createService(shop, "web", img, func(s *api.Service) { r := int32(2); s.Spec.Replicas = &r })
	e.waitReady(shop, "web")
	e.createProject(squat)
	e.createService(squat, "web", img, nil)
	svc := e.waitCondition(squat, "web", api.ConditionDegraded, api.ConditionTrue)
	if d := api.FindCondition(svc.Status.Conditions, api.ConditionDegraded); !strings.Contains(d.Message, "name is taken") {
		t.Errorf("Degraded message %q does not explain the name clash", d.Message)
	}
	// Scale to zero and delete everything: the foreign containers stay.
	e.updateService(shop, "web", func(s *api.Service) { z := int32(0); s.Spec.Replicas = &z })
	e.waitReady(shop, "web")
	if _, err := e.store.Projects().Delete(e.ctx, api.Key{Name: shop}, store.DeleteOptions{PurgeVolumes: true}); err != nil {
		t.Fatal(err)
	}
	e.eventually(60*time.Second, "project shop removed", func() (bool, string) {
		_, err := e.store.Projects().Get(e.ctx, api.Key{Name: shop})
		return errors.Is(err, store.ErrNotFound), fmt.Sprint(err)
	})
	for name, id := range ids {
		c, err := e.docker.ContainerInspect(e.ctx, id)
		if err != nil {
			t.Errorf("foreign container %s is gone: %v", name, err)
			continue
		}
		if name != "squatter" && !c.State.Running {
			t.Errorf("foreign container %s was stopped", name)
		}
		if c.Name != "/"+name && name != "squatter" {
			t.Errorf("foreign container %s was renamed to %s", name, c.Name)
		}
	}
}

// TestImageErrorsDegradeAndRecover: a missing image and a registry refusing
// the credentials both turn the service Degraded with the registry's
// message; fixing the spec recovers.
func TestImageErrorsDegradeAndRecover(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startController(e.controllerOptions())
	good := e.image("shop/web:1", "1")
	shop := e.uniq("shop")
	e.createProject(shop)
	e.createService(shop, "web", e.reg.Host()+"/shop/missing:1", nil)
	svc := e.waitCondition(shop, "web", api.ConditionDegraded, api.ConditionTrue)
	d := api.FindCondition(svc.Status.Conditions, api.ConditionDegraded)
	if d.Reason != reconcile.ReasonPullFailed || !strings.Contains(d.Message, "shop/missing") {
		t.Errorf("Degraded = %s: %s", d.Reason, d.Message)
	}
	if prefix := "pull " + e.reg.Host() + "/shop/missing:1: "; strings.Count(d.Message, prefix) != 1 {
		t.Errorf("the message should say %q once: %s", prefix, d.Message)
	}
	if svc.Status.Phase != api.PhaseDegraded {
		t.Errorf("phase = %s", svc.Status.Phase)
	}
	e.updateService(shop, "web", func(s *api.Service) { s.Spec.Image = good })
	e.waitReady(shop, "web")

	// A private registry: anonymous, then wrong credentials fail with the
	// registry's message; the right ones, stored server-side, succeed.
	private := testimage.StartRegistry(t, testimage.RegistryOptions{Username: "ci", Password: "s3cret"})
	privImg := private.Push(t, "shop/private:1", testimage.Image(t, testimage.ImageOptions{Version: "private"}))
	e.createService(shop, "priv", privImg, nil)
	svc = e.waitCondition(shop, "priv", api.ConditionDegraded, api.ConditionTrue)
	if d := api.FindCondition(svc.Status.Conditions, api.ConditionDegraded); !strings.Contains(d.Message, "auth") {
		t.Errorf("anonymous pull from a private registry: Degraded %q", d.Message)
	}
	cred := store.RegistryCredential{Project: shop, Registry: private.Host(), Username: "ci", Password: "wrong"}
	if _, err := e.store.RegistryCredentials().Put(e.ctx, cred); err != nil {
		t.Fatal(err)
	}
	e.eventually(60*time.Second, "a pull with the wrong password failing", func() (bool, string) {
		for _, ev := range e.events(shop) {
			if ev.Name == "priv" && ev.Reason == reconcile.ReasonPullFailed && strings.Contains(ev.Message, "unauthorized") {
				return true, ""
			}
		}
		return false, "no unauthorized pull event yet"
	})
	cred.Password = "s3cret"
	if _, err := e.store.RegistryCredentials().Put(e.ctx, cred); err != nil {
		t.Fatal(err)
	}
	svc = e.waitReady(shop, "priv")
	if d := api.FindCondition(svc.Status.Conditions, api.ConditionDegraded); d.Status != api.ConditionFalse {
		t.Errorf("still degraded after the right credentials: %s", d.Message)
	}
}

// TestPullAlwaysFollowsAMovedTag: with pullPolicy Always, pushing a new image
// under the same tag replaces the running container, with no API call.
func TestPullAlwaysFollowsAMovedTag(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startController(e.controllerOptions())
	ref := e.image("shop/web:stable", "1")
	port := freePort(t)
	shop := e.uniq("shop")
	e.createProject(shop)
	e.createService(shop, "web", ref, func(s *api.Service) {
		s.Spec.ImagePullPolicy = api.PullAlways
		s.Spec.Ports = []api.Port{{ContainerPort: 8080, HostPort: port, HostIP: "127.0.0.1"}}
	})
	e.waitReady(shop, "web")
	if got := e.httpGet(port, "/env/APP_VERSION"); got != "1" {
		t.Fatalf("version = %q, want 1", got)
	}
	e.image("shop/web:stable", "2") // move the tag
	e.eventually(60*time.Second, "the new image serving", func() (bool, string) {
		got := e.httpGet(port, "/env/APP_VERSION")
		return got == "2", "version " + got
	})
}

func imagePullOptions() image.PullOptions { return image.PullOptions{} }

func drain(rc io.ReadCloser) {
	_, _ = io.Copy(io.Discard, rc)
	rc.Close()
}
