package reconcile

import (
	"testing"
	"time"
)

// TestUnchangedSince: what a list entry may keep the cached inspect for,
// and every change it must not.
func TestUnchangedSince(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	cached := Container{ID: "c1", Name: "panelx-shop-web-0", State: "running", ImageID: "sha256:a", SpecHash: "h1",
		StartedAt: now.Add(-10 * time.Minute), Networks: []string{"n1", "n2"}, Volumes: []string{"v1"},
		IPs: map[string]string{"n1": "10.0.0.2"}}
	listed := func(mut func(*ListedContainer)) ListedContainer {
		l := ListedContainer{Container: cached, UpAtMost: 11 * time.Minute, Timed: true, ListedAt: now}
		l.Networks = []string{"n2", "n1"} // order is not a change
		l.IPs = map[string]string{"n1": "10.0.0.2"}
		if mut != nil {
			mut(&l)
		}
		return l
	}
	exited := cached
	exited.State, exited.ExitCode, exited.FinishedAt = "exited", 1, now.Add(-3*time.Minute)
	for _, c := range []struct {
		name   string
		cached Container
		l      ListedContainer
		want   bool
	}{
		{"same", cached, listed(nil), true},
		{"restarted since", cached, listed(func(l *ListedContainer) { l.UpAtMost = 4 * time.Second }), false},
		{"unreadable status", cached, listed(func(l *ListedContainer) { l.UpAtMost, l.Timed = 0, false }), false},
		{"stopped", cached, listed(func(l *ListedContainer) { l.State, l.ExitCode, l.ExitedAtMost = "exited", 0, 2*time.Second }), false},
		{"health changed", cached, listed(func(l *ListedContainer) { l.Health = "unhealthy" }), false},
		{"off a network", cached, listed(func(l *ListedContainer) { l.Networks = []string{"n1"} }), false},
		{"new address", cached, listed(func(l *ListedContainer) { l.IPs = map[string]string{"n1": "10.0.0.9"} }), false},
		{"renamed", cached, listed(func(l *ListedContainer) { l.Name += "-x" }), false},
		{"other image", cached, listed(func(l *ListedContainer) { l.ImageID = "sha256:b" }), false},
		{"volume gone", cached, listed(func(l *ListedContainer) { l.Volumes = nil }), false},
		{"start unknown", Container{ID: "c1", Name: cached.Name, State: "running", ImageID: "sha256:a", SpecHash: "h1",
			Networks: cached.Networks, Volumes: cached.Volumes, IPs: cached.IPs}, listed(nil), false},
		{"exited, same exit", exited, listed(func(l *ListedContainer) { l.Container = exited; l.ExitedAtMost = 4 * time.Minute }), true},
		{"exited again, same code", exited, listed(func(l *ListedContainer) { l.Container = exited; l.ExitedAtMost = 3 * time.Second }), false},
		{"exited, listed an hour on", exited, listed(func(l *ListedContainer) {
			l.Container = exited
			l.ListedAt = now.Add(time.Hour)
			l.ExitedAtMost, l.Timed = 0, false // not a summary the runtime could read
		}), false},
		{"exited, listed a minute on", exited, listed(func(l *ListedContainer) {
			l.Container = exited
			l.ListedAt = now.Add(time.Minute)
			l.ExitedAtMost = 5 * time.Minute
		}), true},
		{"other exit code", exited, listed(func(l *ListedContainer) { l.Container = exited; l.ExitCode = 2; l.ExitedAtMost = 4 * time.Minute }), false},
		{"restarting", cached, listed(func(l *ListedContainer) { l.State, l.Timed = "restarting", false }), false},
	} {
		c.l.ID = c.cached.ID
		if got := c.l.unchangedSince(c.cached); got != c.want {
			t.Errorf("%s: unchangedSince = %v, want %v", c.name, got, c.want)
		}
	}
}
