package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/internal/testimage"
	"github.com/panelx/panelx/naming"
	"github.com/panelx/panelx/reconcile"
)

// version asks the service's replica with the final name which image
// version it runs ("" when it does not answer).
func (e *sealedEnv) version(service string) string {
	e.t.Helper()
	for _, c := range e.containers(service) {
		if c.Name != "/"+naming.ContainerName(e.project, service, 0) || !c.State.Running {
			continue
		}
		ip := c.NetworkSettings.Networks[naming.NetworkName(e.project)].IPAddress
		resp, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://" + ip + ":8080/")
		if err != nil {
			return ""
		}
		var info struct{ Version string }
		_ = json.NewDecoder(resp.Body).Decode(&info)
		resp.Body.Close()
		return info.Version
	}
	return ""
}

func (e *sealedEnv) waitVersion(service, want string, timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for e.version(service) != want || len(e.containers(service)) != 1 {
		if time.Now().After(deadline) {
			s := e.alice.service(e.project, service)
			e.t.Fatalf("%s never ran version %q alone (runs %q, %d containers): %s %+v", service, want, e.version(service),
				len(e.containers(service)), s.Status.Phase, s.Status.Conditions)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (e *sealedEnv) revisions(service string) []api.Revision {
	e.t.Helper()
	var list struct{ Items []api.Revision }
	if err := json.Unmarshal(e.call(e.alice, 200, "GET", "/api/v1/projects/"+e.project+"/services/"+service+"/revisions", nil), &list); err != nil {
		e.t.Fatal(err)
	}
	return list.Items
}

// TestRollbackAfterTheTagMoved: a rollback runs the image digest the
// revision ran, even though its tag has since moved in the registry.
func TestRollbackAfterTheTagMoved(t *testing.T) {
	t.Parallel()
	e := newSealedEnv(t, "postgres")
	reg := testimage.StartRegistry(t, testimage.RegistryOptions{})
	img := reg.Push(t, "shop/web:1", testimage.Image(t, testimage.ImageOptions{Version: "1"}))
	p := "/api/v1/projects/" + e.project
	e.call(e.alice, 201, "POST", "/api/v1/projects", map[string]any{"metadata": map[string]any{"name": e.project}})
	e.call(e.alice, 201, "POST", p+"/services", map[string]any{"metadata": map[string]any{"name": "web"},
		"spec": map[string]any{"image": img, "imagePullPolicy": "Always"}})
	e.waitReady("web")
	e.waitVersion("web", "1", time.Minute)
	first := e.revisions("web")
	if len(first) != 1 || !strings.Contains(first[0].ImageDigest, "@sha256:") {
		t.Fatalf("first revision: %+v", first)
	}

	// The tag moves: pullPolicy Always finds it and rolls to it.
	reg.Push(t, "shop/web:1", testimage.Image(t, testimage.ImageOptions{Version: "2"}))
	e.waitVersion("web", "2", time.Minute)
	e.waitReady("web")
	var revs []api.Revision
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if revs = e.revisions("web"); len(revs) == 2 || time.Now().After(deadline) {
			break
		}
	}
	if len(revs) != 2 || revs[0].ImageDigest == first[0].ImageDigest || !slices.Contains(revs[0].Cause.Fields, "image (new digest)") {
		t.Fatalf("after the tag moved: %+v", revs)
	}
	// A moved tag changes no generation, so Ready says nothing about which
	// revision runs: wait until the status names the new one, from which a
	// rollback counts back.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var svc api.Service
		if err := json.Unmarshal(e.call(e.alice, 200, "GET", p+"/services/web", nil), &svc); err != nil {
			t.Fatal(err)
		}
		if svc.Status.Rollout.Revision == revs[0].Number {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the status never named revision %d: %+v", revs[0].Number, svc.Status.Rollout)
		}
	}

	var back api.Service
	if err := json.Unmarshal(e.call(e.alice, 200, "POST", p+"/services/web/rollback", nil), &back); err != nil {
		t.Fatal(err)
	}
	if back.Spec.Image != first[0].ImageDigest {
		t.Fatalf("rolled-back image %q, want %q", back.Spec.Image, first[0].ImageDigest)
	}
	e.waitVersion("web", "1", time.Minute)
	e.waitReady("web")
	revs = e.revisions("web")
	if len(revs) != 3 || revs[0].Cause.Message != "rollback to revision 1" || revs[0].Cause.By != "alice" {
		t.Fatalf("revisions after the rollback: %+v", revs)
	}
	// Going back to where it is already is refused.
	e.call(e.alice, 409, "POST", p+"/services/web/rollback", map[string]any{"revision": 1})
}

// TestBrokenImageRollsBackAutomatically: a new revision whose containers
// never become ready misses its progress deadline; the service says so,
// goes back to the last revision that was ready — and that revision's
// replica serves all along (polled every 100 ms: no failure).
func TestBrokenImageRollsBackAutomatically(t *testing.T) {
	for _, backend := range []string{"postgres", "sqlite"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			testBrokenImageRollsBack(t, backend)
		})
	}
}

