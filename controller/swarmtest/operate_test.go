package swarmtest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/client"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/apiserver"
	"github.com/panelx/panelx/internal/operations"
	"github.com/panelx/panelx/operate"
	"github.com/panelx/panelx/reconcile"
	"github.com/panelx/panelx/store/storetest"
)

// opsService runs service "web" of a fresh project on the swarm with the
// given replicas and extra spec, and waits until it is Ready.
func opsService(t *testing.T, replicas int32, more func(*api.Service)) (*world, string) {
	t.Helper()
	w := newWorld(t)
	p := w.project()
	img := w.Registry.Push(t, "t"+w.Instance[len(w.Instance)-6:]+"/web:1", "1")
	w.apply(p, "web", func(s *api.Service) {
		s.Spec.Image, s.Spec.Replicas = img, &replicas
		if more != nil {
			more(s)
		}
	})
	w.wait(p, "web", fmt.Sprintf("%d/%d Ready", replicas, replicas), reconcile.ServiceReady)
	return w, p
}

// taskPrefix is how the container names of a slot's tasks begin.
func taskPrefix(project string, slot int) string {
	return fmt.Sprintf("%s.%d.", reconcile.WorkloadName(project, "web"), slot)
}

// drain reads a non-follow stream to its end.
func drain(t *testing.T, ch <-chan operate.LogLine) []operate.LogLine {
	t.Helper()
	var out []operate.LogLine
	timeout := time.After(time.Minute)
	for {
		select {
		case l, ok := <-ch:
			if !ok {
				return out
			}
			out = append(out, l)
		case <-timeout:
			t.Fatalf("log stream did not end; %d lines so far", len(out))
		}
	}
}

// next reads a follow stream until a line matches; every line read is
// also appended to *seen.
func next(t *testing.T, ch <-chan operate.LogLine, seen *[]operate.LogLine, what string, match func(operate.LogLine) bool) operate.LogLine {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case l, ok := <-ch:
			if !ok {
				t.Fatalf("stream closed while waiting for %s", what)
			}
			*seen = append(*seen, l)
			if match(l) {
				return l
			}
		case <-timeout:
			t.Fatalf("no %s within a minute", what)
		}
	}
}

// runningTask is the running task of a slot.
func runningTask(t *testing.T, w *world, project string, slot int) swarm.Task {
	t.Helper()
	tasks, err := w.cli.TaskList(w.ctx, swarm.TaskListOptions{Filters: filters.NewArgs(
		filters.Arg("service", reconcile.WorkloadName(project, "web")), filters.Arg("desired-state", "running"))})
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		if task.Slot == slot && task.Status.State == swarm.TaskStateRunning && task.Status.ContainerStatus != nil {
			return task
		}
	}
	t.Fatalf("slot %d has no running task: %+v", slot, tasks)
	return swarm.Task{}
}

