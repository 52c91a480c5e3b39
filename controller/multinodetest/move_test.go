package multinodetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/controller"
	"github.com/panelx/panelx/internal/backupdocker"
	"github.com/panelx/panelx/internal/testedge"
	"github.com/panelx/panelx/internal/testenv/dockerd"
	"github.com/panelx/panelx/internal/testimage"
	"github.com/panelx/panelx/reconcile"
	swarmruntime "github.com/panelx/panelx/reconcile/swarm"
	"github.com/panelx/panelx/store"
	"github.com/panelx/panelx/store/storetest"
)

// TestVolumeMove: a volume's data moves from the manager's node to a
// worker as an explicit run — its service stopped, the data copied node to
// node by helper tasks, status.node changed, the service started on the
// new node with every byte there. A move that would mix data (the old
// node still holds the first copy) and a move to a node that does not
// exist fail, and leave the service running where its data is.
func TestVolumeMove(t *testing.T) {
	w := newCluster(t)
	c := w.cluster
	reg := testimage.StartRegistry(t, testimage.RegistryOptions{Listen: net.JoinHostPort(c.HostAddr().String(), "0"),
		Username: "ci", Password: "s3cret"})
	img := reg.Push(t, "multi/app:1", testimage.Image(t, testimage.ImageOptions{Version: "1"}))
	// The helper image: the panelx binary, as the PanelX image has it.
	helper := reg.Push(t, "multi/panelx:test", testedge.Image(t))
	mgr := c.Manager().Client(t)
	opts := multinodeOptions
	opts.HelperImage = helper
	rt := swarmruntime.New(mgr, "multinode", opts)
	backups, err := controller.NewBackups(controller.BackupOptions{Store: w.store, Dir: t.TempDir(), Mover: rt, Instance: "multinode",
		Docker: &backupdocker.Docker{CLI: mgr, Instance: "multinode"}, Tick: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	w.backups = backups
	w.stop = w.run(rt)
	if _, err := w.store.RegistryCredentials().Put(w.ctx, store.RegistryCredential{Project: w.project, Registry: reg.Host(),
		Username: "ci", Password: "s3cret"}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.store.Volumes().Create(w.ctx, storetest.Volume(w.project, "data")); err != nil {
		t.Fatal(err)
	}
	const port = 18090
	w.apply("db", func(s *api.Service) {
		s.Spec.Image = img
		s.Spec.Healthcheck = &api.Healthcheck{Command: []string{"/testapp", "-check"},
			Interval: api.Duration{Duration: time.Second}, Timeout: api.Duration{Duration: time.Second}, Retries: 2}
		s.Spec.Ports = []api.Port{{ContainerPort: 8080, HostPort: port}}
		s.Spec.Volumes = []api.VolumeMount{{Name: "data", MountPath: "/data"}}
	})
	db := w.wait("db", "Ready", reconcile.ServiceReady)
	first := c.Manager()
	if got := db.Status.Replicas[0].Node; got != first.Hostname() {
		t.Fatalf("db runs on %s, want %s (its volume's node)", got, first.Hostname())
	}
	at := func(n *dockerd.Node) string { return net.JoinHostPort(n.Addr().String(), strconv.Itoa(port)) }
	// Data: a small file, a large one, a nested one.
	big := bytes.Repeat([]byte("0123456789abcdef"), 4<<20/16)
	bigSum := sha256.Sum256(big)
	files := map[string][]byte{"hello.txt": []byte("written on " + first.Hostname()), "blob.bin": big, "a/b/c.txt": []byte("nested")}
	for name, body := range files {
		put(t, "http://"+at(first)+"/files/"+name, body)
	}

	// Move it to node 2.
	second := c.Node(2)
	run := w.move(second.Hostname())
	if run.Phase != api.BackupSucceeded {
		t.Fatalf("move: %s: %s", run.Phase, run.Reason)
	}
	took := run.FinishedAt.Sub(*run.StartedAt)
	t.Logf("move %s → %s: %d files, %d bytes, sha256 %s, in %v", run.Move.From, run.Move.Node, run.Move.Files, run.Bytes, run.SHA256, took.Round(time.Millisecond))
	if run.Move.From != first.Hostname() || run.Move.Files < 4 || run.Bytes < int64(len(big)) || len(run.SHA256) != 64 {
		t.Errorf("move run: %+v %+v", run, run.Move)
	}
	vol := w.volume("data")
	if vol.Status.Node != second.Hostname() {
		t.Fatalf("volume data: status.node = %q after the move, want %s", vol.Status.Node, second.Hostname())
	}
	db = w.wait("db", "Ready on "+second.Hostname(), func(s *api.Service) bool {
		return reconcile.ServiceReady(s) && len(s.Status.Replicas) == 1 && s.Status.Replicas[0].Node == second.Hostname()
	})
	for name, body := range files {
		got := get(t, "http://"+at(second)+"/files/"+name)
		if name == "blob.bin" {
			if sum := sha256.Sum256(got); sum != bigSum {
				t.Errorf("blob.bin on %s: %d bytes, sha256 %s; want %d bytes, %s", second.Hostname(), len(got), hex.EncodeToString(sum[:]), len(big), hex.EncodeToString(bigSum[:]))
			}
		} else if !bytes.Equal(got, body) {
			t.Errorf("%s on %s = %q, want %q", name, second.Hostname(), got, body)
		}
	}
	// The volume is Ready, on a node PanelX does not talk to.
	vol = w.waitVolume("data", "OnAnotherNode", func(v *api.Volume) bool {
		c := api.FindCondition(v.Status.Conditions, api.ConditionReady)
		return c != nil && c.Status == api.ConditionTrue && c.Reason == reconcile.ReasonOnAnotherNode
	})
	// Backups reach the manager's volumes only: the stale copy on node 1
	// is never backed up as the volume.
	if run = w.request(api.BackupRun{Op: api.BackupOpBackup}); run.Phase != api.BackupFailed || !strings.Contains(run.Reason, "holds its data on node "+second.Hostname()) {
		t.Errorf("backup of the moved volume: %s %q, want Failed naming %s", run.Phase, run.Reason, second.Hostname())
	}
	// Written after the move: on node 2 only.
	put(t, "http://"+at(second)+"/files/after.txt", []byte("after the move"))
	w.checkNoMoveObjects()

	// Back to node 1, which still holds the first copy: refused, nothing
	// mixed, db back on node 2 with its data.
	run = w.move(first.Hostname())
	if run.Phase != api.BackupFailed || !strings.Contains(run.Reason, "already holds data") {
		t.Fatalf("move back onto the old copy: %s %q, want Failed: already holds data", run.Phase, run.Reason)
	}
	t.Logf("move back: %s", run.Reason)
	if n := w.volume("data").Status.Node; n != second.Hostname() {
		t.Errorf("status.node = %s after a failed move, want %s", n, second.Hostname())
	}
	w.wait("db", "Ready on "+second.Hostname()+" again", func(s *api.Service) bool {
		return reconcile.ServiceReady(s) && len(s.Status.Replicas) == 1 && s.Status.Replicas[0].Node == second.Hostname()
	})
	if got := get(t, "http://"+at(second)+"/files/after.txt"); string(got) != "after the move" {
		t.Errorf("after.txt = %q after the failed move", got)
	}
	w.checkNoMoveObjects()

	// The target node's daemon dies as the move starts: the move fails
	// naming it (never waits for it), db runs on node 2 again.
	third := c.Node(3)
	third.Kill(t)
	run = w.move(third.Hostname())
	if run.Phase != api.BackupFailed || !strings.Contains(run.Reason, "node "+third.Hostname()) {
		t.Errorf("move to a dead node: %s %q, want Failed naming %s", run.Phase, run.Reason, third.Hostname())
	}
	t.Logf("move to a node whose daemon died: %s after %v", run.Reason, run.FinishedAt.Sub(*run.StartedAt).Round(time.Millisecond))
	w.wait("db", "Ready on "+second.Hostname()+" after the failed move", func(s *api.Service) bool {
		return reconcile.ServiceReady(s) && len(s.Status.Replicas) == 1 && s.Status.Replicas[0].Node == second.Hostname()
	})
	if n := w.volume("data").Status.Node; n != second.Hostname() {
		t.Errorf("status.node = %s after a failed move, want %s", n, second.Hostname())
	}
	third.Start(t)

	// A node that does not exist: refused before anything stops.
	run = w.move("px-node-9")
	if run.Phase != api.BackupFailed || !strings.Contains(run.Reason, `no node "px-node-9"`) {
		t.Errorf("move to px-node-9: %s %q", run.Phase, run.Reason)
	}
}

// move requests a move of volume data and waits for its end.
func (w *world) move(node string) api.BackupRun {
	w.t.Helper()
	return w.request(api.BackupRun{Op: api.BackupOpMove, Move: &api.MoveParams{Node: node, From: w.volume("data").Status.Node}})
}

// request records a run of volume data and waits for its end.
func (w *world) request(run api.BackupRun) api.BackupRun {
	w.t.Helper()
	runs := w.store.(store.BackupStore).BackupRuns()
	run.Project, run.Volume, run.Trigger, run.Phase = w.project, "data", api.BackupManual, api.BackupPending
	run, err := runs.Create(w.ctx, run)
	if err != nil {
		w.t.Fatal(err)
	}
	for deadline := time.Now().Add(4 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		got, err := runs.Get(w.ctx, w.project, run.ID)
		if err != nil {
			w.t.Fatal(err)
		}
		if got.Phase.Finished() {
			return got
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("%s %s: still %s", run.Op, run.ID, got.Phase)
		}
	}
}

// checkNoMoveObjects: a move leaves no helper service or network.
func (w *world) checkNoMoveObjects() {
	w.t.Helper()
	mgr := w.cluster.Manager().Client(w.t)
	f := filters.NewArgs(filters.Arg("label", "dev.panelx.move.instance=multinode"))
	svcs, err := mgr.ServiceList(w.ctx, swarm.ServiceListOptions{Filters: f})
	if err != nil {
		w.t.Fatal(err)
	}
	for _, s := range svcs {
		w.t.Errorf("a move's service is left: %s", s.Spec.Name)
	}
	nets, err := mgr.NetworkList(w.ctx, network.ListOptions{Filters: f})
	if err != nil {
		w.t.Fatal(err)
	}
	for _, n := range nets {
		w.t.Errorf("a move's network is left: %s", n.Name)
	}
}

func put(t *testing.T, url string, body []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("PUT %s: %v", url, err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("PUT %s: %s", url, resp.Status)
	}
}

func get(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v: %s", url, resp.Status, err, body)
	}
	return body
}
