package reconcile

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/panelx/panelx/api"
)

// The two shapes of runtime. A container runtime (reconcile/docker, the
// in-memory one) creates, starts, stops and renames each replica as the
// planner says: PanelX is the orchestrator. An Orchestrator (reconcile/swarm)
// takes a whole service — a workload: template, replica count, update
// policy — and runs its replicas itself (placement, restarts, rolling
// updates); the planner only creates, updates and removes the workload, and
// reads the replicas back from the orchestrator's tasks as Containers with
// Task set. Networks, volumes, images and the events stream are the same
// Runtime calls for both.

// Orchestrator is what a runtime whose engine runs the replicas itself
// offers besides Runtime (whose container calls it refuses).
type Orchestrator interface {
	ListWorkloads(ctx context.Context) ([]Workload, error)
	// InspectWorkload returns ErrNotFound when it is gone or not this
	// installation's.
	InspectWorkload(ctx context.Context, name string) (Workload, error)
	CreateWorkload(ctx context.Context, spec WorkloadSpec) (Workload, error)
	// UpdateWorkload replaces the workload's spec: a rollout the engine
	// runs by spec.StartFirst, rolling back on failure.
	UpdateWorkload(ctx context.Context, spec WorkloadSpec) (Workload, error)
	RemoveWorkload(ctx context.Context, name string) error
}

// ErrOrchestrated: a container call on a runtime whose engine runs the
// replicas itself.
var ErrOrchestrated = errors.New("this runtime's engine runs the replicas itself: PanelX does not create, start or stop its containers")

// AsOrchestrator returns the runtime's Orchestrator, looking through the
// fence.
func AsOrchestrator(rt Runtime) (Orchestrator, bool) {
	if f, ok := rt.(FencedRuntime); ok {
		o, ok := f.Runtime.(Orchestrator)
		if !ok {
			return nil, false
		}
		return fencedOrchestrator{f: f, o: o}, true
	}
	o, ok := rt.(Orchestrator)
	return o, ok
}

// Workload is a service as the orchestrator holds it.
type Workload struct {
	ID      string
	Name    string
	Project string
	Service string
	// Version is the orchestrator's (an update names the version it saw).
	Version    uint64
	SpecHash   string
	Generation int64
	Replicas   int
	// PreviousSpecHash is the spec the orchestrator held before the
	// current one (none after a rollback: Swarm forgets the spec that
	// failed, so Attempted remembers it).
	PreviousSpecHash string
	// Attempted is the spec hash this process last sent (the cache's
	// memory, not the orchestrator's).
	Attempted string
	// Update is the state of the last rollout: "", updating, paused,
	// completed, rollback_started, rollback_paused, rollback_completed.
	Update        string
	UpdateMessage string
	// Fields are the short hashes per part of the spec (LabelFields).
	Fields map[string]string
	// Nodes the workload is pinned to (node-local volumes).
	Constraints []string
	// Node is the node (hostname) it is pinned to by its volumes, from
	// Constraints ("" = none, or pinned another way).
	Node string
	// Lost are the replicas the orchestrator last saw running on a node
	// it has lost contact with (down, or gone from the cluster).
	Lost []LostReplica
}

// LostReplica is a task left on a lost node.
type LostReplica struct {
	Replica   int    // the slot less one
	Node      string // the node's ID
	NodeName  string // its hostname, when the cluster still knows it
	NodeState string // down, unknown, disconnected, or "removed"
}

// RolledBack reports whether the orchestrator gave up the last rollout.
func (w *Workload) RolledBack() bool {
	switch w.Update {
	case "rollback_started", "rollback_paused", "rollback_completed", "paused":
		return true
	}
	return false
}

// WorkloadSpec is a service as the orchestrator should run it.
type WorkloadSpec struct {
	Name   string
	Labels map[string]string
	// Template is every replica's container: its labels carry the same
	// owner labels and spec hash as the workload's, and no replica index
	// (the orchestrator's slot is the index).
	Template ContainerSpec
	Replicas int
	// StartFirst: a replacement starts before the replica it replaces
	// stops (not with host ports, as on one engine).
	StartFirst bool
	StopGrace  time.Duration
	// Project names whose registry credentials the executor passes.
	Project string
	// Auth, set by the executor, goes to the orchestrator so that every
	// node can pull (--with-registry-auth).
	Auth *RegistryAuth
	// Node is the node (hostname) the replicas must run on: the one that
	// holds their volumes' data ("" = anywhere). Not in the spec hash: a
	// move changes it while the service is scaled to 0.
	Node string
}

// Hash is the spec hash (of the template; the replica count is not in it).
func (w *WorkloadSpec) Hash() string { return w.Labels[LabelSpecHash] }

// LabelImageID is on an orchestrator's replica template: the image ID the
// spec hash was made with (its tasks name a digest, which every node
// resolves itself).
const LabelImageID = "dev.panelx.image-id"

