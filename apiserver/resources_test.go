package apiserver_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/store"
)

func TestObjectLifecycleAndConcurrencyTokens(t *testing.T) {
	e := newEnv(t)
	tok := e.jwtFor("alice")
	e.project(t, tok, "shop")
	created := e.service(t, tok, "shop", "web")
	if loc := created.Header.Get("Location"); loc != "/api/v1/projects/shop/services/web" {
		t.Errorf("Location = %q", loc)
	}
	etag := created.Header.Get("ETag")
	obj := created.JSON(t)
	rv := obj["metadata"].(map[string]any)["resourceVersion"].(string)
	if etag != `"`+rv+`"` {
		t.Errorf("ETag %s, resourceVersion %s", etag, rv)
	}
	path := "/api/v1/projects/shop/services/web"
	got := e.must(t, http.StatusOK, req{method: "GET", path: path, token: tok})
	if got.Header.Get("ETag") != etag {
		t.Errorf("GET ETag %s, want %s", got.Header.Get("ETag"), etag)
	}

	// get | edit | put: server-set metadata and status in the body are
	// ignored; metadata.resourceVersion acts as If-Match.
	edited := strings.Replace(string(got.Body), `"replicas":1`, `"replicas":2`, 1)
	edited = strings.Replace(edited, `"spec":{`, `"status":{"phase":"Running","readyReplicas":9},"spec":{`, 1)
	edited = strings.Replace(edited, `"generation":1`, `"generation":42`, 1)
	put := e.must(t, http.StatusOK, req{method: "PUT", path: path, token: tok, body: edited, header: map[string]string{"Content-Type": "application/json"}})
	pm := put.JSON(t)
	if pm["spec"].(map[string]any)["replicas"].(float64) != 2 || pm["metadata"].(map[string]any)["generation"].(float64) != 2 || pm["status"] != nil {
		t.Errorf("after PUT: %s", put.Body)
	}
	// The same body again: its resourceVersion is stale now.
	r := e.do(t, req{method: "PUT", path: path, token: tok, body: edited, header: map[string]string{"Content-Type": "application/json"}})
	if r.Status != http.StatusPreconditionFailed {
		t.Errorf("PUT with a stale body resourceVersion: %d %s", r.Status, r.Body)
	}
	r.problem(t)
	// If-Match wins over the body; a stale If-Match is 412 on PUT, PATCH, DELETE.
	cur := put.Header.Get("ETag")
	e.must(t, http.StatusOK, req{method: "PUT", path: path, token: tok, body: edited, header: map[string]string{"Content-Type": "application/json", "If-Match": cur}})
	for _, m := range []string{"PUT", "PATCH", "DELETE"} {
		body := any(manifest("services", "web", nil))
		if m == "PATCH" {
			body = `{"spec": {"replicas": 3}}`
		}
		e.must(t, http.StatusPreconditionFailed, req{method: m, path: path, token: tok, body: body, header: map[string]string{"If-Match": cur}})
	}
	e.must(t, http.StatusBadRequest, req{method: "DELETE", path: path, token: tok, header: map[string]string{"If-Match": `"1", "2"`}})

	// PATCH: merge semantics, null removes, the URL names the object.
	e.must(t, http.StatusOK, req{method: "PATCH", path: path, token: tok, body: `{"metadata": {"labels": {"tier": "front", "team": "a"}}, "spec": {"env": [{"name": "A", "value": "1"}]}}`})
	p := e.must(t, http.StatusOK, req{method: "PATCH", path: path, token: tok, body: `{"metadata": {"labels": {"team": null}}}`}).JSON(t)
	if labels := p["metadata"].(map[string]any)["labels"].(map[string]any); len(labels) != 1 || labels["tier"] != "front" {
		t.Errorf("labels after null patch: %v", labels)
	}
	if p["spec"].(map[string]any)["env"] == nil {
		t.Error("patch dropped fields it did not name")
	}
	for body, field := range map[string]string{
		`{"metadata": {"name": "other"}}`:                "metadata.name",
		`{"metadata": {"project": "blog"}}`:              "metadata.project",
		`{"spec": {"replicas": "many"}}`:                 "spec.replicas",
		`{"spec": {"imagee": "x"}}`:                      "spec.imagee",
		`{"metadata": {"resourceVersion": "1"}}`:         "",
		`["not", "an", "object"]`:                        "",
		`{"spec": {"image": null}}`:                      "spec.image",
		`{"metadata": {"annotations": {"a": "\u0000"}}}`: "metadata.annotations[a]",
	} {
		r := e.do(t, req{method: "PATCH", path: path, token: tok, body: body})
		want := http.StatusUnprocessableEntity
		if strings.Contains(body, "resourceVersion") {
			want = http.StatusPreconditionFailed
		}
		if r.Status != want || (field != "" && !slices.Contains(r.fields(), field)) {
			t.Errorf("PATCH %s: %d %s, want %d naming %q", body, r.Status, r.Body, want, field)
		}
	}
	e.must(t, http.StatusUnsupportedMediaType, req{method: "PATCH", path: path, token: tok, body: `{}`, header: map[string]string{"Content-Type": "application/json"}})

	// Delete is two-phase: 202 with the marked object; it then refuses changes.
	del := e.must(t, http.StatusAccepted, req{method: "DELETE", path: path, token: tok}).JSON(t)
	if del["metadata"].(map[string]any)["deletionTimestamp"] == nil {
		t.Errorf("deleted object has no deletionTimestamp: %v", del)
	}
	e.must(t, http.StatusAccepted, req{method: "DELETE", path: path, token: tok}) // idempotent
	e.must(t, http.StatusConflict, req{method: "PATCH", path: path, token: tok, body: `{"spec": {"replicas": 1}}`})
	e.must(t, http.StatusNotFound, req{method: "DELETE", path: "/api/v1/projects/shop/services/nope", token: tok})
	e.must(t, http.StatusNotFound, req{method: "GET", path: "/api/v1/projects/shop/services/Not_A_Name", token: tok})
}

