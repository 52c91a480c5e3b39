// Package swarm is the Docker Swarm runtime: a PanelX service becomes a
// Swarm service (reconcile.Orchestrator), whose replicas Swarm places,
// restarts and rolls; PanelX reads them back from the tasks. Networks are
// attachable overlays, volumes, images and pulls are the manager engine's
// (through the single-engine runtime), and a rollout is Swarm's update
// with start-first where the single engine would start first and rollback
// on failure. See docs/architecture.md, "Runtimes".
package swarm

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"

	"github.com/panelx/panelx/reconcile"
	"github.com/panelx/panelx/reconcile/docker"
)

// Publish modes of published ports.
const (
	// PublishIngress: Swarm's routing mesh, every node answers (the
	// default; on a swarm advertised on 127.0.0.1 the mesh does not answer
	// on loopback).
	PublishIngress = "ingress"
	// PublishHost: the port is bound on the node running the task (one
	// task per node and port).
	PublishHost = "host"
)

// Endpoint modes: how a service's name resolves on its networks.
const (
	// EndpointVIP: to one virtual IP, which the kernel's IPVS balances
	// over the tasks (Swarm's default; needs ip_vs on every node).
	EndpointVIP = "vip"
	// EndpointDNSRR: to the tasks' own addresses, round robin, as a
	// network alias does on one engine (no IPVS; ports only in host mode).
	EndpointDNSRR = "dnsrr"
)

const callTimeout = 30 * time.Second

// Options tune the runtime.
type Options struct {
	// PublishMode of published ports: PublishIngress (default) or
	// PublishHost.
	PublishMode string
	// EndpointMode: EndpointVIP (default) or EndpointDNSRR, which Swarm
	// allows only with PublishHost (Check says so).
	EndpointMode string
	// Monitor is how long Swarm watches an updated task for failure before
	// it counts the update a success (default 2 s; Swarm's own is 5 s).
	Monitor time.Duration
	// RestartDelay is Swarm's delay between restarts of a failed task
	// (default 1 s; Swarm's own is 5 s).
	RestartDelay time.Duration
	// TaskPoll is how often the events stream looks at the tasks, which
	// the Engine's events do not cover (default 1 s).
	TaskPoll time.Duration
	// EdgeContainer names the container running `panelx edge` on this
	// engine: PanelX attaches it to every project overlay (edge.go).
	EdgeContainer string
	// HelperImage is an image of panelx that every node can pull (its
	// entrypoint the panelx binary): moves of volumes between nodes run
	// it there (move.go).
	HelperImage string
}

// Validate says what is wrong with the options, in the words of their
// settings.
func (o Options) Validate() error {
	switch o.PublishMode {
	case "", PublishIngress, PublishHost:
	default:
		return fmt.Errorf("PANELX_SWARM_PUBLISH_MODE %q: want %s or %s", o.PublishMode, PublishIngress, PublishHost)
	}
	switch o.EndpointMode {
	case "", EndpointVIP:
	case EndpointDNSRR:
		if o.PublishMode != PublishHost {
			// Swarm refuses a dnsrr service with ports on the mesh.
			return fmt.Errorf("PANELX_SWARM_ENDPOINT_MODE=%s needs PANELX_SWARM_PUBLISH_MODE=%s: the routing mesh works only with a virtual IP", EndpointDNSRR, PublishHost)
		}
	default:
		return fmt.Errorf("PANELX_SWARM_ENDPOINT_MODE %q: want %s or %s", o.EndpointMode, EndpointVIP, EndpointDNSRR)
	}
	return nil
}

// Runtime runs PanelX services as Swarm services of the engine it talks to,
// a manager. Objects it creates carry the installation's labels.
type Runtime struct {
	*docker.Runtime // networks (overlay), volumes, images
	cli             *client.Client
	instance        string
	opts            Options

	nodeMu   sync.Mutex
	nodeID   string // the manager's node, where PanelX creates volumes
	nodeName string // its hostname
	// nodeList is the last node list (read only), from nodeListAt.
	nodeList   map[string]node
	nodeListAt time.Time

	secrets secretState // secret files as Swarm secrets (secrets.go)
}