// WorkloadFromLabels fills a workload's identity from its labels.
func WorkloadFromLabels(id, name string, labels map[string]string) Workload {
	w := Workload{ID: id, Name: name, Project: labels[LabelProject], Service: labels[LabelService],
		SpecHash: labels[LabelSpecHash], Fields: decodeFields(labels[LabelFields])}
	w.Generation, _ = strconv.ParseInt(labels[LabelGeneration], 10, 64)
	return w
}

// BuildWorkloadSpec is BuildContainerSpec for an orchestrator: one template
// for every replica (a service's replicas share its name as their only
// alias), with its own hash.
func BuildWorkloadSpec(instance string, svc *api.Service, imageID string, secrets Secrets) WorkloadSpec {
	cs := BuildContainerSpec(instance, svc, 0, imageID, secrets)
	if cs.NetworkMode == "" {
		cs.Aliases = append([]string{svc.Metadata.Name}, svc.Spec.Aliases...)
	}
	hash, fields := hashSpec(&cs)
	cs.Name = ""
	delete(cs.Labels, LabelReplica)
	cs.Labels[LabelImageID] = imageID
	cs.Labels[LabelSpecHash] = hash
	cs.Labels[LabelFields] = encodeFields(fields)
	labels := ownerLabels(instance)
	maps.Copy(labels, map[string]string{
		LabelProject:    svc.Metadata.Project,
		LabelService:    svc.Metadata.Name,
		LabelSpecHash:   hash,
		LabelGeneration: strconv.FormatInt(svc.Metadata.Generation, 10),
		LabelFields:     encodeFields(fields),
		LabelImage:      svc.RunImage(),
	})
	return WorkloadSpec{
		Name:       WorkloadName(svc.Metadata.Project, svc.Metadata.Name),
		Labels:     labels,
		Template:   cs,
		Replicas:   int(svc.Spec.ReplicaCount()),
		StartFirst: !stopFirst(svc),
		StopGrace:  svc.Spec.StopGrace(),
		Project:    svc.Metadata.Project,
	}
}

// replicaHash is the spec hash a current replica of index i carries: a
// container's own, or for an orchestrator's task the workload's.
func replicaHash(instance string, svc *api.Service, i int, imageID string, secrets Secrets, task bool) string {
	if task {
		ws := BuildWorkloadSpec(instance, svc, imageID, secrets)
		return ws.Hash()
	}
	spec := BuildContainerSpec(instance, svc, i, imageID, secrets)
	return spec.Hash()
}

// orchestrated reports whether replicas are an orchestrator's tasks.
func orchestrated(cs []Container) bool { return len(cs) > 0 && cs[0].Task }

// ReasonRolledBack: the orchestrator gave up a rollout and went back.
const ReasonRolledBack = "RolledBack"

// ReasonUnsupported: the spec uses what the runtime cannot do.
const ReasonUnsupported = "UnsupportedByRuntime"

// MaxOrchestratedFileSize: a secret file on an orchestrator is a Swarm
// secret, whose data must be smaller than 500 KiB (swarmkit's limit).
const MaxOrchestratedFileSize = 500*1024 - 1

// orchestratorUnsupported names what of a spec an orchestrator's template
// cannot carry yet.
func orchestratorUnsupported(sp *api.ServiceSpec, cs *ContainerSpec) string {
	for _, f := range cs.Files {
		// Swarm secrets cannot be empty or large (the file's size, never
		// its content, in the message).
		switch {
		case len(f.Content) == 0:
			return fmt.Sprintf("secret file %s is empty: this runtime's secrets cannot be", f.Path)
		case len(f.Content) > MaxOrchestratedFileSize:
			return fmt.Sprintf("secret file %s is %d bytes: this runtime's secrets hold at most %d", f.Path, len(f.Content), MaxOrchestratedFileSize)
		}
	}
	switch {
	case sp.NetworkMode != "":
		return "networkMode is not supported on this runtime"
	case cs.Privileged || len(cs.Devices) > 0 || cs.PIDMode != "" || cs.IPCMode != "" || cs.UTSMode != "":
		return "privileged mode, devices and host namespaces are not supported on this runtime"
	}
	for _, m := range cs.Mounts {
		if m.Type == "bind" {
			return fmt.Sprintf("host path %s: host paths are node-local and not supported on this runtime", m.Source)
		}
	}
	for _, p := range cs.Ports {
		if p.HostIP != "" && p.HostIP != "0.0.0.0" && p.HostIP != "::" {
			// Never widened silently to every address.
			return fmt.Sprintf("port %d: hostIP %s is not supported on this runtime, which publishes on every address of a node", p.ContainerPort, p.HostIP)
		}
	}
	return ""
}

