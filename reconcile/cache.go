package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/panelx/panelx/api"
)

// Key names what a reconcile looks at: a Project (Name only), a Service or
// a Volume (Project and Name).
type Key struct {
	Kind    api.Kind
	Project string
	Name    string
}

func (k Key) String() string {
	if k.Kind == api.KindProject {
		return string(k.Kind) + "/" + k.Name
	}
	return string(k.Kind) + "/" + k.Project + "/" + k.Name
}

// ServiceKey, ProjectKey, VolumeKey and SecretKey build keys.
func ServiceKey(project, name string) Key {
	return Key{Kind: api.KindService, Project: project, Name: name}
}
func ProjectKey(name string) Key { return Key{Kind: api.KindProject, Name: name} }
func VolumeKey(project, name string) Key {
	return Key{Kind: api.KindVolume, Project: project, Name: name}
}

// SecretKey is a secret being deleted (nothing else of a secret needs the
// controller: the services using it are queued instead).
func SecretKey(project, name string) Key {
	return Key{Kind: api.KindSecret, Project: project, Name: name}
}

// tombstoneTTL is how long a removed container's ID is remembered, so a
// late inspect result cannot bring it back into the cache.
const tombstoneTTL = 10 * time.Minute

// Cache is the observed Docker state: listed once, then kept current by
// the events stream and by the executor writing its own changes through.
// Reconciles read it instead of listing Docker objects each time.
type Cache struct {
	rt Runtime

	mu         sync.RWMutex
	containers map[string]Container // by ID
	networks   map[string]Network   // by Docker name
	volumes    map[string]Volume    // by Docker name
	removed    map[string]time.Time // container ID → when removed
	syncing    bool
	dirty      map[string]bool // container IDs touched by events during a sync
	synced     bool

	// images maps an image reference to its local ID ("" when absent), so
	// a reconcile does not inspect its image each time. Any image event
	// drops them all (images change rarely); imageGen makes an inspect
	// that raced with one not count.
	images   map[string]string
	imageGen uint64

	// orch is the runtime's Orchestrator (nil for a container runtime);
	// workloads are its services, by name.
	orch      Orchestrator
	workloads map[string]Workload
	attempted map[string]string // workload name → spec hash last sent
}

// NewCache returns an empty cache; call Sync before reading it.
func NewCache(rt Runtime) *Cache {
	c := &Cache{rt: rt, containers: map[string]Container{}, networks: map[string]Network{},
		volumes: map[string]Volume{}, removed: map[string]time.Time{}, dirty: map[string]bool{}, images: map[string]string{},
		workloads: map[string]Workload{}, attempted: map[string]string{}}
	c.orch, _ = AsOrchestrator(rt)
	return c
}

// Synced reports whether a full list has completed.
func (c *Cache) Synced() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.synced
}