var (
	_ reconcile.Runtime      = (*Runtime)(nil)
	_ reconcile.Orchestrator = (*Runtime)(nil)
)

// New wraps a client of a swarm manager.
func New(cli *client.Client, instance string, opts Options) *Runtime {
	if opts.PublishMode == "" {
		opts.PublishMode = PublishIngress
	}
	if opts.EndpointMode == "" {
		opts.EndpointMode = EndpointVIP
	}
	if opts.Monitor <= 0 {
		opts.Monitor = 2 * time.Second
	}
	if opts.RestartDelay <= 0 {
		opts.RestartDelay = time.Second
	}
	if opts.TaskPoll <= 0 {
		opts.TaskPoll = time.Second
	}
	d := docker.NewRuntime(cli, instance)
	d.NetworkDriver, d.Attachable = "overlay", true
	return &Runtime{Runtime: d, cli: cli, instance: instance, opts: opts}
}

// Check reports whether the engine is a manager of an active swarm.
func (r *Runtime) Check(ctx context.Context) error {
	info, err := r.cli.Info(ctx)
	if err != nil {
		return fmt.Errorf("swarm runtime: %w", err)
	}
	if info.Swarm.LocalNodeState != swarm.LocalNodeStateActive || !info.Swarm.ControlAvailable {
		return fmt.Errorf("swarm runtime: the engine is not a manager of an active swarm (state %q): run `docker swarm init` or point DOCKER_HOST at a manager", info.Swarm.LocalNodeState)
	}
	return nil
}

func (r *Runtime) call(ctx context.Context, op string, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	start := time.Now()
	err := fn(ctx)
	if r.Observe != nil {
		r.Observe(op, time.Since(start), err)
	}
	return err
}

func (r *Runtime) owned(labels map[string]string) bool {
	return labels[reconcile.LabelManaged] == "true" && labels[reconcile.LabelInstance] == r.instance
}

func (r *Runtime) ownerFilter() filters.Args {
	return filters.NewArgs(filters.Arg("label", reconcile.LabelInstance+"="+r.instance))
}

// hostnameConstraint pins a service to the node of its volumes (nodes are
// named by hostname in status.node, as `docker node ls` shows them).
const hostnameConstraint = "node.hostname=="

// managerNode is the node this engine is: volumes PanelX creates live there.
func (r *Runtime) managerNode(ctx context.Context) (string, error) {
	r.nodeMu.Lock()
	defer r.nodeMu.Unlock()
	if r.nodeID != "" {
		return r.nodeID, nil
	}
	info, err := r.cli.Info(ctx)
	if err != nil {
		return "", fmt.Errorf("find the manager's node: %w", err)
	}
	r.nodeID, r.nodeName = info.Swarm.NodeID, info.Name
	return r.nodeID, nil
}

// The replicas are Swarm's: PanelX never creates, starts or stops their
// containers itself.

func (r *Runtime) CreateContainer(context.Context, reconcile.ContainerSpec) (string, error) {
	return "", reconcile.ErrOrchestrated
}
func (r *Runtime) StartContainer(context.Context, string) error { return reconcile.ErrOrchestrated }
func (r *Runtime) StopContainer(context.Context, string, time.Duration) error {
	return reconcile.ErrOrchestrated
}
func (r *Runtime) RemoveContainer(context.Context, string) error { return reconcile.ErrOrchestrated }
func (r *Runtime) RenameContainer(context.Context, string, string) error {
	return reconcile.ErrOrchestrated
}

// services lists this installation's Swarm services.
func (r *Runtime) services(ctx context.Context) ([]swarm.Service, error) {
	var list []swarm.Service
	err := r.call(ctx, "service_list", func(ctx context.Context) (err error) {
		list, err = r.cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: r.ownerFilter()})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	return slices.DeleteFunc(list, func(s swarm.Service) bool { return !r.owned(s.Spec.Labels) }), nil
}

