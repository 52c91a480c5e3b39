package reconcile

import (
	"slices"
	"time"
)

// ListedContainer is a container as the engine's list shows it. Container
// holds what a list carries — identity, image, state, health, networks,
// volumes, the exit code of an exited one — and not what only an inspect
// tells (restart count, start and finish times, errors). The runtime reads
// from its summary an upper bound of how long a running (or paused)
// container has been up (UpAtMost), or how long ago an exited one exited
// (ExitedAtMost); Timed says it could. From those a restart or a new exit
// since the last inspect can be told. ListedAt is when the list was asked
// for.
type ListedContainer struct {
	Container
	UpAtMost     time.Duration
	ExitedAtMost time.Duration
	Timed        bool
	ListedAt     time.Time
}

// unchangedSince reports whether the listed container is, as far as a list
// can tell, the cached one in the same state: then a resync keeps the
// cached inspect instead of asking again. Anything the list cannot vouch
// for (a restarting container, a summary the runtime could not read)
// counts as changed.
func (l ListedContainer) unchangedSince(cached Container) bool {
	if l.ID != cached.ID || l.Name != cached.Name || l.State != cached.State || l.Health != cached.Health ||
		l.ImageID != cached.ImageID || l.SpecHash != cached.SpecHash {
		return false
	}
	if !sameSet(l.Volumes, cached.Volumes) || !sameSet(l.Networks, cached.Networks) || !sameIPs(l.IPs, cached.IPs) {
		return false
	}
	switch l.State {
	case "running", "paused":
		// Started again since the inspect (a restart policy, a missed
		// event)? The summary's uptime is coarse; an upper bound suffices.
		return l.Timed && !cached.StartedAt.IsZero() && !cached.StartedAt.Before(l.ListedAt.Add(-l.UpAtMost-statusSlack))
	case "exited":
		return l.Timed && l.ExitCode == cached.ExitCode && !cached.FinishedAt.IsZero() &&
			!cached.FinishedAt.Before(l.ListedAt.Add(-l.ExitedAtMost-statusSlack))
	case "created", "dead":
		return true
	}
	return false // restarting, removing: in motion, look closely
}

// statusSlack absorbs clock reads on both sides of the engine's summary.
const statusSlack = 2 * time.Second

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func sameIPs(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
