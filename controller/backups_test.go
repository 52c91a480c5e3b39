package controller

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/backup"
	"github.com/panelx/panelx/store"
	"github.com/panelx/panelx/store/sqlite"
)

// fakeDocker is the Docker side of backups in memory: a volume's archive
// is a fixed tar; a gate, when set, holds reads until it closes.
type fakeDocker struct {
	mu    sync.Mutex
	gate  chan struct{}
	hooks int
}

func (f *fakeDocker) OpenVolume(ctx context.Context, project, volume string) (BackupVolume, error) {
	f.mu.Lock()
	gate := f.gate
	f.mu.Unlock()
	return fakeVolume{gate: gate}, nil
}

func (f *fakeDocker) RunHook(ctx context.Context, project, service string, replica int, cmd []string, timeout time.Duration) (BackupHookResult, error) {
	f.mu.Lock()
	f.hooks++
	f.mu.Unlock()
	if cmd[0] == "fail" {
		return BackupHookResult{ExitCode: 3, Output: "dump failed: disk on fire", Container: "c"}, nil
	}
	return BackupHookResult{Container: "c"}, nil
}

func (f *fakeDocker) RunningUsers(ctx context.Context, project, volume string) ([]string, error) {
	return nil, nil
}

type fakeVolume struct{ gate chan struct{} }

func (v fakeVolume) Open(ctx context.Context) (io.ReadCloser, error) {
	if v.gate != nil {
		select {
		case <-v.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "./", Mode: 0o755})
	_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "./f", Mode: 0o644, Size: 5})
	_, _ = tw.Write([]byte("hello"))
	_ = tw.Close()
	return io.NopCloser(&buf), nil
}

