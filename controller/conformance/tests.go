package conformance

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/reconcile"
	"github.com/panelx/panelx/store"
)

// testServiceLifecycle: a new service answers on its host port; an env
// change recreates it with the new value; volume data survives both the
// recreate and a delete and re-create of the service; a delete removes
// exactly the service's containers.
func testServiceLifecycle(e *env) {
	t := e.t
	e.start()
	img := e.image("shop/web:1", "1")
	port := freePort(t)
	shop := e.uniq("shop")
	e.createProject(shop)
	e.createVolume(shop, "data", "")
	spec := func(s *api.Service) {
		s.Spec.Env = []api.EnvVar{{Name: "GREETING", Value: "hello"}, {Name: "DATA_DIR", Value: "/data"}}
		s.Spec.Ports = []api.Port{{ContainerPort: 8080, HostPort: port, HostIP: e.HostIP}}
		s.Spec.Volumes = []api.VolumeMount{{Name: "data", MountPath: "/data"}}
	}
	e.createService(shop, "web", img, spec)
	svc := e.waitReady(shop, "web")
	if !e.noHTTP("the replica's environment and files") {
		if got := e.httpGet(port, "/env/GREETING"); got != "hello" {
			t.Fatalf("GREETING = %q, want hello", got)
		}
		e.httpPut(port, "/files/note.txt", "kept across re-creates")
	}
	firstID := svc.Status.Replicas[0].ContainerID

	// An env change recreates the container (stop-first: it has a host port).
	e.updateService(shop, "web", func(s *api.Service) { s.Spec.Env[0].Value = "bonjour" })
	svc = e.waitReady(shop, "web")
	if svc.Status.Replicas[0].ContainerID == firstID {
		t.Fatal("the container was not recreated after an env change")
	}
	if !e.noHTTP("the new environment and the volume's data") {
		if got := e.httpGet(port, "/env/GREETING"); got != "bonjour" {
			t.Fatalf("GREETING after the change = %q, want bonjour", got)
		}
		if got := e.httpGet(port, "/files/note.txt"); got != "kept across re-creates" {
			t.Fatalf("volume data after recreate = %q", got)
		}
	}
	if got := replicaNames(e.replicas(shop, "web")); !slices.Equal(got, e.want(shop, "web", 1)) {
		t.Fatalf("containers after recreate: %v", got)
	}
	reasons := map[string]bool{}
	for _, ev := range e.events(shop) {
		reasons[ev.Reason] = true
	}
	for _, want := range []string{"Pulled", "Created", "NetworkCreated", "VolumeCreated"} {
		if !reasons[want] {
			t.Errorf("no %s event; events: %v", want, reasons)
		}
	}
	// The replacement: a container runtime removed the old container, an
	// orchestrator was told the new spec.
	if !reasons["Removed"] && !reasons["Updated"] {
		t.Errorf("no Removed or Updated event; events: %v", reasons)
	}

	// A neighbour service that must survive the delete.
	e.createService(shop, "other", img, nil)
	e.waitReady(shop, "other")

	// Delete the service: its containers go, then its row; the volume stays.
	if _, err := e.Store.Services().Delete(e.ctx, api.Key{Project: shop, Name: "web"}, store.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	gone(e, "service row", e.Store.Services(), api.Key{Project: shop, Name: "web"})
	if cs := e.replicas(shop, "web"); len(cs) != 0 {
		t.Fatalf("%d containers left after delete", len(cs))
	}
	if cs := e.replicas(shop, "other"); len(cs) != 1 {
		t.Fatalf("the neighbour service lost its container: %v", replicaNames(cs))
	}
	if !e.volumeExists(reconcile.VolumeName(shop, "data")) {
		t.Fatal("the volume went with the service")
	}
	// Re-create: the data is still there.
	e.createService(shop, "web", img, spec)
	e.waitReady(shop, "web")
	if !e.noHTTP("the volume's data after a delete and re-create") {
		if got := e.httpGet(port, "/files/note.txt"); got != "kept across re-creates" {
			t.Fatalf("volume data after delete and re-create = %q", got)
		}
	}
}

// testScaleAndStartFirst: replicas 1 → 3 → 1, and a change of a service
// without host ports starts the replacement before removing the old one.
func testScaleAndStartFirst(e *env) {
	t := e.t
	e.start()
	img := e.image("shop/api:1", "1")
	shop := e.uniq("shop")
	e.createProject(shop)
	e.createService(shop, "api", img, nil)
	e.waitReady(shop, "api")
	for _, n := range []int32{3, 1} {
		e.updateService(shop, "api", func(s *api.Service) { s.Spec.Replicas = &n })
		svc := e.waitReady(shop, "api")
		// Scale-downs retire in the background: wait for the engine.
		e.eventually(fmt.Sprintf("%d containers", n), func() (bool, string) {
			got := replicaNames(e.replicas(shop, "api"))
			return slices.Equal(got, e.want(shop, "api", int(n))), fmt.Sprint(got)
		})
		if svc.Status.ReadyReplicas != n {
			t.Fatalf("replicas %d: %d ready", n, svc.Status.ReadyReplicas)
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
			list, err := e.Runtime.ListContainers(e.ctx)
			if err != nil {
				continue
			}
			running := int32(0)
			for _, c := range list {
				if c.Project == shop && c.Service == "api" && c.State == "running" {
					running++
				}
			}
			if running < minRunning.Load() {
				minRunning.Store(running)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	e.updateService(shop, "api", func(s *api.Service) { s.Spec.Env = []api.EnvVar{{Name: "X", Value: "2"}} })
	e.waitReady(shop, "api")
	close(stop)
	wg.Wait()
	if minRunning.Load() < 1 {
		t.Error("no container was running at some point of a start-first update")
	}
	e.eventually("one container under the final name", func() (bool, string) {
		got := replicaNames(e.replicas(shop, "api"))
		return slices.Equal(got, e.want(shop, "api", 1)), fmt.Sprint(got)
	})
}

// testRepairsDrift: docker rm -f, docker stop and docker network rm behind
// PanelX's back are all repaired, with no API call.
func testRepairsDrift(e *env) {
	t := e.t
	e.start()
	img := e.image("shop/web:1", "1")
	port := freePort(t)
	shop := e.uniq("shop")
	e.createProject(shop)
	e.createService(shop, "web", img, func(s *api.Service) {
		s.Spec.Ports = []api.Port{{ContainerPort: 8080, HostPort: port, HostIP: e.HostIP}}
	})
	e.waitReady(shop, "web")
	serving := func() {
		if !e.HTTP {
			return
		}
		e.httpGet(port, "/healthz")
	}
	serving()

	// running waits for one running replica that repaired (an
	// orchestrator's view of its tasks may lag behind the engine's own).
	running := func(what string, repaired func(c reconcile.Container) bool) {
		e.eventually(what, func() (bool, string) {
			cs := e.replicas(shop, "web")
			return len(cs) == 1 && cs[0].State == "running" && repaired(cs[0]), fmt.Sprint(replicaNames(cs))
		})
		serving()
	}

	id := e.replicas(shop, "web")[0].ID
	if err := e.Outside.RemoveContainer(e.ctx, id); err != nil {
		t.Fatal(err)
	}
	running("a replacement after docker rm -f", func(c reconcile.Container) bool { return c.ID != id })

	id = e.replicas(shop, "web")[0].ID
	stopped := time.Now()
	if err := e.Outside.StopContainer(e.ctx, id); err != nil {
		t.Fatal(err)
	}
	running("the replica running again after docker stop", func(c reconcile.Container) bool {
		in, err := e.Runtime.InspectContainer(e.ctx, c.ID)
		return err == nil && in.StartedAt.After(stopped)
	})
}

// testRepairsNetworkDrift: a project network removed behind PanelX's back
// (its containers disconnected first) is made again and the replica put
// back on it.
func testRepairsNetworkDrift(e *env) {
	t := e.t
	e.start()
	img := e.image("shop/web:1", "1")
	port := freePort(t)
	shop := e.uniq("shop")
	e.createProject(shop)
	e.createService(shop, "web", img, func(s *api.Service) {
		s.Spec.Ports = []api.Port{{ContainerPort: 8080, HostPort: port, HostIP: e.HostIP}}
	})
	e.waitReady(shop, "web")
	netName := reconcile.NetworkName(shop)
	if err := e.Outside.RemoveNetwork(e.ctx, netName); err != nil {
		t.Fatal(err)
	}
	e.eventually("the network re-created and the container on it", func() (bool, string) {
		n, err := e.Runtime.InspectNetwork(e.ctx, netName)
		if err != nil {
			return false, err.Error()
		}
		cs := e.replicas(shop, "web")
		if len(cs) != 1 || cs[0].State != "running" {
			return false, fmt.Sprint(replicaNames(cs))
		}
		return slices.Contains(cs[0].Networks, n.ID), "not attached yet"
	})
	if e.HTTP {
		e.httpGet(port, "/healthz")
	}
}

// testForeignObjects: a container without this installation's label — one
// with a PanelX-like name and one of another installation — survives
// everything PanelX does; a name PanelX needs held by someone else turns
// the service Degraded, saying so.
func testForeignObjects(e *env) {
	t := e.t
	shop, squat := e.uniq("shop"), e.uniq("squat")
	img := e.image("shop/web:1", "1")
	foreign := map[string]map[string]string{
		reconcile.ContainerName(shop, "web", 0) + "-lookalike": nil, // a look-alike name, no labels at all
		reconcile.ContainerName(shop, "web", 1) + "-other-install": {
			reconcile.LabelManaged: "true", reconcile.LabelInstance: "someone-else",
			reconcile.LabelProject: shop, reconcile.LabelService: "web", reconcile.LabelReplica: "1",
		},
	}
	ids := map[string]string{}
	for name, labels := range foreign {
		id, err := e.Outside.RunContainer(e.ctx, name, img, labels, true)
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = id
	}
	// The exact name PanelX needs, held by an object it does not own.
	held, err := e.Outside.Squat(e.ctx, squat, "web", img)
	if err != nil {
		t.Fatal(err)
	}

	e.start()
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
	if _, err := e.Store.Projects().Delete(e.ctx, api.Key{Name: shop}, store.DeleteOptions{PurgeVolumes: true}); err != nil {
		t.Fatal(err)
	}
	gone(e, "project shop", e.Store.Projects(), api.Key{Name: shop})
	for name, id := range ids {
		got, running, err := e.Outside.Container(e.ctx, id)
		if err != nil {
			t.Errorf("foreign container %s is gone: %v", name, err)
			continue
		}
		if !running {
			t.Errorf("foreign container %s was stopped", name)
		}
		if got != name {
			t.Errorf("foreign container %s was renamed to %s", name, got)
		}
	}
	if err := held(e.ctx); err != nil {
		t.Errorf("the object holding the name: %v", err)
	}
}

// testImageErrors: a missing image and a registry refusing the credentials
// both turn the service Degraded with the registry's message; fixing the
// spec recovers.
func testImageErrors(e *env) {
	t := e.t
	e.start()
	good := e.image("shop/web:1", "1")
	shop := e.uniq("shop")
	e.createProject(shop)
	missing := e.Registry.Host() + "/shop/missing:1"
	e.createService(shop, "web", missing, nil)
	svc := e.waitCondition(shop, "web", api.ConditionDegraded, api.ConditionTrue)
	d := api.FindCondition(svc.Status.Conditions, api.ConditionDegraded)
	if d.Reason != reconcile.ReasonPullFailed || !strings.Contains(d.Message, "shop/missing") {
		t.Errorf("Degraded = %s: %s", d.Reason, d.Message)
	}
	if prefix := "pull " + missing + ": "; strings.Count(d.Message, prefix) != 1 {
		t.Errorf("the message should say %q once: %s", prefix, d.Message)
	}
	if svc.Status.Phase != api.PhaseDegraded {
		t.Errorf("phase = %s", svc.Status.Phase)
	}
	e.updateService(shop, "web", func(s *api.Service) { s.Spec.Image = good })
	e.waitReady(shop, "web")

	// A private registry: anonymous, then wrong credentials fail with the
	// registry's message; the right ones, stored server-side, succeed.
	private := e.PrivateRegistry(t, "ci", "s3cret")
	privImg := private.Push(t, "shop/private:1", "private")
	e.createService(shop, "priv", privImg, nil)
	svc = e.waitCondition(shop, "priv", api.ConditionDegraded, api.ConditionTrue)
	if d := api.FindCondition(svc.Status.Conditions, api.ConditionDegraded); !strings.Contains(d.Message, "auth") {
		t.Errorf("anonymous pull from a private registry: Degraded %q", d.Message)
	}
	cred := store.RegistryCredential{Project: shop, Registry: private.Host(), Username: "ci", Password: "wrong"}
	if _, err := e.Store.RegistryCredentials().Put(e.ctx, cred); err != nil {
		t.Fatal(err)
	}
	e.eventually("a pull with the wrong password failing", func() (bool, string) {
		for _, ev := range e.events(shop) {
			if ev.Name == "priv" && ev.Reason == reconcile.ReasonPullFailed && strings.Contains(ev.Message, "unauthorized") {
				return true, ""
			}
		}
		return false, "no unauthorized pull event yet"
	})
	cred.Password = "s3cret"
	if _, err := e.Store.RegistryCredentials().Put(e.ctx, cred); err != nil {
		t.Fatal(err)
	}
	svc = e.waitReady(shop, "priv")
	if d := api.FindCondition(svc.Status.Conditions, api.ConditionDegraded); d.Status != api.ConditionFalse {
		t.Errorf("still degraded after the right credentials: %s", d.Message)
	}
}

// testPullAlways: with pullPolicy Always, pushing a new image under the
// same tag replaces the running container, with no API call.
func testPullAlways(e *env) {
	t := e.t
	e.start()
	ref := e.image("shop/web:stable", "1")
	port := freePort(t)
	shop := e.uniq("shop")
	e.createProject(shop)
	e.createService(shop, "web", ref, func(s *api.Service) {
		s.Spec.ImagePullPolicy = api.PullAlways
		s.Spec.Ports = []api.Port{{ContainerPort: 8080, HostPort: port, HostIP: e.HostIP}}
	})
	first := e.waitReady(shop, "web").Status.ImageID
	if !e.noHTTP("the version the replica serves") {
		if got := e.httpGet(port, "/env/APP_VERSION"); got != "1" {
			t.Fatalf("version = %q, want 1", got)
		}
	}
	e.image("shop/web:stable", "2") // move the tag
	e.eventually("the new image running", func() (bool, string) {
		svc, err := e.Store.Services().Get(e.ctx, api.Key{Project: shop, Name: "web"})
		if err != nil {
			return false, err.Error()
		}
		cs := e.replicas(shop, "web")
		return svc.Status.ImageID != first && len(cs) == 1 && cs[0].ImageID == svc.Status.ImageID && reconcile.ServiceReady(svc),
			fmt.Sprintf("image %s; %s", svc.Status.ImageID, statusSummary(svc))
	})
	if !e.noHTTP("the new version served") {
		e.eventually("the new image serving", func() (bool, string) {
			got := e.httpGet(port, "/env/APP_VERSION")
			return got == "2", "version " + got
		})
	}
}

// testProjectDelete: deleting a project removes its containers and network
// and the volumes whose data it may remove, and nothing of another
// project; with purge, even Retain volumes go.
func testProjectDelete(e *env) {
	t := e.t
	e.start()
	img := e.image("shop/web:1", "1")
	shop, blog := e.uniq("shop"), e.uniq("blog")
	for _, p := range []string{shop, blog} {
		e.createProject(p)
		e.createVolume(p, "keep", "")
		e.createVolume(p, "cache", api.ReclaimDelete)
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
	if _, err := e.Store.Projects().Delete(e.ctx, api.Key{Name: shop}, store.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	gone(e, "project", e.Store.Projects(), api.Key{Name: shop})
	for _, s := range []string{"web", "worker"} {
		if cs := e.replicas(shop, s); len(cs) != 0 {
			t.Errorf("%d containers of %s/%s left", len(cs), shop, s)
		}
		if cs := e.replicas(blog, s); len(cs) != 1 {
			t.Errorf("the other project's %s has %d containers", s, len(cs))
		}
	}
	// An orchestrator removes a network once its tasks have left it.
	e.eventually("the deleted project's network gone", func() (bool, string) {
		return !e.networkExists(reconcile.NetworkName(shop)), "still there"
	})
	if !e.networkExists(reconcile.NetworkName(blog)) {
		t.Error("the other project's network is gone")
	}
	if !e.volumeExists(reconcile.VolumeName(shop, "keep")) {
		t.Error("a Retain volume was lost with its project")
	}
	if e.volumeExists(reconcile.VolumeName(shop, "cache")) {
		t.Error("a Delete volume outlived its project")
	}
	for _, v := range []string{"keep", "cache"} {
		if !e.volumeExists(reconcile.VolumeName(blog, v)) {
			t.Errorf("the other project's volume %s is gone", v)
		}
	}

	if _, err := e.Store.Projects().Delete(e.ctx, api.Key{Name: blog}, store.DeleteOptions{PurgeVolumes: true}); err != nil {
		t.Fatal(err)
	}
	gone(e, "purged project", e.Store.Projects(), api.Key{Name: blog})
	if e.volumeExists(reconcile.VolumeName(blog, "keep")) {
		t.Error("a purged project's volume survived")
	}
}

// testVolumeDeleteWaits: deleting a Volume still mounted by a service keeps
// the data and says why; once the service is gone it is removed.
func testVolumeDeleteWaits(e *env) {
	t := e.t
	e.start()
	img := e.image("shop/web:1", "1")
	shop := e.uniq("shop")
	e.createProject(shop)
	e.createVolume(shop, "data", "")
	e.createService(shop, "web", img, func(s *api.Service) {
		s.Spec.Volumes = []api.VolumeMount{{Name: "data", MountPath: "/data"}}
	})
	e.waitReady(shop, "web")
	if _, err := e.Store.Volumes().Delete(e.ctx, api.Key{Project: shop, Name: "data"}, store.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.eventually("volume reporting it is in use", func() (bool, string) {
		v, err := e.Store.Volumes().Get(e.ctx, api.Key{Project: shop, Name: "data"})
		if err != nil {
			return false, err.Error()
		}
		c := api.FindCondition(v.Status.Conditions, api.ConditionReady)
		return c != nil && strings.Contains(c.Message, "mounted by"), fmt.Sprintf("%+v", v.Status)
	})
	if !e.volumeExists(reconcile.VolumeName(shop, "data")) {
		t.Fatal("the data of a volume in use is gone")
	}
	if _, err := e.Store.Services().Delete(e.ctx, api.Key{Project: shop, Name: "web"}, store.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	gone(e, "volume", e.Store.Volumes(), api.Key{Project: shop, Name: "data"})
	if e.volumeExists(reconcile.VolumeName(shop, "data")) {
		t.Error("the engine's volume outlived its delete")
	}
}
