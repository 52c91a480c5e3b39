package containers

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"go.uber.org/zap"

	"github.com/panelx/panelx/naming"
)

// DockerAPI is the part of the Docker client DockerSource uses;
// *client.Client implements it.
type DockerAPI interface {
	ContainerList(ctx context.Context, options container.ListOptions) ([]container.Summary, error)
	ContainerInspect(ctx context.Context, containerID string) (container.InspectResponse, error)
	Events(ctx context.Context, options events.ListOptions) (<-chan events.Message, <-chan error)
}

// DockerSourceOptions tune a DockerSource.
type DockerSourceOptions struct {
	// Resync is how often Containers re-lists the installation's containers
	// (one list call, inspecting only new or changed ones). Default 5s.
	Resync time.Duration
	// Logger gets reconnects and failed refreshes; nil logs nothing.
	Logger *zap.Logger
}

const (
	defaultResync     = 5 * time.Second
	dockerCallTimeout = 10 * time.Second
	maxEventBackoff   = 30 * time.Second
)

// sourceEvents are the container events after which a container's PID,
// start time, restart count, limit or name may have changed.
var sourceEvents = []events.Action{
	events.ActionStart, events.ActionRestart, events.ActionDie, events.ActionStop,
	events.ActionKill, events.ActionPause, events.ActionUnPause, events.ActionRename,
	events.ActionUpdate, events.ActionDestroy,
}

// DockerSource is a Source backed by the Docker Engine. It keeps the
// running PanelX containers of one installation in memory: Run follows
// Docker's events and re-inspects the one container an event names;
// Containers re-lists every Resync period as a safety net, inspecting only
// containers it has not seen or whose state changed. No call inspects every
// container every tick.
type DockerSource struct {
	api      DockerAPI
	instance string
	resync   time.Duration
	log      *zap.Logger

	// refreshMu serialises refreshes, so an older list cannot overwrite
	// what a newer inspect found.
	refreshMu sync.Mutex

	mu       sync.RWMutex
	targets  map[string]Target
	states   map[string]container.ContainerState // as last listed, by ID
	lastSync time.Time
}

