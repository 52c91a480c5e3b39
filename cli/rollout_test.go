package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/panelx/panelx/api"
)

// svcAt is a service of generation gen whose status says what the
// controller last saw.
func svcAt(gen, observed int64, rev int64, ready int32, conds ...api.Condition) *api.Service {
	one := int32(1)
	s := &api.Service{TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindService},
		Metadata: api.ObjectMeta{Project: "shop", Name: "web", Generation: gen},
		Spec:     api.ServiceSpec{Image: "web:1", Replicas: &one}}
	s.Status.ObservedGeneration, s.Status.ReadyReplicas, s.Status.Conditions = observed, ready, conds
	s.Status.Rollout.Revision = rev
	return s
}

func cond(typ string, ok bool, reason, msg string, gen int64) api.Condition {
	st := api.ConditionFalse
	if ok {
		st = api.ConditionTrue
	}
	return api.Condition{Type: typ, Status: st, Reason: reason, Message: msg, ObservedGeneration: gen}
}

func TestRolloutStateOf(t *testing.T) {
	started := time.Now()
	inProgress := svcAt(2, 2, 3, 0, cond(api.ConditionReady, false, "NotReady", "0/1 replicas ready", 2),
		cond(api.ConditionProgressing, true, "Reconciling", "replica 0 not ready yet", 2))
	inProgress.Status.Rollout.StartedAt = &started
	// Ready, but a secret's new values are still to roll out.
	secretChange := svcAt(2, 2, 4, 1, cond(api.ConditionReady, true, "AllReady", "1/1 replicas ready", 2))
	secretChange.Status.Rollout.StartedAt = &started
	autoRollback := svcAt(2, 2, 3, 0, cond(api.ConditionDegraded, true, reasonDeadlineExceeded, "revision 3 did not become ready within 10s: replica 0 is unhealthy", 2))
	autoRollback.Spec.Rollout.AutoRollback, autoRollback.Status.Rollout.ReadyRevision = true, 2
	deleting := svcAt(2, 2, 3, 1)
	deleting.Metadata.DeletionTimestamp = &started
	for _, c := range []struct {
		name  string
		svc   *api.Service
		state rolloutState
		line  string
		why   string
	}{
		{"a new generation not yet seen", svcAt(3, 2, 2, 1, cond(api.ConditionReady, true, "AllReady", "", 2)), rolloutPending,
			"waiting for the controller to pick up generation 3", ""},
		{"replicas being replaced", inProgress, rolloutProgressing, "revision 3 rolling out: 0/1 replicas ready (replica 0 not ready yet)", ""},
		{"unhealthy before the deadline: still in progress",
			svcAt(2, 2, 3, 0, cond(api.ConditionDegraded, true, "Unhealthy", "replica 0 is unhealthy", 2)), rolloutProgressing,
			"revision 3 rolling out: 0/1 replicas ready (replica 0 is unhealthy)", ""},
		{"Degraded of an older generation does not count",
			svcAt(2, 2, 3, 0, cond(api.ConditionDegraded, true, reasonDeadlineExceeded, "old", 1)), rolloutProgressing,
			"revision 3 rolling out: 0/1 replicas ready", ""},
		{"complete", svcAt(2, 2, 3, 1, cond(api.ConditionReady, true, "AllReady", "1/1 replicas ready", 2)), rolloutComplete,
			"revision 3 rolled out, 1/1 replicas ready", ""},
		{"no revision recorded (older server): complete all the same",
			svcAt(2, 2, 0, 1, cond(api.ConditionReady, true, "AllReady", "1/1 replicas ready", 2)), rolloutComplete,
			"the change rolled out, 1/1 replicas ready", ""},
		{"Ready while a secret change starts", secretChange, rolloutProgressing, "revision 4 rolling out: 1/1 replicas ready", ""},
		{"past the deadline", svcAt(2, 2, 3, 0, cond(api.ConditionDegraded, true, reasonDeadlineExceeded, "revision 3 did not become ready within 5m0s", 2)),
			rolloutFailed, "revision 3 failed: ProgressDeadlineExceeded, 0/1 replicas ready", "revision 3 did not become ready within 5m0s"},
		{"past the deadline with autoRollback", autoRollback, rolloutFailed, "revision 3 failed: ProgressDeadlineExceeded, 0/1 replicas ready",
			"revision 3 did not become ready within 10s: replica 0 is unhealthy (autoRollback: going back to revision 2)"},
		{"being deleted", deleting, rolloutFailed, "being deleted", "the service is being deleted"},
	} {
		t.Run(c.name, func(t *testing.T) {
			state, line, why := rolloutStateOf(c.svc)
			if state != c.state || line != c.line || why != c.why {
				t.Errorf("got %v %q %q\nwant %v %q %q", state, line, why, c.state, c.line, c.why)
			}
		})
	}
}