// Sync lists every object of the installation and replaces the cache:
// one list call per kind. A container the list shows unchanged keeps its
// cached inspect (a no-drift resync asks nothing more of the engine); a
// new one, or one whose list entry differs, is inspected. full inspects
// every container: after the events stream (re)connected, when changes
// the list cannot show may have been missed. Events that arrive while it
// lists are re-inspected afterwards, so the older list cannot overwrite
// them.
func (c *Cache) Sync(ctx context.Context, full bool) error {
	c.mu.Lock()
	c.syncing = true
	c.dirty = map[string]bool{}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.syncing = false
		c.mu.Unlock()
	}()

	listed, err := c.rt.ListContainers(ctx)
	if err != nil {
		return err
	}
	networks, err := c.rt.ListNetworks(ctx)
	if err != nil {
		return err
	}
	volumes, err := c.rt.ListVolumes(ctx)
	if err != nil {
		return err
	}
	var workloads []Workload
	if c.orch != nil {
		if workloads, err = c.orch.ListWorkloads(ctx); err != nil {
			return err
		}
	}
	if full {
		c.ImagesChanged() // image events may have been missed too
	}
	containers := make(map[string]Container, len(listed))
	var inspect []string
	c.mu.RLock()
	for _, l := range listed {
		cached, ok := c.containers[l.ID]
		if !full && ok && l.unchangedSince(cached) {
			if l.State == "running" && l.ListedAt.After(cached.ObservedAt) {
				cached.ObservedAt = l.ListedAt // seen running, as it was
			}
			containers[l.ID] = cached
			continue
		}
		inspect = append(inspect, l.ID)
	}
	c.mu.RUnlock()
	inspected, err := c.inspectAll(ctx, inspect)
	if err != nil {
		return err
	}
	for _, ct := range inspected {
		containers[ct.ID] = ct
	}

	c.mu.Lock()
	c.containers = map[string]Container{}
	for id, ct := range containers {
		if _, gone := c.removed[id]; !gone {
			c.containers[id] = ct
		}
	}
	c.networks = map[string]Network{}
	for _, n := range networks {
		c.networks[n.Name] = n
	}
	c.volumes = map[string]Volume{}
	for _, v := range volumes {
		c.volumes[v.Name] = v
	}
	c.workloads = map[string]Workload{}
	for _, w := range workloads {
		c.workloads[w.Name] = w
	}
	now := time.Now()
	for id, at := range c.removed {
		if now.Sub(at) > tombstoneTTL {
			delete(c.removed, id)
		}
	}
	dirty := c.dirty
	c.dirty = map[string]bool{}
	c.synced = true
	c.mu.Unlock()
	for id := range dirty {
		if err := c.RefreshContainer(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// syncInspects bounds the inspects a sync runs at once.
const syncInspects = 8

// inspectAll inspects containers in parallel; those gone meanwhile are
// left out.
func (c *Cache) inspectAll(ctx context.Context, ids []string) ([]Container, error) {
	out := make([]Container, len(ids))
	found := make([]bool, len(ids))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(syncInspects)
	for i, id := range ids {
		g.Go(func() error {
			ct, err := c.rt.InspectContainer(gctx, id)
			if errors.Is(err, ErrNotFound) {
				return nil // removed meanwhile
			}
			if err != nil {
				return err
			}
			out[i], found[i] = ct, true
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	kept := out[:0]
	for i, ct := range out {
		if found[i] {
			kept = append(kept, ct)
		}
	}
	return kept, nil
}

// RefreshContainer re-inspects one container and updates the cache.
func (c *Cache) RefreshContainer(ctx context.Context, ref string) error {
	ct, err := c.rt.InspectContainer(ctx, ref)
	if errors.Is(err, ErrNotFound) {
		c.mu.Lock()
		if old, ok := c.findContainerLocked(ref); ok {
			delete(c.containers, old.ID)
		}
		c.mu.Unlock()
		return nil
	}
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.syncing {
		c.dirty[ct.ID] = true
	}
	if _, gone := c.removed[ct.ID]; !gone {
		c.containers[ct.ID] = ct
	}
	return nil
}

// ImageID returns the local ID of an image reference ("" when the image
// is not present), inspecting it only when no image changed since the
// last time it was asked.
func (c *Cache) ImageID(ctx context.Context, ref string) (string, error) {
	c.mu.RLock()
	id, ok := c.images[ref]
	gen := c.imageGen
	c.mu.RUnlock()
	if ok {
		return id, nil
	}
	id, err := c.rt.ImageID(ctx, ref)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	if c.imageGen == gen {
		c.images[ref] = id
	}
	c.mu.Unlock()
	return id, nil
}

// ImagesChanged forgets every image ID: an image event arrived, or this
// process pulled one.
func (c *Cache) ImagesChanged() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.imageGen++
	clear(c.images)
}

// containerState is the cached state of a container ("" when unknown).
func (c *Cache) containerState(ref string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ct, _ := c.findContainerLocked(ref)
	return ct.State
}

func (c *Cache) findContainerLocked(ref string) (Container, bool) {
	if ct, ok := c.containers[ref]; ok {
		return ct, true
	}
	for _, ct := range c.containers {
		if ct.Name == ref {
			return ct, true
		}
	}
	return Container{}, false
}

// ContainerRemoved forgets a container for good.
func (c *Cache) ContainerRemoved(ref string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ct, ok := c.findContainerLocked(ref); ok {
		ref = ct.ID
	}
	delete(c.containers, ref)
	c.removed[ref] = time.Now()
}

// SetNetwork and the other setters write an executor's change through.
func (c *Cache) SetNetwork(n Network) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.networks[n.Name] = n
}

// NetworkRemoved forgets a network, by name or ID.
func (c *Cache) NetworkRemoved(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, n := range c.networks {
		if n.Name == name || n.ID == name {
			delete(c.networks, k)
		}
	}
}

// SetVolume records a volume.
func (c *Cache) SetVolume(v Volume) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.volumes[v.Name] = v
}

// VolumeRemoved forgets a volume.
func (c *Cache) VolumeRemoved(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.volumes, name)
}

// Apply updates the cache for a runtime event and returns the keys whose
// reconcile it concerns.
func (c *Cache) Apply(ctx context.Context, ev RuntimeEvent) ([]Key, error) {
	switch ev.Type {
	case ObjectContainer:
		var keys []Key
		if ev.Action == "destroy" {
			c.mu.Lock()
			if old, ok := c.containers[ev.ID]; ok {
				keys = append(keys, ServiceKey(old.Project, old.Service))
			}
			delete(c.containers, ev.ID)
			c.removed[ev.ID] = time.Now()
			c.mu.Unlock()
		} else if err := c.RefreshContainer(ctx, ev.ID); err != nil {
			return nil, err
		}
		if ev.Project != "" && ev.Service != "" {
			keys = append(keys, ServiceKey(ev.Project, ev.Service))
		}
		return dedupKeys(keys), nil
	case ObjectNetwork:
		if ev.Action == "connect" || ev.Action == "disconnect" {
			if ev.Container == "" {
				return nil, nil
			}
			if err := c.RefreshContainer(ctx, ev.Container); err != nil {
				return nil, err
			}
			c.mu.RLock()
			ct, ok := c.containers[ev.Container]
			c.mu.RUnlock()
			if ok {
				return []Key{ServiceKey(ct.Project, ct.Service)}, nil
			}
			return nil, nil
		}
		if ev.Action == "destroy" {
			c.mu.Lock()
			var keys []Key
			for k, n := range c.networks {
				if n.ID == ev.ID {
					delete(c.networks, k)
					keys = append(keys, c.projectKeysLocked(n.Project)...)
				}
			}
			c.mu.Unlock()
			return keys, nil
		}
		n, err := c.rt.InspectNetwork(ctx, ev.ID)
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrNotOwned) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		c.SetNetwork(n)
		return []Key{ProjectKey(n.Project)}, nil
	case ObjectVolume:
		if ev.Action == "destroy" {
			c.mu.Lock()
			old, ok := c.volumes[ev.Name]
			delete(c.volumes, ev.Name)
			c.mu.Unlock()
			if ok {
				return []Key{VolumeKey(old.Project, old.Volume)}, nil
			}
			return nil, nil
		}
		v, err := c.rt.InspectVolume(ctx, ev.Name)
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrNotOwned) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		c.SetVolume(v)
		return []Key{VolumeKey(v.Project, v.Volume)}, nil
	case ObjectImage:
		c.ImagesChanged()
		return nil, nil
	case ObjectWorkload:
		w, err := c.RefreshWorkload(ctx, ev.Name)
		if err != nil {
			return nil, err
		}
		if w.Project == "" {
			w.Project, w.Service = ev.Project, ev.Service
		}
		if w.Project == "" {
			return nil, nil
		}
		return []Key{ServiceKey(w.Project, w.Service), ProjectKey(w.Project)}, nil
	}
	return nil, fmt.Errorf("unknown event type %q", ev.Type)
}