// NewDockerSource returns a source of the containers labelled
// dev.panelx.managed=true and dev.panelx.instance=instance.
func NewDockerSource(api DockerAPI, instance string, opts DockerSourceOptions) *DockerSource {
	if opts.Resync <= 0 {
		opts.Resync = defaultResync
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	return &DockerSource{
		api: api, instance: instance, resync: opts.Resync, log: opts.Logger,
		targets: map[string]Target{}, states: map[string]container.ContainerState{},
	}
}

// Containers returns the known containers, first re-listing when the last
// list is older than the resync period. A failed re-list is logged and the
// previous list served, unless there is none yet.
func (s *DockerSource) Containers(ctx context.Context) ([]Target, error) {
	s.mu.RLock()
	stale := time.Since(s.lastSync) >= s.resync
	never := s.lastSync.IsZero()
	s.mu.RUnlock()
	if stale {
		if err := s.Resync(ctx, false); err != nil {
			if never {
				return nil, err
			}
			s.log.Warn("container metrics: re-listing containers failed; serving the previous list", zap.Error(err))
		}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Target, 0, len(s.targets))
	for _, id := range slices.Sorted(maps.Keys(s.targets)) {
		out = append(out, s.targets[id])
	}
	return out, nil
}

// Resync lists the installation's running containers (paused and restarting
// ones included) and inspects those that are new or whose listed state
// changed — all of them when full is set, as after missed events.
func (s *DockerSource) Resync(ctx context.Context, full bool) error {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	list, err := s.list(ctx)
	if err != nil {
		return err
	}
	seen := make(map[string]bool, len(list))
	for _, c := range list {
		seen[c.ID] = true
		s.mu.RLock()
		_, known := s.targets[c.ID]
		same := s.states[c.ID] == c.State
		s.mu.RUnlock()
		if known && same && !full {
			continue
		}
		kept, err := s.refreshLocked(ctx, c.ID)
		if err != nil {
			return err
		}
		if kept {
			s.mu.Lock()
			s.states[c.ID] = c.State
			s.mu.Unlock()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id := range s.targets {
		if !seen[id] {
			s.forgetLocked(id)
		}
	}
	s.lastSync = time.Now()
	return nil
}

func (s *DockerSource) filter() filters.Args {
	return filters.NewArgs(
		filters.Arg("label", naming.LabelManaged+"=true"),
		filters.Arg("label", naming.LabelInstance+"="+s.instance),
	)
}

func (s *DockerSource) list(ctx context.Context) ([]container.Summary, error) {
	ctx, cancel := context.WithTimeout(ctx, dockerCallTimeout)
	defer cancel()
	list, err := s.api.ContainerList(ctx, container.ListOptions{Filters: s.filter()})
	if err != nil {
		return nil, fmt.Errorf("list containers of instance %s: %w", s.instance, err)
	}
	return list, nil
}

// Refresh re-inspects one container: it is added, updated, or dropped when
// it is gone, stopped or not ours.
func (s *DockerSource) Refresh(ctx context.Context, id string) error {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	_, err := s.refreshLocked(ctx, id)
	return err
}

// refreshLocked runs with refreshMu held and reports whether the container
// is kept.
func (s *DockerSource) refreshLocked(ctx context.Context, id string) (bool, error) {
	t, keep, err := s.inspect(ctx, id)
	if err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !keep {
		s.forgetLocked(id)
		return false, nil
	}
	s.targets[id] = t
	return true, nil
}

func (s *DockerSource) forgetLocked(id string) {
	delete(s.targets, id)
	delete(s.states, id)
}

// inspect returns the container as a Target; keep is false when it is
// gone, not running or not of this installation.
func (s *DockerSource) inspect(ctx context.Context, id string) (t Target, keep bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, dockerCallTimeout)
	defer cancel()
	in, err := s.api.ContainerInspect(ctx, id)
	if cerrdefs.IsNotFound(err) {
		return Target{}, false, nil
	}
	if err != nil {
		return Target{}, false, fmt.Errorf("inspect container %s: %w", id, err)
	}
	return targetFromInspect(in, s.instance)
}

func targetFromInspect(in container.InspectResponse, instance string) (Target, bool, error) {
	if in.ContainerJSONBase == nil || in.State == nil || in.Config == nil || in.HostConfig == nil {
		return Target{}, false, fmt.Errorf("inspect container: incomplete answer")
	}
	labels := in.Config.Labels
	if labels[naming.LabelManaged] != "true" || labels[naming.LabelInstance] != instance || !in.State.Running {
		return Target{}, false, nil
	}
	t := Target{
		ID:           in.ID,
		Name:         strings.TrimPrefix(in.Name, "/"),
		Labels:       maps.Clone(labels),
		PID:          in.State.Pid,
		RestartCount: in.RestartCount,
		MemoryLimit:  in.HostConfig.Memory,
		NetworkMode:  string(in.HostConfig.NetworkMode),
	}
	if in.State.StartedAt != "" {
		started, err := time.Parse(time.RFC3339Nano, in.State.StartedAt)
		if err != nil {
			return Target{}, false, fmt.Errorf("inspect container %s: start time %q: %w", in.ID, in.State.StartedAt, err)
		}
		t.StartedAt = started
	}
	return t, true, nil
}

// Run follows Docker's events until ctx ends, reconnecting with backoff.
// Every (re)connection is followed by a full resync, since events sent
// while disconnected are lost.
func (s *DockerSource) Run(ctx context.Context) error {
	backoff := time.Second
	for {
		start := time.Now()
		err := s.follow(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(start) > maxEventBackoff {
			backoff = time.Second
		}
		s.log.Warn("container metrics: Docker events interrupted; reconnecting",
			zap.Error(err), zap.Duration("backoff", backoff))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxEventBackoff)
	}
}

func (s *DockerSource) follow(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	f := s.filter()
	f.Add("type", string(events.ContainerEventType))
	for _, a := range sourceEvents {
		f.Add("event", string(a))
	}
	msgs, errs := s.api.Events(ctx, events.ListOptions{Filters: f})
	if err := s.Resync(ctx, true); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errs:
			return fmt.Errorf("docker events: %w", err)
		case m := <-msgs:
			s.handle(ctx, m)
		}
	}
}

func (s *DockerSource) handle(ctx context.Context, m events.Message) {
	id := m.Actor.ID
	if m.Action == events.ActionDestroy {
		s.mu.Lock()
		s.forgetLocked(id)
		s.mu.Unlock()
		return
	}
	if err := s.Refresh(ctx, id); err != nil && ctx.Err() == nil {
		s.log.Warn("container metrics: refresh after event failed",
			zap.String("container", id), zap.String("event", string(m.Action)), zap.Error(err))
	}
}
