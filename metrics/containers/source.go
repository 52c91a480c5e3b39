package containers

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/panelx/panelx/naming"
)

// Target is one PanelX-managed container the collector samples.
type Target struct {
	ID     string
	Name   string // without Docker's leading slash
	Labels map[string]string
	// PID is the host PID of the container's init process; 0 when the
	// container does not run (restarting, paused ones keep theirs).
	PID          int
	StartedAt    time.Time
	RestartCount int
	// MemoryLimit is the configured limit in bytes; 0 means unlimited.
	MemoryLimit int64
	// NetworkMode is Docker's HostConfig.NetworkMode ("bridge", a network
	// name, "host", "container:<id>", "none").
	NetworkMode string
}

// Project, Service and Replica read PanelX's identity labels.
func (t Target) Project() string { return t.Labels[naming.LabelProject] }
func (t Target) Service() string { return t.Labels[naming.LabelService] }
func (t Target) Replica() string {
	if r, ok := t.Labels[naming.LabelReplica]; ok {
		return r
	}
	// A Swarm task's container carries its service's template, the same
	// for every replica; its slot (from 1) is in the task's name,
	// "<service>.<slot>.<task ID>".
	if _, rest, ok := strings.Cut(t.Labels[swarmTaskName], "."); ok {
		if slot, _, ok := strings.Cut(rest, "."); ok {
			if n, err := strconv.Atoi(slot); err == nil && n > 0 {
				return strconv.Itoa(n - 1)
			}
		}
	}
	return ""
}

// swarmTaskName is the label Swarm puts on a task's container.
const swarmTaskName = "com.docker.swarm.task.name"

// ownNetwork reports whether the container has a network namespace of its
// own. With "host" its /proc/<pid>/net/dev shows the host's interfaces, and
// with "container:<id>" another container's: exporting either would count
// the same bytes twice.
func (t Target) ownNetwork() bool {
	return t.NetworkMode != "host" && !strings.HasPrefix(t.NetworkMode, "container:")
}

// incarnation identifies one run of a container: a restart gives a new PID,
// a new start time and fresh counters.
type incarnation struct {
	pid     int
	started time.Time
}

func (t Target) incarnation() incarnation { return incarnation{pid: t.PID, started: t.StartedAt} }

// Source lists the containers to watch: the PanelX-managed containers of
// one installation. The collector calls it once per sampling tick, so an
// implementation should answer from memory (DockerSource does, refreshing
// in the background) — never from the scrape path.
type Source interface {
	Containers(ctx context.Context) ([]Target, error)
}
