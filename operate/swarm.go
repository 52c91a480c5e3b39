package operate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/errdefs"

	"github.com/panelx/panelx/naming"
)

// SwarmDocker is Docker plus the Swarm calls of a manager; *client.Client
// implements it.
type SwarmDocker interface {
	Docker
	Info(ctx context.Context) (system.Info, error)
	ServiceInspectWithRaw(ctx context.Context, serviceID string, options swarm.ServiceInspectOptions) (swarm.Service, []byte, error)
	TaskList(ctx context.Context, options swarm.TaskListOptions) ([]swarm.Task, error)
	TaskLogs(ctx context.Context, taskID string, options container.LogsOptions) (io.ReadCloser, error)
	NodeInspectWithRaw(ctx context.Context, nodeID string) (swarm.Node, []byte, error)
}

// ErrOtherNode: the replica's task runs on another node than the manager
// PanelX talks to; the Engine API has no exec into another node's
// containers.
var ErrOtherNode = errors.New("exec reaches only tasks on this manager's node")

// Following a Swarm service's logs.
var (
	// swarmTaskPoll is how often new and ended tasks are looked for: the
	// Engine's events (API 1.41) tell nothing of tasks on other nodes.
	swarmTaskPoll = time.Second
	// taskEndGrace: the follow stream of a task that is over is closed
	// this long after it was first seen over, once its last lines came
	// through (Swarm keeps such a stream open until the client leaves).
	taskEndGrace = 2 * time.Second
)

// serviceTasks returns the Swarm service of a PanelX service of this
// installation and its tasks; found is false when there is none (or the
// name is another's).
func serviceTasks(ctx context.Context, cli SwarmDocker, instance, project, service string) (svc swarm.Service, tasks []swarm.Task, found bool, err error) {
	if instance == "" || project == "" || service == "" {
		return svc, nil, false, errors.New("instance, project and service are required")
	}
	name := naming.WorkloadName(project, service)
	err = withTimeout(ctx, func(ctx context.Context) (err error) {
		svc, _, err = cli.ServiceInspectWithRaw(ctx, name, swarm.ServiceInspectOptions{})
		return err
	})
	if errdefs.IsNotFound(err) {
		return svc, nil, false, nil
	}
	if err != nil {
		return svc, nil, false, fmt.Errorf("inspect service %s: %w", name, err)
	}
	l := svc.Spec.Labels
	if l[naming.LabelManaged] != "true" || l[naming.LabelInstance] != instance ||
		l[naming.LabelProject] != project || l[naming.LabelService] != service {
		return svc, nil, false, nil
	}
	err = withTimeout(ctx, func(ctx context.Context) (err error) {
		tasks, err = cli.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", svc.ID))})
		return err
	})
	if err != nil {
		return svc, nil, false, fmt.Errorf("list tasks of service %s: %w", name, err)
	}
	return svc, tasks, true, nil
}

// taskOver: the task's container does not run again.
func taskOver(s swarm.TaskState) bool {
	switch s {
	case swarm.TaskStateComplete, swarm.TaskStateShutdown, swarm.TaskStateFailed, swarm.TaskStateRejected,
		swarm.TaskStateRemove, swarm.TaskStateOrphaned:
		return true
	}
	return false
}

// taskContainerName is the name Docker gives a replicated task's container.
func taskContainerName(svc swarm.Service, t swarm.Task) string {
	return svc.Spec.Name + "." + strconv.Itoa(t.Slot) + "." + t.ID
}

func taskContainerID(t swarm.Task) string {
	if t.Status.ContainerStatus == nil {
		return ""
	}
	return t.Status.ContainerStatus.ContainerID
}

