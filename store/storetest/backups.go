package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/store"
)

// testBackupRuns: runs are created, listed newest first, moved by
// compare-and-set on their phase, at most one Running per volume, and
// they go with their project.
func testBackupRuns(t *testing.T, s store.Store) {
	ctx := context.Background()
	bs, ok := s.(store.BackupStore)
	if !ok {
		t.Fatal("the backend does not record backup runs (store.BackupStore)")
	}
	runs := bs.BackupRuns()
	for _, p := range []string{"bk", "bk2"} {
		if _, err := s.Projects().Create(ctx, Project(p)); err != nil {
			t.Fatal(err)
		}
	}
	sched := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	first, err := runs.Create(ctx, api.BackupRun{Project: "bk", Volume: "data", Op: api.BackupOpBackup, Trigger: api.BackupScheduled,
		Phase: api.BackupPending, ScheduledAt: &sched})
	if err != nil {
		t.Fatal(err)
	}
	if first.ID == "" || first.CreatedAt.IsZero() || first.ScheduledAt == nil || !first.ScheduledAt.Equal(sched) {
		t.Fatalf("created %+v", first)
	}
	restore, err := runs.Create(ctx, api.BackupRun{Project: "bk", Volume: "data", Op: api.BackupOpRestore, Trigger: api.BackupManual,
		Phase: api.BackupPending, RequestedBy: "u1", Restore: &api.RestoreParams{Backup: first.ID, Overwrite: true}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runs.Create(ctx, api.BackupRun{Project: "nope", Volume: "data", Op: api.BackupOpBackup, Trigger: api.BackupManual, Phase: api.BackupPending}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("run of a missing project: %v", err)
	}

	// Pending → Running, once.
	started := time.Now().UTC().Truncate(time.Microsecond)
	run := first
	run.Phase, run.StartedAt, run.Epoch = api.BackupRunning, &started, 7
	if run, err = runs.Update(ctx, run, api.BackupPending); err != nil {
		t.Fatal(err)
	}
	if _, err := runs.Update(ctx, run, api.BackupPending); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second move from Pending: %v", err)
	}
	// A second Running run of the volume is refused.
	other := restore
	other.Phase = api.BackupRunning
	if _, err := runs.Update(ctx, other, api.BackupPending); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second running run: %v", err)
	}
	if _, err := runs.Create(ctx, api.BackupRun{Project: "bk", Volume: "data", Op: api.BackupOpBackup, Trigger: api.BackupManual, Phase: api.BackupRunning}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second running run created: %v", err)
	}
	// Another volume runs beside it.
	if _, err := runs.Create(ctx, api.BackupRun{Project: "bk", Volume: "logs", Op: api.BackupOpBackup, Trigger: api.BackupManual, Phase: api.BackupRunning}); err != nil {
		t.Fatal(err)
	}
	open, err := runs.Open(ctx)
	if err != nil || len(open) != 3 || open[0].ID != first.ID {
		t.Fatalf("open runs %+v, %v", open, err)
	}
	done := started.Add(time.Second)
	run.Phase, run.FinishedAt, run.Bytes, run.SHA256, run.Key, run.Target, run.Encrypted = api.BackupSucceeded, &done, 1234, "ab12", "bk/data/x.tar.gz", "local:bk", true
	if run, err = runs.Update(ctx, run, api.BackupRunning); err != nil {
		t.Fatal(err)
	}
	got, err := runs.Get(ctx, "bk", first.ID)
	if err != nil || got.Phase != api.BackupSucceeded || got.Bytes != 1234 || got.SHA256 != "ab12" || !got.Encrypted || got.Epoch != 7 ||
		got.FinishedAt == nil || !got.FinishedAt.Equal(done) || got.Key != "bk/data/x.tar.gz" {
		t.Fatalf("get %+v, %v", got, err)
	}
	if _, err := runs.Get(ctx, "bk2", first.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("run read through another project: %v", err)
	}
	list, err := runs.List(ctx, "bk", store.BackupRunFilter{Volume: "data"})
	if err != nil || len(list) != 2 || list[0].ID != restore.ID || list[0].Restore == nil || list[0].Restore.Backup != first.ID {
		t.Fatalf("list %+v, %v", list, err)
	}
	if list, _ := runs.List(ctx, "bk", store.BackupRunFilter{Op: api.BackupOpBackup, Phase: api.BackupSucceeded}); len(list) != 1 {
		t.Fatalf("filtered list %+v", list)
	}
	if list, _ := runs.List(ctx, "bk", store.BackupRunFilter{Limit: 1}); len(list) != 1 {
		t.Fatalf("limited list %+v", list)
	}
	// Runs go with their project.
	p, _ := s.Projects().Get(ctx, api.Key{Name: "bk"})
	if _, err := s.Projects().Delete(ctx, api.Key{Name: "bk"}, store.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Projects().Remove(ctx, api.Key{Name: "bk"}, p.Metadata.UID); err != nil {
		t.Fatal(err)
	}
	if list, _ := runs.List(ctx, "bk", store.BackupRunFilter{}); len(list) != 0 {
		t.Fatalf("runs outlived their project: %+v", list)
	}
}

// testMoveRuns: a move run keeps its parameters (the Stopped map too, which
// a restarted controller needs to start the services again), is listed by
// its op, and never runs beside a backup or restore of the same volume.
func testMoveRuns(t *testing.T, s store.Store) {
	ctx := context.Background()
	bs, ok := s.(store.BackupStore)
	if !ok {
		t.Fatal("the backend does not record backup runs (store.BackupStore)")
	}
	runs := bs.BackupRuns()
	if _, err := s.Projects().Create(ctx, Project("mv")); err != nil {
		t.Fatal(err)
	}
	move, err := runs.Create(ctx, api.BackupRun{Project: "mv", Volume: "data", Op: api.BackupOpMove, Trigger: api.BackupManual,
		Phase: api.BackupPending, RequestedBy: "u1", Move: &api.MoveParams{Node: "node-2", From: "node-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if move.Op != api.BackupOpMove || move.Move == nil || move.Move.Node != "node-2" || move.Move.From != "node-1" || move.Restore != nil {
		t.Fatalf("created %+v (move %+v)", move, move.Move)
	}
	backup, err := runs.Create(ctx, api.BackupRun{Project: "mv", Volume: "data", Op: api.BackupOpBackup, Trigger: api.BackupScheduled,
		Phase: api.BackupPending})
	if err != nil {
		t.Fatal(err)
	}
	// One open move per volume: a second one would start from a stale node.
	if _, err := runs.Create(ctx, api.BackupRun{Project: "mv", Volume: "data", Op: api.BackupOpMove, Trigger: api.BackupManual,
		Phase: api.BackupPending, Move: &api.MoveParams{Node: "node-3", From: "node-1"}}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second open move: %v", err)
	}
	if _, err := runs.Create(ctx, api.BackupRun{Project: "mv", Volume: "logs", Op: api.BackupOpMove, Trigger: api.BackupManual,
		Phase: api.BackupPending, Move: &api.MoveParams{Node: "node-3", From: "node-1"}}); err != nil {
		t.Fatalf("a move of another volume: %v", err)
	}

	// Running with the services it stopped: the map round-trips.
	started := time.Now().UTC().Truncate(time.Microsecond)
	run := move
	run.Phase, run.StartedAt, run.Epoch = api.BackupRunning, &started, 3
	run.Move = &api.MoveParams{Node: "node-2", From: "node-1", Stopped: map[string]int32{"web": 2, "worker": 1, "idle": 0}}
	if run, err = runs.Update(ctx, run, api.BackupPending); err != nil {
		t.Fatal(err)
	}
	got, err := runs.Get(ctx, "mv", move.ID)
	if err != nil || got.Phase != api.BackupRunning || got.Move == nil || len(got.Move.Stopped) != 3 ||
		got.Move.Stopped["web"] != 2 || got.Move.Stopped["worker"] != 1 || got.Move.Stopped["idle"] != 0 {
		t.Fatalf("get %+v (move %+v), %v", got, got.Move, err)
	}

	// The backup of the same volume cannot run beside the move, created or
	// updated into Running.
	other := backup
	other.Phase = api.BackupRunning
	if _, err := runs.Update(ctx, other, api.BackupPending); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("backup running beside a move: %v", err)
	}
	if _, err := runs.Create(ctx, api.BackupRun{Project: "mv", Volume: "data", Op: api.BackupOpRestore, Trigger: api.BackupManual,
		Phase: api.BackupRunning, Restore: &api.RestoreParams{Backup: "x"}}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("restore created running beside a move: %v", err)
	}
	// Nor a second move.
	if _, err := runs.Create(ctx, api.BackupRun{Project: "mv", Volume: "data", Op: api.BackupOpMove, Trigger: api.BackupManual,
		Phase: api.BackupRunning, Move: &api.MoveParams{Node: "node-3"}}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second move created running: %v", err)
	}

	// Done: the counts stay, and the backup may run now.
	done := started.Add(time.Second)
	run.Phase, run.FinishedAt, run.Bytes, run.SHA256 = api.BackupSucceeded, &done, 4096, "cd34"
	run.Move.Files = 17
	if _, err = runs.Update(ctx, run, api.BackupRunning); err != nil {
		t.Fatal(err)
	}
	if _, err := runs.Update(ctx, other, api.BackupPending); err != nil {
		t.Fatalf("backup after the move: %v", err)
	}
	// The move ended: the volume may move again.
	if _, err := runs.Create(ctx, api.BackupRun{Project: "mv", Volume: "data", Op: api.BackupOpMove, Trigger: api.BackupManual,
		Phase: api.BackupPending, Move: &api.MoveParams{Node: "node-1", From: "node-2"}}); err != nil {
		t.Fatalf("a move after the last one ended: %v", err)
	}
	list, err := runs.List(ctx, "mv", store.BackupRunFilter{Volume: "data", Op: api.BackupOpMove})
	if err != nil || len(list) != 2 {
		t.Fatalf("moves listed %+v, %v", list, err)
	}
	m := list[1] // newest first
	if m.ID != move.ID || m.Phase != api.BackupSucceeded || m.Bytes != 4096 || m.SHA256 != "cd34" || m.RequestedBy != "u1" ||
		m.Move == nil || m.Move.Files != 17 || m.Move.Node != "node-2" || m.Move.From != "node-1" || m.Move.Stopped["web"] != 2 {
		t.Fatalf("listed move %+v (move %+v)", m, m.Move)
	}
	// A backup run has no move parameters.
	if b, err := runs.Get(ctx, "mv", backup.ID); err != nil || b.Move != nil {
		t.Fatalf("backup run %+v, %v", b, err)
	}
}
