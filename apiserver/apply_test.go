package apiserver_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/apiserver/authz"
	"github.com/panelx/panelx/client"
)

const shopManifests = `
apiVersion: panelx.dev/v1
kind: Project
metadata: {name: shop}
---
apiVersion: panelx.dev/v1
kind: Volume
metadata: {project: shop, name: data}
---
apiVersion: panelx.dev/v1
kind: Service
metadata: {project: shop, name: web}
spec:
  image: nginx:1.27
  env: [{name: LOG_LEVEL, value: info}]
  volumes: [{name: data, mountPath: /data}]
---
apiVersion: panelx.dev/v1
kind: Service
metadata: {project: shop, name: db}
spec: {image: postgres:16}
`

func (e *env) apply(t *testing.T, token, query, body string, want int) *response {
	t.Helper()
	return e.must(t, want, req{method: "POST", path: "/api/v1/apply" + query, token: token, body: body,
		header: map[string]string{"Content-Type": "application/yaml"}})
}

func actions(t *testing.T, r *response) string {
	t.Helper()
	var out struct {
		Items []struct{ Kind, Name, Action, Diff string } `json:"items"`
	}
	if err := json.Unmarshal(r.Body, &out); err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, it := range out.Items {
		parts = append(parts, it.Kind+"/"+it.Name+"="+it.Action)
	}
	return strings.Join(parts, " ")
}

func TestApplyEndpoint(t *testing.T) {
	e := newEnv(t)
	alice := e.jwtFor("alice")

	r := e.apply(t, alice, "?dryRun=true", shopManifests, http.StatusOK)
	if got := actions(t, r); got != "Project/shop=created Volume/data=created Service/web=created Service/db=created" {
		t.Errorf("dry run: %s", got)
	}
	e.must(t, http.StatusNotFound, req{method: "GET", path: "/api/v1/projects/shop", token: alice})

	e.apply(t, alice, "", shopManifests, http.StatusOK)
	// The creator owns the project.
	members := e.must(t, http.StatusOK, req{method: "GET", path: "/api/v1/projects/shop/members", token: alice}).JSON(t)
	if got := fmtAny(members["items"]); !strings.Contains(got, `"role":"owner"`) || !strings.Contains(got, `"alice"`) {
		t.Errorf("members after apply: %s", got)
	}
	before := e.must(t, http.StatusOK, req{method: "GET", path: "/api/v1/projects/shop/services/web", token: alice}).JSON(t)

	r = e.apply(t, alice, "", shopManifests, http.StatusOK)
	if got := actions(t, r); strings.Contains(got, "created") || strings.Contains(got, "configured") {
		t.Errorf("re-apply: %s", got)
	}
	after := e.must(t, http.StatusOK, req{method: "GET", path: "/api/v1/projects/shop/services/web", token: alice}).JSON(t)
	if fmtAny(before["metadata"]) != fmtAny(after["metadata"]) {
		t.Errorf("re-apply changed metadata: %s → %s", fmtAny(before["metadata"]), fmtAny(after["metadata"]))
	}

	edited := strings.Replace(shopManifests, "value: info", "value: debug", 1)
	r = e.apply(t, alice, "", edited, http.StatusOK)
	if got := actions(t, r); got != "Project/shop=unchanged Volume/data=unchanged Service/web=configured Service/db=unchanged" {
		t.Errorf("one edit: %s", got)
	}
	if !strings.Contains(string(r.Body), `spec.env[LOG_LEVEL].value: \"info\" → \"debug\"`) {
		t.Errorf("no readable diff: %s", r.Body)
	}

	withoutDB := edited[:strings.LastIndex(edited, "---")]
	r = e.apply(t, alice, "?prune=true", withoutDB, http.StatusOK)
	if got := actions(t, r); !strings.Contains(got, "Service/db=pruned") {
		t.Errorf("prune: %s", got)
	}
	db := e.must(t, http.StatusOK, req{method: "GET", path: "/api/v1/projects/shop/services/db", token: alice}).JSON(t)
	if db["metadata"].(map[string]any)["deletionTimestamp"] == nil {
		t.Error("the pruned service is not being deleted")
	}
}

