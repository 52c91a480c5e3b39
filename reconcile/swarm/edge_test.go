package swarm

import (
	"testing"

	"github.com/docker/docker/api/types/events"
)

// TestEdgeEvent: what makes KeepEdgeAttached look at the networks at once.
func TestEdgeEvent(t *testing.T) {
	const id = "4f1c2a9be0d3aa"
	msg := func(typ events.Type, action events.Action, actorID, name string) events.Message {
		return events.Message{Type: typ, Action: action, Actor: events.Actor{ID: actorID, Attributes: map[string]string{"name": name}}}
	}
	for _, tc := range []struct {
		name string
		edge string
		m    events.Message
		want bool
	}{
		{"the edge container started (by name)", "panelx-edge", msg(events.ContainerEventType, events.ActionStart, id, "panelx-edge"), true},
		{"the edge container started (named by ID)", id[:12], msg(events.ContainerEventType, events.ActionStart, id, "whatever"), true},
		{"the edge container was created, not started yet", "panelx-edge", msg(events.ContainerEventType, events.ActionCreate, id, "panelx-edge"), false},
		{"another container started", "panelx-edge", msg(events.ContainerEventType, events.ActionStart, id, "panelx-edge-2"), false},
		{"a network was created", "panelx-edge", msg(events.NetworkEventType, events.ActionCreate, "n1", "panelx-shop"), true},
		// A detach is what RemoveNetwork does before it removes the
		// network: attaching it again then would race the removal.
		{"a container left a network", "panelx-edge", msg(events.NetworkEventType, events.ActionDisconnect, "n1", "panelx-shop"), false},
		{"a volume was created", "panelx-edge", msg(events.VolumeEventType, events.ActionCreate, "v", "panelx-edge"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Runtime{opts: Options{EdgeContainer: tc.edge}}
			if got := r.edgeEvent(tc.m); got != tc.want {
				t.Errorf("edgeEvent = %v, want %v", got, tc.want)
			}
		})
	}
}
