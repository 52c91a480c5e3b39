// Package memruntime is reconcile.Runtime in memory: containers, networks,
// volumes, images and an events stream with the Docker Engine's semantics
// as far as the reconciler depends on them — name conflicts, not-found and
// not-owned errors, networks that cannot go while endpoints remain, volumes
// that cannot go while mounted, restart policies, images that must be
// pulled (from a Registry, with credentials) before a container can use
// them. No process runs: tests drive what processes would do (Crash,
// SetHealth) and what a person at the engine would do (the Outside
// methods). It makes the executor, cache and status testable without an
// engine, and runs the controller's conformance suite in milliseconds.
package memruntime

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

	"github.com/panelx/panelx/reconcile"
)

// Runtime is an engine in memory. The zero value is not usable: call New.
type Runtime struct {
	instance string
	registry *Registry

	mu         sync.Mutex
	seq        int
	ipSeq      int
	containers map[string]*ctr // by ID
	networks   map[string]*netw
	volumes    map[string]*vol // by name
	images     map[string]Image
	subs       map[*sub]bool
	faults     map[string][]error
	calls      map[string]int

	// Observe, when set, is called after every call as the Docker
	// runtime's is (op names are the same: "container_create", …).
	Observe func(op string, d time.Duration, err error)
	// Clock, when set, is the engine's clock (start and exit times, when
	// a state was observed): tests move it to let MinReadyTime pass.
	Clock func() time.Time
}

func (r *Runtime) now() time.Time {
	if r.Clock != nil {
		return r.Clock()
	}
	return time.Now()
}

type ctr struct {
	reconcile.Container
	labels        map[string]string
	restartPolicy string
	healthcheck   bool
	exitCode      *int // the image's: exits at once when started
	stopped       bool // stopped by a user: the restart policy does not apply
}

type netw struct {
	id, name string
	labels   map[string]string
}

type vol struct {
	name   string
	driver string
	labels map[string]string
}

type sub struct {
	ch   chan reconcile.RuntimeEvent
	errc chan error
	done bool
}

// New returns an empty engine pulling from registry, acting for the
// installation instance (objects without its labels are someone else's).
func New(instance string, registry *Registry) *Runtime {
	if registry == nil {
		registry = NewRegistry()
	}
	return &Runtime{instance: instance, registry: registry, containers: map[string]*ctr{}, networks: map[string]*netw{},
		volumes: map[string]*vol{}, images: map[string]Image{}, subs: map[*sub]bool{}, faults: map[string][]error{}, calls: map[string]int{}}
}

var _ reconcile.Runtime = (*Runtime)(nil)

// Registry is the registry the engine pulls from.
func (r *Runtime) Registry() *Registry { return r.registry }

// Fail makes the next calls of op (e.g. "container_start") fail with errs,
// one each, before the call has any effect.
func (r *Runtime) Fail(op string, errs ...error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.faults[op] = append(r.faults[op], errs...)
}

// Calls returns how many times each op was called since the last Calls,
// and resets the counts.
func (r *Runtime) Calls() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = map[string]int{}
	return c
}

// begin counts a call and returns its injected failure; the caller holds
// r.mu.
func (r *Runtime) beginLocked(op string) error {
	r.calls[op]++
	if errs := r.faults[op]; len(errs) > 0 {
		r.faults[op] = errs[1:]
		return errs[0]
	}
	return nil
}

// call locks the engine, counts op and reports it to Observe.
func (r *Runtime) call(ctx context.Context, op string, fn func() error) error {
	start := time.Now()
	err := ctx.Err()
	if err == nil {
		r.mu.Lock()
		if err = r.beginLocked(op); err == nil {
			err = fn()
		}
		r.mu.Unlock()
	}
	if r.Observe != nil {
		r.Observe(op, time.Since(start), err)
	}
	return err
}

func (r *Runtime) owned(labels map[string]string) bool {
	return labels[reconcile.LabelManaged] == "true" && labels[reconcile.LabelInstance] == r.instance
}

func (r *Runtime) newIDLocked() string {
	r.seq++
	return fmt.Sprintf("%064x", r.seq)
}

// findLocked finds a container by ID, unique ID prefix or name.
func (r *Runtime) findLocked(ref string) *ctr {
	if c, ok := r.containers[ref]; ok {
		return c
	}
	for _, c := range r.containers {
		if c.Name == ref || (len(ref) >= 12 && strings.HasPrefix(c.ID, ref)) {
			return c
		}
	}
	return nil
}