// fakeWatch serves a service and a watch stream: each connection gets the
// next script of events, then the stream ends (or, for the last script,
// stays open until the client leaves).
type fakeWatch struct {
	mu      sync.Mutex
	get     *api.Service
	scripts [][]api.WatchEvent
	conns   int
	query   string
}

func (f *fakeWatch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/api/v1/projects/shop/services/web":
		writeJSONBody(w, http.StatusOK, f.get)
		return
	case "/api/v1/projects/shop/services/gone":
		writeJSONBody(w, http.StatusNotFound, api.Problem{Detail: `service "gone" not found`})
		return
	case "/api/v1/watch":
	default:
		http.NotFound(w, r)
		return
	}
	f.mu.Lock()
	n := f.conns
	f.conns++
	f.query = r.URL.RawQuery
	f.mu.Unlock()
	w.Header().Set("Content-Type", "text/event-stream")
	if n >= len(f.scripts) {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	for _, ev := range f.scripts[n] {
		data, _ := json.Marshal(ev)
		fmt.Fprintf(w, "data: %s\n\n", data)
	}
	w.(http.Flusher).Flush()
	if n == len(f.scripts)-1 {
		<-r.Context().Done()
	}
}

func TestRolloutStatusWatch(t *testing.T) {
	pending := svcAt(2, 1, 1, 1, cond(api.ConditionReady, true, "AllReady", "", 1))
	progressing := svcAt(2, 2, 2, 0, cond(api.ConditionProgressing, true, "Reconciling", "replica 0 not ready yet", 2))
	complete := svcAt(2, 2, 2, 1, cond(api.ConditionReady, true, "AllReady", "1/1 replicas ready", 2))
	failed := svcAt(2, 2, 2, 0, cond(api.ConditionDegraded, true, reasonDeadlineExceeded, "revision 2 did not become ready within 10s: replica 0 is unhealthy", 2))
	ev := func(typ string, s *api.Service) api.WatchEvent {
		return api.WatchEvent{Type: typ, Kind: api.KindService, Object: s}
	}

	t.Run("complete, across a stream the server ended", func(t *testing.T) {
		f := &fakeWatch{get: pending, scripts: [][]api.WatchEvent{
			{ev("ADDED", pending), {Type: "SYNCED"}, {Type: "ERROR", Message: "the database went away"}},
			{ev("ADDED", progressing), {Type: "SYNCED"}, ev("MODIFIED", progressing), ev("MODIFIED", complete)},
		}}
		srv := httptest.NewServer(f)
		defer srv.Close()
		out, err := runCLI(t, srv.URL, "", "rollout", "status", "web", "-p", "shop", "-w")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		want := "service/shop/web: waiting for the controller to pick up generation 2\n" +
			"watching service/shop/web: watch: the database went away; watching again\n" +
			"service/shop/web: revision 2 rolling out: 0/1 replicas ready (replica 0 not ready yet)\n" +
			"service/shop/web: revision 2 rolled out, 1/1 replicas ready\n"
		if out != want {
			t.Errorf("got\n%s\nwant\n%s", out, want)
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.query != "kind=Service&name=web&project=shop" {
			t.Errorf("watch query %q", f.query)
		}
	})
	t.Run("failed at the deadline", func(t *testing.T) {
		f := &fakeWatch{get: progressing, scripts: [][]api.WatchEvent{{ev("ADDED", progressing), {Type: "SYNCED"}, ev("MODIFIED", failed)}}}
		srv := httptest.NewServer(f)
		defer srv.Close()
		out, err := runCLI(t, srv.URL, "", "rollout", "status", "web", "-p", "shop", "--watch")
		var exit *ExitError
		if !errors.As(err, &exit) || exit.Code != 1 || !strings.Contains(err.Error(), "within 10s: replica 0 is unhealthy") {
			t.Errorf("err = %v", err)
		}
		if !strings.Contains(out, "revision 2 failed: ProgressDeadlineExceeded") {
			t.Errorf("output:\n%s", out)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		f := &fakeWatch{get: progressing, scripts: [][]api.WatchEvent{{ev("ADDED", progressing), {Type: "SYNCED"}}}}
		srv := httptest.NewServer(f)
		defer srv.Close()
		start := time.Now()
		_, err := runCLI(t, srv.URL, "", "rollout", "status", "web", "-p", "shop", "-w", "--timeout", "300ms")
		var exit *ExitError
		if !errors.As(err, &exit) || exit.Code != 1 || !strings.Contains(err.Error(), "timed out after 300ms") ||
			!strings.Contains(err.Error(), "replica 0 not ready yet") {
			t.Errorf("err = %v", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %v", d)
		}
	})
	t.Run("deleted meanwhile", func(t *testing.T) {
		f := &fakeWatch{get: progressing, scripts: [][]api.WatchEvent{{ev("ADDED", progressing), {Type: "SYNCED"}, ev("DELETED", progressing)}}}
		srv := httptest.NewServer(f)
		defer srv.Close()
		_, err := runCLI(t, srv.URL, "", "rollout", "status", "web", "-p", "shop", "-w")
		if err == nil || !strings.Contains(err.Error(), "was deleted") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("a refused watch is not retried", func(t *testing.T) {
		f := &fakeWatch{get: progressing}
		srv := httptest.NewServer(f)
		defer srv.Close()
		_, err := runCLI(t, srv.URL, "", "rollout", "status", "web", "-p", "shop", "-w")
		f.mu.Lock()
		defer f.mu.Unlock()
		if err == nil || !strings.Contains(err.Error(), "401") || f.conns != 1 {
			t.Errorf("err = %v after %d connections", err, f.conns)
		}
	})
	t.Run("without --watch: the state, exit 1 only when failed", func(t *testing.T) {
		f := &fakeWatch{get: progressing}
		srv := httptest.NewServer(f)
		defer srv.Close()
		out, err := runCLI(t, srv.URL, "", "rollout", "status", "web", "-p", "shop")
		if err != nil || out != "service/shop/web: revision 2 rolling out: 0/1 replicas ready (replica 0 not ready yet)\n" {
			t.Errorf("%v\n%s", err, out)
		}
		f.get = failed
		if _, err := runCLI(t, srv.URL, "", "rollout", "status", "web", "-p", "shop"); err == nil {
			t.Error("a failed rollout: no error")
		}
		if _, err := runCLI(t, srv.URL, "", "rollout", "status", "gone", "-p", "shop", "-w"); err == nil || !strings.Contains(err.Error(), "404") {
			t.Errorf("a missing service: %v", err)
		}
	})
}

func TestRolloutHistoryAndUndo(t *testing.T) {
	created := time.Date(2025, 3, 1, 12, 0, 0, 0, time.Local)
	ready := created.Add(5 * time.Second)
	digest := "reg.example/shop/web@sha256:" + strings.Repeat("ab", 32)
	revs := []api.Revision{
		{Project: "shop", Service: "web", Number: 3, Spec: api.ServiceSpec{Image: "web:2"}, CreatedAt: created.Add(time.Hour),
			Cause: api.RevisionCause{By: "bob", Fields: []string{"image"}}},
		{Project: "shop", Service: "web", Number: 2, Spec: api.ServiceSpec{Image: "web:1"}, ImageDigest: digest, CreatedAt: created, ReadyAt: &ready,
			SecretVersions: map[string]int64{"db": 2, "api": 1},
			Cause:          api.RevisionCause{By: "alice", Fields: []string{"env GREETING"}, Message: "rollback to revision 1"}},
	}
	svc := svcAt(4, 4, 3, 0)
	svc.Status.Rollout.ReadyRevision = 2
	var rollbackBody string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method + " " + r.URL.Path {
		case "GET /api/v1/projects/shop/services/web":
			writeJSONBody(w, http.StatusOK, svc)
		case "GET /api/v1/projects/shop/services/web/revisions":
			writeJSONBody(w, http.StatusOK, map[string]any{"apiVersion": api.APIVersion, "kind": "RevisionList", "items": revs})
		case "GET /api/v1/projects/shop/services/web/revisions/2":
			writeJSONBody(w, http.StatusOK, revs[1])
		case "POST /api/v1/projects/shop/services/web/rollback":
			data, _ := io.ReadAll(r.Body)
			rollbackBody = string(data)
			out := svcAt(5, 4, 3, 0)
			out.Spec.Image = digest
			out.Metadata.Annotations = map[string]string{api.AnnotationChangeCause: "rollback to revision 2"}
			writeJSONBody(w, http.StatusOK, out)
		default:
			writeJSONBody(w, http.StatusNotFound, api.Problem{Detail: "no such revision"})
		}
	}))
	defer srv.Close()

	out, err := runCLI(t, srv.URL, "", "rollout", "history", "web", "-p", "shop")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "REVISION") ||
		!strings.HasPrefix(lines[1], "3 (current)") || !strings.Contains(lines[1], "bob") || !strings.Contains(lines[1], " image ") ||
		!strings.Contains(lines[1], "web:2") ||
		!strings.HasPrefix(lines[2], "2 (last ready)") || !strings.Contains(lines[2], "env GREETING (rollback to revision 1)") ||
		!strings.HasSuffix(lines[2], "reg.example/shop/web@sha256:abababababab") || !strings.Contains(lines[2], "2025-03-01 12:00:05") {
		t.Errorf("history:\n%s", out)
	}

	out, err = runCLI(t, srv.URL, "", "rollout", "history", "web", "-p", "shop", "--revision", "2")
	if err != nil {
		t.Fatal(err)
	}
	// Labels and values in columns: compare with the padding squeezed.
	squeezed := regexp.MustCompile(` {2,}`).ReplaceAllString(out, " ")
	for _, want := range []string{"Revision: 2 (last ready)\n", "Image: " + digest + "\n", "Secrets: api (version 1), db (version 2)\n",
		"Cause: env GREETING (rollback to revision 1)\n", "Spec:\n image: web:1\n"} {
		if !strings.Contains(squeezed, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	out, err = runCLI(t, srv.URL, "", "rollout", "history", "web", "-p", "shop", "-o", "json")
	var decoded []api.Revision
	if err != nil || json.Unmarshal([]byte(out), &decoded) != nil || len(decoded) != 2 {
		t.Errorf("history -o json: %v\n%s", err, out)
	}
	if _, err := runCLI(t, srv.URL, "", "rollout", "history", "web", "-p", "shop", "--revision", "7"); err == nil || !strings.Contains(err.Error(), "no such revision") {
		t.Errorf("a missing revision: %v", err)
	}

	out, err = runCLI(t, srv.URL, "", "rollout", "undo", "web", "-p", "shop")
	if err != nil || out != "service/shop/web rolled back to revision 2 (image "+digest+")\n" || rollbackBody != "" {
		t.Errorf("undo: %v, body %q\n%s", err, rollbackBody, out)
	}
	if _, err := runCLI(t, srv.URL, "", "rollout", "undo", "web", "-p", "shop", "--to-revision", "2"); err != nil || rollbackBody != `{"revision":2}` {
		t.Errorf("undo --to-revision: %v, body %q", err, rollbackBody)
	}
}