// taskReplicas are the log sources of a service: every task that has a
// container (those of Swarm's task history too: their logs explain a
// crash), replica index slot-1, optionally one replica, ordered by replica
// then creation.
func taskReplicas(svc swarm.Service, tasks []swarm.Task, replica *int) []replicaContainer {
	var out []replicaContainer
	for _, t := range tasks {
		if t.Slot < 1 || taskContainerID(t) == "" || (replica != nil && t.Slot-1 != *replica) {
			continue
		}
		c := replicaContainer{ID: t.ID, Name: taskContainerName(svc, t), Replica: t.Slot - 1,
			Running: t.Status.State == swarm.TaskStateRunning, Created: t.CreatedAt, Ended: taskOver(t.Status.State)}
		if cs := t.Spec.ContainerSpec; cs != nil {
			c.TTY = cs.TTY
		}
		out = append(out, c)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Replica != out[j].Replica {
			return out[i].Replica < out[j].Replica
		}
		return out[i].Created.Before(out[j].Created)
	})
	return out
}

// swarmReplicas lists a service's log sources.
func swarmReplicas(ctx context.Context, cli SwarmDocker, target LogTarget) ([]replicaContainer, error) {
	svc, tasks, found, err := serviceTasks(ctx, cli, target.Instance, target.Project, target.Service)
	if err != nil || !found {
		return nil, err
	}
	return taskReplicas(svc, tasks, target.Replica), nil
}

// SwarmLogs is Logs for the Swarm runtime: the sources are the tasks of
// the service's Swarm service, on any node, read through the manager's
// task logs API (/tasks/{id}/logs, Swarm's log broker, the per-task form
// of /services/{id}/logs), merged as Logs merges containers. A replica is
// a task slot (index slot-1). While following, the tasks are polled: a new
// task (a replacement, a scale-up) is announced by a StreamSystem line and
// followed from its first line; the stream of a task that is over ends
// shortly after it (Swarm itself would keep it open).
func SwarmLogs(ctx context.Context, cli SwarmDocker, target LogTarget, opts LogOptions) (<-chan LogLine, error) {
	if err := checkLogArgs(target, opts); err != nil {
		return nil, err
	}
	opts = normalize(opts)
	list, err := swarmReplicas(ctx, cli, target)
	if err != nil {
		return nil, fmt.Errorf("logs: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	m := newMerger(target, opts, func(ctx context.Context, c replicaContainer, o container.LogsOptions) (io.ReadCloser, bool, error) {
		rc, err := cli.TaskLogs(ctx, c.ID, o)
		return rc, c.TTY, err
	})
	if opts.Follow {
		tasks, errs := make(chan []replicaContainer), make(chan error)
		m.tasks, m.taskErrs = tasks, errs
		go pollTasks(ctx, cli, target, tasks, errs)
	}
	go m.run(ctx, cancel, list)
	return m.out, nil
}

// pollTasks sends the service's log sources every swarmTaskPoll until ctx
// ends.
func pollTasks(ctx context.Context, cli SwarmDocker, target LogTarget, out chan<- []replicaContainer, errs chan<- error) {
	tick := time.NewTicker(swarmTaskPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		list, err := swarmReplicas(ctx, cli, target)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			select {
			case errs <- err:
			case <-ctx.Done():
				return
			}
			continue
		}
		select {
		case out <- list:
		case <-ctx.Done():
			return
		}
	}
}

// handleTasks takes a poll of the service's tasks: a task not seen before
// is opened (announced, as a new container is), and the follow stream of a
// task that is over, or gone from the list, is closed once it has been
// for taskEndGrace.
func (m *logMerger) handleTasks(ctx context.Context, list []replicaContainer) bool {
	m.taskFail = false
	now := time.Now()
	listed := make(map[string]replicaContainer, len(list))
	for _, c := range list {
		listed[c.ID] = c
		if _, known := m.resume[c.ID]; known {
			continue
		}
		if !m.system(ctx, c.Name, c.Replica, "following container "+c.Name) {
			return false
		}
		m.open(ctx, c, m.opts.Since, "all", false)
	}
	for _, s := range m.srcs {
		if s.ended || s.closing || s.c.Ended {
			continue // its stream ends (or ended) by itself
		}
		if c, ok := listed[s.c.ID]; ok && !c.Ended {
			continue
		}
		if s.over.IsZero() {
			s.over = now
		}
		if now.Sub(s.over) >= taskEndGrace {
			s.closing = true
			s.cancel()
		}
	}
	return true
}

