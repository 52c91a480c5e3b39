package reconcile_test

import (
	"testing"
	"time"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/reconcile"
)

// TestNodeLostCondition: an orchestrator's replicas left on lost nodes make
// the NodeLost condition True, naming each node and its replicas; it turns
// False once none is left, and a container runtime never reports it.
func TestNodeLostCondition(t *testing.T) {
	t.Parallel()
	svc := &api.Service{Metadata: api.ObjectMeta{Project: "shop", Name: "web", Generation: 1}, Spec: api.ServiceSpec{Image: "127.0.0.1:5000/shop/web:1"}}
	now := time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC)
	lost := []reconcile.LostReplica{
		{Replica: 3, Node: "m6tu81mkkehx9s6oyoy3fatyy", NodeName: "px-node-2", NodeState: "down"},
		{Replica: 1, Node: "m6tu81mkkehx9s6oyoy3fatyy", NodeName: "px-node-2", NodeState: "down"},
		{Replica: 0, Node: "a1b2c3d4e5f6a7b8", NodeState: "removed"},
	}
	for _, c := range []struct {
		name     string
		previous []api.Condition
		workload *reconcile.Workload
		want     api.ConditionStatus // "" : no NodeLost condition at all
		message  string
	}{
		{name: "container runtime", workload: nil, want: ""},
		{name: "nothing lost, never was", workload: &reconcile.Workload{}, want: ""},
		{name: "replicas on lost nodes", workload: &reconcile.Workload{Lost: lost}, want: api.ConditionTrue,
			message: "node ? (a1b2c3d4e5f6) is removed: replica 0 was running there; " +
				"node px-node-2 (m6tu81mkkehx) is down: replicas 1, 3 were running there"},
		{name: "the node came back", previous: []api.Condition{{Type: api.ConditionNodeLost, Status: api.ConditionTrue}},
			workload: &reconcile.Workload{}, want: api.ConditionFalse},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := reconcile.ComputeServiceStatus(reconcile.ServiceStatusInput{Instance: "test", Service: svc,
				Previous: api.ServiceStatus{Conditions: c.previous}, Workload: c.workload, Now: now})
			got := api.FindCondition(st.Conditions, api.ConditionNodeLost)
			if c.want == "" {
				if got != nil {
					t.Fatalf("NodeLost = %+v, want none", *got)
				}
				return
			}
			if got == nil || got.Status != c.want {
				t.Fatalf("NodeLost = %+v, want status %s", got, c.want)
			}
			if got.Message != c.message {
				t.Errorf("message:\n got %q\nwant %q", got.Message, c.message)
			}
		})
	}
}

// TestReplicaOnADownNode: a replica whose node is down is not ready, says
// so, and names its node.
func TestReplicaOnADownNode(t *testing.T) {
	t.Parallel()
	c := reconcile.Container{State: "running", Health: "healthy", Task: true, Node: "m6tu81", NodeName: "px-node-2"}
	if !c.Ready() {
		t.Fatal("a healthy task on a live node is not ready")
	}
	c.NodeDown = true
	if c.Ready() {
		t.Fatal("a task on a down node counts as ready")
	}
}
