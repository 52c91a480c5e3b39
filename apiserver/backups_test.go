package apiserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/store"
)

// setVolumeNode records the node holding a volume's data, as the
// controller does on a swarm.
func setVolumeNode(t testing.TB, e *env, project, volume, node string) {
	t.Helper()
	ctx := context.Background()
	v, err := e.Store.Volumes().Get(ctx, api.Key{Project: project, Name: volume})
	if err != nil {
		t.Fatal(err)
	}
	v.Status.Node = node
	v.Metadata.ResourceVersion = ""
	if _, err := e.Store.Volumes().UpdateStatus(ctx, v); err != nil {
		t.Fatal(err)
	}
}

// TestMoveVolume: POST …/move records a Pending move run from the node the
// volume is on, and refuses with a 4xx what the controller could not do.
func TestMoveVolume(t *testing.T) {
	e := newEnv(t)
	owner := e.jwtFor("owner")
	ctx := context.Background()
	runs := e.Store.(store.BackupStore).BackupRuns()
	openRun := func(phase api.BackupPhase) func(t *testing.T, project string) {
		return func(t *testing.T, project string) {
			if _, err := runs.Create(ctx, api.BackupRun{Project: project, Volume: "data", Op: api.BackupOpBackup,
				Trigger: api.BackupScheduled, Phase: phase}); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name   string
		node   string // the volume's status.node
		setup  func(t *testing.T, project string)
		volume string // default data
		body   any
		status int
		detail string // in the problem's detail
	}{
		{name: "no node", node: "node-1", body: map[string]any{}, status: http.StatusUnprocessableEntity, detail: "node"},
		{name: "empty node", node: "node-1", body: map[string]any{"node": ""}, status: http.StatusUnprocessableEntity, detail: "node"},
		{name: "space", node: "node-1", body: map[string]any{"node": "node 2"}, status: http.StatusUnprocessableEntity, detail: "hostname"},
		{name: "constraint syntax", node: "node-1", body: map[string]any{"node": "node-2==x"}, status: http.StatusUnprocessableEntity, detail: "hostname"},
		{name: "negation", node: "node-1", body: map[string]any{"node": "!node-2"}, status: http.StatusUnprocessableEntity, detail: "hostname"},
		{name: "empty label", node: "node-1", body: map[string]any{"node": "node..example"}, status: http.StatusUnprocessableEntity, detail: "hostname"},
		{name: "trailing dot", node: "node-1", body: map[string]any{"node": "node-2."}, status: http.StatusUnprocessableEntity, detail: "hostname"},
		{name: "underscore", node: "node-1", body: map[string]any{"node": "node_2"}, status: http.StatusUnprocessableEntity, detail: "hostname"},
		{name: "label too long", node: "node-1", body: map[string]any{"node": strings.Repeat("a", 64)}, status: http.StatusUnprocessableEntity, detail: "hostname"},
		{name: "too long", node: "node-1", body: map[string]any{"node": strings.Repeat(strings.Repeat("a", 62)+".", 4) + "ab"}, status: http.StatusUnprocessableEntity, detail: "hostname"},
		{name: "unknown field", node: "node-1", body: map[string]any{"node": "node-2", "force": true}, status: http.StatusUnprocessableEntity, detail: "force"},
		{name: "not JSON", node: "node-1", body: `{"node": `, status: http.StatusUnprocessableEntity},
		{name: "too large", node: "node-1", body: `{"node": "` + strings.Repeat("a", 8<<20) + `"}`, status: http.StatusRequestEntityTooLarge},
		{name: "missing volume", node: "node-1", volume: "nope", body: map[string]any{"node": "node-2"}, status: http.StatusNotFound, detail: `volume "nope" not found`},
		{name: "being deleted", node: "node-1", setup: func(t *testing.T, project string) {
			if _, err := e.Store.Volumes().Delete(ctx, api.Key{Project: project, Name: "data"}, store.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}, body: map[string]any{"node": "node-2"}, status: http.StatusConflict, detail: "being deleted"},
		{name: "no node recorded", body: map[string]any{"node": "node-2"}, status: http.StatusConflict,
			detail: `volume "data" has no node recorded: it is not on a swarm runtime, or not created yet`},
		{name: "same node", node: "node-1", body: map[string]any{"node": "node-1"}, status: http.StatusConflict, detail: `volume "data" is already on node node-1`},
		{name: "pending run", node: "node-1", setup: openRun(api.BackupPending), body: map[string]any{"node": "node-2"}, status: http.StatusConflict, detail: "backup Pending run"},
		{name: "running run", node: "node-1", setup: openRun(api.BackupRunning), body: map[string]any{"node": "node-2"}, status: http.StatusConflict, detail: "backup Running run"},
		{name: "moves", node: "node-1", body: map[string]any{"node": "node-2"}, status: http.StatusAccepted},
		{name: "moves to a dotted name", node: "node-1", body: map[string]any{"node": "Worker-2.swarm.example"}, status: http.StatusAccepted},
		{name: "finished runs do not stand in the way", node: "node-1", setup: openRun(api.BackupSucceeded), body: map[string]any{"node": "node-2"}, status: http.StatusAccepted},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			project := fmt.Sprintf("mv%d", i)
			e.project(t, owner, project)
			e.volume(t, owner, project, "data")
			if tt.node != "" {
				setVolumeNode(t, e, project, "data", tt.node)
			}
			if tt.setup != nil {
				tt.setup(t, project)
			}
			volume := tt.volume
			if volume == "" {
				volume = "data"
			}
			r := e.do(t, req{method: "POST", path: "/api/v1/projects/" + project + "/volumes/" + volume + "/move", token: owner, body: tt.body})
			if r.Status != tt.status {
				t.Fatalf("status %d, want %d\n%s", r.Status, tt.status, r.Body)
			}
			if tt.status != http.StatusAccepted {
				if p := r.problem(t); !strings.Contains(p.Detail, tt.detail) {
					t.Errorf("detail %q, want it to say %q", p.Detail, tt.detail)
				}
				list, err := runs.List(ctx, project, store.BackupRunFilter{Op: api.BackupOpMove})
				if err != nil || len(list) != 0 {
					t.Errorf("refused, yet moves were recorded: %+v, %v", list, err)
				}
				return
			}
			var got api.BackupRun
			if err := json.Unmarshal(r.Body, &got); err != nil {
				t.Fatalf("answer: %v\n%s", err, r.Body)
			}
			want := tt.body.(map[string]any)["node"].(string)
			if got.Op != api.BackupOpMove || got.Phase != api.BackupPending || got.Trigger != api.BackupManual || got.RequestedBy != "owner" ||
				got.Move == nil || got.Move.Node != want || got.Move.From != tt.node || got.Restore != nil {
				t.Fatalf("answered %+v (move %+v)", got, got.Move)
			}
			if loc := r.Header.Get("Location"); loc != "/api/v1/projects/"+project+"/volumes/data/backups/"+got.ID {
				t.Errorf("Location %q", loc)
			}
			stored, err := runs.Get(ctx, project, got.ID)
			if err != nil || stored.Op != api.BackupOpMove || stored.Phase != api.BackupPending || stored.Volume != "data" ||
				stored.Move == nil || stored.Move.Node != want || stored.Move.From != tt.node || stored.RequestedBy != "owner" {
				t.Fatalf("stored %+v (move %+v), %v", stored, stored.Move, err)
			}
			evs, err := e.Store.Events().List(ctx, project, store.EventFilter{Kind: api.KindVolume, Name: "data"})
			if err != nil || len(evs) == 0 || evs[0].Reason != "MoveRequested" || !strings.Contains(evs[0].Message, "node-1 → "+want) {
				t.Errorf("events %+v, %v", evs, err)
			}
			// A second move waits for this one.
			again := e.do(t, req{method: "POST", path: "/api/v1/projects/" + project + "/volumes/data/move", token: owner, body: map[string]any{"node": "node-3"}})
			if again.Status != http.StatusConflict || !strings.Contains(again.problem(t).Detail, "move Pending run") {
				t.Errorf("second move: %d %s", again.Status, again.Body)
			}
		})
	}
}

