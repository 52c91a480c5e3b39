package docker

import (
	"strconv"
	"strings"
	"time"

	"github.com/panelx/panelx/reconcile"
)

// listed turns a list entry into a reconcile.ListedContainer: the state,
// and what the engine's summary ("Up 3 minutes (healthy)", "Exited (1) 2
// seconds ago") tells of health, uptime and exit, as bounds the cache can
// compare with its last inspect.
func listed(c reconcile.Container, state, status string, asked time.Time) reconcile.ListedContainer {
	c.State = state
	l := reconcile.ListedContainer{Container: c, ListedAt: asked}
	switch state {
	case "running", "paused":
		if state == "running" {
			l.Health = healthFromStatus(status)
		}
		l.UpAtMost, l.Timed = uptimeAtMost(status)
	case "exited":
		var code int
		code, l.ExitedAtMost, l.Timed = exitedAtMost(status)
		if l.Timed {
			l.ExitCode = code
		}
	}
	return l
}

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
