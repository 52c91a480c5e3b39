package reconcile

import (
	"testing"

	"github.com/panelx/panelx/api"
)

// TestStatusOfReplicasOnADownNode: replicas whose node the orchestrator
// lost are not ready, make the service Degraded naming them and their
// nodes, and report where they are.
func TestStatusOfReplicasOnADownNode(t *testing.T) {
	two := int32(2)
	svc := testService(func(s *api.Service) { s.Spec.Replicas = &two })
	task := func(i int, node string, down bool) Container {
		return Container{ID: "task" + node, Project: "shop", Service: "web", Replica: i, Task: true, State: "running", Health: "",
			SpecHash: replicaHash(testInstance, svc, i, "sha256:img1", nil, true), NodeName: node, NodeDown: down}
	}
	st := ComputeServiceStatus(ServiceStatusInput{Instance: testInstance, Service: svc, Now: t0,
		Image:      ImageState{Image: Image{Ref: svc.Spec.Image, ID: "sha256:img1"}},
		Containers: []Container{task(0, "px-node-1", false), task(1, "px-node-2", true)}})
	if st.ReadyReplicas != 1 {
		t.Errorf("ready replicas %d, want 1 (the one on a live node)", st.ReadyReplicas)
	}
	if got := st.Replicas[1].Node; got != "px-node-2" {
		t.Errorf("replica 1 node %q", got)
	}
	d := api.FindCondition(st.Conditions, api.ConditionDegraded)
	want := "replica 1: node px-node-2 is down, waiting for the orchestrator to reschedule"
	if d == nil || d.Status != api.ConditionTrue || d.Reason != ReasonNodeLost || d.Message != want {
		t.Errorf("Degraded = %+v, want True, %s, %q", d, ReasonNodeLost, want)
	}
}