func (v fakeVolume) Sink(ctx context.Context) (backup.Sink, error) { return nil, io.EOF }

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newBackupsTest(t *testing.T) (*Backups, *sqlite.Store, *fakeDocker, *clock) {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "panelx.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	p, _ := api.New(api.KindProject)
	p.GetMeta().Name = "shop"
	if _, err := s.Projects().Create(ctx, p.(*api.Project)); err != nil {
		t.Fatal(err)
	}
	d := &fakeDocker{}
	c := &clock{}
	b, err := NewBackups(BackupOptions{Store: s, Docker: d, Dir: t.TempDir(), Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return b, s, d, c
}

func createVolume(t *testing.T, s store.Store, name string, spec *api.BackupSpec) *api.Volume {
	t.Helper()
	o, _ := api.New(api.KindVolume)
	v := o.(*api.Volume)
	v.Metadata = api.ObjectMeta{Project: "shop", Name: name}
	v.Spec.Backup = spec
	v.Default()
	if errs := v.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	out, err := s.Volumes().Create(context.Background(), v)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func waitRuns(t *testing.T, b *Backups, volume string, done func([]api.BackupRun) bool) []api.BackupRun {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		runs, err := b.runs.List(context.Background(), "shop", store.BackupRunFilter{Volume: volume})
		if err != nil {
			t.Fatal(err)
		}
		if done(runs) {
			return runs
		}
		if time.Now().After(deadline) {
			t.Fatalf("runs of %s: %+v", volume, runs)
		}
	}
}

func phases(runs []api.BackupRun) string {
	var out []string
	for _, r := range runs {
		out = append(out, string(r.Phase))
	}
	return strings.Join(out, ",")
}

// TestBackupScheduleMissedAndNoOverlap: fire times that passed while no
// controller ran are recorded as one Missed run (Warning, condition) and
// caught up with one run; a fire time while a run of the volume still
// runs is Missed, never a second run beside it.
func TestBackupScheduleMissedAndNoOverlap(t *testing.T) {
	ctx := context.Background()
	b, s, d, c := newBackupsTest(t)
	v := createVolume(t, s, "data", &api.BackupSpec{Schedule: "*/10 * * * *", Target: api.BackupTarget{Local: &api.LocalBackupTarget{}},
		Hook: &api.BackupHook{Service: "db", Command: []string{"pg_dump"}}})
	c.t = v.Metadata.CreationTimestamp.Truncate(10 * time.Minute).Add(35 * time.Minute)

	b.pass(ctx, nil, 1) // three fire times passed (…:10, :20, :30): two missed, one late
	runs := waitRuns(t, b, "data", func(r []api.BackupRun) bool { return len(r) == 2 && r[0].Phase.Finished() })
	waitIdle(t, b)
	if phases(runs) != "Succeeded,Missed" && phases(runs) != "Missed,Succeeded" {
		t.Fatalf("runs %s", phases(runs))
	}
	for _, r := range runs {
		if r.Phase == api.BackupMissed && !strings.Contains(r.Reason, "3 scheduled run(s) missed") {
			t.Errorf("missed run's reason: %q", r.Reason)
		}
		if r.Phase == api.BackupSucceeded && (r.Bytes == 0 || r.SHA256 == "" || r.Trigger != api.BackupScheduled) {
			t.Errorf("catch-up run %+v", r)
		}
	}
	if d.hooks != 1 {
		t.Errorf("hook ran %d times", d.hooks)
	}
	events, _ := s.Events().List(ctx, "shop", store.EventFilter{Kind: api.KindVolume, Name: "data"})
	var reasons []string
	for _, e := range events {
		reasons = append(reasons, e.Reason)
	}
	if got := strings.Join(reasons, ","); !strings.Contains(got, "BackupMissed") || !strings.Contains(got, "BackupSucceeded") {
		t.Errorf("events %s", got)
	}

	// The next fire time comes while a run is held: that fire time is Missed.
	d.gate = make(chan struct{})
	c.add(5 * time.Minute) // :40
	b.pass(ctx, nil, 1)
	waitRuns(t, b, "data", func(r []api.BackupRun) bool { return len(r) == 3 && r[0].Phase == api.BackupRunning })
	c.add(10 * time.Minute) // :50
	b.pass(ctx, nil, 1)
	runs = waitRuns(t, b, "data", func(r []api.BackupRun) bool { return len(r) == 4 })
	if runs[0].Phase != api.BackupMissed || !strings.Contains(runs[0].Reason, "still running") {
		t.Fatalf("overlapping fire time: %+v", runs[0])
	}
	close(d.gate)
	waitRuns(t, b, "data", func(r []api.BackupRun) bool { return r[1].Phase == api.BackupSucceeded })
	if cond := waitCondition(t, s, v, api.ConditionTrue); cond.Reason != "BackupSucceeded" {
		t.Errorf("condition after the last success: %+v", cond)
	}
}

// TestBackupHookFailureFailsTheRun: a hook that exits non-zero fails the
// run with its output, before anything is copied.
func TestBackupHookFailureFailsTheRun(t *testing.T) {
	ctx := context.Background()
	b, s, _, c := newBackupsTest(t)
	v := createVolume(t, s, "data", &api.BackupSpec{Target: api.BackupTarget{Local: &api.LocalBackupTarget{}},
		Hook: &api.BackupHook{Service: "db", Command: []string{"fail"}}})
	c.t = time.Now()
	if _, err := b.runs.Create(ctx, api.BackupRun{Project: "shop", Volume: "data", Op: api.BackupOpBackup, Trigger: api.BackupManual, Phase: api.BackupPending}); err != nil {
		t.Fatal(err)
	}
	b.pass(ctx, nil, 1)
	runs := waitRuns(t, b, "data", func(r []api.BackupRun) bool { return len(r) == 1 && r[0].Phase.Finished() })
	if runs[0].Phase != api.BackupFailed || !strings.Contains(runs[0].Reason, "exited with 3: dump failed") || runs[0].Key != "" {
		t.Fatalf("run %+v", runs[0])
	}
	if cond := waitCondition(t, s, v, api.ConditionFalse); cond.Reason != "BackupFailed" {
		t.Errorf("condition: %+v", cond)
	}
}

// waitCondition waits for the volume's BackupHealthy condition to have
// the status (it is written just after the run's end).
func waitCondition(t *testing.T, s store.Store, v *api.Volume, status api.ConditionStatus) api.Condition {
	t.Helper()
	var cond *api.Condition
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		vol, err := s.Volumes().Get(context.Background(), api.KeyOf(v))
		if err != nil {
			t.Fatal(err)
		}
		if cond = api.FindCondition(vol.Status.Conditions, api.ConditionBackupHealthy); cond != nil && cond.Status == status {
			return *cond
		}
	}
	t.Fatalf("condition %+v, want status %s", cond, status)
	return api.Condition{}
}

// waitIdle waits until no run is in flight in b.
func waitIdle(t *testing.T, b *Backups) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		b.mu.Lock()
		n := len(b.running)
		b.mu.Unlock()
		if n == 0 {
			return
		}
	}
	t.Fatal("runs still in flight")
}
