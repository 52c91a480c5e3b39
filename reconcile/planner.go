package reconcile

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/panelx/panelx/api"
)

// The planner is pure: it reads desired resources and observed Docker
// objects and returns what to do now. It never waits and never calls out;
// waiting is a requeue, so no worker is ever held by a slow container.

// Reasons of Blocked plans, used as condition reasons.
const (
	ReasonImageNotPresent   = "ImageNotPresent"
	ReasonPullFailed        = "PullFailed"
	ReasonVolumeNotDeclared = "VolumeNotDeclared"
	ReasonDependency        = "WaitingForDependency"
	ReasonVolumeInUse       = "VolumeInUse"
	ReasonVolumeNotFound    = "DockerVolumeNotFound"
	ReasonVolumesApart      = "VolumesOnDifferentNodes"
	ReasonBuildPending      = "BuildPending"
)

// Pull backoff after failures: 5s, 10s, 20s … up to 5 minutes.
const (
	pullBackoffBase = 5 * time.Second
	pullBackoffMax  = 5 * time.Minute
	readyRecheck    = 2 * time.Second
)

// PullBackoff returns how long to wait after the nth consecutive failure.
func PullBackoff(failures int) time.Duration {
	if failures <= 0 {
		return 0
	}
	d := pullBackoffBase
	for i := 1; i < failures && d < pullBackoffMax; i++ {
		d *= 2
	}
	return min(d, pullBackoffMax)
}

// ImageState is what the reconciler remembers of pulls of one reference.
type ImageState struct {
	Image
	AttemptedAt time.Time // last pull attempt, successful or not
	Failures    int       // consecutive failed pulls
}

// ServiceInput is everything the planner needs for one service.
type ServiceInput struct {
	Instance string
	Key      api.Key
	// Project and Service are nil when their rows are gone; then whatever
	// is left of the service is an orphan and is removed.
	Project *api.Project
	Service *api.Service
	// Volumes are the project's Volume resources, by name.
	Volumes map[string]*api.Volume
	// Ready says, per service of the project, whether it has ready replicas
	// (for dependsOn).
	Ready map[string]bool

	Image ImageState
	// Networks are the project's Docker networks, by Docker name; Network
	// is the service's first one (see FirstNetwork), nil while missing.
	Networks      map[string]Network
	Network       *Network
	DockerVolumes map[string]Volume // the project's Docker volumes, by Docker name
	// DockerVolumesFound says which of the service's dockerVolume mounts
	// exist (volumes PanelX does not own, so not in DockerVolumes).
	DockerVolumesFound map[string]bool
	Containers         []Container // this service's containers
	// Orchestrated: the runtime is an Orchestrator; Workload is the
	// service as it holds it (nil: none), and Containers are its tasks.
	Orchestrated bool
	Workload     *Workload
	// Node is the host whose engine creates volumes, on a runtime with
	// several ("" on one engine): see volumeElsewhere.
	Node string

	Now          time.Time
	PullInterval time.Duration // how often pullPolicy Always re-checks the registry

	// Drain says when a routed replica may be stopped (see endpoints.go).
	Drain DrainInput
	// StartFailures counts, per container ID, the starts that failed in a
	// row, with the last error.
	StartFailures map[string]Failure
	// RemoveFailures counts, per container ID, the failed removals of dead
	// containers (see planDead).
	RemoveFailures map[string]Failure
	// Secrets are the values of the secrets the service uses.
	Secrets Secrets
}

// Failure is what the reconciler remembers of one kind of operation that
// failed in a row on one container.
type Failure struct {
	Count int
	Err   string
	At    time.Time // the last failure
}

// DeadRemoveBackoff is how long to wait before removing a dead container
// again after the nth failure: 30s, 1m, 2m … up to 30 minutes. The engine
// usually fails because something still holds the container's filesystem;
// that is a matter of minutes, and every attempt costs the engine work.
func DeadRemoveBackoff(failures int) time.Duration {
	d := 30 * time.Second
	for i := 1; i < failures && d < 30*time.Minute; i++ {
		d *= 2
	}
	return min(d, 30*time.Minute)
}

