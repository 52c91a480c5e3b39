package operate

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/errdefs"

	"github.com/panelx/panelx/naming"
)

// fakeSwarm is a manager with one service "panelx-p-s" of instance "i",
// whose tasks the test sets; a task's logs are a pipe the test writes
// (raw: the tasks have a TTY), closed when the stream's context ends. The
// methods the Swarm path does not call are left nil (and would panic).
type fakeSwarm struct {
	Docker
	node string

	mu      sync.Mutex
	tasks   []swarm.Task
	writers map[string]*io.PipeWriter // task ID → its open log stream
	opened  map[string]container.LogsOptions
	closed  map[string]bool // the stream's context ended
	hosts   map[string]string
}

func newFakeSwarm() *fakeSwarm {
	return &fakeSwarm{node: "manager", writers: map[string]*io.PipeWriter{}, opened: map[string]container.LogsOptions{},
		closed: map[string]bool{}, hosts: map[string]string{"manager": "m-1", "worker": "worker-1"}}
}

var fakeService = swarm.Service{ID: "svc", Spec: swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "panelx-p-s",
	Labels: map[string]string{naming.LabelManaged: "true", naming.LabelInstance: "i", naming.LabelProject: "p", naming.LabelService: "s"}}}}

func (f *fakeSwarm) Info(context.Context) (system.Info, error) {
	return system.Info{Swarm: swarm.Info{NodeID: f.node}}, nil
}

func (f *fakeSwarm) ServiceInspectWithRaw(_ context.Context, name string, _ swarm.ServiceInspectOptions) (swarm.Service, []byte, error) {
	if name != fakeService.Spec.Name {
		return swarm.Service{}, nil, errdefs.NotFound(errors.New("no such service"))
	}
	return fakeService, nil, nil
}

func (f *fakeSwarm) TaskList(context.Context, swarm.TaskListOptions) ([]swarm.Task, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]swarm.Task(nil), f.tasks...), nil
}

func (f *fakeSwarm) TaskLogs(ctx context.Context, id string, opts container.LogsOptions) (io.ReadCloser, error) {
	pr, pw := io.Pipe()
	f.mu.Lock()
	f.writers[id], f.opened[id] = pw, opts
	f.mu.Unlock()
	context.AfterFunc(ctx, func() {
		f.mu.Lock()
		f.closed[id] = true
		f.mu.Unlock()
		pw.CloseWithError(ctx.Err())
	})
	return pr, nil
}

func (f *fakeSwarm) NodeInspectWithRaw(_ context.Context, id string) (swarm.Node, []byte, error) {
	h, ok := f.hosts[id]
	if !ok {
		return swarm.Node{}, nil, errdefs.NotFound(errors.New("no such node"))
	}
	return swarm.Node{ID: id, Description: swarm.NodeDescription{Hostname: h}}, nil, nil
}

func (f *fakeSwarm) setTasks(ts ...swarm.Task) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tasks = ts
}

// write sends a line of a task's log, once its stream is open.
func (f *fakeSwarm) write(t *testing.T, id, text string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		f.mu.Lock()
		w := f.writers[id]
		f.mu.Unlock()
		if w != nil {
			if _, err := io.WriteString(w, time.Now().UTC().Format(time.RFC3339Nano)+" "+text+"\n"); err != nil {
				t.Fatalf("write to %s: %v", id, err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log of %s was never opened", id)
		}
	}
}

func (f *fakeSwarm) isClosed(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed[id]
}

// task is a task of slot on node in state; a task that reached its
// container has one.
func task(id string, slot int, node string, state, desired swarm.TaskState, created int) swarm.Task {
	t := swarm.Task{ID: id, Slot: slot, NodeID: node, DesiredState: desired,
		Spec:   swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{TTY: true}},
		Status: swarm.TaskStatus{State: state}}
	t.CreatedAt = time.Date(2026, 1, 1, 0, 0, created, 0, time.UTC)
	if state != swarm.TaskStatePending {
		t.Status.ContainerStatus = &swarm.ContainerStatus{ContainerID: "c-" + id}
	}
	return t
}