// TestSwarmLogs: a service's logs on Swarm are its tasks' — both replicas,
// tagged by slot, in timestamp order, one replica or a tail on request —
// and following them goes on across a replacement of a task, the new
// task announced and read from its first line.
func TestSwarmLogs(t *testing.T) {
	w, p := opsService(t, 2, func(s *api.Service) {
		s.Spec.Env = []api.EnvVar{{Name: "LOG_EVERY", Value: "100ms"}, {Name: "APP_VERSION", Value: "one"}}
	})
	target := operate.LogTarget{Instance: w.Instance, Project: p, Service: "web"}
	var lines []operate.LogLine
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		ch, err := operate.SwarmLogs(w.ctx, w.cli, target, operate.LogOptions{})
		if err != nil {
			t.Fatal(err)
		}
		lines = drain(t, ch)
		ticks := map[int]int{}
		for _, l := range lines {
			if strings.HasPrefix(l.Text, "tick ") {
				ticks[l.Replica]++
			}
		}
		if ticks[0] >= 3 && ticks[1] >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no three ticks of each replica within 30 s: %+v", lines)
		}
	}
	started := map[int]bool{}
	for i, l := range lines {
		if l.Stream == operate.StreamSystem || (l.Replica != 0 && l.Replica != 1) {
			t.Errorf("line %d: %+v", i, l)
		}
		if !strings.HasPrefix(l.Container, taskPrefix(p, l.Replica+1)) {
			t.Errorf("line %d of replica %d from container %s", i, l.Replica, l.Container)
		}
		if i > 0 && l.Time.Before(lines[i-1].Time) {
			t.Errorf("line %d (%s) is older than line %d (%s)", i, l.Time, i-1, lines[i-1].Time)
		}
		started[l.Replica] = started[l.Replica] || l.Text == "started version=one"
	}
	if !started[0] || !started[1] {
		t.Errorf("start lines of the replicas: %v", started)
	}

	// One replica; a tail per replica.
	one := 1
	ch, err := operate.SwarmLogs(w.ctx, w.cli, operate.LogTarget{Instance: w.Instance, Project: p, Service: "web", Replica: &one}, operate.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := drain(t, ch); len(got) == 0 || slices.ContainsFunc(got, func(l operate.LogLine) bool { return l.Replica != 1 }) {
		t.Errorf("replica 1 alone: %+v", got)
	}
	two := 2
	ch, err = operate.SwarmLogs(w.ctx, w.cli, target, operate.LogOptions{Tail: &two})
	if err != nil {
		t.Fatal(err)
	}
	if got := drain(t, ch); len(got) != 4 {
		t.Errorf("tail 2 of two replicas: %d lines, want 4: %+v", len(got), got)
	}

	// Through the API's side, as the server wires it for PANELX_RUNTIME=swarm.
	ops := operations.New(w.cli, operations.Options{Instance: w.Instance, Swarm: true})
	api1, err := ops.Logs(w.ctx, apiserver.LogsRequest{Project: p, Service: "web", Replica: &one, Tail: &two})
	if err != nil {
		t.Fatal(err)
	}
	var apiLines []apiserver.LogLine
	for l := range api1 {
		apiLines = append(apiLines, l)
	}
	if len(apiLines) != 2 || apiLines[0].Replica != 1 || !strings.HasPrefix(apiLines[0].Container, taskPrefix(p, 2)) {
		t.Errorf("logs through operations: %+v", apiLines)
	}

	// Follow, then replace the task of slot 2 (its container killed).
	fctx, stop := context.WithCancel(w.ctx)
	defer stop()
	zero := 0
	follow, err := operate.SwarmLogs(fctx, w.cli, target, operate.LogOptions{Follow: true, Tail: &zero})
	if err != nil {
		t.Fatal(err)
	}
	var seen []operate.LogLine
	old := runningTask(t, w, p, 2)
	oldName := taskPrefix(p, 2) + old.ID
	next(t, follow, &seen, "a tick of the old task", func(l operate.LogLine) bool {
		return l.Container == oldName && strings.HasPrefix(l.Text, "tick ")
	})
	if err := w.cli.ContainerKill(w.ctx, old.Status.ContainerStatus.ContainerID, "SIGKILL"); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	announced := next(t, follow, &seen, "the new task announced", func(l operate.LogLine) bool {
		return l.Stream == operate.StreamSystem && l.Replica == 1 && l.Container != oldName
	})
	if !strings.HasPrefix(announced.Container, taskPrefix(p, 2)) || announced.Text != "following container "+announced.Container {
		t.Errorf("announcement: %+v", announced)
	}
	next(t, follow, &seen, "the new task's start line", func(l operate.LogLine) bool {
		return l.Container == announced.Container && l.Text == "started version=one"
	})
	next(t, follow, &seen, "a tick of the new task", func(l operate.LogLine) bool {
		return l.Container == announced.Container && strings.HasPrefix(l.Text, "tick ")
	})
	t.Logf("the new task's lines came %v after the kill", time.Since(killed).Round(100*time.Millisecond))
	// Replica 0 goes on; nothing failed.
	next(t, follow, &seen, "a tick of replica 0 after the replacement", func(l operate.LogLine) bool {
		return l.Replica == 0 && strings.HasPrefix(l.Text, "tick ")
	})
	for _, l := range seen {
		if l.Stream == operate.StreamSystem && l.Container != announced.Container {
			t.Errorf("unexpected system line: %+v", l)
		}
	}
	stop()
	for range follow { // ends with its context
	}
}

