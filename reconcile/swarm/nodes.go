package swarm

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/panelx/panelx/reconcile"
)

// node is what the runtime needs of a Swarm node.
type node struct {
	name  string // hostname
	state swarm.NodeState
}

// lost reports whether the managers have lost contact with the node: what
// it last reported of its tasks may be stale.
func (n node) lost() bool {
	return n.state == swarm.NodeStateDown || n.state == swarm.NodeStateUnknown || n.state == swarm.NodeStateDisconnected
}

// nodeRemoved is the state of a task's node that the swarm no longer lists.
const nodeRemoved = "removed"

// nodesFresh is how long a node list is reused: a task poll and the
// inspects of the tasks it found changed share one list, instead of one
// NodeList call per task.
const nodesFresh = 500 * time.Millisecond

// nodes lists the swarm's nodes by ID (a list at most nodesFresh old).
func (r *Runtime) nodes(ctx context.Context) (map[string]node, error) {
	r.nodeMu.Lock()
	if r.nodeList != nil && time.Since(r.nodeListAt) < nodesFresh {
		defer r.nodeMu.Unlock()
		return r.nodeList, nil
	}
	r.nodeMu.Unlock()
	var list []swarm.Node
	err := r.call(ctx, "node_list", func(ctx context.Context) (err error) {
		list, err = r.cli.NodeList(ctx, swarm.NodeListOptions{})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	out := make(map[string]node, len(list))
	for _, n := range list {
		out[n.ID] = node{name: n.Description.Hostname, state: n.Status.State}
	}
	r.nodeMu.Lock()
	r.nodeList, r.nodeListAt = out, time.Now()
	r.nodeMu.Unlock()
	return out, nil
}

// activeState: a task in one of these states has not ended, as far as its
// node last said (terminal: complete, shutdown, failed, rejected, remove,
// orphaned).
var activeStates = []swarm.TaskState{swarm.TaskStateAssigned, swarm.TaskStateAccepted, swarm.TaskStatePreparing,
	swarm.TaskStateReady, swarm.TaskStateStarting, swarm.TaskStateRunning}

// lostReplica reports a task that its node last said was (about to be)
// running, on a node the swarm has lost or no longer lists. Swarm does not
// end such a task itself — it marks it for shutdown and starts a new one
// elsewhere — so without this, a lost node's replicas would look like
// stale history.
func lostReplica(t swarm.Task, nodes map[string]node) (reconcile.LostReplica, bool) {
	if t.NodeID == "" || t.Slot == 0 || !slices.Contains(activeStates, t.Status.State) {
		return reconcile.LostReplica{}, false
	}
	n, known := nodes[t.NodeID]
	if known && !n.lost() {
		return reconcile.LostReplica{}, false
	}
	l := reconcile.LostReplica{Replica: t.Slot - 1, Node: t.NodeID, NodeName: n.name, NodeState: string(n.state)}
	if !known {
		l.NodeState = nodeRemoved
	}
	return l, true
}

// lostByService groups the lost replicas of tasks by service ID, one per
// slot and node.
func lostByService(tasks []swarm.Task, nodes map[string]node) map[string][]reconcile.LostReplica {
	out := map[string][]reconcile.LostReplica{}
	for _, t := range tasks {
		l, ok := lostReplica(t, nodes)
		if ok && !slices.Contains(out[t.ServiceID], l) {
			out[t.ServiceID] = append(out[t.ServiceID], l)
		}
	}
	for id := range out {
		slices.SortFunc(out[id], func(a, b reconcile.LostReplica) int {
			if a.Node != b.Node {
				if a.Node < b.Node {
					return -1
				}
				return 1
			}
			return a.Replica - b.Replica
		})
	}
	return out
}