// projectKeysLocked: a lost network concerns the project and every service
// of it that has containers (they lost their network too).
func (c *Cache) projectKeysLocked(project string) []Key {
	keys := []Key{ProjectKey(project)}
	for _, ct := range c.containers {
		if ct.Project == project {
			keys = append(keys, ServiceKey(ct.Project, ct.Service))
		}
	}
	return dedupKeys(keys)
}

func dedupKeys(keys []Key) []Key {
	seen := map[Key]bool{}
	out := keys[:0]
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// Containers returns the containers of a service, or of a whole project
// when service is "".
func (c *Cache) Containers(project, service string) []Container {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []Container
	for _, ct := range c.containers {
		if ct.Project == project && (service == "" || ct.Service == service) {
			out = append(out, ct)
		}
	}
	slices.SortFunc(out, func(a, b Container) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}

// Network returns the default network of a project, or nil.
func (c *Cache) Network(project string) *Network {
	return c.NetworkNamed(NetworkName(project))
}

// NetworkNamed returns the network with this Docker name, or nil.
func (c *Cache) NetworkNamed(name string) *Network {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if n, ok := c.networks[name]; ok {
		return &n
	}
	return nil
}

// Networks returns every network of a project, by Docker name.
func (c *Cache) Networks(project string) map[string]Network {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := map[string]Network{}
	for name, n := range c.networks {
		if n.Project == project {
			out[name] = n
		}
	}
	return out
}

// Volumes returns the Docker volumes of a project, by Docker name.
func (c *Cache) Volumes(project string) map[string]Volume {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := map[string]Volume{}
	for name, v := range c.volumes {
		if v.Project == project {
			out[name] = v
		}
	}
	return out
}

// Keys returns a key for every project, service and volume that has Docker
// objects, so a resync also visits orphans whose rows are gone.
func (c *Cache) Keys() []Key {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var keys []Key
	for _, ct := range c.containers {
		keys = append(keys, ServiceKey(ct.Project, ct.Service))
	}
	for _, n := range c.networks {
		keys = append(keys, ProjectKey(n.Project))
	}
	for _, v := range c.volumes {
		keys = append(keys, VolumeKey(v.Project, v.Volume))
	}
	for _, w := range c.workloads {
		keys = append(keys, ServiceKey(w.Project, w.Service))
	}
	return dedupKeys(keys)
}

// Workload returns the orchestrator's workload of a service (nil: none),
// and whether the runtime is an orchestrator at all.
func (c *Cache) Workload(project, service string) (*Workload, bool) {
	if c.orch == nil {
		return nil, false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	name := WorkloadName(project, service)
	if w, ok := c.workloads[name]; ok {
		w.Attempted = c.attempted[name]
		return &w, true
	}
	return nil, true
}

// WorkloadAttempted remembers the spec hash sent to a workload (an
// orchestrator that rolls back forgets it).
func (c *Cache) WorkloadAttempted(name, hash string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.attempted[name] = hash
}

// RefreshWorkload inspects a workload again; a gone one is forgotten (and
// returned empty but for its name).
func (c *Cache) RefreshWorkload(ctx context.Context, name string) (Workload, error) {
	if c.orch == nil {
		return Workload{}, nil
	}
	w, err := c.orch.InspectWorkload(ctx, name)
	if errors.Is(err, ErrNotFound) {
		c.mu.Lock()
		old := c.workloads[name]
		delete(c.workloads, name)
		c.mu.Unlock()
		old.Name = name
		return old, nil
	}
	if err != nil {
		return Workload{}, err
	}
	c.mu.Lock()
	c.workloads[w.Name] = w
	c.mu.Unlock()
	return w, nil
}

// SetWorkload records a workload an executor created or updated.
func (c *Cache) SetWorkload(w Workload) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.workloads[w.Name] = w
}

// VolumeUsers names the containers mounting a Docker volume.
func (c *Cache) VolumeUsers(name string) []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var users []string
	for _, ct := range c.containers {
		if slices.Contains(ct.Volumes, name) {
			users = append(users, ct.Name)
		}
	}
	slices.Sort(users)
	return users
}
