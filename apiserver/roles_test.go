package apiserver_test

import (
	"context"
	"fmt"
	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/store"
	"net/http"
	"strings"
	"testing"
)

// roleMatrix is the least role each project route needs, written out by
// hand: a change in authorization must change this table.
var roleMatrix = map[string]string{
	"GET /api/v1/projects/{project}":                                         "viewer",
	"PUT /api/v1/projects/{project}":                                         "admin",
	"PATCH /api/v1/projects/{project}":                                       "admin",
	"DELETE /api/v1/projects/{project}":                                      "owner",
	"GET /api/v1/projects/{project}/services":                                "viewer",
	"POST /api/v1/projects/{project}/services":                               "editor",
	"GET /api/v1/projects/{project}/services/{service}":                      "viewer",
	"PUT /api/v1/projects/{project}/services/{service}":                      "editor",
	"PATCH /api/v1/projects/{project}/services/{service}":                    "editor",
	"DELETE /api/v1/projects/{project}/services/{service}":                   "editor",
	"GET /api/v1/projects/{project}/volumes":                                 "viewer",
	"POST /api/v1/projects/{project}/volumes":                                "editor",
	"GET /api/v1/projects/{project}/volumes/{volume}":                        "viewer",
	"PUT /api/v1/projects/{project}/volumes/{volume}":                        "editor",
	"PATCH /api/v1/projects/{project}/volumes/{volume}":                      "editor",
	"DELETE /api/v1/projects/{project}/volumes/{volume}":                     "editor",
	"GET /api/v1/projects/{project}/events":                                  "viewer",
	"GET /api/v1/projects/{project}/members":                                 "viewer",
	"PUT /api/v1/projects/{project}/members/{userId}":                        "admin",
	"DELETE /api/v1/projects/{project}/members/{userId}":                     "admin",
	"GET /api/v1/projects/{project}/registry-credentials":                    "admin",
	"GET /api/v1/projects/{project}/registry-credentials/{registry}":         "admin",
	"PUT /api/v1/projects/{project}/registry-credentials/{registry}":         "admin",
	"DELETE /api/v1/projects/{project}/registry-credentials/{registry}":      "admin",
	"GET /api/v1/projects/{project}/metrics/stream":                          "viewer",
	"GET /api/v1/projects/{project}/services/{service}/logs":                 "viewer",
	"GET /api/v1/projects/{project}/services/{service}/exec":                 "editor",
	"GET /api/v1/projects/{project}/volumes/{volume}/files/*":                "viewer",
	"PUT /api/v1/projects/{project}/volumes/{volume}/files/*":                "editor",
	"POST /api/v1/projects/{project}/volumes/{volume}/files/*":               "editor",
	"DELETE /api/v1/projects/{project}/volumes/{volume}/files/*":             "editor",
	"GET /api/v1/projects/{project}/certificates":                            "viewer",
	"GET /api/v1/projects/{project}/certificates/{host}":                     "viewer",
	"PUT /api/v1/projects/{project}/certificates/{host}":                     "admin",
	"DELETE /api/v1/projects/{project}/certificates/{host}":                  "admin",
	"GET /api/v1/projects/{project}/secrets":                                 "viewer",
	"POST /api/v1/projects/{project}/secrets":                                "editor",
	"GET /api/v1/projects/{project}/secrets/{secret}":                        "viewer",
	"PUT /api/v1/projects/{project}/secrets/{secret}":                        "editor",
	"PATCH /api/v1/projects/{project}/secrets/{secret}":                      "editor",
	"DELETE /api/v1/projects/{project}/secrets/{secret}":                     "editor",
	"GET /api/v1/projects/{project}/secrets/{secret}/data":                   "admin",
	"GET /api/v1/projects/{project}/services/{service}/revisions":            "viewer",
	"GET /api/v1/projects/{project}/services/{service}/revisions/{revision}": "viewer",
	"POST /api/v1/projects/{project}/services/{service}/rollback":            "editor",
	"POST /api/v1/projects/{project}/services/{service}/build":               "editor",
	"GET /api/v1/projects/{project}/services/{service}/build/logs":           "viewer",
	"POST /api/v1/projects/{project}/services/{service}/build/cancel":        "editor",
	"POST /api/v1/projects/{project}/build-contexts":                         "editor",
	"GET /api/v1/projects/{project}/build-contexts/{digest}":                 "viewer",
	"GET /api/v1/projects/{project}/volumes/{volume}/backups":                "viewer",
	"POST /api/v1/projects/{project}/volumes/{volume}/backups":               "editor",
	"GET /api/v1/projects/{project}/volumes/{volume}/backups/{run}":          "viewer",
	"POST /api/v1/projects/{project}/volumes/{volume}/restore":               "editor",
	"POST /api/v1/projects/{project}/volumes/{volume}/move":                  "editor",
}