// SwarmExec is Exec for the Swarm runtime: the replica is a task slot
// (index slot-1), whose running task must run on this engine's node (a
// manager's): the Engine API reaches only its own node's containers. A
// task elsewhere is ErrOtherNode, naming the node.
func SwarmExec(ctx context.Context, cli SwarmDocker, target ExecTarget, opts ExecOptions) (*Session, error) {
	if err := checkExec(opts); err != nil {
		return nil, err
	}
	if target.Replica < 0 {
		return nil, errors.New("exec: replica must not be negative")
	}
	svc, tasks, found, err := serviceTasks(ctx, cli, target.Instance, target.Project, target.Service)
	if err != nil {
		return nil, fmt.Errorf("exec: %w", err)
	}
	if !found {
		return nil, fmt.Errorf("exec: %s/%s replica %d: no Swarm service: %w", target.Project, target.Service, target.Replica, ErrNoContainer)
	}
	t, err := pickTask(tasks, target.Replica+1)
	if err != nil {
		return nil, fmt.Errorf("exec: %s/%s replica %d: %w", target.Project, target.Service, target.Replica, err)
	}
	var info system.Info
	err = withTimeout(ctx, func(ctx context.Context) (err error) {
		info, err = cli.Info(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("exec: find this engine's node: %w", err)
	}
	if t.NodeID != info.Swarm.NodeID {
		return nil, otherNodeError(target, t.NodeID, nodeHostname(ctx, cli, t.NodeID))
	}
	c := replicaContainer{ID: taskContainerID(t), Name: taskContainerName(svc, t), Replica: target.Replica, Running: true}
	return execIn(ctx, cli, c, opts)
}

// pickTask is the running task of a slot: during a start-first update two
// may run, and the one Swarm keeps (desired running) wins, else the newest.
func pickTask(tasks []swarm.Task, slot int) (swarm.Task, error) {
	var pick *swarm.Task
	inSlot := false
	for i := range tasks {
		t := &tasks[i]
		if t.Slot != slot {
			continue
		}
		inSlot = true
		if t.Status.State != swarm.TaskStateRunning || taskContainerID(*t) == "" {
			continue
		}
		if pick == nil || keeps(*t, *pick) {
			pick = t
		}
	}
	switch {
	case pick != nil:
		return *pick, nil
	case inSlot:
		return swarm.Task{}, ErrNotRunning
	}
	return swarm.Task{}, ErrNoContainer
}

// keeps: a is a better pick than b.
func keeps(a, b swarm.Task) bool {
	ar, br := a.DesiredState == swarm.TaskStateRunning, b.DesiredState == swarm.TaskStateRunning
	if ar != br {
		return ar
	}
	return a.CreatedAt.After(b.CreatedAt)
}

// otherNodeError says where the replica runs.
func otherNodeError(t ExecTarget, nodeID, hostname string) error {
	where := nodeID
	if hostname != "" {
		where = hostname + " (" + nodeID + ")"
	}
	return fmt.Errorf("exec: %s/%s replica %d runs on node %s; %w", t.Project, t.Service, t.Replica, where, ErrOtherNode)
}

// nodeHostname is a node's hostname for a message ("" if unknown).
func nodeHostname(ctx context.Context, cli SwarmDocker, id string) string {
	var n swarm.Node
	err := withTimeout(ctx, func(ctx context.Context) (err error) {
		n, _, err = cli.NodeInspectWithRaw(ctx, id)
		return err
	})
	if err != nil {
		return ""
	}
	return n.Description.Hostname
}
