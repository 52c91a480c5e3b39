package swarm

import (
	"context"
	"fmt"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"

	"github.com/panelx/panelx/reconcile"
)

// Events follows the Engine's events for networks, volumes, images and
// services, and the tasks by polling them (the Engine sends no task events,
// and a task's container may be on another node): a task that appears or
// changes is a container "update" event, one that leaves the replicas a
// "destroy" event, both named by the task's ID.
func (r *Runtime) Events(ctx context.Context) (<-chan reconcile.RuntimeEvent, <-chan error) {
	out := make(chan reconcile.RuntimeEvent, 256)
	errc := make(chan error, 1)
	ctx, cancel := context.WithCancel(ctx)
	f := filters.NewArgs()
	for _, t := range []string{"network", "volume", "image", "service", "node"} {
		f.Add("type", t)
	}
	msgs, errs := r.cli.Events(ctx, events.ListOptions{Filters: f})
	send := func(ev reconcile.RuntimeEvent) bool {
		select {
		case out <- ev:
			return true
		case <-ctx.Done():
			return false
		}
	}
	go func() {
		defer cancel()
		defer close(out)
		tick := time.NewTicker(r.opts.TaskPoll)
		defer tick.Stop()
		seen := map[string]string{}     // task ID → what it looked like
		lostSeen := map[string]string{} // service name → its lost replicas
		for {
			select {
			case m := <-msgs:
				ev, ok := r.eventOf(m)
				if ok && !send(ev) {
					errc <- ctx.Err()
					return
				}
			case err := <-errs:
				errc <- fmt.Errorf("docker events: %w", err)
				return
			case <-ctx.Done():
				errc <- ctx.Err()
				return
			case <-tick.C:
				r.retrySecrets(ctx) // secrets no service names any more
				evs, err := r.taskEvents(ctx, seen, lostSeen)
				if err != nil {
					errc <- fmt.Errorf("follow tasks: %w", err)
					return
				}
				for _, ev := range evs {
					if !send(ev) {
						errc <- ctx.Err()
						return
					}
				}
			}
		}
	}()
	return out, errc
}

func (r *Runtime) eventOf(m events.Message) (reconcile.RuntimeEvent, bool) {
	switch m.Type {
	case "service":
		name := m.Actor.Attributes["name"]
		return reconcile.RuntimeEvent{Type: reconcile.ObjectWorkload, Action: string(m.Action), ID: m.Actor.ID, Name: name,
			Time: time.Unix(0, m.TimeNano)}, name != ""
	case "node":
		return reconcile.RuntimeEvent{}, false // the task poll sees what a node's loss does to tasks
	}
	return r.Runtime.EventOf(m)
}

// taskEvents lists the replicas and says what changed since seen, which it
// updates; a change in a service's replicas on lost nodes (lostSeen) is a
// service "update" event, so that the service's workload is read again.
func (r *Runtime) taskEvents(ctx context.Context, seen, lostSeen map[string]string) ([]reconcile.RuntimeEvent, error) {
	svcs, err := r.services(ctx)
	if err != nil {
		return nil, err
	}
	tasks, lost, err := r.tasks(ctx, svcs)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var evs []reconcile.RuntimeEvent
	current := map[string]bool{}
	for _, c := range tasks {
		current[c.ID] = true
		look := fmt.Sprint(c.State, c.Health, c.Error, c.Node, c.NodeDown, c.StartedAt.UnixNano(), c.Networks, c.IPs)
		if seen[c.ID] != look {
			seen[c.ID] = look
			evs = append(evs, reconcile.RuntimeEvent{Type: reconcile.ObjectContainer, Action: "update", ID: c.ID, Name: c.Name,
				Project: c.Project, Service: c.Service, Time: now})
		}
	}
	for id := range seen {
		if !current[id] {
			delete(seen, id)
			evs = append(evs, reconcile.RuntimeEvent{Type: reconcile.ObjectContainer, Action: "destroy", ID: id, Time: now})
		}
	}
	names := map[string]bool{}
	for _, s := range svcs {
		names[s.Spec.Name] = true
		look, prev := fmt.Sprint(lost[s.ID]), lostSeen[s.Spec.Name]
		if prev == "" {
			prev = fmt.Sprint([]reconcile.LostReplica(nil)) // unseen: nothing lost
		}
		if prev != look {
			lostSeen[s.Spec.Name] = look
			evs = append(evs, reconcile.RuntimeEvent{Type: reconcile.ObjectWorkload, Action: "update", ID: s.ID, Name: s.Spec.Name, Time: now})
		}
	}
	for name := range lostSeen {
		if !names[name] {
			delete(lostSeen, name)
		}
	}
	return evs, nil
}
