package reconcile

import (
	"testing"
	"time"

	"github.com/panelx/panelx/api"
)

// TestVolumeStatusNode: status.node records where the data is — set once,
// from the engine's listing, and changed only by a move; a copy the engine
// lists while the data is elsewhere is not reported as the volume.
func TestVolumeStatusNode(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	on := func(node string) *api.Volume {
		v := testVolume()
		v.Status.Node = node
		return v
	}
	here := &Volume{Name: "panelx-shop-data", Node: "px-node-1"}
	for _, c := range []struct {
		name                 string
		vol                  *api.Volume
		dv                   *Volume
		node                 string
		wantNode, wantReason string
		wantPhase            api.Phase
	}{
		{name: "first seen: recorded", vol: on(""), dv: here, node: "px-node-1", wantNode: "px-node-1", wantReason: ReasonAsExpected, wantPhase: api.PhaseReady},
		{name: "missing here: the record stays", vol: on("px-node-1"), node: "px-node-1", wantNode: "px-node-1", wantReason: ReasonReconciling, wantPhase: api.PhasePending},
		{name: "moved away, a stale copy here", vol: on("px-node-2"), dv: here, node: "px-node-1", wantNode: "px-node-2", wantReason: ReasonOnAnotherNode, wantPhase: api.PhaseReady},
		{name: "on another node, nothing here", vol: on("px-node-2"), node: "px-node-1", wantNode: "px-node-2", wantReason: ReasonOnAnotherNode, wantPhase: api.PhaseReady},
		{name: "one engine", vol: on(""), dv: &Volume{Name: "panelx-shop-data"}, wantReason: ReasonAsExpected, wantPhase: api.PhaseReady},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := ComputeVolumeStatus(c.vol, c.dv, c.node, Plan{}, nil, now)
			ready := api.FindCondition(st.Conditions, api.ConditionReady)
			if st.Node != c.wantNode || st.Phase != c.wantPhase || ready == nil || ready.Reason != c.wantReason {
				t.Fatalf("status = node %q phase %s ready %+v; want node %q phase %s reason %s", st.Node, st.Phase, ready, c.wantNode, c.wantPhase, c.wantReason)
			}
			if st.DockerName == "" && c.wantPhase == api.PhaseReady {
				t.Errorf("no dockerName: %+v", st)
			}
		})
	}
}
