package swarm

import (
	"reflect"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/swarm"

	"github.com/panelx/panelx/reconcile"
)

// TestLostByService: the tasks a lost node last reported as (about to be)
// running are its lost replicas; ended tasks, tasks on live nodes and
// unassigned ones are not.
func TestLostByService(t *testing.T) {
	t.Parallel()
	nodes := map[string]node{
		"up":   {name: "px-node-1", state: swarm.NodeStateReady},
		"down": {name: "px-node-2", state: swarm.NodeStateDown},
	}
	task := func(svc string, slot int, nodeID string, state, desired swarm.TaskState) swarm.Task {
		return swarm.Task{ServiceID: svc, Slot: slot, NodeID: nodeID, DesiredState: desired, Status: swarm.TaskStatus{State: state}}
	}
	tasks := []swarm.Task{
		task("web", 1, "up", swarm.TaskStateRunning, swarm.TaskStateRunning),       // fine
		task("web", 2, "down", swarm.TaskStateRunning, swarm.TaskStateShutdown),    // left behind
		task("web", 2, "up", swarm.TaskStateRunning, swarm.TaskStateRunning),       // its replacement
		task("web", 3, "down", swarm.TaskStateStarting, swarm.TaskStateRunning),    // not rescheduled yet
		task("web", 4, "down", swarm.TaskStateFailed, swarm.TaskStateShutdown),     // ended before the loss
		task("web", 3, "down", swarm.TaskStateRunning, swarm.TaskStateShutdown),    // same slot and node: once
		task("db", 1, "gone", swarm.TaskStateRunning, swarm.TaskStateRunning),      // node removed
		task("db", 2, "", swarm.TaskStatePending, swarm.TaskStateRunning),          // not placed
		task("db", 3, "down", swarm.TaskStateComplete, swarm.TaskStateShutdown),    // ended
		task("cache", 1, "down", swarm.TaskStateShutdown, swarm.TaskStateShutdown), // ended
		task("cache", 2, "up", swarm.TaskStatePreparing, swarm.TaskStateRunning),   // fine
		task("cache", 0, "down", swarm.TaskStateRunning, swarm.TaskStateRunning),   // no slot: not a replica
	}
	got := lostByService(tasks, nodes)
	want := map[string][]reconcile.LostReplica{
		"web": {
			{Replica: 1, Node: "down", NodeName: "px-node-2", NodeState: "down"},
			{Replica: 2, Node: "down", NodeName: "px-node-2", NodeState: "down"},
		},
		"db": {{Replica: 0, Node: "gone", NodeState: nodeRemoved}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("lost replicas:\n got %+v\nwant %+v", got, want)
	}
}

// TestOptionsValidate: the settings' words in every refusal; dnsrr only
// with host publishing (Swarm refuses it on the routing mesh).
func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		opts Options
		want string // "" : valid
	}{
		{Options{}, ""},
		{Options{PublishMode: PublishIngress, EndpointMode: EndpointVIP}, ""},
		{Options{PublishMode: PublishHost, EndpointMode: EndpointDNSRR}, ""},
		{Options{PublishMode: PublishIngress, EndpointMode: EndpointDNSRR}, "needs PANELX_SWARM_PUBLISH_MODE=host"},
		{Options{EndpointMode: EndpointDNSRR}, "needs PANELX_SWARM_PUBLISH_MODE=host"},
		{Options{PublishMode: "mesh"}, `PANELX_SWARM_PUBLISH_MODE "mesh": want ingress or host`},
		{Options{EndpointMode: "rr"}, `PANELX_SWARM_ENDPOINT_MODE "rr": want vip or dnsrr`},
	} {
		err := c.opts.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v, want valid", c.opts, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: %v, want %q", c.opts, err, c.want)
		}
	}
}
