package client

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/panelx/panelx/api"
)

// recorder answers every request with the JSON of answer[method+" "+path]
// (404 when there is none) and remembers what it was sent.
type recorder struct {
	mu      sync.Mutex
	answer  map[string]any
	got     []string // method, path?query, body
	headers []http.Header
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	line := r.Method + " " + r.URL.RequestURI()
	if len(body) > 0 {
		line += " " + string(body)
	}
	rc.got = append(rc.got, line)
	rc.headers = append(rc.headers, r.Header.Clone())
	a, ok := rc.answer[r.Method+" "+r.URL.Path]
	if !ok {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(api.Problem{Detail: "not found"})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(a)
}

func (rc *recorder) requests() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.got...)
}

func newRecorded(t *testing.T, answer map[string]any) (*Client, *recorder) {
	t.Helper()
	rc := &recorder{answer: answer}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	c, err := New(srv.URL, "tok")
	if err != nil {
		t.Fatal(err)
	}
	return c, rc
}

func TestSecrets(t *testing.T) {
	redacted := &api.Secret{TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindSecret},
		Metadata: api.ObjectMeta{Project: "shop", Name: "db"}, Spec: api.SecretSpec{Keys: []string{"password"}, Version: 2}}
	c, rc := newRecorded(t, map[string]any{
		"GET /api/v1/projects/shop/secrets/db":      redacted,
		"GET /api/v1/projects/shop/secrets":         map[string]any{"items": []any{redacted}},
		"DELETE /api/v1/projects/shop/secrets/db":   redacted,
		"POST /api/v1/projects/shop/secrets":        redacted,
		"PUT /api/v1/projects/shop/secrets/db":      redacted,
		"GET /api/v1/projects/shop/secrets/db/data": SecretData{Kind: "SecretData", Version: 2, Data: map[string]string{"password": "pw"}},
		"POST /api/v1/admin/secret-key/rotate":      RotateReport{KeyID: "k2", Retired: []string{"k1"}, Secrets: 4, RegistryCredentials: 1},
	})
	ctx := context.Background()
	obj, err := c.Get(ctx, api.KindSecret, "shop", "db")
	if err != nil || !reflect.DeepEqual(obj.(*api.Secret).Spec.Keys, []string{"password"}) {
		t.Errorf("Get: %v %+v", err, obj)
	}
	list, err := c.List(ctx, api.KindSecret, "shop", "")
	if err != nil || len(list) != 1 || list[0].GetKind() != api.KindSecret {
		t.Errorf("List: %v %v", err, list)
	}
	if err := c.Delete(ctx, api.KindSecret, "shop", "db", DeleteOptions{}); err != nil {
		t.Errorf("Delete: %v", err)
	}
	if _, err := c.Get(ctx, api.KindSecret, "", "db"); err == nil || !strings.Contains(err.Error(), "-p PROJECT") {
		t.Errorf("Get without a project: %v", err)
	}
	in := &api.Secret{TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindSecret},
		Metadata: api.ObjectMeta{Project: "shop", Name: "db"}, Spec: api.SecretSpec{Data: map[string]string{"password": "pw"}}}
	if obj, err := c.Create(ctx, in); err != nil || obj.(*api.Secret).Spec.Version != 2 {
		t.Errorf("Create: %v %+v", err, obj)
	}
	if _, err := c.Replace(ctx, in); err != nil {
		t.Errorf("Replace: %v", err)
	}
	d, err := c.SecretData(ctx, "shop", "db")
	if err != nil || d.Version != 2 || d.Data["password"] != "pw" {
		t.Errorf("SecretData: %v %+v", err, d)
	}
	rep, err := c.RotateKey(ctx, false)
	if err != nil || !reflect.DeepEqual(*rep, RotateReport{KeyID: "k2", Retired: []string{"k1"}, Secrets: 4, RegistryCredentials: 1}) {
		t.Errorf("RotateKey: %v %+v", err, rep)
	}
	if _, err := c.RotateKey(ctx, true); err != nil {
		t.Errorf("RotateKey(keepOld): %v", err)
	}
	_, err = c.SecretData(ctx, "shop", "nope")
	if !IsNotFound(err) {
		t.Errorf("SecretData of a missing secret: %v", err)
	}
	body := `{"apiVersion":"panelx.dev/v1","kind":"Secret","metadata":{"name":"db","project":"shop"},"spec":{"data":{"password":"pw"}}}`
	want := []string{
		"GET /api/v1/projects/shop/secrets/db",
		"GET /api/v1/projects/shop/secrets",
		"DELETE /api/v1/projects/shop/secrets/db",
		"POST /api/v1/projects/shop/secrets " + body,
		"PUT /api/v1/projects/shop/secrets/db " + body,
		"GET /api/v1/projects/shop/secrets/db/data",
		"POST /api/v1/admin/secret-key/rotate",
		"POST /api/v1/admin/secret-key/rotate?keepOld=true",
		"GET /api/v1/projects/shop/secrets/nope/data",
	}
	if got := rc.requests(); !reflect.DeepEqual(got, want) {
		t.Errorf("requests:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if ct := rc.headers[3].Get("Content-Type"); ct != "application/json" {
		t.Errorf("Create sent Content-Type %q", ct)
	}
}

func TestRevisionsAndRollback(t *testing.T) {
	revs := []api.Revision{{Project: "shop", Service: "web", Number: 2}, {Project: "shop", Service: "web", Number: 1}}
	svc := &api.Service{Metadata: api.ObjectMeta{Project: "shop", Name: "web", Generation: 3}, Spec: api.ServiceSpec{Image: "web@sha256:00"}}
	c, rc := newRecorded(t, map[string]any{
		"GET /api/v1/projects/shop/services/web/revisions":   map[string]any{"kind": "RevisionList", "items": revs},
		"GET /api/v1/projects/shop/services/web/revisions/1": revs[1],
		"POST /api/v1/projects/shop/services/web/rollback":   svc,
	})
	ctx := context.Background()
	got, err := c.Revisions(ctx, "shop", "web")
	if err != nil || !reflect.DeepEqual(got, revs) {
		t.Errorf("Revisions: %v %+v", err, got)
	}
	rev, err := c.Revision(ctx, "shop", "web", 1)
	if err != nil || rev.Number != 1 {
		t.Errorf("Revision: %v %+v", err, rev)
	}
	if _, err := c.Revision(ctx, "shop", "web", 9); !IsNotFound(err) {
		t.Errorf("a missing revision: %v", err)
	}
	for _, n := range []int64{0, 1} {
		out, err := c.Rollback(ctx, "shop", "web", n)
		if err != nil || out.Spec.Image != "web@sha256:00" {
			t.Errorf("Rollback(%d): %v %+v", n, err, out)
		}
	}
	want := []string{
		"GET /api/v1/projects/shop/services/web/revisions",
		"GET /api/v1/projects/shop/services/web/revisions/1",
		"GET /api/v1/projects/shop/services/web/revisions/9",
		"POST /api/v1/projects/shop/services/web/rollback",
		`POST /api/v1/projects/shop/services/web/rollback {"revision":1}`,
	}
	if got := rc.requests(); !reflect.DeepEqual(got, want) {
		t.Errorf("requests:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