func testBrokenImageRollsBack(t *testing.T, backend string) {
	e := newSealedEnv(t, backend)
	reg := testimage.StartRegistry(t, testimage.RegistryOptions{})
	good := reg.Push(t, "shop/web:1", testimage.Image(t, testimage.ImageOptions{Version: "1"}))
	broken := reg.Push(t, "shop/web:broken", testimage.Image(t, testimage.ImageOptions{Version: "broken", Cmd: []string{"-echo", "crash"}}))
	p := "/api/v1/projects/" + e.project
	e.call(e.alice, 201, "POST", "/api/v1/projects", map[string]any{"metadata": map[string]any{"name": e.project}})
	rollout := map[string]any{"progressDeadline": "10s", "autoRollback": true}
	e.call(e.alice, 201, "POST", p+"/services", map[string]any{"metadata": map[string]any{"name": "web"},
		"spec": map[string]any{"image": good, "rollout": rollout}})
	e.waitReady("web")
	e.waitVersion("web", "1", time.Minute)
	old := e.containers("web")[0]
	ip := old.NetworkSettings.Networks[naming.NetworkName(e.project)].IPAddress

	var polls, failures atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		client := &http.Client{Timeout: time.Second}
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			polls.Add(1)
			resp, err := client.Get("http://" + ip + ":8080/healthz")
			if err != nil || resp.StatusCode != 200 {
				failures.Add(1)
			}
			if err == nil {
				resp.Body.Close()
			}
		}
	}()

	started := time.Now()
	e.call(e.alice, 200, "PATCH", p+"/services/web", map[string]any{"spec": map[string]any{"image": broken}})
	for {
		s := e.alice.service(e.project, "web")
		if s.Spec.Image != broken && reconcile.ServiceReady(&s) {
			break
		}
		if time.Since(started) > 90*time.Second {
			t.Fatalf("no automatic rollback: %s %+v (image %s), rollout %+v, revisions %+v", s.Status.Phase, s.Status.Conditions, s.Spec.Image, s.Status.Rollout, e.revisions("web"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	rolledBack := time.Since(started)
	e.waitVersion("web", "1", time.Minute)
	close(stop)
	<-done

	if cs := e.containers("web"); len(cs) != 1 || cs[0].ID != old.ID {
		t.Errorf("the old replica was replaced: %d containers", len(cs))
	}
	revs := e.revisions("web")
	if len(revs) != 3 || revs[0].Cause.By != "panelx" || !strings.HasPrefix(revs[0].Cause.Message, "automatic rollback to revision 1") || revs[1].ReadyAt != nil {
		t.Errorf("revisions: %+v", revs)
	}
	// The status said so for as long as it lasted (a poll can miss it: the
	// rollback follows in the same reconcile); the events keep it.
	var events struct{ Items []api.Event }
	_ = json.Unmarshal(e.call(e.alice, 200, "GET", p+"/events?name=web", nil), &events)
	var exceeded, rolled string
	for _, ev := range events.Items {
		switch ev.Reason {
		case reconcile.ReasonProgressDeadlineExceeded:
			exceeded = ev.Message
		case "RolledBack":
			rolled = ev.Message
		}
	}
	if !strings.Contains(exceeded, "did not become ready within 10s") || !strings.Contains(exceeded, "revision 1 keeps serving") {
		t.Errorf("the deadline's event: %q", exceeded)
	}
	if !strings.HasPrefix(rolled, "automatic rollback to revision 1") {
		t.Errorf("the rollback's event: %q", rolled)
	}
	t.Logf("rolled back %v after the change; %d polls of the old revision, %d failed", rolledBack.Round(100*time.Millisecond), polls.Load(), failures.Load())
	if failures.Load() != 0 {
		t.Errorf("%d of %d polls of the old revision failed", failures.Load(), polls.Load())
	}
}

// TestServerKilledMidRollout: kill -9 while a new revision's replica is
// starting; the restarted server finishes the rollout, with one revision
// for the change (not two) and marks it ready.
func TestServerKilledMidRollout(t *testing.T) {
	t.Parallel()
	e := newSealedEnv(t, "postgres")
	reg := testimage.StartRegistry(t, testimage.RegistryOptions{})
	hc := &v1.HealthConfig{Test: []string{"CMD", "/testapp", "-check"}, Interval: time.Second, StartPeriod: 5 * time.Second, Retries: 3}
	v1img := reg.Push(t, "shop/web:1", testimage.Image(t, testimage.ImageOptions{Version: "1", Healthcheck: hc}))
	v2img := reg.Push(t, "shop/web:2", testimage.Image(t, testimage.ImageOptions{Version: "2", Healthcheck: hc}))
	p := "/api/v1/projects/" + e.project
	e.call(e.alice, 201, "POST", "/api/v1/projects", map[string]any{"metadata": map[string]any{"name": e.project}})
	e.call(e.alice, 201, "POST", p+"/services", map[string]any{"metadata": map[string]any{"name": "web"}, "spec": map[string]any{"image": v1img}})
	e.waitReady("web")
	e.call(e.alice, 200, "PATCH", p+"/services/web", map[string]any{"spec": map[string]any{"image": v2img}})
	// Kill as soon as the replacement exists, before it is healthy.
	deadline := time.Now().Add(30 * time.Second)
	for len(e.containers("web")) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no replacement started")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := e.server.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = e.server.Wait()
	e.start()
	e.waitVersion("web", "2", 2*time.Minute)
	s := e.waitReady("web")
	revs := e.revisions("web")
	if len(revs) != 2 || revs[0].ReadyAt == nil || s.Status.Rollout.ReadyRevision != revs[0].Number || s.Status.Rollout.StartedAt != nil {
		t.Fatalf("after the restart: revisions %+v, rollout %+v", revs, s.Status.Rollout)
	}
}