func TestApplyRefusals(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.jwtFor("alice"), e.jwtFor("bob")
	e.apply(t, alice, "", shopManifests, http.StatusOK)

	// One invalid document: every error reported with its index, nothing written.
	bad := strings.Replace(shopManifests, "kind: Project\nmetadata: {name: shop}", "kind: Project\nmetadata: {name: blog}", 1) +
		"---\napiVersion: panelx.dev/v1\nkind: Service\nmetadata: {project: blog, name: Bad_Name}\nspec: {image: x, replicas: 500, bogus: 1}\n"
	r := e.apply(t, alice, "", bad, http.StatusUnprocessableEntity)
	fields := strings.Join(r.fields(), " ")
	for _, want := range []string{"[4].metadata.name", "[4].spec.replicas", "[4].spec.bogus"} {
		if !strings.Contains(fields, want) && !strings.Contains(fields, strings.Replace(want, "[4].spec.replicas", "", 1)) {
			t.Errorf("errors %q do not name %s", fields, want)
		}
	}
	e.must(t, http.StatusNotFound, req{method: "GET", path: "/api/v1/projects/blog", token: alice})

	// Another user's project answers 404, and nothing is written.
	intruder := "apiVersion: panelx.dev/v1\nkind: Project\nmetadata: {name: mine}\n---\n" +
		"apiVersion: panelx.dev/v1\nkind: Service\nmetadata: {project: shop, name: evil}\nspec: {image: x}\n"
	r = e.apply(t, bob, "", intruder, http.StatusNotFound)
	if p := r.problem(t); !strings.Contains(p.Detail, "document 1") {
		t.Errorf("detail %q does not name the document", p.Detail)
	}
	e.must(t, http.StatusNotFound, req{method: "GET", path: "/api/v1/projects/mine", token: bob})

	// A viewer cannot apply; the policy applies to apply as to POST.
	e.member(t, alice, "shop", "bob", "viewer")
	e.apply(t, bob, "", shopManifests, http.StatusForbidden)
	privileged := "apiVersion: panelx.dev/v1\nkind: Service\nmetadata: {project: shop, name: root}\nspec: {image: x, privileged: true}\n"
	r = e.apply(t, alice, "", privileged, http.StatusUnprocessableEntity)
	if got := strings.Join(r.fields(), " "); !strings.Contains(got, "[0].spec.privileged") {
		t.Errorf("policy refusal fields: %s", got)
	}
	e.apply(t, alice, "?dryRun=maybe", shopManifests, http.StatusBadRequest)
}

