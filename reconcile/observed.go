package reconcile

import (
	"strconv"
	"time"
)

// Container is what PanelX knows of one container it owns.
type Container struct {
	ID           string
	Name         string
	Project      string
	Service      string
	Replica      int
	SpecHash     string
	Fields       map[string]string // LabelFields, decoded
	Generation   int64
	Epoch        int64 // the leadership term that created it (0: a single server)
	ImageID      string
	State        string // created, running, paused, restarting, removing, exited, dead
	Health       string // "", starting, healthy, unhealthy
	ExitCode     int
	RestartCount int
	StartedAt    time.Time
	FinishedAt   time.Time
	// ObservedAt is when the engine was asked for this state (zero when
	// not known, as in tests).
	ObservedAt time.Time
	OOMKilled  bool
	Error      string   // Docker's message when it could not start the container
	Volumes    []string // names of the Docker volumes it mounts
	Networks   []string // IDs of the networks it is attached to
	// IPs are its IPv4 addresses by network ID (set while it runs).
	IPs map[string]string
	// Retiring: it is being stopped and removed in the background
	// (OpRetireContainer); plans leave it alone.
	Retiring bool
	// Task: an orchestrator's task (ID is the task's, Replica its slot
	// less one), whose container the orchestrator manages, on Node.
	Task bool
	Node string
	// NodeName is the node's hostname, NodeDown that the orchestrator has
	// lost contact with the node: what it last said of the task may be
	// stale, so the replica does not count as ready.
	NodeName string
	NodeDown bool
}

// Running reports whether the container's process runs.
func (c *Container) Running() bool { return c.State == "running" }

// MinReadyTime: a container without a healthcheck counts as ready once it
// has been seen running this long after it started. A process that
// crashes at start, restarted by Docker, runs for an instant now and then;
// that instant must not let it replace the replica that serves, nor mark
// its revision ready. "Seen": the state must come from asking the engine
// that long after the start — a cached "running" that old may be stale
// (the exit's event not handled yet, on a loaded host).
const MinReadyTime = time.Second

// Ready reports whether the container runs and, when it has a healthcheck,
// is healthy — without one, was seen running MinReadyTime after its start.
func (c *Container) Ready() bool { return c.State == "running" && !c.NodeDown && c.readyIn() == 0 }

// readyIn is how long a running container without a healthcheck has left
// before it can count as ready; 0 when it is ready, or when waiting cannot
// make it (not running, unhealthy).
func (c *Container) readyIn() time.Duration {
	if c.State != "running" {
		return 0
	}
	if c.Health != "" {
		if c.Health == "healthy" {
			return 0
		}
		return -1
	}
	if c.StartedAt.IsZero() || c.ObservedAt.IsZero() { // not known (tests): take it as settled
		return 0
	}
	if c.ObservedAt.Sub(c.StartedAt) >= MinReadyTime {
		return 0
	}
	// Wait out the time, then look again (NeedsLook).
	return max(10*time.Millisecond, MinReadyTime-time.Since(c.StartedAt))
}

// NeedsLook reports whether the container has run long enough to be ready
// but was last seen too early to tell: the engine must be asked again.
func (c *Container) NeedsLook() bool {
	return c.State == "running" && c.Health == "" && !c.StartedAt.IsZero() && !c.ObservedAt.IsZero() &&
		c.ObservedAt.Sub(c.StartedAt) < MinReadyTime && time.Since(c.StartedAt) >= MinReadyTime
}

// Network is a Docker network PanelX owns.
type Network struct {
	ID      string
	Name    string // the Docker network's name
	Project string
	Network string // the project's name for it: DefaultNetwork or a service's spec.networks entry
}

// NetworkFromLabels builds a Network from a runtime network's ID, name and
// labels.
func NetworkFromLabels(id, name string, labels map[string]string) Network {
	n := Network{ID: id, Name: name, Project: labels[LabelProject], Network: labels[LabelNetwork]}
	if n.Network == "" {
		n.Network = DefaultNetwork
	}
	return n
}

// Volume is a Docker volume PanelX owns.
type Volume struct {
	Name    string
	Project string
	Volume  string // the Volume resource's name
	Driver  string
	// Node is the host holding it, on a runtime with several.
	Node string
}

// Image is what the local Docker knows of an image reference.
type Image struct {
	Ref string
	// ID is empty when the image is not present locally.
	ID string
	// PulledAt is when PanelX last pulled it successfully (zero: never).
	PulledAt time.Time
	// PullError is the message of the last failed pull, cleared by a success.
	PullError string
}

// Present reports whether the image is available locally.
func (i Image) Present() bool { return i.ID != "" }

// ContainerFromLabels fills the identity fields of a container from its
// labels; ok is false when they are incomplete (not a replica PanelX made).
func ContainerFromLabels(labels map[string]string) (c Container, ok bool) {
	c.Project, c.Service = labels[LabelProject], labels[LabelService]
	idx, err := strconv.Atoi(labels[LabelReplica])
	if err != nil || idx < 0 || c.Project == "" || c.Service == "" {
		return c, false
	}
	c.Replica = idx
	c.SpecHash = labels[LabelSpecHash]
	c.Generation, _ = strconv.ParseInt(labels[LabelGeneration], 10, 64)
	c.Epoch, _ = strconv.ParseInt(labels[LabelEpoch], 10, 64)
	c.Fields = decodeFields(labels[LabelFields])
	return c, true
}
