package reconcile

import (
	"fmt"
	"strings"
	"time"
)

// OpKind is the kind of one operation; each maps to one Docker call.
type OpKind string

const (
	OpCreateNetwork   OpKind = "create-network"
	OpRemoveNetwork   OpKind = "remove-network"
	OpCreateVolume    OpKind = "create-volume"
	OpRemoveVolume    OpKind = "remove-volume"
	OpPullImage       OpKind = "pull-image"
	OpCreateContainer OpKind = "create-container"
	OpStartContainer  OpKind = "start-container"
	OpStopContainer   OpKind = "stop-container"
	OpRemoveContainer OpKind = "remove-container"
	OpRenameContainer OpKind = "rename-container"
	// OpRetireContainer stops a container (SIGTERM, then SIGKILL after
	// the grace period) and removes it, in the background: nothing in a
	// plan waits for it, so a reconcile does not wait out grace periods
	// and a teardown runs many at once (see Teardown).
	OpRetireContainer OpKind = "retire-container"
	// The workload ops, for an Orchestrator: the engine runs the replicas.
	OpCreateWorkload OpKind = "create-service"
	OpUpdateWorkload OpKind = "update-service"
	OpRemoveWorkload OpKind = "remove-service"
)

// Op is one step of a plan: what it does, to which object, and why.
type Op struct {
	Kind OpKind
	// Target names the object it touches: a container, network or volume
	// name, or an image reference.
	Target string
	// Cause says why, for people: "replica 2 missing", "spec changed: env X".
	Cause string
	// After lists the indexes of ops that must succeed first.
	After []int

	// ContainerID, when set, is the existing container the op acts on
	// (Target is then its name, for display).
	ContainerID string
	Container   *ContainerSpec // create-container
	NewName     string         // rename-container
	Project     string         // pull-image: whose registry credentials; retire-container: whose container
	Service     string         // retire-container: whose container
	// Grace is how long a stop waits for the process to exit before it
	// kills it (stop-container, retire-container); 0: the default.
	Grace      time.Duration
	VolumeSpec *VolumeSpec   // create-volume
	Workload   *WorkloadSpec // create-service, update-service
	Labels     map[string]string
	// BestEffort: a failure is reported but does not fail the reconcile
	// (removing a dead container the engine cannot remove yet).
	BestEffort bool
}

// ref is the name or ID the Docker call should use.
func (o *Op) ref() string {
	if o.ContainerID != "" {
		return o.ContainerID
	}
	return o.Target
}

// VolumeSpec is a Docker volume to create.
type VolumeSpec struct {
	Name       string
	Driver     string
	DriverOpts map[string]string
	Labels     map[string]string
}

// Plan is what to do now for one key. Ops form a DAG through After.
type Plan struct {
	Ops []Op
	// Wait, when set, says what the key is waiting for (a replica becoming
	// ready, services being removed); look again after RequeueAfter.
	Wait         string
	RequeueAfter time.Duration
	// Blocked, when set, is why the desired state cannot be reached until
	// something else changes (an undeclared volume, an image that may not
	// be pulled). It becomes a Degraded condition.
	Blocked       string
	BlockedReason string
	// Finalize: everything the object owned is gone; remove its row.
	Finalize bool
}

func (p *Plan) add(op Op) int {
	p.Ops = append(p.Ops, op)
	return len(p.Ops) - 1
}

func (p *Plan) wait(after time.Duration, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if p.Wait == "" {
		p.Wait = msg
	} else if !strings.Contains(p.Wait, msg) {
		p.Wait += "; " + msg
	}
	if p.RequeueAfter == 0 || after < p.RequeueAfter {
		p.RequeueAfter = after
	}
}

// recheck asks to look again after d without waiting for anything the user
// should see.
func (p *Plan) recheck(d time.Duration) {
	if p.RequeueAfter == 0 || d < p.RequeueAfter {
		p.RequeueAfter = d
	}
}

func (p *Plan) block(reason, format string, args ...any) {
	p.Blocked = fmt.Sprintf(format, args...)
	p.BlockedReason = reason
}

// Empty reports whether the plan has nothing to execute.
func (p Plan) Empty() bool { return len(p.Ops) == 0 }

// String prints the plan one op per line, for logs and for tests:
//
//	0 create-network panelx-shop (network missing)
//	1 create-container panelx-shop-web-0 (replica 0 missing) after 0
func (p Plan) String() string {
	var b strings.Builder
	for i, op := range p.Ops {
		fmt.Fprintf(&b, "%d %s %s", i, op.Kind, op.Target)
		if op.NewName != "" {
			fmt.Fprintf(&b, " -> %s", op.NewName)
		}
		fmt.Fprintf(&b, " (%s)", op.Cause)
		if len(op.After) > 0 {
			deps := make([]string, len(op.After))
			for j, a := range op.After {
				deps[j] = fmt.Sprint(a)
			}
			fmt.Fprintf(&b, " after %s", strings.Join(deps, ","))
		}
		b.WriteByte('\n')
	}
	if p.Wait != "" {
		fmt.Fprintf(&b, "wait: %s\n", p.Wait)
	}
	if p.Blocked != "" {
		fmt.Fprintf(&b, "blocked: %s: %s\n", p.BlockedReason, p.Blocked)
	}
	if p.Finalize {
		b.WriteString("finalize\n")
	}
	return b.String()
}