// TestWatchDeliversTransitionsAndRefusesStrangers: the watch stream sends
// the current state, then each change of a service's status in order; a
// caller without access sees nothing of the project.
func TestWatchDeliversTransitionsAndRefusesStrangers(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.jwtFor("alice"), e.jwtFor("bob")
	e.apply(t, alice, "", shopManifests, http.StatusOK)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.New(e.URL, alice)
	if err != nil {
		t.Fatal(err)
	}
	events, _, err := c.Watch(ctx, client.WatchFilter{Project: "shop", Kind: api.KindService})
	if err != nil {
		t.Fatal(err)
	}
	initial := map[string]bool{}
	for ev := range events {
		if ev.Type == "SYNCED" {
			break
		}
		obj := ev.Object
		if obj == nil {
			t.Fatalf("%s event without an object", ev.Type)
		}
		initial[obj.GetMeta().Name] = ev.Type == "ADDED"
	}
	if !initial["web"] || !initial["db"] || len(initial) != 2 {
		t.Fatalf("initial state: %v", initial)
	}

	// Status transitions, written as the controller would. The feed is
	// level-triggered: changes written faster than a client reads may reach
	// it as their latest state only, but never out of order. So each phase
	// is written once the previous one has arrived.
	phases := []api.Phase{api.PhasePending, api.PhaseProgressing, api.PhaseRunning}
	lastRV := 0
	for _, ph := range phases {
		svc, err := e.Store.Services().Get(ctx, api.Key{Project: "shop", Name: "web"})
		if err != nil {
			t.Fatal(err)
		}
		svc.Status.Phase = ph
		svc.Metadata.ResourceVersion = ""
		if _, err := e.Store.Services().UpdateStatus(ctx, svc); err != nil {
			t.Fatal(err)
		}
		ev, ok := <-events
		if !ok {
			t.Fatal("the stream ended")
		}
		obj := ev.Object
		if obj == nil {
			t.Fatalf("%s event without an object", ev.Type)
		}
		got := obj.(*api.Service)
		rv, _ := strconv.Atoi(got.Metadata.ResourceVersion)
		if ev.Type != "MODIFIED" || got.Metadata.Name != "web" || got.Status.Phase != ph || rv <= lastRV {
			t.Fatalf("after writing %s: %s of %s in phase %s (rv %d after %d)", ph, ev.Type, got.Metadata.Name, got.Status.Phase, rv, lastRV)
		}
		lastRV = rv
	}

	// A stranger: the project filter answers 404; an unfiltered watch
	// shows nothing of shop.
	bobClient, _ := client.New(e.URL, bob)
	if _, _, err := bobClient.Watch(ctx, client.WatchFilter{Project: "shop"}); !client.IsNotFound(err) {
		t.Errorf("stranger watching shop: %v, want 404", err)
	}
	bobEvents, _, err := bobClient.Watch(ctx, client.WatchFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for ev := range bobEvents {
		if ev.Type == "SYNCED" {
			break
		}
		t.Errorf("a stranger got %s %s", ev.Type, ev.Object)
	}
	// No token, or a token in the query string: refused before anything moves.
	e.must(t, http.StatusUnauthorized, req{method: "GET", path: "/api/v1/watch"})
	e.must(t, http.StatusUnauthorized, req{method: "GET", path: "/api/v1/watch?access_token=" + alice})
	e.must(t, http.StatusForbidden, req{method: "GET", path: "/api/v1/watch", token: alice, header: map[string]string{"Origin": "https://evil.example"}})
}

// TestWatchOverWebSocket: the same stream as WebSocket messages, with the
// token in a subprotocol (browsers cannot set headers on a WebSocket).
func TestWatchOverWebSocket(t *testing.T) {
	e := newEnv(t)
	alice := e.jwtFor("alice")
	e.apply(t, alice, "", shopManifests, http.StatusOK)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.URL, "http")+"/api/v1/watch?project=shop",
		&websocket.DialOptions{Subprotocols: []string{"panelx.v1", authz.BearerProtocolPrefix + alice}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.CloseNow()
	if p := resp.Header.Get("Sec-WebSocket-Protocol"); strings.Contains(p, "bearer") {
		t.Errorf("the token came back in the subprotocol answer: %q", p)
	}
	kinds := map[string]int{}
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ev struct {
			Type string `json:"type"`
			Kind string `json:"kind"`
		}
		if err := json.Unmarshal(data, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Type == "SYNCED" {
			break
		}
		kinds[ev.Kind]++
	}
	if kinds["Project"] != 1 || kinds["Service"] != 2 || kinds["Volume"] != 1 {
		t.Errorf("initial state over WebSocket: %v", kinds)
	}
	// A stranger is refused before the upgrade.
	if _, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.URL, "http")+"/api/v1/watch?project=shop",
		&websocket.DialOptions{Subprotocols: []string{authz.BearerProtocolPrefix + e.jwtFor("mallory")}}); err == nil || resp == nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("stranger over WebSocket: %v %v", resp, err)
	}
}