// elsewhere is the manager as if it were another node: every task is on a
// node that is not its own (a single-node swarm has no other).
type elsewhere struct{ *client.Client }

func (e elsewhere) Info(ctx context.Context) (system.Info, error) {
	info, err := e.Client.Info(ctx)
	info.Swarm.NodeID = "not-" + info.Swarm.NodeID
	return info, err
}

// readSession reads a session's output to its end and its exit code.
func readSession(t *testing.T, ctx context.Context, out io.Reader, wait func(context.Context) (int, error)) (string, int) {
	t.Helper()
	data, err := io.ReadAll(out)
	if err != nil && !errors.Is(err, io.EOF) {
		t.Logf("output: %v", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	code, err := wait(wctx)
	if err != nil {
		t.Fatal(err)
	}
	return string(data), code
}

// TestSwarmExec: a terminal runs in the container of the slot's task on
// this node; a replica without a task, or without a shell to default to,
// is the same error as on one engine; a task on another node is a
// conflict naming the node, never a 500.
func TestSwarmExec(t *testing.T) {
	w, p := opsService(t, 2, nil)
	target := operate.ExecTarget{Instance: w.Instance, Project: p, Service: "web", Replica: 1}
	s, err := operate.SwarmExec(w.ctx, w.cli, target, operate.ExecOptions{Cmd: []string{"/testapp", "-echo", "hello", "from", "exec"}, Rows: 30, Cols: 100})
	if err != nil {
		t.Fatal(err)
	}
	out, code := readSession(t, w.ctx, s.Output(), s.Wait)
	s.Close()
	task := runningTask(t, w, p, 2)
	rec := s.Record()
	if !strings.Contains(out, "hello from exec") || code != 0 {
		t.Errorf("output %q, exit %d", out, code)
	}
	if rec.Container != taskPrefix(p, 2)+task.ID || rec.ContainerID != task.Status.ContainerStatus.ContainerID {
		t.Errorf("ran in %s (%s), want the task %s of slot 2 (%s)", rec.Container, rec.ContainerID, task.ID, task.Status.ContainerStatus.ContainerID)
	}

	ops := operations.New(w.cli, operations.Options{Instance: w.Instance, Swarm: true})
	sess, err := ops.Exec(w.ctx, apiserver.ExecRequest{Project: p, Service: "web", Replica: 0, Cmd: []string{"/testapp", "-echo", "via", "operations"}})
	if err != nil {
		t.Fatal(err)
	}
	out, code = readSession(t, w.ctx, sess.Output(), sess.Wait)
	sess.Close()
	if !strings.Contains(out, "via operations") || code != 0 || !strings.HasPrefix(sess.Record().Container, taskPrefix(p, 1)) {
		t.Errorf("through operations: output %q, exit %d, container %s", out, code, sess.Record().Container)
	}

	info, err := w.cli.Info(w.ctx)
	if err != nil {
		t.Fatal(err)
	}
	far := operations.New(elsewhere{w.cli}, operations.Options{Instance: w.Instance, Swarm: true})
	for _, tc := range []struct {
		name    string
		ops     *operations.Docker
		replica int
		cmd     []string
		kind    error
		detail  []string
	}{
		{"no such replica", ops, 5, []string{"/testapp", "-echo"}, apiserver.ErrOpNotFound, []string{"replica 5", "no container"}},
		{"no shell in the image", ops, 0, nil, apiserver.ErrOpUnprocessable, []string{"no shell found"}},
		{"task on another node", far, 1, []string{"/testapp", "-echo"}, apiserver.ErrOpConflict,
			[]string{p + "/web replica 1 runs on node " + info.Name + " (" + info.Swarm.NodeID + ")", "exec reaches only tasks on this manager's node"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sess, err := tc.ops.Exec(w.ctx, apiserver.ExecRequest{Project: p, Service: "web", Replica: tc.replica, Cmd: tc.cmd})
			if err == nil {
				sess.Close()
				t.Fatal("no error")
			}
			if !errors.Is(err, tc.kind) {
				t.Errorf("error %q is not %v", err, tc.kind)
			}
			for _, d := range tc.detail {
				if !strings.Contains(err.Error(), d) {
					t.Errorf("error %q does not say %q", err, d)
				}
			}
		})
	}
}

// helperBinary builds operate's static test tool: the volume helper that
// the panelx binary is in production.
func helperBinary(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tool")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", path, "github.com/panelx/panelx/operate/testdata/tool")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the tool: %v\n%s", err, out)
	}
	return path
}