func TestDecodingErrors(t *testing.T) {
	e := newEnv(t)
	tok := e.jwtFor("alice")
	e.project(t, tok, "shop")
	svcs := "/api/v1/projects/shop/services"

	// Every unknown field is reported at once, with its path.
	r := e.must(t, http.StatusUnprocessableEntity, req{method: "POST", path: svcs, token: tok,
		body:   `{"metadata": {"name": "web", "nmae": "x"}, "spec": {"imagee": "nginx", "ports": [{"containerPort": 80, "hostPrt": 8080}]}}`,
		header: map[string]string{"Content-Type": "application/json"}})
	for _, f := range []string{"metadata.nmae", "spec.imagee", "spec.ports[0].hostPrt"} {
		if !slices.Contains(r.fields(), f) {
			t.Errorf("unknown field %s not reported: %v", f, r.fields())
		}
	}
	r.problem(t)
	// Validation lists every problem too.
	r = e.must(t, http.StatusUnprocessableEntity, req{method: "POST", path: svcs, token: tok,
		body: manifest("services", "Bad_Name", map[string]any{"image": "", "replicas": 1000})})
	for _, f := range []string{"metadata.name", "spec.image", "spec.replicas"} {
		if !slices.Contains(r.fields(), f) {
			t.Errorf("%s not reported: %v", f, r.fields())
		}
	}
	// The URL names the project.
	r = e.must(t, http.StatusUnprocessableEntity, req{method: "POST", path: svcs, token: tok,
		body: map[string]any{"metadata": map[string]any{"name": "web", "project": "blog"}, "spec": map[string]any{"image": "nginx:1"}}})
	if !slices.Contains(r.fields(), "metadata.project") {
		t.Errorf("fields %v", r.fields())
	}
	e.must(t, http.StatusUnprocessableEntity, req{method: "POST", path: svcs, token: tok,
		body: map[string]any{"kind": "Volume", "metadata": map[string]any{"name": "web"}, "spec": map[string]any{"image": "nginx:1"}}})
	// YAML, and the kind and apiVersion may be left out.
	e.must(t, http.StatusCreated, req{method: "POST", path: svcs, token: tok, body: "metadata:\n  name: yml\nspec:\n  image: nginx:1\n  replicas: 2\n",
		header: map[string]string{"Content-Type": "application/yaml"}})
	// Text the database cannot hold is a 422, never a 500.
	for _, body := range []string{
		`{"metadata": {"name": "nul", "annotations": {"note": "a\u0000b"}}, "spec": {"image": "nginx:1"}}`,
		`{"metadata": {"name": "nul"}, "spec": {"image": "nginx:1", "env": [{"name": "A", "value": "\u0000"}]}}`,
	} {
		e.must(t, http.StatusUnprocessableEntity, req{method: "POST", path: svcs, token: tok, body: body, header: map[string]string{"Content-Type": "application/json"}})
	}
	e.must(t, http.StatusUnprocessableEntity, req{method: "POST", path: "/api/v1/projects", token: tok,
		body: `{"metadata": {"name": "nul"}, "spec": {"displayName": "a\u0000b"}}`, header: map[string]string{"Content-Type": "application/json"}})
	// Reserved annotations cannot be set.
	r = e.must(t, http.StatusUnprocessableEntity, req{method: "POST", path: svcs, token: tok,
		body: map[string]any{"metadata": map[string]any{"name": "anno", "annotations": map[string]string{"panelx.dev/purge-volumes": "true"}}, "spec": map[string]any{"image": "nginx:1"}}})
	if !slices.Contains(r.fields(), "metadata.annotations[panelx.dev/purge-volumes]") {
		t.Errorf("fields %v", r.fields())
	}
	// Content types and sizes.
	e.must(t, http.StatusUnsupportedMediaType, req{method: "POST", path: svcs, token: tok, body: "x", header: map[string]string{"Content-Type": "text/plain"}})
	e.must(t, http.StatusUnsupportedMediaType, req{method: "POST", path: svcs, token: tok, body: "x", header: map[string]string{"Content-Type": "multipart/form-data; boundary=x"}})
	big := `{"metadata": {"name": "big", "labels": {"a": "` + strings.Repeat("x", 2<<20) + `"}}}`
	e.must(t, http.StatusRequestEntityTooLarge, req{method: "POST", path: svcs, token: tok, body: big, header: map[string]string{"Content-Type": "application/json"}}).problem(t)
	// Without a Content-Length (chunked), the limit still holds.
	hr, _ := http.NewRequest("POST", e.URL+svcs, io.MultiReader(strings.NewReader(big)))
	hr.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked oversized body: %d", resp.StatusCode)
	}
	// Unknown routes and methods are problems too.
	e.must(t, http.StatusNotFound, req{method: "GET", path: "/api/v1/nope", token: tok}).problem(t)
	e.must(t, http.StatusMethodNotAllowed, req{method: "POST", path: "/api/v1/projects/shop/services/web", token: tok}).problem(t)
}