// webSockets are routes that, past authorization, ask a plain request to
// upgrade (426): for them that is the "allowed" answer.
var webSockets = map[string]bool{
	"GET /api/v1/projects/{project}/metrics/stream":          true,
	"GET /api/v1/projects/{project}/services/{service}/exec": true,
}

var roleRank = map[string]int{"viewer": 0, "editor": 1, "admin": 2, "owner": 3}

// TestRoleMatrix: each role against each project route, with a request
// that is valid for whoever may make it: allowed → 2xx, otherwise 403 (a
// member knows the project exists, so this is no 404).
func TestRoleMatrix(t *testing.T) {
	e := newEnv(t, withFakeOps, withStats) // the operate routes need a Docker side to answer 2xx, the metrics stream a collector
	owner := e.jwtFor("owner")
	for _, rt := range walkRoutes(t, e) {
		// Webhooks are authenticated by the forge's signature, not a role (webhooks_test.go).
		if strings.Contains(rt[1], "{project}") && !strings.HasPrefix(rt[1], "/api/v1/hooks/") {
			if _, ok := roleMatrix[rt[0]+" "+rt[1]]; !ok {
				t.Errorf("route %s %s is missing from roleMatrix", rt[0], rt[1])
			}
		}
	}
	n := 0
	for route, least := range roleMatrix {
		method, pattern, _ := strings.Cut(route, " ")
		for _, role := range []string{"owner", "admin", "editor", "viewer"} {
			n++
			project := fmt.Sprintf("p%d", n)
			e.project(t, owner, project)
			e.service(t, owner, project, "web")
			e.volume(t, owner, project, "data")
			e.secret(t, owner, project, "db")
			e.revisions(t, project, "web")
			e.member(t, owner, project, "dave", "viewer")
			e.must(t, http.StatusCreated, req{method: "PUT", path: "/api/v1/projects/" + project + "/registry-credentials/ghcr.io", token: owner,
				body: map[string]any{"username": "u", "password": "p"}})
			tok := owner
			if role != "owner" {
				e.member(t, owner, project, "user-"+role, role)
				tok = e.jwtFor("user-" + role)
			}
			host := project + ".example.test"
			var certBody map[string]any
			if strings.Contains(pattern, "/certificates") {
				// A hostname of the project, with an uploaded certificate to read or delete.
				e.must(t, http.StatusOK, req{method: "PATCH", path: "/api/v1/projects/" + project + "/services/web", token: owner,
					body: map[string]any{"spec": map[string]any{"ports": []any{map[string]any{"containerPort": 80}}, "domains": []any{map[string]any{"host": host}}}}})
				cert, key := selfSigned(t, host)
				certBody = map[string]any{"certificate": cert, "privateKey": key}
				e.must(t, http.StatusOK, req{method: "PUT", path: "/api/v1/projects/" + project + "/certificates/" + host, token: owner, body: certBody})
			}
			if strings.Contains(pattern, "/build") {
				// A service built from source, with a finished build's log.
				e.must(t, http.StatusOK, req{method: "PATCH", path: "/api/v1/projects/" + project + "/services/web", token: owner,
					body: map[string]any{"spec": map[string]any{"image": nil, "imagePullPolicy": nil, "build": map[string]any{"git": map[string]any{"url": "https://git.example.test/shop.git"}}}}})
				// A build queued, as the controller would say.
				svc, err := e.Store.Services().Get(context.Background(), api.Key{Project: project, Name: "web"})
				if err != nil {
					t.Fatal(err)
				}
				svc.Status.Build = &api.BuildStatus{Phase: api.BuildQueued, Request: "r1"}
				svc.Metadata.ResourceVersion = ""
				if _, err := e.Store.Services().UpdateStatus(context.Background(), svc); err != nil {
					t.Fatal(err)
				}
				l := fakeBuildLogs.Start(api.Key{Project: project, Name: "web"})
				l.Add("Step 1/1 : FROM scratch")
				l.Finish()
			}
			digest := ""
			if strings.Contains(pattern, "/build-contexts") {
				digest = e.must(t, http.StatusCreated, req{method: "POST", path: "/api/v1/projects/" + project + "/build-contexts", token: owner, body: tinyContext(t, "")}).JSON(t)["digest"].(string)
			}
			runID := ""
			if strings.Contains(pattern, "/backups") || strings.HasSuffix(pattern, "/restore") {
				// A volume with a backup target and a verified backup, as the controller records it.
				e.must(t, http.StatusOK, req{method: "PATCH", path: "/api/v1/projects/" + project + "/volumes/data", token: owner,
					body: map[string]any{"spec": map[string]any{"backup": map[string]any{"target": map[string]any{"local": map[string]any{}}}}}})
				run, err := e.Store.(store.BackupStore).BackupRuns().Create(context.Background(), api.BackupRun{Project: project, Volume: "data",
					Op: api.BackupOpBackup, Trigger: api.BackupManual, Phase: api.BackupSucceeded, Target: "local:" + project, Key: "data/x.tar.gz"})
				if err != nil {
					t.Fatal(err)
				}
				runID = run.ID
			}
			if strings.HasSuffix(pattern, "/move") {
				// A volume on a node of a swarm, as the controller records it.
				setVolumeNode(t, e, project, "data", "node-1")
			}
			path := fill(pattern, map[string]string{"project": project, "service": "web", "volume": "data", "userId": "dave", "registry": "ghcr.io", "host": host,
				"secret": "db", "revision": "1", "digest": digest, "run": runID})
			body := validBody(method, pattern)
			switch {
			case strings.HasSuffix(pattern, "/certificates/{host}") && method == "PUT":
				body = certBody
			case strings.HasSuffix(pattern, "/restore"):
				body = map[string]any{"backup": runID, "overwrite": true}
			case strings.HasSuffix(pattern, "/move"):
				body = map[string]any{"node": "node-2"}
			case strings.HasSuffix(pattern, "/members/{userId}") && method == "PUT":
				body = map[string]any{"role": "editor"}
			case strings.HasSuffix(pattern, "/services") && method == "POST":
				body = map[string]any{"metadata": map[string]any{"name": "api"}, "spec": map[string]any{"image": "nginx:1.27"}}
			case strings.HasSuffix(pattern, "/volumes") && method == "POST":
				body = map[string]any{"metadata": map[string]any{"name": "cache"}}
			case strings.HasSuffix(pattern, "/secrets") && method == "POST":
				body = map[string]any{"metadata": map[string]any{"name": "api-key"}, "spec": map[string]any{"data": map[string]any{"k": "v"}}}
			case strings.HasSuffix(pattern, "/projects/{project}") && method == "PUT":
				body = map[string]any{"metadata": map[string]any{"name": project}, "spec": map[string]any{"displayName": "Shop"}}
			}
			r := e.do(t, req{method: method, path: path, token: tok, body: body})
			allowed := roleRank[role] >= roleRank[least]
			switch {
			case allowed && webSockets[route]:
				if r.Status != http.StatusUpgradeRequired {
					t.Errorf("%s as %s: %d, want 426\n%s", route, role, r.Status, r.Body)
				}
			case allowed && (r.Status < 200 || r.Status > 299):
				t.Errorf("%s as %s: %d, want 2xx\n%s", route, role, r.Status, r.Body)
			case !allowed && r.Status != http.StatusForbidden:
				t.Errorf("%s as %s: %d, want 403\n%s", route, role, r.Status, r.Body)
			case !allowed:
				r.problem(t)
			}
		}
	}
}