// planWorkload creates or updates the service's workload and waits for its
// replicas: the orchestrator does the rest.
func planWorkload(p *Plan, in ServiceInput, imageID, node string, prereqs []int) {
	spec := BuildWorkloadSpec(in.Instance, in.Service, imageID, in.Secrets)
	spec.Node = node
	if msg := orchestratorUnsupported(&in.Service.Spec, &spec.Template); msg != "" {
		p.block(ReasonUnsupported, "%s", msg)
		return
	}
	w := in.Workload
	op := Op{Target: spec.Name, Workload: &spec, Project: in.Key.Project, Service: in.Key.Name, After: prereqs}
	switch {
	case w == nil:
		op.Kind, op.Cause = OpCreateWorkload, "service missing"
		p.add(op)
		p.wait(readyRecheck, "%d replica(s) starting", spec.Replicas)
		return
	case w.SpecHash != spec.Hash() && w.RolledBack() && w.Attempted == spec.Hash():
		// Trying again would fail again: a new spec is the way out (a
		// restarted controller, which forgot, tries once more).
		if w.Update == "rollback_started" {
			p.wait(readyRecheck, "the rollout failed: rolling back")
		}
		p.block(ReasonRolledBack, "the rollout failed and was rolled back: %s", w.UpdateMessage)
		return
	case w.SpecHash != spec.Hash():
		op.Kind, op.Cause = OpUpdateWorkload, "spec changed"
		if len(w.Fields) > 0 {
			op.Cause = "spec changed: " + describeChange(w.Fields, decodeFields(spec.Labels[LabelFields]))
		}
		p.add(op)
		p.wait(readyRecheck, "rolling out")
		return
	case w.Replicas != spec.Replicas:
		op.Kind, op.Cause = OpUpdateWorkload, fmt.Sprintf("scale %d → %d", w.Replicas, spec.Replicas)
		p.add(op)
		p.wait(readyRecheck, "scaling to %d", spec.Replicas)
		return
	case w.Node != spec.Node:
		op.Kind, op.Cause = OpUpdateWorkload, fmt.Sprintf("its volumes are on node %s (was %s)", spec.Node, cmp.Or(w.Node, "unpinned"))
		p.add(op)
		p.wait(readyRecheck, "moving to node %s", spec.Node)
		return
	case w.Update == "updating" || w.Update == "rollback_started":
		p.wait(readyRecheck, "rollout in progress")
		return
	}
	ready, current := 0, 0
	for _, c := range in.Containers {
		if c.SpecHash == spec.Hash() && c.Running() {
			current++
			if c.Ready() {
				ready++
			}
		}
	}
	if ready < spec.Replicas || len(in.Containers) > spec.Replicas {
		p.wait(readyRecheck, "%d/%d replicas ready (%d running the current spec, %d in all)", ready, spec.Replicas, current, len(in.Containers))
	}
}

// planWorkloadRemoval removes the workload; its tasks go with it.
func planWorkloadRemoval(p *Plan, in ServiceInput, cause string) {
	if w := in.Workload; w != nil {
		p.add(Op{Kind: OpRemoveWorkload, Target: w.Name, Cause: cause, Project: in.Key.Project, Service: in.Key.Name})
		p.wait(readyRecheck, "service %s being removed", w.Name)
		return
	}
	if len(in.Containers) > 0 {
		p.wait(readyRecheck, "%d task(s) of the service stopping", len(in.Containers))
		return
	}
	if in.Service != nil {
		p.Finalize = true
	}
}

// fencedOrchestrator fences the workload calls as FencedRuntime fences the
// others.
type fencedOrchestrator struct {
	f FencedRuntime
	o Orchestrator
}

func (f fencedOrchestrator) ListWorkloads(ctx context.Context) ([]Workload, error) {
	return f.o.ListWorkloads(ctx)
}

func (f fencedOrchestrator) InspectWorkload(ctx context.Context, name string) (Workload, error) {
	return f.o.InspectWorkload(ctx, name)
}

func (f fencedOrchestrator) CreateWorkload(ctx context.Context, spec WorkloadSpec) (Workload, error) {
	ctx, cancel, err := f.f.guard(ctx)
	defer cancel()
	if err != nil {
		return Workload{}, err
	}
	spec.Labels = maps.Clone(spec.Labels)
	spec.Labels[LabelEpoch] = strconv.FormatInt(f.f.Fence.Epoch(), 10)
	return f.o.CreateWorkload(ctx, spec)
}

func (f fencedOrchestrator) UpdateWorkload(ctx context.Context, spec WorkloadSpec) (Workload, error) {
	ctx, cancel, err := f.f.guard(ctx)
	defer cancel()
	if err != nil {
		return Workload{}, err
	}
	spec.Labels = maps.Clone(spec.Labels)
	spec.Labels[LabelEpoch] = strconv.FormatInt(f.f.Fence.Epoch(), 10)
	return f.o.UpdateWorkload(ctx, spec)
}

func (f fencedOrchestrator) RemoveWorkload(ctx context.Context, name string) error {
	ctx, cancel, err := f.f.guard(ctx)
	defer cancel()
	if err != nil {
		return err
	}
	return f.o.RemoveWorkload(ctx, name)
}