func TestReservedAnnotationsArePreserved(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tok := e.jwtFor("alice")
	e.project(t, tok, "shop")
	e.service(t, tok, "shop", "web")
	svc, err := e.Store.Services().Get(ctx, api.Key{Project: "shop", Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	svc.Metadata.Annotations = map[string]string{"panelx.dev/note": "kept", "example.com/x": "mine"}
	if _, err := e.Store.Services().Update(ctx, svc); err != nil {
		t.Fatal(err)
	}
	path := "/api/v1/projects/shop/services/web"
	// A manifest from git without the annotation: it stays.
	m := e.must(t, http.StatusOK, req{method: "PUT", path: path, token: tok, body: manifest("services", "web", nil)}).JSON(t)
	annots := m["metadata"].(map[string]any)["annotations"].(map[string]any)
	if annots["panelx.dev/note"] != "kept" || annots["example.com/x"] != nil {
		t.Errorf("annotations after PUT without them: %v", annots)
	}
	// Sending it back unchanged is fine; changing or removing it by patch is not.
	e.must(t, http.StatusOK, req{method: "PATCH", path: path, token: tok, body: `{"metadata": {"annotations": {"panelx.dev/note": "kept", "a.b/c": "d"}}}`})
	e.must(t, http.StatusUnprocessableEntity, req{method: "PATCH", path: path, token: tok, body: `{"metadata": {"annotations": {"panelx.dev/note": "changed"}}}`})
	e.must(t, http.StatusUnprocessableEntity, req{method: "PATCH", path: path, token: tok, body: `{"metadata": {"annotations": {"sub.panelx.dev/x": "y"}}}`})
	m = e.must(t, http.StatusOK, req{method: "PATCH", path: path, token: tok, body: `{"metadata": {"annotations": {"panelx.dev/note": null}}}`}).JSON(t)
	if m["metadata"].(map[string]any)["annotations"].(map[string]any)["panelx.dev/note"] != "kept" {
		t.Errorf("a null patch removed a system annotation: %v", m["metadata"])
	}
}

func TestListsPaginateAndFilter(t *testing.T) {
	e := newEnv(t)
	tok := e.jwtFor("alice")
	e.project(t, tok, "shop")
	for i := range 7 {
		tier := "back"
		if i%2 == 0 {
			tier = "front"
		}
		e.must(t, http.StatusCreated, req{method: "POST", path: "/api/v1/projects/shop/services", token: tok,
			body: map[string]any{"metadata": map[string]any{"name": fmt.Sprintf("s%d", i), "labels": map[string]string{"tier": tier}}, "spec": map[string]any{"image": "nginx:1"}}})
	}
	var names []string
	next := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		m := e.must(t, http.StatusOK, req{method: "GET", path: "/api/v1/projects/shop/services?limit=3&continue=" + next, token: tok}).JSON(t)
		if m["kind"] != "ServiceList" {
			t.Errorf("kind %v", m["kind"])
		}
		for _, it := range m["items"].([]any) {
			names = append(names, it.(map[string]any)["metadata"].(map[string]any)["name"].(string))
		}
		c, _ := m["metadata"].(map[string]any)["continue"].(string)
		if c == "" {
			break
		}
		next = c
	}
	if strings.Join(names, ",") != "s0,s1,s2,s3,s4,s5,s6" {
		t.Errorf("paged names %v", names)
	}
	m := e.must(t, http.StatusOK, req{method: "GET", path: "/api/v1/projects/shop/services?labelSelector=tier%3Dfront", token: tok}).JSON(t)
	if n := len(m["items"].([]any)); n != 4 {
		t.Errorf("tier=front: %d items", n)
	}
	for _, q := range []string{"limit=0", "limit=abc", "limit=5000", "labelSelector=%3D%3D", "continue=%21%21not-a-token", "labelSelector=a%20in%20b"} {
		r := e.must(t, http.StatusBadRequest, req{method: "GET", path: "/api/v1/projects/shop/services?" + q, token: tok})
		r.problem(t)
	}
	// An empty list is [], not null.
	e.volume(t, tok, "shop", "data")
	if m := e.must(t, http.StatusOK, req{method: "GET", path: "/api/v1/projects/shop/volumes?labelSelector=none", token: tok}); !bytes.Contains(m.Body, []byte(`"items":[]`)) {
		t.Errorf("empty list: %s", m.Body)
	}
}

func TestProjects(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.jwtFor("alice"), e.jwtFor("bob")
	e.project(t, alice, "shop")
	// Names are unique in the installation: a taken name is a 409 (this
	// tells bob the name exists, as in every such system).
	r := e.must(t, http.StatusConflict, req{method: "POST", path: "/api/v1/projects", token: bob, body: map[string]any{"metadata": map[string]any{"name": "shop"}}})
	r.problem(t)
	e.project(t, bob, "blog")
	list := e.must(t, http.StatusOK, req{method: "GET", path: "/api/v1/projects", token: bob})
	if bytes.Contains(list.Body, []byte(`"shop"`)) || !bytes.Contains(list.Body, []byte(`"blog"`)) {
		t.Errorf("bob's projects: %s", list.Body)
	}
	// The creator is the owner.
	members := e.must(t, http.StatusOK, req{method: "GET", path: "/api/v1/projects/blog/members", token: bob}).JSON(t)["items"].([]any)
	if len(members) != 1 || members[0].(map[string]any)["userId"] != "bob" || members[0].(map[string]any)["role"] != "owner" {
		t.Errorf("members of a new project: %v", members)
	}
	// PUT edits the spec; the name comes from the URL.
	p := e.must(t, http.StatusOK, req{method: "PUT", path: "/api/v1/projects/blog", token: bob, body: map[string]any{"spec": map[string]any{"domain": "blog.example.com"}}}).JSON(t)
	if p["spec"].(map[string]any)["domain"] != "blog.example.com" {
		t.Errorf("PUT project: %v", p)
	}
	e.must(t, http.StatusUnprocessableEntity, req{method: "PUT", path: "/api/v1/projects/blog", token: bob, body: map[string]any{"metadata": map[string]any{"name": "shop"}}})
	// Delete with purgeVolumes marks the project and its services.
	e.service(t, bob, "blog", "web")
	e.must(t, http.StatusBadRequest, req{method: "DELETE", path: "/api/v1/projects/blog?purgeVolumes=yes", token: bob})
	d := e.must(t, http.StatusAccepted, req{method: "DELETE", path: "/api/v1/projects/blog?purgeVolumes=true", token: bob}).JSON(t)
	meta := d["metadata"].(map[string]any)
	if meta["deletionTimestamp"] == nil || meta["annotations"].(map[string]any)[api.AnnotationPurgeVolumes] != "true" {
		t.Errorf("deleted project: %v", meta)
	}
	svc := e.must(t, http.StatusOK, req{method: "GET", path: "/api/v1/projects/blog/services/web", token: bob}).JSON(t)
	if svc["metadata"].(map[string]any)["deletionTimestamp"] == nil {
		t.Error("service of a deleted project not marked")
	}
	e.must(t, http.StatusConflict, req{method: "POST", path: "/api/v1/projects/blog/services", token: bob, body: manifest("services", "late", nil)})
}

func TestEvents(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tok := e.jwtFor("alice")
	e.project(t, tok, "shop")
	for _, ev := range []store.Event{
		{Project: "shop", Kind: api.KindService, Name: "web", Type: store.EventNormal, Reason: "Started", Message: "replica 0"},
		{Project: "shop", Kind: api.KindVolume, Name: "data", Type: store.EventWarning, Reason: "Failed", Message: "disk"},
	} {
		if err := e.Store.Events().Record(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	all := e.must(t, http.StatusOK, req{method: "GET", path: "/api/v1/projects/shop/events", token: tok}).JSON(t)["items"].([]any)
	svc := e.must(t, http.StatusOK, req{method: "GET", path: "/api/v1/projects/shop/events?kind=Service&name=web&limit=10", token: tok}).JSON(t)["items"].([]any)
	if len(all) != 2 || len(svc) != 1 || svc[0].(map[string]any)["reason"] != "Started" {
		t.Errorf("events: all %v, service %v", all, svc)
	}
	for _, q := range []string{"kind=Pod", "name=Bad_Name", "limit=0", "limit=x"} {
		e.must(t, http.StatusBadRequest, req{method: "GET", path: "/api/v1/projects/shop/events?" + q, token: tok})
	}
}

// TestHostileContinueTokens: a continue token is opaque, but a crafted one
// must be a 400, never a 500.
func TestHostileContinueTokens(t *testing.T) {
	e := newEnv(t)
	tok := e.jwtFor("alice")
	e.project(t, tok, "shop")
	for _, raw := range []string{`{"p":"\u0000","n":"x"}`, `{"p":"shop","n":"\u0000"}`, "{\"p\":\"\xff\",\"n\":\"a\"}", `{"p":1}`, `[]`} {
		c := base64.RawURLEncoding.EncodeToString([]byte(raw))
		for _, path := range []string{"/api/v1/projects", "/api/v1/projects/shop/services", "/api/v1/projects/shop/volumes"} {
			r := e.do(t, req{method: "GET", path: path + "?continue=" + c, token: tok})
			if r.Status >= 500 {
				t.Errorf("continue %q on %s: %d %s", raw, path, r.Status, r.Body)
			}
		}
	}
}