// ListContainers returns the replicas of every service: per slot, the
// tasks Swarm wants running, or else its newest task (which says why the
// slot has none).
func (r *Runtime) ListContainers(ctx context.Context) ([]reconcile.ListedContainer, error) {
	asked := time.Now()
	svcs, err := r.services(ctx)
	if err != nil {
		return nil, err
	}
	tasks, _, err := r.tasks(ctx, svcs)
	if err != nil {
		return nil, err
	}
	out := make([]reconcile.ListedContainer, 0, len(tasks))
	for _, c := range tasks {
		c.ObservedAt = asked
		// A list of tasks tells as much as an inspect: nothing to bound.
		out = append(out, reconcile.ListedContainer{Container: c, ListedAt: asked})
	}
	return out, nil
}

// tasks are the replicas of these services, and the replicas left on
// lost nodes by service ID.
func (r *Runtime) tasks(ctx context.Context, svcs []swarm.Service) ([]reconcile.Container, map[string][]reconcile.LostReplica, error) {
	if len(svcs) == 0 {
		return nil, nil, nil
	}
	nodes, err := r.nodes(ctx)
	if err != nil {
		return nil, nil, err
	}
	f := filters.NewArgs()
	byID := map[string]swarm.Service{}
	for _, s := range svcs {
		f.Add("service", s.ID)
		byID[s.ID] = s
	}
	var list []swarm.Task
	err = r.call(ctx, "task_list", func(ctx context.Context) (err error) {
		list, err = r.cli.TaskList(ctx, swarm.TaskListOptions{Filters: f})
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list tasks: %w", err)
	}
	type slotKey struct {
		service string
		slot    int
	}
	wanted := map[slotKey][]swarm.Task{}
	newest := map[slotKey]swarm.Task{}
	for _, t := range list {
		s, ok := byID[t.ServiceID]
		if !ok || t.Slot == 0 {
			continue
		}
		if rep := s.Spec.Mode.Replicated; rep != nil && rep.Replicas != nil && t.Slot > int(*rep.Replicas) && t.DesiredState != swarm.TaskStateRunning {
			continue // a slot scaled away
		}
		k := slotKey{t.ServiceID, t.Slot}
		if t.DesiredState == swarm.TaskStateRunning || t.DesiredState == swarm.TaskStateReady {
			wanted[k] = append(wanted[k], t)
		}
		if n, ok := newest[k]; !ok || t.UpdatedAt.After(n.UpdatedAt) {
			newest[k] = t
		}
	}
	var out []reconcile.Container
	for k, t := range newest {
		ts := wanted[k]
		if len(ts) == 0 {
			ts = []swarm.Task{t}
		}
		for _, t := range ts {
			if c, ok := r.container(byID[t.ServiceID], t, nodes); ok {
				out = append(out, c)
			}
		}
	}
	return out, lostByService(list, nodes), nil
}

// InspectContainer returns a task as a replica.
func (r *Runtime) InspectContainer(ctx context.Context, id string) (reconcile.Container, error) {
	asked := time.Now()
	var t swarm.Task
	err := r.call(ctx, "task_inspect", func(ctx context.Context) (err error) {
		t, _, err = r.cli.TaskInspectWithRaw(ctx, id)
		return err
	})
	if errdefs.IsNotFound(err) {
		return reconcile.Container{}, fmt.Errorf("inspect task %s: %w", id, reconcile.ErrNotFound)
	}
	if err != nil {
		return reconcile.Container{}, fmt.Errorf("inspect task %s: %w", id, err)
	}
	var s swarm.Service
	err = r.call(ctx, "service_inspect", func(ctx context.Context) (err error) {
		s, _, err = r.cli.ServiceInspectWithRaw(ctx, t.ServiceID, swarm.ServiceInspectOptions{})
		return err
	})
	if errdefs.IsNotFound(err) {
		return reconcile.Container{}, fmt.Errorf("inspect task %s: its service is gone: %w", id, reconcile.ErrNotFound)
	}
	if err != nil {
		return reconcile.Container{}, fmt.Errorf("inspect task %s: %w", id, err)
	}
	nodes, err := r.nodes(ctx)
	if err != nil {
		return reconcile.Container{}, fmt.Errorf("inspect task %s: %w", id, err)
	}
	c, ok := r.container(s, t, nodes)
	if !ok {
		return reconcile.Container{}, fmt.Errorf("inspect task %s: %w", id, reconcile.ErrNotFound)
	}
	c.ObservedAt = asked
	return c, nil
}

// container maps a task onto the replica PanelX reasons about.
func (r *Runtime) container(s swarm.Service, t swarm.Task, nodes map[string]node) (reconcile.Container, bool) {
	cs := t.Spec.ContainerSpec
	if cs == nil || !r.owned(s.Spec.Labels) || !r.owned(cs.Labels) {
		return reconcile.Container{}, false
	}
	labels := maps.Clone(cs.Labels)
	labels[reconcile.LabelReplica] = strconv.Itoa(t.Slot - 1)
	c, ok := reconcile.ContainerFromLabels(labels)
	if !ok {
		return reconcile.Container{}, false
	}
	c.ID, c.Task, c.Node = t.ID, true, t.NodeID
	if t.NodeID != "" {
		n, known := nodes[t.NodeID]
		c.NodeName = n.name
		_, c.NodeDown = lostReplica(t, nodes)
		c.NodeDown = c.NodeDown || !known
	}
	c.Name = s.Spec.Name + "." + strconv.Itoa(t.Slot)
	c.ImageID = cs.Labels[reconcile.LabelImageID]
	st := t.Status
	switch st.State {
	case swarm.TaskStateRunning:
		c.State, c.StartedAt = "running", st.Timestamp
		if cs.Healthcheck != nil {
			c.Health = "healthy" // Swarm reports running once the healthcheck passes
		}
	case swarm.TaskStateStarting:
		c.State = "running"
		if cs.Healthcheck != nil {
			c.Health = "starting"
		} else {
			c.StartedAt = st.Timestamp
		}
	case swarm.TaskStateComplete, swarm.TaskStateShutdown, swarm.TaskStateFailed, swarm.TaskStateRejected,
		swarm.TaskStateOrphaned, swarm.TaskStateRemove:
		c.State, c.FinishedAt = "exited", st.Timestamp
		if st.State != swarm.TaskStateComplete && st.State != swarm.TaskStateShutdown {
			c.Error = string(st.State) + ": " + st.Err
			if st.Err == "" {
				c.Error = string(st.State) + ": " + st.Message
			}
		}
	default: // new … ready: placed and prepared, not started
		c.State = "created"
		if st.Err != "" {
			c.Error = st.Err
		}
	}
	if st.ContainerStatus != nil {
		c.ExitCode = st.ContainerStatus.ExitCode
	}
	for _, na := range t.NetworksAttachments {
		c.Networks = append(c.Networks, na.Network.ID)
		if len(na.Addresses) > 0 && c.State == "running" {
			if c.IPs == nil {
				c.IPs = map[string]string{}
			}
			ip, _, _ := strings.Cut(na.Addresses[0], "/")
			c.IPs[na.Network.ID] = ip
		}
	}
	for _, m := range cs.Mounts {
		if m.Type == mount.TypeVolume {
			c.Volumes = append(c.Volumes, m.Source)
		}
	}
	return c, true
}

func (r *Runtime) workload(s swarm.Service, lost []reconcile.LostReplica) reconcile.Workload {
	w := reconcile.WorkloadFromLabels(s.ID, s.Spec.Name, s.Spec.Labels)
	w.Version = s.Version.Index
	if rep := s.Spec.Mode.Replicated; rep != nil && rep.Replicas != nil {
		w.Replicas = int(*rep.Replicas)
	}
	if s.PreviousSpec != nil {
		w.PreviousSpecHash = s.PreviousSpec.Labels[reconcile.LabelSpecHash]
	}
	if u := s.UpdateStatus; u != nil {
		w.Update, w.UpdateMessage = string(u.State), u.Message
	}
	if p := s.Spec.TaskTemplate.Placement; p != nil {
		w.Constraints = slices.Clone(p.Constraints)
		for _, c := range p.Constraints {
			if n, ok := strings.CutPrefix(c, hostnameConstraint); ok {
				w.Node = n
			}
		}
	}
	w.Lost = lost
	return w
}

func (r *Runtime) ListWorkloads(ctx context.Context) ([]reconcile.Workload, error) {
	svcs, err := r.services(ctx)
	if err != nil {
		return nil, err
	}
	_, lost, err := r.tasks(ctx, svcs)
	if err != nil {
		return nil, err
	}
	out := make([]reconcile.Workload, 0, len(svcs))
	for _, s := range svcs {
		out = append(out, r.workload(s, lost[s.ID]))
	}
	return out, nil
}

func (r *Runtime) inspectService(ctx context.Context, name string) (swarm.Service, error) {
	var s swarm.Service
	err := r.call(ctx, "service_inspect", func(ctx context.Context) (err error) {
		s, _, err = r.cli.ServiceInspectWithRaw(ctx, name, swarm.ServiceInspectOptions{})
		return err
	})
	if errdefs.IsNotFound(err) {
		return s, fmt.Errorf("inspect service %s: %w", name, reconcile.ErrNotFound)
	}
	if err != nil {
		return s, fmt.Errorf("inspect service %s: %w", name, err)
	}
	if !r.owned(s.Spec.Labels) {
		return s, fmt.Errorf("service %s: %w", name, reconcile.ErrNotOwned)
	}
	return s, nil
}

func (r *Runtime) InspectWorkload(ctx context.Context, name string) (reconcile.Workload, error) {
	s, err := r.inspectService(ctx, name)
	if errors.Is(err, reconcile.ErrNotOwned) {
		return reconcile.Workload{}, fmt.Errorf("inspect service %s: %w", name, reconcile.ErrNotFound)
	}
	if err != nil {
		return reconcile.Workload{}, err
	}
	_, lost, err := r.tasks(ctx, []swarm.Service{s})
	if err != nil {
		return reconcile.Workload{}, fmt.Errorf("inspect service %s: %w", name, err)
	}
	return r.workload(s, lost[s.ID]), nil
}

// serviceSpec maps a workload onto Swarm's service spec: the image pinned
// by digest, the replica template, update and rollback policies.
func (r *Runtime) serviceSpec(ctx context.Context, ws reconcile.WorkloadSpec) (swarm.ServiceSpec, error) {
	tpl := ws.Template
	image, err := r.pinned(ctx, tpl.ImageRef)
	if err != nil {
		return swarm.ServiceSpec{}, err
	}
	cs := &swarm.ContainerSpec{
		Image:           image,
		Labels:          maps.Clone(tpl.Labels),
		Command:         tpl.Entrypoint,
		Args:            tpl.Cmd,
		Env:             tpl.Env,
		Dir:             tpl.WorkingDir,
		User:            tpl.User,
		StopGracePeriod: &ws.StopGrace,
		CapabilityAdd:   tpl.CapAdd,
		CapabilityDrop:  tpl.CapDrop,
		Sysctls:         tpl.Sysctls,
	}
	if hc := tpl.Healthcheck; hc != nil {
		cs.Healthcheck = &container.HealthConfig{Test: hc.Test, Interval: hc.Interval, Timeout: hc.Timeout, StartPeriod: hc.StartPeriod, Retries: hc.Retries}
	}
	local := false
	for _, m := range tpl.Mounts {
		if m.Type == "bind" {
			return swarm.ServiceSpec{}, fmt.Errorf("service %s: host paths are node-local and not supported on the swarm runtime", ws.Name)
		}
		cs.Mounts = append(cs.Mounts, mount.Mount{Type: mount.Type(m.Type), Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
		local = local || m.Type == "volume"
	}
	task := swarm.TaskSpec{
		ContainerSpec: cs,
		RestartPolicy: &swarm.RestartPolicy{Condition: restartCondition(tpl.RestartPolicy), Delay: &r.opts.RestartDelay},
		LogDriver:     &swarm.Driver{Name: "json-file", Options: map[string]string{"max-size": "10m", "max-file": "3"}},
	}
	if tpl.NanoCPUs > 0 || tpl.MemoryBytes > 0 {
		task.Resources = &swarm.ResourceRequirements{Limits: &swarm.Limit{NanoCPUs: tpl.NanoCPUs, MemoryBytes: tpl.MemoryBytes}}
	}
	switch {
	case ws.Node != "":
		// A volume holds data on one node: the replicas go where its data
		// is (status.node), never onto an empty volume elsewhere.
		task.Placement = &swarm.Placement{Constraints: []string{hostnameConstraint + ws.Node}}
	case local:
		// The planner names the node of every volume; should it not, the
		// manager's engine is where PanelX creates them.
		node, err := r.managerNode(ctx)
		if err != nil {
			return swarm.ServiceSpec{}, err
		}
		task.Placement = &swarm.Placement{Constraints: []string{"node.id==" + node}}
	}
	if tpl.NetworkID != "" {
		task.Networks = append(task.Networks, swarm.NetworkAttachmentConfig{Target: tpl.NetworkID, Aliases: tpl.Aliases})
		for _, id := range tpl.MoreNetworkIDs {
			task.Networks = append(task.Networks, swarm.NetworkAttachmentConfig{Target: id, Aliases: tpl.Aliases})
		}
	}
	order := swarm.UpdateOrderStopFirst
	if ws.StartFirst {
		order = swarm.UpdateOrderStartFirst
	}
	replicas := uint64(ws.Replicas)
	spec := swarm.ServiceSpec{
		Annotations:  swarm.Annotations{Name: ws.Name, Labels: ws.Labels},
		TaskTemplate: task,
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
		UpdateConfig: &swarm.UpdateConfig{Parallelism: 1, FailureAction: swarm.UpdateFailureActionRollback,
			Monitor: r.opts.Monitor, Order: order},
		RollbackConfig: &swarm.UpdateConfig{Parallelism: 1, FailureAction: swarm.UpdateFailureActionPause,
			Monitor: r.opts.Monitor, Order: order},
		EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionMode(r.opts.EndpointMode)},
	}
	for _, p := range tpl.Ports {
		if p.HostIP != "" && p.HostIP != "0.0.0.0" && p.HostIP != "::" {
			return swarm.ServiceSpec{}, fmt.Errorf("service %s: port %d: Swarm publishes on every address of a node; hostIP %s is not supported on the swarm runtime", ws.Name, p.ContainerPort, p.HostIP)
		}
		pc := swarm.PortConfig{Protocol: swarm.PortConfigProtocol(strings.ToLower(string(p.Protocol))), TargetPort: uint32(p.ContainerPort),
			PublishedPort: uint32(p.HostPort), PublishMode: swarm.PortConfigPublishMode(r.opts.PublishMode)}
		if pc.Protocol == "" {
			pc.Protocol = swarm.PortConfigProtocolTCP
		}
		if p.HostPort == 0 {
			continue // exposed on the overlay only
		}
		spec.EndpointSpec.Ports = append(spec.EndpointSpec.Ports, pc)
	}
	return spec, nil
}

func restartCondition(policy string) swarm.RestartPolicyCondition {
	switch policy {
	case "no":
		return swarm.RestartPolicyConditionNone
	case "on-failure":
		return swarm.RestartPolicyConditionOnFailure
	}
	return swarm.RestartPolicyConditionAny
}

// pinned is ref by digest, as the manager pulled it: every node runs the
// same image, never a tag that moved since.
func (r *Runtime) pinned(ctx context.Context, ref string) (string, error) {
	d, err := r.ImageDigest(ctx, ref)
	if err != nil {
		return "", err
	}
	if d == "" {
		return "", fmt.Errorf("image %s has no registry digest on the manager: an image for a swarm must come from a registry every node can pull from", ref)
	}
	named, err := reference.ParseNormalizedNamed(d)
	if err != nil {
		return "", fmt.Errorf("image digest of %s: %w", ref, err)
	}
	return reference.FamiliarString(named), nil
}

func encodeAuth(a *reconcile.RegistryAuth) (string, error) {
	if a == nil {
		return "", nil
	}
	return registry.EncodeAuthConfig(registry.AuthConfig{Username: a.Username, Password: a.Password, ServerAddress: a.Registry})
}

func (r *Runtime) CreateWorkload(ctx context.Context, ws reconcile.WorkloadSpec) (reconcile.Workload, error) {
	spec, err := r.serviceSpec(ctx, ws)
	if err != nil {
		return reconcile.Workload{}, fmt.Errorf("create service %s: %w", ws.Name, err)
	}
	auth, err := encodeAuth(ws.Auth)
	if err != nil {
		return reconcile.Workload{}, fmt.Errorf("create service %s: encode credentials: %w", ws.Name, err)
	}
	release, err := r.attachSecrets(ctx, ws, &spec)
	if err != nil {
		return reconcile.Workload{}, fmt.Errorf("create service %s: %w", ws.Name, err)
	}
	err = r.call(ctx, "service_create", func(ctx context.Context) error {
		_, err := r.cli.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{EncodedRegistryAuth: auth})
		return err
	})
	release()
	r.secretsChanged() // a failed create may leave its secrets behind
	if errdefs.IsConflict(err) {
		if _, ierr := r.inspectService(ctx, ws.Name); errors.Is(ierr, reconcile.ErrNotOwned) {
			return reconcile.Workload{}, fmt.Errorf("create service %s: the name is taken by a service this installation does not manage: %w", ws.Name, err)
		}
	}
	if err != nil {
		return reconcile.Workload{}, fmt.Errorf("create service %s: %w", ws.Name, err)
	}
	return r.InspectWorkload(ctx, ws.Name)
}

func (r *Runtime) UpdateWorkload(ctx context.Context, ws reconcile.WorkloadSpec) (reconcile.Workload, error) {
	spec, err := r.serviceSpec(ctx, ws)
	if err != nil {
		return reconcile.Workload{}, fmt.Errorf("update service %s: %w", ws.Name, err)
	}
	auth, err := encodeAuth(ws.Auth)
	if err != nil {
		return reconcile.Workload{}, fmt.Errorf("update service %s: encode credentials: %w", ws.Name, err)
	}
	// The version is the one just read: an update in between (another
	// writer) fails rather than being overwritten, and the next reconcile
	// looks again.
	cur, err := r.inspectService(ctx, ws.Name)
	if err != nil {
		return reconcile.Workload{}, fmt.Errorf("update service %s: %w", ws.Name, err)
	}
	release, err := r.attachSecrets(ctx, ws, &spec)
	if err != nil {
		return reconcile.Workload{}, fmt.Errorf("update service %s: %w", ws.Name, err)
	}
	err = r.call(ctx, "service_update", func(ctx context.Context) error {
		_, err := r.cli.ServiceUpdate(ctx, cur.ID, cur.Version, spec, swarm.ServiceUpdateOptions{EncodedRegistryAuth: auth})
		return err
	})
	release()
	// The secrets the old spec named go once the rollout is done (the
	// task poll's sweep): a rollback needs them until then.
	r.secretsChanged()
	if err != nil {
		return reconcile.Workload{}, fmt.Errorf("update service %s: %w", ws.Name, err)
	}
	return r.InspectWorkload(ctx, ws.Name)
}

func (r *Runtime) RemoveWorkload(ctx context.Context, name string) error {
	s, err := r.inspectService(ctx, name)
	if errors.Is(err, reconcile.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove service %s: %w", name, err)
	}
	err = r.call(ctx, "service_remove", func(ctx context.Context) error { return r.cli.ServiceRemove(ctx, s.ID) })
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("remove service %s: %w", name, err)
	}
	// Its secrets go now; what Swarm refuses, the task poll retries.
	r.secretsChanged()
	r.sweepSecrets(ctx, true)
	return nil
}