// TestSwarmVolumeFiles: the files of a volume that a Swarm service mounts
// (on the manager's node, where the service is constrained) are read and
// written through the same helper containers as on one engine, and the
// task sees them.
func TestSwarmVolumeFiles(t *testing.T) {
	tool := helperBinary(t)
	w := newWorld(t)
	p := w.project()
	if _, err := w.Store.Volumes().Create(w.ctx, storetest.Volume(p, "data")); err != nil {
		t.Fatal(err)
	}
	img := w.Registry.Push(t, "t"+w.Instance[len(w.Instance)-6:]+"/web:1", "1")
	one := int32(1)
	w.apply(p, "web", func(s *api.Service) {
		s.Spec.Image, s.Spec.Replicas = img, &one
		s.Spec.Volumes = []api.VolumeMount{{Name: "data", MountPath: "/data"}}
	})
	w.wait(p, "web", "1/1 Ready", reconcile.ServiceReady)

	ops := operations.New(w.cli, operations.Options{Instance: w.Instance, HelperBinary: tool, Swarm: true})
	f, err := ops.Files(w.ctx, p, "data")
	if err != nil {
		t.Fatal(err)
	}
	const note = "written through the files API\n"
	if err := f.Mkdir(w.ctx, "docs"); err != nil {
		t.Fatal(err)
	}
	if err := f.Write(w.ctx, "docs/note.txt", strings.NewReader(note), int64(len(note)), 1<<20); err != nil {
		t.Fatal(err)
	}
	// The task mounts the same volume: it copies the file.
	sess, err := ops.Exec(w.ctx, apiserver.ExecRequest{Project: p, Service: "web", Cmd: []string{"/testapp", "-copy", "/data/docs/note.txt", "/data/copy.txt"}})
	if err != nil {
		t.Fatal(err)
	}
	out, code := readSession(t, w.ctx, sess.Output(), sess.Wait)
	sess.Close()
	if code != 0 {
		t.Fatalf("copy in the task: exit %d: %s", code, out)
	}
	rc, entry, err := f.Read(w.ctx, "copy.txt")
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(data) != note || entry.Size != int64(len(note)) {
		t.Errorf("copy.txt: %q (%d bytes, %v), want %q", data, entry.Size, err, note)
	}
	if err := f.Rename(w.ctx, "copy.txt", "docs/copy.txt"); err != nil {
		t.Fatal(err)
	}
	if err := f.Delete(w.ctx, "docs/note.txt"); err != nil {
		t.Fatal(err)
	}
	l, err := f.List(w.ctx, "docs")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range l.Entries {
		names = append(names, e.Name)
	}
	if !slices.Equal(names, []string{"copy.txt"}) {
		t.Errorf("docs/ holds %v, want [copy.txt]", names)
	}
	vols, err := ops.DockerVolumes(w.ctx)
	if err != nil {
		t.Fatal(err)
	}
	task := runningTask(t, w, p, 1)
	for _, v := range vols {
		if v.Name == reconcile.VolumeName(p, "data") {
			if !slices.Contains(v.UsedBy, taskPrefix(p, 1)+task.ID) {
				t.Errorf("volume used by %v, want the task %s", v.UsedBy, task.ID)
			}
			return
		}
	}
	t.Errorf("volume %s not listed: %+v", reconcile.VolumeName(p, "data"), vols)
}
