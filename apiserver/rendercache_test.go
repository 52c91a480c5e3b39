package apiserver_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/store"
)

// TestGetAnswersWhatTheRowHolds: a GET answers from the row as it is now,
// even when the row was written behind the server's back (another server,
// the controller, SQL) — the answer held for the version before must not
// be served — and a repeated GET answers byte for byte the same.
func TestGetAnswersWhatTheRowHolds(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tok := e.jwtFor("alice")
	e.project(t, tok, "shop")
	e.service(t, tok, "shop", "web")
	path := "/api/v1/projects/shop/services/web"
	key := api.Key{Project: "shop", Name: "web"}

	first := e.must(t, http.StatusOK, req{method: "GET", path: path, token: tok})
	again := e.must(t, http.StatusOK, req{method: "GET", path: path, token: tok})
	if !bytes.Equal(first.Body, again.Body) || first.Header.Get("ETag") != again.Header.Get("ETag") ||
		again.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("a repeated GET differs:\n%s %v\n%s %v", first.Body, first.Header, again.Body, again.Header)
	}

	steps := []struct {
		name  string
		write func(t *testing.T)
		check func(t *testing.T, obj map[string]any)
	}{
		{"spec written in the store", func(t *testing.T) {
			svc, err := e.Store.Services().Get(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			svc.Spec.Image = "nginx:2"
			if _, err := e.Store.Services().Update(ctx, svc); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, obj map[string]any) {
			if img := obj["spec"].(map[string]any)["image"]; img != "nginx:2" {
				t.Errorf("image %v, want nginx:2", img)
			}
		}},
		{"status written by the controller", func(t *testing.T) {
			svc, err := e.Store.Services().Get(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			svc.Status.Phase = api.PhaseDegraded
			if _, err := e.Store.Services().UpdateStatus(ctx, svc); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, obj map[string]any) {
			if ph := obj["status"].(map[string]any)["phase"]; ph != string(api.PhaseDegraded) {
				t.Errorf("phase %v, want Degraded", ph)
			}
		}},
		{"removed and made again", func(t *testing.T) {
			svc, err := e.Store.Services().Delete(ctx, key, store.DeleteOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := e.Store.Services().Remove(ctx, key, svc.Metadata.UID); err != nil {
				t.Fatal(err)
			}
			r := e.do(t, req{method: "GET", path: path, token: tok})
			if r.Status != http.StatusNotFound {
				t.Fatalf("GET of a removed service: %d %s", r.Status, r.Body)
			}
			svc = &api.Service{Metadata: api.ObjectMeta{Project: "shop", Name: "web"}, Spec: api.ServiceSpec{Image: "nginx:3"}}
			if _, err := e.Store.Services().Create(ctx, svc); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, obj map[string]any) {
			if img := obj["spec"].(map[string]any)["image"]; img != "nginx:3" || obj["status"] != nil {
				t.Errorf("recreated service answered as %v", obj)
			}
		}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			e.must(t, http.StatusOK, req{method: "GET", path: path, token: tok}) // held now
			st.write(t)
			got := e.must(t, http.StatusOK, req{method: "GET", path: path, token: tok})
			obj := got.JSON(t)
			rv := obj["metadata"].(map[string]any)["resourceVersion"].(string)
			if got.Header.Get("ETag") != `"`+rv+`"` {
				t.Errorf("ETag %s for resourceVersion %s", got.Header.Get("ETag"), rv)
			}
			st.check(t, obj)
		})
	}
}
