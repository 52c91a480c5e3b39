package swarm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/errdefs"

	"github.com/panelx/panelx/reconcile"
)

// The edge on Swarm. Replicas are Swarm tasks whose addresses are on the
// project's overlay, which the host cannot reach (an edge on host
// networking gets no route to them, and a replica on a worker node is not on
// the manager at all). So the edge runs as a container on the manager's
// engine (on a bridge network, publishing 80 and 443: a container on host
// networking cannot join other networks), and PanelX connects it to every
// network of the installation — attachable overlays, which a container
// outside Swarm may join — when it creates one and whenever the edge
// container starts (a recreated container has lost its networks). Through
// the overlay the edge reaches every replica on every node by the address
// the controller publishes (the task's address on that network). See
// docs/architecture.md, "Runtimes".

// DefaultEdgeSweep is how often KeepEdgeAttached checks every network even
// when the engine said nothing.
const DefaultEdgeSweep = 30 * time.Second

// CreateNetwork creates the overlay and attaches the edge container to it
// at once, so that no endpoint on it is published before the edge can reach
// it. A failed attach does not fail the network (services without domains
// need no edge): KeepEdgeAttached retries it and says why.
func (r *Runtime) CreateNetwork(ctx context.Context, name string, labels map[string]string) (reconcile.Network, error) {
	n, err := r.Runtime.CreateNetwork(ctx, name, labels)
	if err != nil || r.opts.EdgeContainer == "" {
		return n, err
	}
	if c, err := r.edgeContainer(ctx); err == nil {
		_, _ = r.connectEdge(ctx, c.ID, n)
	}
	return n, nil
}

// RemoveNetwork detaches the edge container first: an overlay with a
// container attached cannot be removed ("active endpoints").
func (r *Runtime) RemoveNetwork(ctx context.Context, name string) error {
	if r.opts.EdgeContainer == "" {
		return r.Runtime.RemoveNetwork(ctx, name)
	}
	var err error
	for range 3 {
		if err = r.disconnectEdge(ctx, name); err != nil {
			return fmt.Errorf("remove network %s: %w", name, err)
		}
		err = r.Runtime.RemoveNetwork(ctx, name)
		switch {
		case err == nil:
			return nil
		case strings.Contains(err.Error(), "active endpoints"):
			continue // a sweep of KeepEdgeAttached attached it again meanwhile
		case strings.Contains(err.Error(), "not found"):
			// Swarm has removed it; the engine keeps showing an overlay a
			// container of its own was on for a moment longer (measured:
			// up to seconds), and an event in that moment makes the
			// cache see it again.
			return nil
		}
		return err
	}
	return err
}

// connectEdge attaches the edge container (by its ID, as inspected) to one
// network; attached reports whether it was not attached before.
func (r *Runtime) connectEdge(ctx context.Context, edgeID string, n reconcile.Network) (attached bool, err error) {
	err = r.call(ctx, "edge_connect", func(ctx context.Context) error {
		return r.cli.NetworkConnect(ctx, n.ID, edgeID, nil)
	})
	switch {
	case err == nil:
		return true, nil
	case strings.Contains(err.Error(), "is already attached to network") || strings.Contains(err.Error(), "already exists in network"):
		return false, nil // attached meanwhile (the sweep and a create race)
	case errdefs.IsNotFound(err) && strings.Contains(strings.ToLower(err.Error()), "network"):
		return false, nil // the network went meanwhile
	}
	return false, fmt.Errorf("attach the edge container %s to network %s: %w", r.opts.EdgeContainer, n.Name, err)
}

// disconnectEdge detaches the edge container from one of this
// installation's networks, if it is attached.
func (r *Runtime) disconnectEdge(ctx context.Context, name string) error {
	n, err := r.InspectNetwork(ctx, name)
	if errors.Is(err, reconcile.ErrNotFound) || errors.Is(err, reconcile.ErrNotOwned) {
		return nil // nothing to detach from; the removal says the rest
	}
	if err != nil {
		return err
	}
	edge := r.opts.EdgeContainer
	err = r.call(ctx, "edge_disconnect", func(ctx context.Context) error {
		return r.cli.NetworkDisconnect(ctx, n.ID, edge, false)
	})
	if err == nil || errdefs.IsNotFound(err) || strings.Contains(err.Error(), "is not connected") {
		return nil
	}
	return fmt.Errorf("detach the edge container %s from network %s: %w", edge, name, err)
}

