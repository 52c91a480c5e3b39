package apiserver_test

import (
	"net/http"
	"testing"
)

func TestMemberRules(t *testing.T) {
	e := newEnv(t)
	owner := e.jwtFor("owner")
	e.project(t, owner, "shop")
	e.member(t, owner, "shop", "adm", "admin")
	e.member(t, owner, "shop", "ed", "editor")
	admin, editor := e.jwtFor("adm"), e.jwtFor("ed")
	m := func(user string) string { return "/api/v1/projects/shop/members/" + user }
	role := func(r string) map[string]any { return map[string]any{"role": r} }

	steps := []struct {
		name   string
		rq     req
		status int
	}{
		{"admin adds a viewer", req{method: "PUT", path: m("vi"), token: admin, body: role("viewer")}, http.StatusCreated},
		{"admin promotes to editor", req{method: "PUT", path: m("vi"), token: admin, body: role("editor")}, http.StatusOK},
		{"admin cannot grant owner", req{method: "PUT", path: m("vi"), token: admin, body: role("owner")}, http.StatusForbidden},
		{"admin cannot demote the owner", req{method: "PUT", path: m("owner"), token: admin, body: role("viewer")}, http.StatusForbidden},
		{"admin cannot remove the owner", req{method: "DELETE", path: m("owner"), token: admin}, http.StatusForbidden},
		{"editor cannot manage members", req{method: "PUT", path: m("x"), token: editor, body: role("viewer")}, http.StatusForbidden},
		{"unknown role", req{method: "PUT", path: m("x"), token: owner, body: role("superuser")}, http.StatusUnprocessableEntity},
		{"unknown field", req{method: "PUT", path: m("x"), token: owner, body: map[string]any{"role": "viewer", "admin": true}}, http.StatusUnprocessableEntity},
		{"the last owner cannot step down", req{method: "PUT", path: m("owner"), token: owner, body: role("admin")}, http.StatusConflict},
		{"the last owner cannot leave", req{method: "DELETE", path: m("owner"), token: owner}, http.StatusConflict},
		{"owner makes a second owner", req{method: "PUT", path: m("adm"), token: owner, body: role("owner")}, http.StatusOK},
		{"now the first may step down", req{method: "PUT", path: m("owner"), token: owner, body: role("viewer")}, http.StatusOK},
		{"and is no longer allowed to manage", req{method: "PUT", path: m("x"), token: owner, body: role("viewer")}, http.StatusForbidden},
		{"anyone may leave", req{method: "DELETE", path: m("ed"), token: editor}, http.StatusNoContent},
		{"gone means gone", req{method: "GET", path: "/api/v1/projects/shop", token: editor}, http.StatusNotFound},
		{"removing a non-member", req{method: "DELETE", path: m("nobody"), token: admin}, http.StatusNotFound},
		{"a user id that cannot be", req{method: "PUT", path: m("a%00b"), token: admin, body: role("viewer")}, http.StatusNotFound},
	}
	for _, s := range steps {
		r := e.do(t, s.rq)
		if r.Status != s.status {
			t.Fatalf("%s: %d, want %d\n%s", s.name, r.Status, s.status, r.Body)
		}
		if r.Status >= 400 {
			r.problem(t)
		}
	}
	list := e.must(t, http.StatusOK, req{method: "GET", path: "/api/v1/projects/shop/members", token: e.jwtFor("vi")}).JSON(t)["items"].([]any)
	roles := map[string]string{}
	for _, it := range list {
		roles[it.(map[string]any)["userId"].(string)] = it.(map[string]any)["role"].(string)
	}
	if roles["owner"] != "viewer" || roles["adm"] != "owner" || roles["vi"] != "editor" || roles["ed"] != "" {
		t.Errorf("members at the end: %v", roles)
	}
}