func (r *Runtime) findNetworkLocked(ref string) *netw {
	if n, ok := r.networks[ref]; ok {
		return n
	}
	for _, n := range r.networks {
		if n.name == ref {
			return n
		}
	}
	return nil
}

// view is what an inspect returns: a copy, observed now.
func (c *ctr) view(now time.Time) reconcile.Container {
	out := c.Container
	out.Volumes = slices.Clone(c.Volumes)
	out.Networks = slices.Clone(c.Networks)
	out.IPs = maps.Clone(c.IPs)
	out.Fields = maps.Clone(c.Fields)
	out.ObservedAt = now
	return out
}

func (r *Runtime) ListContainers(ctx context.Context) ([]reconcile.ListedContainer, error) {
	var out []reconcile.ListedContainer
	err := r.call(ctx, "container_list", func() error {
		now := r.now()
		for _, c := range r.containers {
			if !r.owned(c.labels) {
				continue
			}
			v := c.view(now)
			l := reconcile.ListedContainer{Container: v, ListedAt: now}
			// A list tells no more than Docker's does.
			l.RestartCount, l.StartedAt, l.FinishedAt, l.ObservedAt, l.Error, l.OOMKilled = 0, time.Time{}, time.Time{}, time.Time{}, "", false
			switch v.State {
			case "running", "paused":
				l.UpAtMost, l.Timed = now.Sub(v.StartedAt).Truncate(time.Second)+time.Second, true
			case "exited":
				l.ExitedAtMost, l.Timed = now.Sub(v.FinishedAt).Truncate(time.Second)+time.Second, true
			default:
				l.ExitCode = 0
			}
			out = append(out, l)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	slices.SortFunc(out, func(a, b reconcile.ListedContainer) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (r *Runtime) InspectContainer(ctx context.Context, id string) (reconcile.Container, error) {
	var out reconcile.Container
	err := r.call(ctx, "container_inspect", func() error {
		c := r.findLocked(id)
		if c == nil || !r.owned(c.labels) {
			return fmt.Errorf("inspect container %s: %w", id, reconcile.ErrNotFound)
		}
		out = c.view(r.now())
		return nil
	})
	return out, err
}

func (r *Runtime) ListNetworks(ctx context.Context) ([]reconcile.Network, error) {
	var out []reconcile.Network
	err := r.call(ctx, "network_list", func() error {
		for _, n := range r.networks {
			if r.owned(n.labels) {
				out = append(out, reconcile.NetworkFromLabels(n.id, n.name, n.labels))
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	return out, nil
}

func (r *Runtime) InspectNetwork(ctx context.Context, id string) (reconcile.Network, error) {
	var out reconcile.Network
	err := r.call(ctx, "network_inspect", func() error {
		n := r.findNetworkLocked(id)
		switch {
		case n == nil:
			return fmt.Errorf("inspect network %s: %w", id, reconcile.ErrNotFound)
		case !r.owned(n.labels):
			return fmt.Errorf("inspect network %s: %w", id, reconcile.ErrNotOwned)
		}
		out = reconcile.NetworkFromLabels(n.id, n.name, n.labels)
		return nil
	})
	return out, err
}

func volumeOf(v *vol) reconcile.Volume {
	return reconcile.Volume{Name: v.name, Project: v.labels[reconcile.LabelProject], Volume: v.labels[reconcile.LabelVolume], Driver: v.driver}
}

func (r *Runtime) ListVolumes(ctx context.Context) ([]reconcile.Volume, error) {
	var out []reconcile.Volume
	err := r.call(ctx, "volume_list", func() error {
		for _, v := range r.volumes {
			if r.owned(v.labels) {
				out = append(out, volumeOf(v))
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	return out, nil
}

func (r *Runtime) InspectVolume(ctx context.Context, name string) (reconcile.Volume, error) {
	var out reconcile.Volume
	err := r.call(ctx, "volume_inspect", func() error {
		v, ok := r.volumes[name]
		switch {
		case !ok:
			return fmt.Errorf("inspect volume %s: %w", name, reconcile.ErrNotFound)
		case !r.owned(v.labels):
			return fmt.Errorf("volume %s: %w", name, reconcile.ErrNotOwned)
		}
		out = volumeOf(v)
		return nil
	})
	return out, err
}

func (r *Runtime) ImageID(ctx context.Context, ref string) (string, error) {
	var id string
	err := r.call(ctx, "image_inspect", func() error {
		if img, ok := r.imageLocked(ref); ok {
			id = img.ID
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("inspect image %s: %w", ref, err)
	}
	return id, nil
}

// imageLocked finds a local image by reference or ID.
func (r *Runtime) imageLocked(ref string) (Image, bool) {
	if img, ok := r.images[normalize(ref)]; ok {
		return img, true
	}
	for _, img := range r.images {
		if img.ID == ref {
			return img, true
		}
	}
	return Image{}, false
}

func (r *Runtime) ImageDigest(ctx context.Context, ref string) (string, error) {
	var out string
	err := r.call(ctx, "image_inspect", func() error {
		if strings.Contains(ref, "@sha256:") {
			out = ref
			return nil
		}
		if img, ok := r.imageLocked(ref); ok && img.Digest != "" {
			name, _, _ := strings.Cut(normalize(ref), "@")
			if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
				name = name[:i]
			}
			out = name + "@" + img.Digest
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("image digest of %s: %w", ref, err)
	}
	return out, nil
}

func (r *Runtime) PullImage(ctx context.Context, ref string, auth *reconcile.RegistryAuth) error {
	return r.call(ctx, "image_pull", func() error {
		img, err := r.registry.pull(ref, auth)
		if err != nil {
			return fmt.Errorf("pull %s: %w", ref, err)
		}
		old, had := r.images[normalize(ref)]
		r.images[normalize(ref)] = img
		if !had || old.ID != img.ID {
			r.emitLocked(reconcile.RuntimeEvent{Type: reconcile.ObjectImage, Action: "pull", ID: ref, Name: ref})
		}
		return nil
	})
}

func (r *Runtime) CreateNetwork(ctx context.Context, name string, labels map[string]string) (reconcile.Network, error) {
	var out reconcile.Network
	err := r.call(ctx, "network_create", func() error {
		if n := r.findNetworkLocked(name); n != nil {
			if !r.owned(n.labels) {
				return fmt.Errorf("create network %s: a network with this name %w", name, reconcile.ErrNotOwned)
			}
			out = reconcile.NetworkFromLabels(n.id, n.name, n.labels)
			return nil
		}
		n := &netw{id: r.newIDLocked(), name: name, labels: maps.Clone(labels)}
		r.networks[n.id] = n
		r.emitLocked(reconcile.RuntimeEvent{Type: reconcile.ObjectNetwork, Action: "create", ID: n.id, Name: name})
		out = reconcile.NetworkFromLabels(n.id, n.name, n.labels)
		return nil
	})
	return out, err
}

func (r *Runtime) RemoveNetwork(ctx context.Context, name string) error {
	return r.call(ctx, "network_remove", func() error {
		n := r.findNetworkLocked(name)
		if n == nil {
			return nil
		}
		if !r.owned(n.labels) {
			return fmt.Errorf("remove network %s: %w", name, reconcile.ErrNotOwned)
		}
		return r.removeNetworkLocked(n)
	})
}

func (r *Runtime) removeNetworkLocked(n *netw) error {
	for _, c := range r.containers {
		if slices.Contains(c.Networks, n.id) {
			return fmt.Errorf("remove network %s: error while removing network: network %s id %s has active endpoints", n.name, n.name, n.id)
		}
	}
	delete(r.networks, n.id)
	r.emitLocked(reconcile.RuntimeEvent{Type: reconcile.ObjectNetwork, Action: "destroy", ID: n.id, Name: n.name})
	return nil
}

func (r *Runtime) CreateVolume(ctx context.Context, spec reconcile.VolumeSpec) (reconcile.Volume, error) {
	var out reconcile.Volume
	err := r.call(ctx, "volume_create", func() error {
		if v, ok := r.volumes[spec.Name]; ok {
			if !r.owned(v.labels) {
				return fmt.Errorf("create volume %s: a volume with this name %w", spec.Name, reconcile.ErrNotOwned)
			}
			out = volumeOf(v)
			return nil
		}
		v := &vol{name: spec.Name, driver: cmp(spec.Driver, "local"), labels: maps.Clone(spec.Labels)}
		r.volumes[v.name] = v
		r.emitLocked(reconcile.RuntimeEvent{Type: reconcile.ObjectVolume, Action: "create", ID: v.name, Name: v.name})
		out = volumeOf(v)
		return nil
	})
	return out, err
}

func cmp(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (r *Runtime) RemoveVolume(ctx context.Context, name string) error {
	return r.call(ctx, "volume_remove", func() error {
		v, ok := r.volumes[name]
		if !ok {
			return nil
		}
		if !r.owned(v.labels) {
			return fmt.Errorf("remove volume %s: %w", name, reconcile.ErrNotOwned)
		}
		var users []string
		for _, c := range r.containers {
			if slices.Contains(c.Volumes, name) {
				users = append(users, c.ID)
			}
		}
		if len(users) > 0 {
			return fmt.Errorf("remove volume %s: volume is in use - [%s]", name, strings.Join(users, ", "))
		}
		delete(r.volumes, name)
		r.emitLocked(reconcile.RuntimeEvent{Type: reconcile.ObjectVolume, Action: "destroy", ID: name, Name: name})
		return nil
	})
}

func (r *Runtime) CreateContainer(ctx context.Context, spec reconcile.ContainerSpec) (string, error) {
	var id string
	err := r.call(ctx, "container_create", func() error {
		var err error
		id, err = r.createLocked(spec)
		return err
	})
	return id, err
}

func (r *Runtime) createLocked(spec reconcile.ContainerSpec) (string, error) {
	if spec.Name != "" && r.findLocked(spec.Name) != nil {
		return "", fmt.Errorf("create container %s: the name is taken by a container this installation does not manage or has not seen yet: Conflict. The container name \"/%s\" is already in use", spec.Name, spec.Name)
	}
	img, ok := r.imageLocked(spec.Image)
	if !ok {
		return "", fmt.Errorf("create container %s: No such image: %s", spec.Name, spec.Image)
	}
	c := &ctr{labels: maps.Clone(spec.Labels), restartPolicy: spec.RestartPolicy, healthcheck: spec.Healthcheck != nil, exitCode: img.ExitCode}
	if base, ok := reconcile.ContainerFromLabels(spec.Labels); ok {
		c.Container = base
	}
	c.ID, c.Name, c.ImageID, c.State = r.newIDLocked(), spec.Name, img.ID, "created"
	if c.Name == "" {
		c.Name = "mem_" + c.ID[len(c.ID)-8:]
	}
	nets := []string{}
	switch {
	case spec.NetworkMode != "":
	case spec.Network != "":
		ref := cmp(spec.NetworkID, spec.Network)
		n := r.findNetworkLocked(ref)
		if n == nil {
			return "", fmt.Errorf("create container %s: network %s not found", spec.Name, ref)
		}
		nets = append(nets, n.id)
		for _, ref := range spec.MoreNetworkIDs {
			m := r.findNetworkLocked(ref)
			if m == nil {
				return "", fmt.Errorf("create container %s: connect network %s: network not found", spec.Name, ref)
			}
			nets = append(nets, m.id)
		}
	}
	for _, m := range spec.Mounts {
		if m.Type != "volume" {
			continue
		}
		if _, ok := r.volumes[m.Source]; !ok { // the engine makes an anonymous-looking volume of its own
			r.volumes[m.Source] = &vol{name: m.Source, driver: "local", labels: map[string]string{}}
		}
		c.Volumes = append(c.Volumes, m.Source)
	}
	c.Networks = nets
	r.containers[c.ID] = c
	if r.owned(c.labels) {
		r.emitLocked(r.containerEvent(c, "create"))
	}
	return c.ID, nil
}

func (r *Runtime) containerEvent(c *ctr, action string) reconcile.RuntimeEvent {
	return reconcile.RuntimeEvent{Type: reconcile.ObjectContainer, Action: action, ID: c.ID, Name: c.Name,
		Project: c.labels[reconcile.LabelProject], Service: c.labels[reconcile.LabelService], Time: r.now()}
}

// emitContainerLocked sends a container event when the container is this
// installation's (the Docker runtime filters the same way).
func (r *Runtime) emitContainerLocked(c *ctr, action string) {
	if r.owned(c.labels) {
		r.emitLocked(r.containerEvent(c, action))
	}
}

func (r *Runtime) StartContainer(ctx context.Context, ref string) error {
	return r.call(ctx, "container_start", func() error {
		c := r.findLocked(ref)
		if c == nil {
			return fmt.Errorf("start container %s: No such container: %s", ref, ref)
		}
		if c.State == "running" {
			return nil
		}
		c.stopped = false
		r.runLocked(c)
		return nil
	})
}

// runLocked starts the container's process: it runs, or exits at once when
// its image says so (and then, with a restart policy, stays "restarting").
func (r *Runtime) runLocked(c *ctr) {
	now := r.now()
	c.State, c.StartedAt, c.Error, c.ExitCode = "running", now, "", 0
	c.Health = ""
	if c.healthcheck {
		c.Health = "healthy"
	}
	c.IPs = map[string]string{}
	for _, n := range c.Networks {
		r.ipSeq++
		c.IPs[n] = fmt.Sprintf("10.77.%d.%d", r.ipSeq/250%250, r.ipSeq%250+2)
	}
	r.emitContainerLocked(c, "start")
	if c.exitCode != nil {
		r.exitLocked(c, *c.exitCode, false)
	}
}

// exitLocked ends the process with code; by itself (user false) the
// restart policy applies.
func (r *Runtime) exitLocked(c *ctr, code int, user bool) {
	c.State, c.ExitCode, c.FinishedAt, c.Health, c.IPs = "exited", code, r.now(), "", nil
	r.emitContainerLocked(c, "die")
	if user {
		c.stopped = true
		r.emitContainerLocked(c, "stop")
		return
	}
	restart := c.restartPolicy == "always" || c.restartPolicy == "unless-stopped" || (c.restartPolicy == "on-failure" && code != 0)
	switch {
	case restart && c.exitCode == nil: // a crash: back at once
		c.RestartCount++
		r.runLocked(c)
	case restart: // a program that always exits: the engine's backoff between restarts, as docker ps shows it
		c.RestartCount++
		c.State = "restarting"
	}
}

func (r *Runtime) StopContainer(ctx context.Context, ref string, grace time.Duration) error {
	return r.call(ctx, "container_stop", func() error {
		c := r.findLocked(ref)
		if c == nil {
			return nil // gone already: stopped enough
		}
		if c.State == "running" || c.State == "paused" || c.State == "restarting" {
			r.exitLocked(c, 143, true)
		}
		return nil
	})
}

func (r *Runtime) RemoveContainer(ctx context.Context, ref string) error {
	return r.call(ctx, "container_remove", func() error {
		c := r.findLocked(ref)
		if c == nil {
			return nil
		}
		r.removeLocked(c)
		return nil
	})
}

func (r *Runtime) removeLocked(c *ctr) {
	if c.State == "running" {
		r.exitLocked(c, 137, true)
	}
	for _, n := range c.Networks {
		if nw, ok := r.networks[n]; ok {
			r.emitLocked(reconcile.RuntimeEvent{Type: reconcile.ObjectNetwork, Action: "disconnect", ID: nw.id, Name: nw.name, Container: c.ID})
		}
	}
	delete(r.containers, c.ID)
	r.emitContainerLocked(c, "destroy")
}

func (r *Runtime) RenameContainer(ctx context.Context, ref, newName string) error {
	return r.call(ctx, "container_rename", func() error {
		c := r.findLocked(ref)
		if c == nil {
			return fmt.Errorf("rename container %s to %s: No such container: %s", ref, newName, ref)
		}
		if other := r.findLocked(newName); other != nil && other != c {
			return fmt.Errorf("rename container %s to %s: Conflict. The container name \"/%s\" is already in use", ref, newName, newName)
		}
		c.Name = newName
		r.emitContainerLocked(c, "rename")
		return nil
	})
}

// ExecProbe answers an exec readiness probe: 0 for a running container.
func (r *Runtime) ExecProbe(ctx context.Context, id string, cmd []string) (int, error) {
	code := -1
	err := r.call(ctx, "container_exec", func() error {
		c := r.findLocked(id)
		if c == nil || c.State != "running" {
			return fmt.Errorf("exec in %.12s: container is not running", id)
		}
		code = 0
		return nil
	})
	return code, err
}

// Events streams the engine's events until ctx ends. A subscriber that
// falls 1024 events behind is cut off with an error, as a slow reader of
// Docker's stream is: it must re-list.
func (r *Runtime) Events(ctx context.Context) (<-chan reconcile.RuntimeEvent, <-chan error) {
	s := &sub{ch: make(chan reconcile.RuntimeEvent, 1024), errc: make(chan error, 1)}
	r.mu.Lock()
	r.calls["events"]++
	r.subs[s] = true
	r.mu.Unlock()
	go func() {
		<-ctx.Done()
		r.mu.Lock()
		defer r.mu.Unlock()
		r.endLocked(s, ctx.Err())
	}()
	return s.ch, s.errc
}

func (r *Runtime) endLocked(s *sub, err error) {
	if s.done {
		return
	}
	s.done = true
	delete(r.subs, s)
	s.errc <- err
	close(s.ch)
}

// CutEvents ends every events stream with an error, as a restarting
// engine would.
func (r *Runtime) CutEvents() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for s := range r.subs {
		r.endLocked(s, errors.New("events stream ended: unexpected EOF"))
	}
}

func (r *Runtime) emitLocked(ev reconcile.RuntimeEvent) {
	if ev.Time.IsZero() {
		ev.Time = r.now()
	}
	for s := range r.subs {
		select {
		case s.ch <- ev:
		default:
			r.endLocked(s, errors.New("events: subscriber fell behind"))
		}
	}
}

// Object is what the engine holds, owned or not, for tests to look at.
type Object struct {
	ID       string
	Name     string
	Labels   map[string]string
	State    string
	Health   string
	Networks []string // names
	Volumes  []string
	ImageID  string
	Restarts int
}

// Containers returns every container, owned or not, by name.
func (r *Runtime) Containers() []Object {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Object
	for _, c := range r.containers {
		o := Object{ID: c.ID, Name: c.Name, Labels: maps.Clone(c.labels), State: c.State, Health: c.Health,
			Volumes: slices.Clone(c.Volumes), ImageID: c.ImageID, Restarts: c.RestartCount}
		for _, id := range c.Networks {
			if n, ok := r.networks[id]; ok {
				o.Networks = append(o.Networks, n.name)
			}
		}
		out = append(out, o)
	}
	slices.SortFunc(out, func(a, b Object) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Networks returns the names of every network.
func (r *Runtime) Networks() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, n := range r.networks {
		out = append(out, n.name)
	}
	slices.Sort(out)
	return out
}

// Volumes returns the names of every volume.
func (r *Runtime) Volumes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(maps.Keys(r.volumes))
}

// Outside changes the engine as a person at it would (docker rm -f,
// docker stop, a crash): no owner check, events as the engine sends them.
type Outside struct{ r *Runtime }

// Outside returns the engine's out-of-band handle.
func (r *Runtime) Outside() Outside { return Outside{r} }

func (o Outside) do(fn func(r *Runtime) error) error {
	o.r.mu.Lock()
	defer o.r.mu.Unlock()
	return fn(o.r)
}

// RemoveContainer is docker rm -f.
func (o Outside) RemoveContainer(ref string) error {
	return o.do(func(r *Runtime) error {
		c := r.findLocked(ref)
		if c == nil {
			return fmt.Errorf("No such container: %s", ref)
		}
		r.removeLocked(c)
		return nil
	})
}

// StopContainer is docker stop.
func (o Outside) StopContainer(ref string) error {
	return o.do(func(r *Runtime) error {
		c := r.findLocked(ref)
		if c == nil {
			return fmt.Errorf("No such container: %s", ref)
		}
		if c.State == "running" {
			r.exitLocked(c, 143, true)
		}
		return nil
	})
}

// Crash ends a container's process with code, by itself: its restart
// policy applies.
func (o Outside) Crash(ref string, code int) error {
	return o.do(func(r *Runtime) error {
		c := r.findLocked(ref)
		if c == nil || c.State != "running" {
			return fmt.Errorf("container %s is not running", ref)
		}
		r.exitLocked(c, code, false)
		return nil
	})
}

// SetHealth sets a running container's health (healthy, unhealthy,
// starting), as its healthcheck would.
func (o Outside) SetHealth(ref, health string) error {
	return o.do(func(r *Runtime) error {
		c := r.findLocked(ref)
		if c == nil || c.State != "running" {
			return fmt.Errorf("container %s is not running", ref)
		}
		c.Health = health
		r.emitContainerLocked(c, "health_status")
		return nil
	})
}

// Disconnect is docker network disconnect -f.
func (o Outside) Disconnect(network, ref string) error {
	return o.do(func(r *Runtime) error {
		n, c := r.findNetworkLocked(network), r.findLocked(ref)
		if n == nil || c == nil || !slices.Contains(c.Networks, n.id) {
			return fmt.Errorf("container %s is not connected to network %s", ref, network)
		}
		c.Networks = slices.DeleteFunc(c.Networks, func(id string) bool { return id == n.id })
		delete(c.IPs, n.id)
		r.emitLocked(reconcile.RuntimeEvent{Type: reconcile.ObjectNetwork, Action: "disconnect", ID: n.id, Name: n.name, Container: c.ID})
		return nil
	})
}

// RemoveNetworkForce is docker network disconnect -f of every container,
// then docker network rm, with nothing in between (on a real engine
// the gap is milliseconds; here a controller could fill it).
func (o Outside) RemoveNetworkForce(name string) error {
	return o.do(func(r *Runtime) error {
		n := r.findNetworkLocked(name)
		if n == nil {
			return fmt.Errorf("network %s not found", name)
		}
		for _, c := range r.containers {
			if slices.Contains(c.Networks, n.id) {
				c.Networks = slices.DeleteFunc(c.Networks, func(id string) bool { return id == n.id })
				delete(c.IPs, n.id)
				r.emitLocked(reconcile.RuntimeEvent{Type: reconcile.ObjectNetwork, Action: "disconnect", ID: n.id, Name: n.name, Container: c.ID})
			}
		}
		return r.removeNetworkLocked(n)
	})
}

// RemoveNetwork is docker network rm.
func (o Outside) RemoveNetwork(name string) error {
	return o.do(func(r *Runtime) error {
		n := r.findNetworkLocked(name)
		if n == nil {
			return fmt.Errorf("network %s not found", name)
		}
		return r.removeNetworkLocked(n)
	})
}

// RemoveImage is docker rmi -f of a reference.
func (o Outside) RemoveImage(ref string) error {
	return o.do(func(r *Runtime) error {
		delete(r.images, normalize(ref))
		r.emitLocked(reconcile.RuntimeEvent{Type: reconcile.ObjectImage, Action: "untag", ID: ref, Name: ref})
		return nil
	})
}

// Pull is docker pull, anonymous.
func (o Outside) Pull(ref string) error {
	return o.do(func(r *Runtime) error {
		img, err := r.registry.pull(ref, nil)
		if err != nil {
			return err
		}
		r.images[normalize(ref)] = img
		r.emitLocked(reconcile.RuntimeEvent{Type: reconcile.ObjectImage, Action: "pull", ID: ref, Name: ref})
		return nil
	})
}

// RunContainer is docker create (and start, when start) of a pulled
// image: a container with these labels (nil: none) and name.
func (o Outside) RunContainer(name, image string, labels map[string]string, start bool) (string, error) {
	var id string
	err := o.do(func(r *Runtime) error {
		img, ok := r.imageLocked(image)
		if !ok {
			return fmt.Errorf("No such image: %s", image)
		}
		var err error
		id, err = r.createLocked(reconcile.ContainerSpec{Name: name, Image: img.ID, Labels: labels, RestartPolicy: "no"})
		if err != nil {
			return err
		}
		if start {
			r.runLocked(r.containers[id])
		}
		return nil
	})
	return id, err
}

// Containers returns every container, owned or not, by name.
func (o Outside) Containers() []Object { return o.r.Containers() }

// Inspect returns a container, owned or not.
func (o Outside) Inspect(ref string) (Object, bool) {
	for _, c := range o.r.Containers() {
		if c.ID == ref || c.Name == ref {
			return c, true
		}
	}
	return Object{}, false
}

// Replica is the index label of a container, for tests: -1 when it has none.
func Replica(o Object) int {
	i, err := strconv.Atoi(o.Labels[reconcile.LabelReplica])
	if err != nil {
		return -1
	}
	return i
}

// CreateNetwork is docker network create with these labels (nil: none).
func (o Outside) CreateNetwork(name string, labels map[string]string) error {
	return o.do(func(r *Runtime) error {
		if r.findNetworkLocked(name) != nil {
			return fmt.Errorf("network with name %s already exists", name)
		}
		n := &netw{id: r.newIDLocked(), name: name, labels: maps.Clone(labels)}
		r.networks[n.id] = n
		r.emitLocked(reconcile.RuntimeEvent{Type: reconcile.ObjectNetwork, Action: "create", ID: n.id, Name: name})
		return nil
	})
}