// AttachEdge attaches the edge container (Options.EdgeContainer) to every
// network of this installation it is not on yet, and returns the names of
// those it attached it to. The edge must be a container of this engine (the
// manager PanelX talks to) with a network of its own: one on host networking
// or sharing another container's cannot join networks.
func (r *Runtime) AttachEdge(ctx context.Context) ([]string, error) {
	edge := r.opts.EdgeContainer
	if edge == "" {
		return nil, nil
	}
	nets, err := r.ListNetworks(ctx)
	if err != nil {
		return nil, fmt.Errorf("attach the edge: %w", err)
	}
	if len(nets) == 0 {
		return nil, nil
	}
	c, err := r.edgeContainer(ctx)
	if err != nil {
		return nil, fmt.Errorf("attach the edge: %w", err)
	}
	on := map[string]bool{}
	if c.NetworkSettings != nil {
		for _, es := range c.NetworkSettings.Networks {
			if es != nil {
				on[es.NetworkID] = true
			}
		}
	}
	var attached []string
	var errs []error
	for _, n := range nets {
		if on[n.ID] {
			continue
		}
		ok, err := r.connectEdge(ctx, c.ID, n)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			attached = append(attached, n.Name)
		}
	}
	return attached, errors.Join(errs...)
}

// edgeContainer inspects the edge container and refuses one that cannot
// join networks: on host networking, the engine asks Swarm for the overlay
// attachment before it finds out, and the attachment left behind keeps the
// network from being removed ("in use by task", seen on Engine 20.10).
func (r *Runtime) edgeContainer(ctx context.Context) (container.InspectResponse, error) {
	edge := r.opts.EdgeContainer
	var c container.InspectResponse
	err := r.call(ctx, "edge_inspect", func(ctx context.Context) (err error) {
		c, err = r.cli.ContainerInspect(ctx, edge)
		return err
	})
	if errdefs.IsNotFound(err) {
		return c, fmt.Errorf("no container %s on the engine PanelX drives (PANELX_SWARM_EDGE_CONTAINER names the container running `panelx edge` on this manager)", edge)
	}
	if err != nil {
		return c, fmt.Errorf("inspect container %s: %w", edge, err)
	}
	if mode := c.HostConfig.NetworkMode; mode.IsHost() || mode.IsContainer() || mode.IsNone() {
		return c, fmt.Errorf("container %s runs with network mode %q, which cannot join the projects' overlays: run it on a bridge network, publishing 80 and 443", edge, mode)
	}
	return c, nil
}

// KeepEdgeAttached keeps the edge container on every network of this
// installation until ctx ends: at once, when the engine says the edge
// container started (recreated, it has lost its networks) or a network was
// created, and every sweep interval (DefaultEdgeSweep if 0). report gets
// each attach it made (err nil) and each failure, a repeated failure once.
func (r *Runtime) KeepEdgeAttached(ctx context.Context, sweep time.Duration, report func(network string, err error)) {
	if r.opts.EdgeContainer == "" {
		return
	}
	if sweep <= 0 {
		sweep = DefaultEdgeSweep
	}
	lastErr := ""
	check := func() {
		names, err := r.AttachEdge(ctx)
		if ctx.Err() != nil {
			return
		}
		for _, n := range names {
			report(n, nil)
		}
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if msg != "" && msg != lastErr {
			report("", err)
		}
		lastErr = msg
	}
	f := filters.NewArgs(filters.Arg("type", string(events.ContainerEventType)), filters.Arg("type", string(events.NetworkEventType)),
		filters.Arg("event", string(events.ActionStart)), filters.Arg("event", string(events.ActionCreate)))
	tick := time.NewTicker(sweep)
	defer tick.Stop()
	for ctx.Err() == nil {
		sctx, cancel := context.WithCancel(ctx)
		msgs, errs := r.cli.Events(sctx, events.ListOptions{Filters: f})
		check() // after subscribing: nothing that happens from here is missed
	follow:
		for {
			select {
			case m := <-msgs:
				if r.edgeEvent(m) {
					check()
				}
			case <-tick.C:
				check()
			case err := <-errs:
				if ctx.Err() == nil {
					report("", fmt.Errorf("attach the edge: follow the engine's events: %w", err))
				}
				break follow
			case <-ctx.Done():
				break follow
			}
		}
		cancel()
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// edgeEvent: the edge container started, or a network was created.
func (r *Runtime) edgeEvent(m events.Message) bool {
	switch m.Type {
	case events.ContainerEventType:
		edge := r.opts.EdgeContainer
		return m.Action == events.ActionStart && (m.Actor.Attributes["name"] == strings.TrimPrefix(edge, "/") || strings.HasPrefix(m.Actor.ID, edge))
	case events.NetworkEventType:
		return m.Action == events.ActionCreate
	}
	return false
}
