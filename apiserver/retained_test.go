package apiserver_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/panelx/panelx/apiserver"
)

// TestRetainedVolumesTenancy: each caller sees (and may purge) only the
// retained volumes of projects where they may delete volumes; a volume of
// a deleted project only server administrators; a volume its Volume still
// holds nobody.
func TestRetainedVolumesTenancy(t *testing.T) {
	ops := newFakeOps()
	e := newEnv(t, withOps(ops))
	alice, bob, carol, admin := e.jwtFor("alice"), e.jwtFor("bob"), e.jwtFor("carol"), e.jwtFor(adminUser)
	e.project(t, alice, "shop")
	e.volume(t, alice, "shop", "data")
	e.member(t, alice, "shop", "carol", "viewer")
	e.project(t, bob, "blog")
	ops.volumes = []apiserver.DockerVolume{
		{Name: "panelx-shop-data", Project: "shop", Volume: "data"}, // held by its Volume
		{Name: "panelx-shop-old", Project: "shop", Volume: "old"},
		{Name: "panelx-blog-old", Project: "blog", Volume: "old"},
		{Name: "panelx-gone-x", Project: "gone", Volume: "x"},
	}
	list := func(token string) []string {
		t.Helper()
		var out []string
		for _, it := range e.must(t, http.StatusOK, req{method: "GET", path: "/api/v1/retained-volumes", token: token}).JSON(t)["items"].([]any) {
			out = append(out, it.(map[string]any)["name"].(string))
		}
		slices.Sort(out)
		return out
	}
	for _, tt := range []struct {
		who   string
		token string
		want  []string
	}{
		{"alice (owner of shop)", alice, []string{"panelx-shop-old"}},
		{"bob (owner of blog)", bob, []string{"panelx-blog-old"}},
		{"carol (viewer of shop)", carol, nil},
		{"an administrator", admin, []string{"panelx-blog-old", "panelx-gone-x", "panelx-shop-old"}},
	} {
		if got := list(tt.token); !slices.Equal(got, tt.want) {
			t.Errorf("%s sees %v, want %v", tt.who, got, tt.want)
		}
	}

	for _, tt := range []struct {
		who, token, name string
		want             int
	}{
		{"alice purges bob's", alice, "panelx-blog-old", http.StatusNotFound},
		{"alice purges one a Volume holds", alice, "panelx-shop-data", http.StatusNotFound},
		{"carol purges her project's", carol, "panelx-shop-old", http.StatusNotFound},
		{"bob purges a deleted project's", bob, "panelx-gone-x", http.StatusNotFound},
		{"alice purges her project's", alice, "panelx-shop-old", http.StatusNoContent},
		{"an administrator purges a deleted project's", admin, "panelx-gone-x", http.StatusNoContent},
	} {
		if r := e.do(t, req{method: "DELETE", path: "/api/v1/retained-volumes/" + tt.name, token: tt.token}); r.Status != tt.want {
			t.Errorf("%s: %d, want %d: %s", tt.who, r.Status, tt.want, r.Body)
		}
	}
	if !slices.Equal(ops.removed, []string{"panelx-shop-old", "panelx-gone-x"}) {
		t.Errorf("removed %v", ops.removed)
	}
	evs := e.must(t, http.StatusOK, req{method: "GET", path: "/api/v1/projects/shop/events", token: alice}).JSON(t)["items"].([]any)
	found := false
	for _, ev := range evs {
		found = found || ev.(map[string]any)["reason"] == "VolumePurged"
	}
	if !found {
		t.Error("no VolumePurged event in shop")
	}
}