// TestListMoves: ?op=move lists the moves only; another op is a 400 that
// names the three.
func TestListMoves(t *testing.T) {
	e := newEnv(t)
	owner := e.jwtFor("owner")
	e.project(t, owner, "shop")
	e.volume(t, owner, "shop", "data")
	setVolumeNode(t, e, "shop", "data", "node-1")
	runs := e.Store.(store.BackupStore).BackupRuns()
	if _, err := runs.Create(context.Background(), api.BackupRun{Project: "shop", Volume: "data", Op: api.BackupOpBackup,
		Trigger: api.BackupScheduled, Phase: api.BackupSucceeded}); err != nil {
		t.Fatal(err)
	}
	moved := e.must(t, http.StatusAccepted, req{method: "POST", path: "/api/v1/projects/shop/volumes/data/move", token: owner,
		body: map[string]any{"node": "node-2"}}).JSON(t)
	list := e.must(t, http.StatusOK, req{method: "GET", path: "/api/v1/projects/shop/volumes/data/backups?op=move", token: owner}).JSON(t)
	items, _ := list["items"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["id"] != moved["id"] || items[0].(map[string]any)["op"] != "move" {
		t.Fatalf("moves listed: %v", list)
	}
	if all := e.must(t, http.StatusOK, req{method: "GET", path: "/api/v1/projects/shop/volumes/data/backups", token: owner}).JSON(t); len(all["items"].([]any)) != 2 {
		t.Errorf("all runs: %v", all)
	}
	r := e.do(t, req{method: "GET", path: "/api/v1/projects/shop/volumes/data/backups?op=copy", token: owner})
	if r.Status != http.StatusBadRequest || r.problem(t).Detail != "op must be backup, restore or move" {
		t.Errorf("op=copy: %d %s", r.Status, r.Body)
	}
}

// TestConcurrentMoves: of moves of one volume requested at once, one is
// recorded and the others are 409s (the store's one-open-move index closes
// the gap between the API's check and its insert).
func TestConcurrentMoves(t *testing.T) {
	e := newEnv(t)
	owner := e.jwtFor("owner")
	e.project(t, owner, "shop")
	e.volume(t, owner, "shop", "data")
	setVolumeNode(t, e, "shop", "data", "node-1")
	const n = 8
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r := e.do(t, req{method: "POST", path: "/api/v1/projects/shop/volumes/data/move", token: owner,
				body: map[string]any{"node": fmt.Sprintf("node-%d", i+2)}})
			statuses <- r.Status
		})
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	if count[http.StatusAccepted] != 1 || count[http.StatusConflict] != n-1 {
		t.Errorf("statuses %v, want one 202 and %d 409s", count, n-1)
	}
	list, err := e.Store.(store.BackupStore).BackupRuns().List(context.Background(), "shop", store.BackupRunFilter{Op: api.BackupOpMove})
	if err != nil || len(list) != 1 {
		t.Errorf("moves recorded: %+v, %v", list, err)
	}
}
