package reconcile

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// ListedContainer is a container as the engine's list shows it. Container
// holds what a list carries — identity, image, state, health, networks,
// volumes — and not what only an inspect tells (exit details, restart
// count, start and finish times). Status is the engine's summary ("Up 3
// minutes (healthy)", "Exited (1) 2 seconds ago"), from which a restart or
// a new exit since the last inspect can be told; ListedAt is when the list
// was asked for.
type ListedContainer struct {
	Container
	Status   string
	ListedAt time.Time
}

// unchangedSince reports whether the listed container is, as far as a list
// can tell, the cached one in the same state: then a resync keeps the
// cached inspect instead of asking again. Anything the list cannot vouch
// for (a restarting container, a summary it cannot read) counts as changed.
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
		up, ok := uptimeAtMost(l.Status)
		return ok && !cached.StartedAt.IsZero() && !cached.StartedAt.Before(l.ListedAt.Add(-up-statusSlack))
	case "exited":
		code, ago, ok := exitedAtMost(l.Status)
		return ok && code == cached.ExitCode && !cached.FinishedAt.IsZero() &&
			!cached.FinishedAt.Before(l.ListedAt.Add(-ago-statusSlack))
	case "created", "dead":
		return true
	}
	return false // restarting, removing: in motion, look closely
}

// statusSlack absorbs clock reads on both sides of the engine's summary.
const statusSlack = 2 * time.Second

// healthFromStatus reads the health of a running container's summary.
func healthFromStatus(status string) string {
	switch {
	case strings.HasSuffix(status, "(healthy)"):
		return "healthy"
	case strings.HasSuffix(status, "(unhealthy)"):
		return "unhealthy"
	case strings.HasSuffix(status, "(health: starting)"):
		return "starting"
	}
	return ""
}

// uptimeAtMost reads "Up <duration>[ (…)]" and returns an upper bound of
// the uptime it states.
func uptimeAtMost(status string) (time.Duration, bool) {
	rest, ok := strings.CutPrefix(status, "Up ")
	if !ok {
		return 0, false
	}
	if i := strings.Index(rest, " ("); i >= 0 {
		rest = rest[:i]
	}
	return humanDurationAtMost(rest)
}

// exitedAtMost reads "Exited (<code>) <duration> ago": the exit code and
// an upper bound of the time since the exit.
func exitedAtMost(status string) (code int, ago time.Duration, ok bool) {
	rest, ok := strings.CutPrefix(status, "Exited (")
	if !ok {
		return 0, 0, false
	}
	num, rest, ok := strings.Cut(rest, ") ")
	if !ok {
		return 0, 0, false
	}
	code, err := strconv.Atoi(num)
	if err != nil {
		return 0, 0, false
	}
	rest, ok = strings.CutSuffix(rest, " ago")
	if !ok {
		return 0, 0, false
	}
	ago, ok = humanDurationAtMost(rest)
	return code, ago, ok
}

// humanDurationAtMost inverts the engine's HumanDuration
// (github.com/docker/go-units) to an upper bound of the duration it
// printed.
func humanDurationAtMost(s string) (time.Duration, bool) {
	const day = 24 * time.Hour
	switch s {
	case "Less than a second":
		return time.Second, true
	case "About a minute":
		return 2 * time.Minute, true
	case "About an hour":
		return 2 * time.Hour, true
	}
	num, unit, ok := strings.Cut(s, " ")
	n, err := strconv.Atoi(num)
	if !ok || err != nil || n < 0 {
		return 0, false
	}
	units := map[string]time.Duration{
		"second": time.Second, "seconds": time.Second, "minutes": time.Minute, "hours": time.Hour,
		"days": day, "weeks": 7 * day, "months": 30 * day, "years": 366 * day,
	}
	u, ok := units[unit]
	if !ok {
		return 0, false
	}
	return time.Duration(n+1) * u, true
}

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
