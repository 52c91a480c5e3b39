package reconcile

import "slices"

// replicaSet sorts the containers of one replica index. The invariant it
// serves: at most one container beyond the replica's own at any time — the
// old one that keeps serving, plus one replacement of the current spec.
// When the spec changes again while a replacement is still in flight, the
// in-flight one is superseded: it is removed (drained first if routed)
// before the next replacement is created, never kept beside it.
type replicaSet struct {
	// current are the containers of the current spec (more than one only
	// after a crash or two leaders; all but best are duplicates).
	current []Container
	// old is the one older container kept serving until a replacement is
	// ready: with the final name and ready if there is one, else ready,
	// else running, else the first by name.
	old *Container
	// superseded are the other older containers: removed before anything
	// new is created.
	superseded []Container
}

// splitReplica sorts cs (one replica index) by isCurrent.
func splitReplica(cs []Container, isCurrent func(Container) bool, finalName string) replicaSet {
	var rs replicaSet
	var stale []Container
	for _, c := range sortContainers(cs) {
		if isCurrent(c) {
			rs.current = append(rs.current, c)
		} else {
			stale = append(stale, c)
		}
	}
	if len(stale) == 0 {
		return rs
	}
	rank := func(c Container) int {
		r := 0
		if c.Ready() {
			r += 4
		}
		if c.Running() {
			r += 2
		}
		if c.Name == finalName {
			r++
		}
		return r
	}
	best := 0
	for i, c := range stale {
		if rank(c) > rank(stale[best]) {
			best = i
		}
	}
	old := stale[best]
	rs.old = &old
	rs.superseded = slices.Delete(slices.Clone(stale), best, best+1)
	return rs
}