const (
	running  = swarm.TaskStateRunning
	shutdown = swarm.TaskStateShutdown
	failed   = swarm.TaskStateFailed
	pending  = swarm.TaskStatePending
)

func TestTaskReplicas(t *testing.T) {
	tasks := []swarm.Task{
		task("b2", 2, "manager", running, running, 5),
		task("a1", 1, "manager", failed, shutdown, 1),
		task("a2", 1, "worker", running, running, 3),
		task("p", 2, "", pending, running, 6), // no container yet
		{ID: "global", Slot: 0, Status: swarm.TaskStatus{State: running, ContainerStatus: &swarm.ContainerStatus{ContainerID: "x"}}},
	}
	for _, tc := range []struct {
		name    string
		replica *int
		want    []replicaContainer
	}{
		{"all, by replica then creation", nil, []replicaContainer{
			{ID: "a1", Name: "panelx-p-s.1.a1", Replica: 0, Created: tasks[1].CreatedAt, Ended: true, TTY: true},
			{ID: "a2", Name: "panelx-p-s.1.a2", Replica: 0, Running: true, Created: tasks[2].CreatedAt, TTY: true},
			{ID: "b2", Name: "panelx-p-s.2.b2", Replica: 1, Running: true, Created: tasks[0].CreatedAt, TTY: true},
		}},
		{"one replica", intp(1), []replicaContainer{
			{ID: "b2", Name: "panelx-p-s.2.b2", Replica: 1, Running: true, Created: tasks[0].CreatedAt, TTY: true},
		}},
		{"a replica without tasks", intp(4), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := taskReplicas(fakeService, tasks, tc.replica)
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("%d: got %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestPickTask(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tasks []swarm.Task
		want  string
		err   error
	}{
		{"no task in the slot", []swarm.Task{task("x", 2, "manager", running, running, 1)}, "", ErrNoContainer},
		{"none running", []swarm.Task{task("x", 1, "manager", failed, shutdown, 1), task("y", 1, "manager", pending, running, 2)}, "", ErrNotRunning},
		{"the running one", []swarm.Task{task("x", 1, "manager", failed, shutdown, 1), task("y", 1, "worker", running, running, 2)}, "y", nil},
		{"start-first: the one Swarm keeps", []swarm.Task{task("new", 1, "manager", running, running, 1), task("old", 1, "manager", running, shutdown, 2)}, "new", nil},
		{"else the newest", []swarm.Task{task("x", 1, "manager", running, running, 1), task("y", 1, "manager", running, running, 2)}, "y", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pickTask(tc.tasks, 1)
			if !errors.Is(err, tc.err) || got.ID != tc.want {
				t.Errorf("got %q, %v; want %q, %v", got.ID, err, tc.want, tc.err)
			}
		})
	}
}

func TestSwarmExecOnAnotherNode(t *testing.T) {
	f := newFakeSwarm()
	target := ExecTarget{Instance: "i", Project: "p", Service: "s", Replica: 1}
	for _, tc := range []struct {
		name string
		node string
		want string
	}{
		{"known node", "worker", "exec: p/s replica 1 runs on node worker-1 (worker); exec reaches only tasks on this manager's node"},
		{"node without a description", "gone", "exec: p/s replica 1 runs on node gone; exec reaches only tasks on this manager's node"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.setTasks(task("a", 2, tc.node, running, running, 1))
			_, err := SwarmExec(t.Context(), f, target, ExecOptions{Cmd: []string{"true"}})
			if !errors.Is(err, ErrOtherNode) || err.Error() != tc.want {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
	// Not this installation's service, or none: no container.
	_, err := SwarmExec(t.Context(), f, ExecTarget{Instance: "other", Project: "p", Service: "s"}, ExecOptions{Cmd: []string{"true"}})
	if !errors.Is(err, ErrNoContainer) {
		t.Errorf("another installation's service: %v", err)
	}
	_, err = SwarmExec(t.Context(), f, ExecTarget{Instance: "i", Project: "p", Service: "nope"}, ExecOptions{Cmd: []string{"true"}})
	if !errors.Is(err, ErrNoContainer) {
		t.Errorf("no service: %v", err)
	}
}

// TestSwarmLogsFollowsTasks: while following, a new task is announced and
// read from its start; the stream of a task that is over is closed after
// the grace (Swarm would keep it open); a task listed over at the start is
// read without following.
func TestSwarmLogsFollowsTasks(t *testing.T) {
	defer func(p, g time.Duration) { swarmTaskPoll, taskEndGrace = p, g }(swarmTaskPoll, taskEndGrace)
	swarmTaskPoll, taskEndGrace = 10*time.Millisecond, 100*time.Millisecond
	f := newFakeSwarm()
	f.setTasks(task("dead", 1, "manager", failed, shutdown, 1), task("a", 1, "manager", running, running, 2), task("b", 2, "worker", running, running, 3))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch, err := SwarmLogs(ctx, f, LogTarget{Instance: "i", Project: "p", Service: "s"}, LogOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	f.write(t, "a", "from a")
	f.write(t, "b", "from b")
	f.write(t, "dead", "last words")
	f.mu.Lock()
	w := f.writers["dead"]
	f.mu.Unlock()
	w.Close() // a stream that was not followed ends with its backlog
	got := map[string]LogLine{}
	for len(got) < 3 {
		l := waitFor(t, ch, "the three lines", func(LogLine) bool { return true })
		got[l.Text] = l
	}
	if l := got["from b"]; l.Replica != 1 || l.Container != "panelx-p-s.2.b" {
		t.Errorf("b's line: %+v", l)
	}
	if l := got["last words"]; l.Replica != 0 || l.Container != "panelx-p-s.1.dead" {
		t.Errorf("dead's line: %+v", l)
	}
	f.mu.Lock()
	if !f.opened["a"].Follow || f.opened["dead"].Follow || !f.opened["a"].Timestamps {
		t.Errorf("opened with %+v", f.opened)
	}
	f.mu.Unlock()

	// a is replaced by a2.
	f.setTasks(task("dead", 1, "manager", failed, shutdown, 1), task("a", 1, "manager", failed, shutdown, 2),
		task("b", 2, "worker", running, running, 3), task("a2", 1, "manager", running, running, 4))
	l := waitFor(t, ch, "a2 announced", func(l LogLine) bool { return l.Stream == StreamSystem })
	if l.Text != "following container panelx-p-s.1.a2" || l.Replica != 0 {
		t.Errorf("announcement %+v", l)
	}
	f.write(t, "a2", "from a2")
	waitFor(t, ch, "a2's line", func(l LogLine) bool { return l.Text == "from a2" && l.Container == "panelx-p-s.1.a2" })
	for deadline := time.Now().Add(5 * time.Second); !f.isClosed("a"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a's stream was not closed")
		}
	}
	if f.isClosed("b") || f.isClosed("a2") {
		t.Error("a running task's stream was closed")
	}
	// b disappears from the list (its node left): closed too, silently.
	f.setTasks(task("a2", 1, "manager", running, running, 4))
	for deadline := time.Now().Add(5 * time.Second); !f.isClosed("b"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("b's stream was not closed")
		}
	}
	f.write(t, "a2", "still here")
	l = waitFor(t, ch, "a2's next line", func(l LogLine) bool { return l.Text == "still here" || l.Stream == StreamSystem })
	if l.Stream == StreamSystem {
		t.Errorf("system line after closing streams: %+v", l)
	}
	cancel()
	for range ch {
	}
}

func TestSwarmLogsWithoutService(t *testing.T) {
	f := newFakeSwarm()
	ch, err := SwarmLogs(t.Context(), f, LogTarget{Instance: "i", Project: "p", Service: "nope"}, LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if lines := readAll(t, ch); len(lines) != 0 {
		t.Errorf("lines of no service: %+v", lines)
	}
	if _, err := SwarmLogs(t.Context(), f, LogTarget{Instance: "i", Project: "p", Service: "s"}, LogOptions{Tail: intp(-1)}); err == nil || !strings.Contains(err.Error(), "tail") {
		t.Errorf("negative tail: %v", err)
	}
}
