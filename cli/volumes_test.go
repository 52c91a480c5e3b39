package cli

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/panelx/panelx/api"
)

// moveServer answers a move request and then, poll after poll, the run's
// phases in turn (the last one from then on).
func moveServer(t *testing.T, phases ...api.BackupRun) (*httptest.Server, func() string) {
	t.Helper()
	var (
		mu    sync.Mutex
		body  string
		polls int
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		switch r.Method + " " + r.URL.Path {
		case "POST /api/v1/projects/shop/volumes/data/move":
			data, _ := io.ReadAll(r.Body)
			body = string(data)
			writeJSONBody(w, http.StatusAccepted, api.BackupRun{ID: "m1", Project: "shop", Volume: "data", Op: api.BackupOpMove,
				Trigger: api.BackupManual, Phase: api.BackupPending, Move: &api.MoveParams{Node: "worker-2", From: "worker-1"}})
		case "GET /api/v1/projects/shop/volumes/data/backups/m1":
			run := phases[min(polls, len(phases)-1)]
			polls++
			writeJSONBody(w, http.StatusOK, run)
		case "POST /api/v1/projects/shop/volumes/gone/move":
			writeJSONBody(w, http.StatusNotFound, api.Problem{Status: 404, Detail: `volume "gone" not found in project "shop"`})
		default:
			writeJSONBody(w, http.StatusNotFound, api.Problem{Status: 404, Detail: "no route " + r.URL.Path})
		}
	}))
	t.Cleanup(srv.Close)
	return srv, func() string { mu.Lock(); defer mu.Unlock(); return body }
}

func TestVolumeMove(t *testing.T) {
	run := func(phase api.BackupPhase) api.BackupRun {
		return api.BackupRun{ID: "m1", Project: "shop", Volume: "data", Op: api.BackupOpMove, Trigger: api.BackupManual, Phase: phase,
			Move: &api.MoveParams{Node: "worker-2", From: "worker-1"}}
	}
	succeeded := run(api.BackupSucceeded)
	succeeded.Bytes, succeeded.SHA256, succeeded.Move.Files = 3<<20, "ab12cd", 42
	failed := run(api.BackupFailed)
	failed.Reason = "node worker-2 is down"

	tests := []struct {
		name   string
		args   []string
		phases []api.BackupRun
		out    []string // each in the output
		err    string   // in the error; "" for none
		body   string   // the request body sent; "" for none sent
	}{
		{name: "requests", args: []string{"volume", "move", "data", "-p", "shop", "--node", "worker-2"},
			out: []string{"move m1 of volume data requested: worker-1 → worker-2\n"}, body: `{"node":"worker-2"}`},
		{name: "volumes works too", args: []string{"volumes", "move", "data", "-p", "shop", "--node", "worker-2"},
			out: []string{"move m1 of volume data requested"}, body: `{"node":"worker-2"}`},
		{name: "waits for success", args: []string{"volume", "move", "data", "-p", "shop", "--node", "worker-2", "--wait"},
			phases: []api.BackupRun{run(api.BackupRunning), succeeded},
			out:    []string{"requested", "move m1 Succeeded: worker-1 → worker-2, 42 files, 3.0 MiB, sha256 ab12cd\n"}, body: `{"node":"worker-2"}`},
		{name: "waits for failure", args: []string{"volume", "move", "data", "-p", "shop", "--node", "worker-2", "--wait"},
			phases: []api.BackupRun{run(api.BackupRunning), failed},
			err:    "move m1 Failed (worker-1 → worker-2): node worker-2 is down", body: `{"node":"worker-2"}`},
		{name: "no node", args: []string{"volume", "move", "data", "-p", "shop"}, err: "--node"},
		{name: "no project", args: []string{"volume", "move", "data", "--node", "worker-2"}, err: "-p"},
		{name: "no volume", args: []string{"volume", "move", "-p", "shop", "--node", "worker-2"}, err: "accepts 1 arg"},
		{name: "server refuses", args: []string{"volume", "move", "gone", "-p", "shop", "--node", "worker-2"}, err: `volume "gone" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			phases := tt.phases
			if phases == nil {
				phases = []api.BackupRun{run(api.BackupPending)}
			}
			srv, body := moveServer(t, phases...)
			out, err := runCLI(t, srv.URL, "", tt.args...)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("error %v\n%s", err, out)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("error %v, want it to say %q\n%s", err, tt.err, out)
			}
			for _, want := range tt.out {
				if !strings.Contains(out, want) {
					t.Errorf("no %q in\n%s", want, out)
				}
			}
			if got := body(); got != tt.body {
				t.Errorf("request body %q, want %q", got, tt.body)
			}
		})
	}
}

// TestVolumeMoveHelp: the help says what a move does to the services and
// to the old copy.
func TestVolumeMoveHelp(t *testing.T) {
	out, err := runCLI(t, "http://127.0.0.1:1", "", "volume", "move", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"services that mount the volume are stopped", "start again, on NODE", "The copy on the old node stays there",
		"--node", "--wait", "panelx backup list VOLUME -p PROJECT --op move"} {
		if !strings.Contains(out, want) {
			t.Errorf("help does not say %q:\n%s", want, out)
		}
	}
}