// MaxStartFailures: a container whose start failed this many times in a
// row is removed and created again. Some failures no start can fix: after
// an engine restart, containerd may keep a stale task ("task … already
// exists") for the container forever.
const MaxStartFailures = 2

// PlanService plans one service.
func PlanService(in ServiceInput) Plan {
	var p Plan
	if cause := removalCause(in); cause != "" {
		if in.Orchestrated {
			planWorkloadRemoval(&p, in, cause)
			return p
		}
		planRemoveAll(&p, in, in.Containers, cause)
		if len(in.Containers) == 0 && in.Service != nil {
			p.Finalize = true
		}
		return p
	}
	sp := &in.Service.Spec

	prereqs, node := planPrerequisites(&p, in)
	if p.Blocked != "" {
		return p
	}
	if reason, msg := SecretProblem(in.Service, in.Secrets); reason != "" {
		p.block(reason, "%s", msg)
		return p
	}
	imageID, ready := planImage(&p, in, prereqs)
	if !ready {
		return p
	}
	if in.Orchestrated {
		planWorkload(&p, in, imageID, node, prereqs)
		return p
	}

	live, dead := splitDead(in.Containers)
	prereqs = append(prereqs, planDead(&p, in, dead)...)

	desired := int(sp.ReplicaCount())
	byIndex := map[int][]Container{}
	for _, c := range live {
		byIndex[c.Replica] = append(byIndex[c.Replica], c)
	}
	depsWait := dependenciesNotReady(in)
	publishesHostPort := stopFirst(in.Service)
	for i := 0; i < desired; i++ {
		spec := BuildContainerSpec(in.Instance, in.Service, i, imageID, in.Secrets)
		planReplica(&p, replicaInput{
			in:       &in,
			failed:   in.StartFailures,
			networks: in.Networks,
			index:    i, spec: spec, containers: byIndex[i], prereqs: prereqs,
			stopFirst: publishesHostPort, depsWait: depsWait, policy: sp.RestartPolicy,
		})
	}
	// Scale down from the highest index.
	var extra []int
	for idx := range byIndex {
		if idx >= desired {
			extra = append(extra, idx)
		}
	}
	slices.Sort(extra)
	for _, idx := range slices.Backward(extra) {
		planRemoveAll(&p, in, byIndex[idx], fmt.Sprintf("scale down: replica %d is above the desired %d", idx, desired))
	}
	return p
}

// splitDead separates the containers the engine left dead — a removal that
// failed half way, typically "device or resource busy" on the root
// filesystem — from the rest. A dead container runs nothing and serves
// nothing; it is not part of any replica, so it holds back no rollout.
func splitDead(cs []Container) (live, dead []Container) {
	for _, c := range cs {
		if c.State == "dead" {
			dead = append(dead, c)
		} else {
			live = append(live, c)
		}
	}
	return live, dead
}

// planDead moves dead containers out of the names the replicas need (a
// rename works on a dead container) and removes them, best effort and with
// a backoff: one the engine cannot remove yet is reported, not fatal. It
// returns the renames, which the replicas' creations wait for.
func planDead(p *Plan, in ServiceInput, dead []Container) []int {
	var renames []int
	for _, c := range sortContainers(dead) {
		var after []int
		target := c.Name
		if name := deadContainerName(in.Key.Project, in.Key.Name, c.Replica, c.ID); c.Name != name {
			i := p.add(Op{Kind: OpRenameContainer, Target: c.Name, ContainerID: c.ID, NewName: name,
				Cause: "the engine left it dead: free its name"})
			renames = append(renames, i)
			after, target = []int{i}, name
		}
		f := in.RemoveFailures[c.ID]
		if wait := DeadRemoveBackoff(f.Count) - in.Now.Sub(f.At); f.Count > 0 && wait > 0 {
			p.recheck(wait)
			continue
		}
		p.add(Op{Kind: OpRemoveContainer, Target: target, ContainerID: c.ID, BestEffort: true, After: after,
			Cause: "the engine left it dead"})
	}
	return renames
}

func removalCause(in ServiceInput) string {
	switch {
	case in.Service == nil:
		return "orphan: service no longer exists"
	case in.Project == nil:
		return "orphan: project no longer exists"
	case in.Service.Metadata.DeletionTimestamp != nil:
		return "service deleted"
	case in.Project.Metadata.DeletionTimestamp != nil:
		return "project deleted"
	}
	return ""
}

