package conformance

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/reconcile"
	"github.com/panelx/panelx/store"
	"github.com/panelx/panelx/store/storetest"
)

// uniq returns a name unique to this test: engine objects are global to
// the host, so parallel tests must not share project names.
func (e *env) uniq(name string) string { return name + "-" + e.Instance[len(e.Instance)-6:] }

// image pushes a test image to a repository of this test's own and
// returns its reference.
func (e *env) image(repoTag, version string) string {
	return e.Registry.Push(e.t, "t"+e.Instance[len(e.Instance)-6:]+"/"+repoTag, version)
}

func (e *env) createProject(name string) {
	e.t.Helper()
	if _, err := e.Store.Projects().Create(e.ctx, storetest.Project(name)); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) createVolume(project, name string, policy api.ReclaimPolicy) {
	e.t.Helper()
	v := storetest.Volume(project, name)
	if policy != "" {
		v.Spec.ReclaimPolicy = policy
	}
	if _, err := e.Store.Volumes().Create(e.ctx, v); err != nil {
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
	out, err := e.Store.Services().Create(e.ctx, svc)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// updateService applies mutate to the current spec, retrying on conflicts.
func (e *env) updateService(project, name string, mutate func(*api.Service)) *api.Service {
	e.t.Helper()
	for {
		cur, err := e.Store.Services().Get(e.ctx, api.Key{Project: project, Name: name})
		if err != nil {
			e.t.Fatal(err)
		}
		mutate(cur)
		cur.Default()
		if errs := cur.Validate(); len(errs) > 0 {
			e.t.Fatalf("invalid test service: %v", errs)
		}
		out, err := e.Store.Services().Update(e.ctx, cur)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			e.t.Fatal(err)
		}
		return out
	}
}

// eventually polls cond until it holds, failing with what after the
// target's timeout.
func (e *env) eventually(what string, cond func() (bool, string)) {
	e.t.Helper()
	deadline := time.Now().Add(e.Timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %v waiting for %s; last state: %s", e.Timeout, what, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// gone waits until the object's row is removed.
func gone[T api.Object](e *env, what string, res store.Resources[T], key api.Key) {
	e.t.Helper()
	e.eventually(what+" removed", func() (bool, string) {
		_, err := res.Get(e.ctx, key)
		return errors.Is(err, store.ErrNotFound), fmt.Sprint(err)
	})
}

// waitReady waits until the service reports Ready for its current
// generation.
func (e *env) waitReady(project, name string) *api.Service {
	e.t.Helper()
	var svc *api.Service
	e.eventually(fmt.Sprintf("service %s/%s Ready", project, name), func() (bool, string) {
		var err error
		svc, err = e.Store.Services().Get(e.ctx, api.Key{Project: project, Name: name})
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
	e.eventually(fmt.Sprintf("%s/%s %s=%s", project, name, typ, status), func() (bool, string) {
		var err error
		svc, err = e.Store.Services().Get(e.ctx, api.Key{Project: project, Name: name})
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

// replicas are the service's containers as the engine lists them now,
// by name.
func (e *env) replicas(project, service string) []reconcile.Container {
	e.t.Helper()
	list, err := e.Runtime.ListContainers(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []reconcile.Container
	for _, l := range list {
		if l.Project == project && l.Service == service {
			out = append(out, l.Container)
		}
	}
	slices.SortFunc(out, func(a, b reconcile.Container) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func replicaNames(cs []reconcile.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name+":"+c.State)
	}
	return out
}

// want is the replicas a service of n converged ones has: final names,
// running.
func (e *env) want(project, service string, n int) []string {
	var out []string
	for i := 0; i < n; i++ {
		out = append(out, e.ReplicaName(project, service, i)+":running")
	}
	return out
}

func (e *env) volumeExists(name string) bool {
	e.t.Helper()
	_, err := e.Runtime.InspectVolume(e.ctx, name)
	if err != nil && !errors.Is(err, reconcile.ErrNotFound) {
		e.t.Fatal(err)
	}
	return err == nil
}

func (e *env) networkExists(name string) bool {
	e.t.Helper()
	_, err := e.Runtime.InspectNetwork(e.ctx, name)
	if err != nil && !errors.Is(err, reconcile.ErrNotFound) {
		e.t.Fatal(err)
	}
	return err == nil
}

func (e *env) events(project string) []store.Event {
	evs, err := e.Store.Events().List(e.ctx, project, store.EventFilter{Limit: 200})
	if err != nil {
		e.t.Fatal(err)
	}
	return evs
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
	e.eventually(fmt.Sprintf("GET :%d%s", port, path), func() (bool, string) {
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

// noHTTP says, once per test, that a check needs processes the runtime
// does not run.
func (e *env) noHTTP(what string) bool {
	e.t.Helper()
	if e.HTTP {
		return false
	}
	e.t.Logf("not checked on this runtime (no processes answer on host ports): %s", what)
	return true
}