// planRemoveAll stops and removes containers; stopping first lets the
// process shut down gracefully. A container the edge may still send
// requests to waits until it is drained.
func planRemoveAll(p *Plan, in ServiceInput, cs []Container, cause string) {
	for _, c := range sortContainers(cs) {
		if c.Retiring {
			p.wait(readyRecheck, "%s is being stopped and removed", c.Name)
			continue
		}
		if !in.drained(p, c, cause) {
			continue
		}
		p.add(Op{Kind: OpRetireContainer, Target: c.Name, ContainerID: c.ID, Cause: cause,
			Project: in.Key.Project, Service: in.Key.Name, Grace: in.stopGrace()})
	}
}

// stopGrace is the service's stop grace period (the default for an
// orphan, whose service is gone).
func (in *ServiceInput) stopGrace() time.Duration {
	if in.Service == nil {
		return api.DefaultStopGracePeriod
	}
	return in.Service.Spec.StopGrace()
}

func sortContainers(cs []Container) []Container {
	out := slices.Clone(cs)
	slices.SortFunc(out, func(a, b Container) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// planPrerequisites adds the network and volumes the containers need and
// returns the indexes of those ops, and the node the replicas must run on
// on a runtime of several ("" = anywhere): the one holding their volumes.
func planPrerequisites(p *Plan, in ServiceInput) (prereqs []int, node string) {
	sp := &in.Service.Spec
	project := in.Key.Project
	for _, n := range ServiceNetworks(sp) {
		name := ProjectNetworkName(project, n)
		if _, ok := in.Networks[name]; !ok {
			prereqs = append(prereqs, p.add(Op{Kind: OpCreateNetwork, Target: name,
				Cause: "network missing", Labels: networkLabels(in.Instance, project, n)}))
		}
	}
	nodeOf := "" // the volume that decided node
	for i, m := range sp.Volumes {
		if m.DockerVolume != "" && !in.DockerVolumesFound[m.DockerVolume] {
			// Docker would create a missing one, empty: never for data
			// that is someone else's.
			p.block(ReasonVolumeNotFound, "spec.volumes[%d]: Docker volume %q does not exist (PanelX does not create a dockerVolume)", i, m.DockerVolume)
			p.RequeueAfter = readyRecheck
			return nil, ""
		}
		if m.Name == "" {
			continue
		}
		vol, ok := in.Volumes[m.Name]
		if !ok || vol.Metadata.DeletionTimestamp != nil {
			p.block(ReasonVolumeNotDeclared, "spec.volumes[%d]: volume %q is not declared in project %q (or is being deleted)", i, m.Name, project)
			return nil, ""
		}
		at := in.Node
		name := VolumeName(project, m.Name)
		switch _, found := in.DockerVolumes[name]; {
		case VolumeElsewhere(vol, in.Node):
			// Its data is on another node: the orchestrator mounts it
			// there; a copy the engine here lists is a stale one (left
			// by a move), never used.
			at = vol.Status.Node
		case !found:
			prereqs = append(prereqs, p.add(Op{Kind: OpCreateVolume, Target: name, Cause: "volume missing",
				VolumeSpec: BuildVolumeSpec(in.Instance, vol)}))
		}
		if nodeOf != "" && at != node {
			p.block(ReasonVolumesApart, "spec.volumes[%d]: volume %q is on node %s and volume %q on node %s: a service's replicas run on one node "+
				"(move one of them: panelx volume move)", i, m.Name, at, nodeOf, node)
			return nil, ""
		}
		nodeOf, node = m.Name, at
	}
	return prereqs, node
}

// planImage decides whether the image must be pulled first. It returns the
// image ID to run and whether containers can be planned now.
func planImage(p *Plan, in ServiceInput, prereqs []int) (string, bool) {
	sp := &in.Service.Spec
	img := in.Image
	ref := in.Service.RunImage()
	pull := func(cause string) {
		p.add(Op{Kind: OpPullImage, Target: ref, Project: in.Key.Project, Cause: cause})
	}
	if sp.Build != nil && ref == "" {
		if b := in.Service.Status.Build; b != nil && b.Phase == api.BuildFailed {
			p.block(ReasonBuildPending, "the build failed: %s (see status.build; panelx logs --build)", b.Message)
		} else {
			// The builder wakes the service when the build ends.
			p.wait(0, "waiting for the first build (see status.build)")
		}
		return "", false
	}
	if !img.Present() {
		switch {
		case sp.Build != nil:
			p.block(ReasonImageNotPresent, "built image %s is not present any more: build again (panelx build)", ref)
		case sp.ImagePullPolicy == api.PullNever:
			p.block(ReasonImageNotPresent, "image %s is not present and imagePullPolicy is Never", ref)
		case img.Failures > 0 && in.Now.Sub(img.AttemptedAt) < PullBackoff(img.Failures):
			p.block(ReasonPullFailed, "pull %s: %s", ref, img.PullError)
			p.RequeueAfter = PullBackoff(img.Failures) - in.Now.Sub(img.AttemptedAt)
		default:
			pull("image not present")
		}
		return "", false
	}
	if sp.ImagePullPolicy == api.PullAlways {
		since := in.Now.Sub(img.AttemptedAt)
		if since >= in.PullInterval {
			// Look for a moved tag first; containers are planned with what it finds.
			pull("pullPolicy Always: check the registry for a newer image")
			return "", false
		}
		p.RequeueAfter = in.PullInterval - since // the next check
	}
	return img.ID, true
}

func dependenciesNotReady(in ServiceInput) []string {
	var waiting []string
	for _, d := range in.Service.Spec.DependsOn {
		if !in.Ready[d] {
			waiting = append(waiting, d)
		}
	}
	return waiting
}

type replicaInput struct {
	in         *ServiceInput
	failed     map[string]Failure
	networks   map[string]Network // the project's, by Docker name
	index      int
	spec       ContainerSpec
	containers []Container
	prereqs    []int
	stopFirst  bool
	depsWait   []string
	policy     api.RestartPolicy
}

// attached reports whether a container is on the project networks it
// should be on. One that lost one (the network was removed and re-created
// behind PanelX's back) no longer counts as current and is replaced.
func (r replicaInput) attached(c Container) bool {
	if r.spec.Network == "" {
		return true
	}
	for _, name := range append([]string{r.spec.Network}, r.spec.MoreNetworks...) {
		if n, ok := r.networks[name]; ok && !slices.Contains(c.Networks, n.ID) {
			return false
		}
	}
	return true
}

// planReplica converges one replica index. A replacement is created under a
// temporary name; once it is ready the old container goes and the new one
// takes the final name. Every intermediate state is recognisable from the
// labels, so a controller killed halfway picks up where it stopped.
func planReplica(p *Plan, r replicaInput) {
	set := splitReplica(r.containers, func(c Container) bool { return c.SpecHash == r.spec.Hash() && r.attached(c) }, r.spec.Name)
	// A replacement overtaken by a newer change goes first: at most one
	// container beyond the replica's own, ever (see replicas.go).
	if len(set.superseded) > 0 {
		planRemoveAll(p, *r.in, set.superseded, fmt.Sprintf("superseded: replica %d has a newer spec", r.index))
	}
	current := set.current
	var stale []Container
	if set.old != nil {
		stale = []Container{*set.old}
	}
	if len(current) > 1 {
		keep := bestContainer(current, r.spec.Name)
		var dups []Container
		for _, c := range current {
			if c.ID != keep.ID {
				dups = append(dups, c)
			}
		}
		planRemoveAll(p, *r.in, dups, fmt.Sprintf("duplicate of replica %d", r.index))
		current = []Container{keep}
	}
	if len(current) == 0 {
		if len(set.superseded) > 0 {
			p.wait(readyRecheck, "replica %d: superseded containers are removed before its replacement starts", r.index)
			return
		}
		planCreate(p, r, stale)
		return
	}
	c := current[0]
	if f := r.failed[c.ID]; f.Count >= MaxStartFailures && (c.State == "created" || c.State == "exited") {
		planRemoveAll(p, *r.in, []Container{c}, fmt.Sprintf("replica %d could not be started %d times (%s): recreating it", r.index, f.Count, f.Err))
		p.wait(readyRecheck, "replica %d is being recreated", r.index)
		return
	}
	switch {
	case c.State == "created":
		p.add(Op{Kind: OpStartContainer, Target: c.Name, ContainerID: c.ID, Cause: fmt.Sprintf("replica %d created but not started", r.index), After: r.prereqs})
		p.wait(readyRecheck, "replica %d starting", r.index)
		return
	case c.State == "exited" && shouldRestart(r.policy, c.ExitCode):
		p.add(Op{Kind: OpStartContainer, Target: c.Name, ContainerID: c.ID, Cause: fmt.Sprintf("replica %d stopped (exit code %d)", r.index, c.ExitCode), After: r.prereqs})
		p.wait(readyRecheck, "replica %d starting", r.index)
		return
	case c.State == "paused":
		p.wait(readyRecheck*5, "replica %d is paused", r.index)
		return
	case !c.Ready():
		// Starting, restarting, or not healthy yet: the old one keeps serving.
		if c.State == "running" || c.State == "restarting" {
			after := readyRecheck
			if d := c.readyIn(); d > 0 {
				after = d + 10*time.Millisecond
			}
			p.wait(after, "replica %d not ready yet", r.index)
		}
		return
	}
	// The current container is ready: retire the old one (once the edge no
	// longer sends it requests), then take the name.
	var removals []int
	draining := false
	for _, s := range stale {
		cause := fmt.Sprintf("replaced by %s (%s)", c.Name, describeChange(s.Fields, r.spec.fields()))
		if !r.in.drained(p, s, fmt.Sprintf("replica %d", r.index)) {
			draining = true
			continue
		}
		var after []int
		if s.Running() || s.State == "restarting" {
			after = []int{p.add(Op{Kind: OpStopContainer, Target: s.Name, ContainerID: s.ID, Cause: cause, Grace: r.in.stopGrace()})}
		}
		removals = append(removals, p.add(Op{Kind: OpRemoveContainer, Target: s.Name, ContainerID: s.ID, Cause: cause, After: after}))
	}
	if c.Name != r.spec.Name && !draining && len(set.superseded) == 0 {
		p.add(Op{Kind: OpRenameContainer, Target: c.Name, ContainerID: c.ID, NewName: r.spec.Name,
			Cause: fmt.Sprintf("replica %d replacement is ready", r.index), After: append(slices.Clone(r.prereqs), removals...)})
	}
}

// fields returns the decoded part hashes of the spec.
func (cs *ContainerSpec) fields() map[string]string { return decodeFields(cs.Labels[LabelFields]) }

// planCreate creates a replica that has no current container. With a
// running old container and no host port, the new one starts first
// (no downtime); otherwise the old one stops first (it holds the port).
func planCreate(p *Plan, r replicaInput, stale []Container) {
	if len(r.depsWait) > 0 {
		p.wait(readyRecheck, "replica %d waits for %s to be ready", r.index, strings.Join(r.depsWait, ", "))
		return
	}
	cause := fmt.Sprintf("replica %d missing", r.index)
	anyRunning := slices.ContainsFunc(stale, func(c Container) bool { return c.Running() })
	if len(stale) > 0 {
		cause = fmt.Sprintf("spec changed: %s", describeChange(stale[0].Fields, r.spec.fields()))
		if stale[0].SpecHash == r.spec.Hash() {
			cause = "not attached to network " + r.spec.Network
		}
	}
	spec := r.spec
	after := slices.Clone(r.prereqs)
	if len(stale) > 0 && (!anyRunning || r.stopFirst) {
		// Stop-first: the final name frees up once the old ones are gone.
		for _, s := range stale {
			if !r.in.drained(p, s, fmt.Sprintf("replica %d", r.index)) {
				return
			}
		}
		for _, s := range sortContainers(stale) {
			var stop []int
			if s.Running() || s.State == "restarting" {
				stop = []int{p.add(Op{Kind: OpStopContainer, Target: s.Name, ContainerID: s.ID, Cause: cause, Grace: r.in.stopGrace()})}
			}
			after = append(after, p.add(Op{Kind: OpRemoveContainer, Target: s.Name, ContainerID: s.ID, Cause: cause, After: stop}))
		}
	} else if len(stale) > 0 {
		// Start-first: run the replacement beside the old one.
		spec.Name = tempContainerName(spec.Labels[LabelProject], spec.Labels[LabelService], r.index, spec.Hash())
		for n := 2; slices.ContainsFunc(r.containers, func(c Container) bool { return c.Name == spec.Name }); n++ {
			spec.Name = fmt.Sprintf("%s-%d", tempContainerName(spec.Labels[LabelProject], spec.Labels[LabelService], r.index, spec.Hash()), n)
		}
	}
	created := p.add(Op{Kind: OpCreateContainer, Target: spec.Name, Container: &spec, Cause: cause, After: after})
	p.add(Op{Kind: OpStartContainer, Target: spec.Name, Cause: cause, After: []int{created}})
	p.wait(readyRecheck, "replica %d starting", r.index)
}

// bestContainer picks which of several current containers of one replica to
// keep: the one with the final name, else a running one, else the first.
func bestContainer(cs []Container, finalName string) Container {
	sorted := sortContainers(cs)
	for _, c := range sorted {
		if c.Name == finalName {
			return c
		}
	}
	for _, c := range sorted {
		if c.Running() {
			return c
		}
	}
	return sorted[0]
}

// shouldRestart says whether an exited container is started again: Docker
// restarts crashed containers itself per the restart policy, so this
// repairs stops made behind PanelX's back (docker stop).
func shouldRestart(policy api.RestartPolicy, exitCode int) bool {
	switch policy {
	case api.RestartNever:
		return false
	case api.RestartOnFailure:
		return exitCode != 0
	default:
		return true
	}
}

func networkLabels(instance, project, network string) map[string]string {
	l := ownerLabels(instance)
	l[LabelProject] = project
	if network != DefaultNetwork {
		l[LabelNetwork] = network
	}
	return l
}

// FirstNetwork is the Docker network of a service's first project network
// (the edge's and the probes' way to its replicas), nil while it does not
// exist or for a service with a networkMode.
func FirstNetwork(project string, sp *api.ServiceSpec, networks map[string]Network) *Network {
	names := ServiceNetworks(sp)
	if len(names) == 0 {
		return nil
	}
	if n, ok := networks[ProjectNetworkName(project, names[0])]; ok {
		return &n
	}
	return nil
}

// BuildVolumeSpec is the Docker volume of a Volume resource.
func BuildVolumeSpec(instance string, v *api.Volume) *VolumeSpec {
	l := ownerLabels(instance)
	l[LabelProject] = v.Metadata.Project
	l[LabelVolume] = v.Metadata.Name
	return &VolumeSpec{
		Name:       VolumeName(v.Metadata.Project, v.Metadata.Name),
		Driver:     v.Spec.Driver,
		DriverOpts: v.Spec.DriverOpts,
		Labels:     l,
	}
}

// ProjectInput is everything the planner needs for one project.
type ProjectInput struct {
	Instance string
	Name     string
	Project  *api.Project // nil when the row is gone
	// Services and Volumes are the project's rows.
	Services      []*api.Service
	Volumes       []*api.Volume
	Networks      []Network // every network of the project
	DockerVolumes map[string]Volume
	Containers    []Container // every container of the project
}

// PlanProject plans a project: its network while it lives; when it is
// deleted, waits for its services to go, removes the volumes whose data the
// delete asked to purge (or whose reclaimPolicy is Delete), the network, and
// then the row. Volume data is never removed for a project whose row simply
// vanished: only an explicit delete removes data.
func PlanProject(in ProjectInput) Plan {
	var p Plan
	if in.Project != nil && in.Project.Metadata.DeletionTimestamp == nil {
		if !slices.ContainsFunc(in.Networks, func(n Network) bool { return n.Network == DefaultNetwork }) {
			p.add(Op{Kind: OpCreateNetwork, Target: NetworkName(in.Name), Cause: "network missing", Labels: networkLabels(in.Instance, in.Name, DefaultNetwork)})
		}
		planUnusedNetworks(&p, in)
		return p
	}
	if len(in.Services) > 0 || len(in.Containers) > 0 {
		p.wait(readyRecheck, "%d service(s) and %d container(s) of the project are being removed", len(in.Services), len(in.Containers))
		return p
	}
	var volumeOps []int
	if in.Project != nil {
		purge := in.Project.Metadata.Annotations[api.AnnotationPurgeVolumes] == "true"
		for _, v := range in.Volumes {
			name := VolumeName(in.Name, v.Metadata.Name)
			if _, exists := in.DockerVolumes[name]; !exists {
				continue
			}
			switch {
			case purge:
				volumeOps = append(volumeOps, p.add(Op{Kind: OpRemoveVolume, Target: name, Cause: "project deleted with purge of volumes"}))
			case v.Spec.ReclaimPolicy == api.ReclaimDelete:
				volumeOps = append(volumeOps, p.add(Op{Kind: OpRemoveVolume, Target: name, Cause: "project deleted; volume reclaimPolicy is Delete"}))
			}
		}
	}
	for _, n := range in.Networks {
		p.add(Op{Kind: OpRemoveNetwork, Target: n.Name, Cause: "project deleted", After: volumeOps})
	}
	if p.Empty() && in.Project != nil {
		p.Finalize = true
	}
	return p
}

// planUnusedNetworks removes the named networks of a live project that no
// service names any more and no container is attached to.
func planUnusedNetworks(p *Plan, in ProjectInput) {
	used := map[string]bool{}
	for _, s := range in.Services {
		for _, n := range ServiceNetworks(&s.Spec) {
			used[n] = true
		}
	}
	for _, n := range in.Networks {
		if n.Network == DefaultNetwork || used[n.Network] {
			continue
		}
		attached := slices.ContainsFunc(in.Containers, func(c Container) bool { return slices.Contains(c.Networks, n.ID) })
		if !attached {
			p.add(Op{Kind: OpRemoveNetwork, Target: n.Name, Cause: "no service joins network " + n.Network})
		}
	}
}

// VolumeInput is everything the planner needs for one volume.
type VolumeInput struct {
	Instance     string
	Key          api.Key
	Volume       *api.Volume // nil when the row is gone
	Project      *api.Project
	DockerVolume *Volume
	// UsedBy names the containers that mount it.
	UsedBy []string
	// Node is the host whose engine creates volumes ("" on one engine).
	Node string
}

// PlanVolume plans a volume: create it while declared; remove its data only
// when the Volume itself is deleted, and only once no container uses it.
func PlanVolume(in VolumeInput) Plan {
	var p Plan
	switch {
	case in.Volume == nil:
		// The row vanished (its project was removed): data stays.
	case in.Volume.Metadata.DeletionTimestamp != nil:
		if in.DockerVolume == nil {
			p.Finalize = true
			return p
		}
		if len(in.UsedBy) > 0 {
			p.block(ReasonVolumeInUse, "volume is still mounted by %s", strings.Join(in.UsedBy, ", "))
			p.RequeueAfter = readyRecheck
			return p
		}
		p.add(Op{Kind: OpRemoveVolume, Target: in.DockerVolume.Name, Cause: "volume deleted"})
	case in.Project == nil || in.Project.Metadata.DeletionTimestamp != nil:
		// The project's delete decides about this volume's data.
	case VolumeElsewhere(in.Volume, in.Node):
		// Its data is on another node, which the orchestrator mounts; a
		// copy here is stale (left by a move) and stays untouched.
	case in.DockerVolume == nil:
		p.add(Op{Kind: OpCreateVolume, Target: VolumeName(in.Key.Project, in.Key.Name), Cause: "volume missing", VolumeSpec: BuildVolumeSpec(in.Instance, in.Volume)})
	}
	return p
}

// VolumeElsewhere reports whether a volume's data is on another node than
// the one whose engine PanelX talks to (node): where PanelX created it, or
// where a move took it (status.node, which only a move changes). PanelX
// neither creates nor removes it there — created, it would be empty.
func VolumeElsewhere(vol *api.Volume, node string) bool {
	return node != "" && vol.Status.Node != "" && vol.Status.Node != node
}
