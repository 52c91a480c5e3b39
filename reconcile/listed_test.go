package reconcile

import (
	"testing"
	"time"
)

func TestHumanDurationAtMost(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"Less than a second", time.Second, true},
		{"1 second", 2 * time.Second, true},
		{"59 seconds", 60 * time.Second, true},
		{"About a minute", 2 * time.Minute, true},
		{"3 minutes", 4 * time.Minute, true},
		{"About an hour", 2 * time.Hour, true},
		{"47 hours", 48 * time.Hour, true},
		{"3 days", 4 * 24 * time.Hour, true},
		{"2 weeks", 3 * 7 * 24 * time.Hour, true},
		{"5 months", 6 * 30 * 24 * time.Hour, true},
		{"2 years", 3 * 366 * 24 * time.Hour, true},
		{"", 0, false},
		{"a while", 0, false},
		{"-3 minutes", 0, false},
		{"3 fortnights", 0, false},
	} {
		got, ok := humanDurationAtMost(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("humanDurationAtMost(%q) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestStatusParsing(t *testing.T) {
	for _, c := range []struct {
		status string
		up     time.Duration
		upOK   bool
		health string
	}{
		{"Up 3 minutes", 4 * time.Minute, true, ""},
		{"Up 3 minutes (healthy)", 4 * time.Minute, true, "healthy"},
		{"Up 2 seconds (health: starting)", 3 * time.Second, true, "starting"},
		{"Up About an hour (unhealthy)", 2 * time.Hour, true, "unhealthy"},
		{"Up Less than a second (Paused)", time.Second, true, ""},
		{"Exited (1) 2 seconds ago", 0, false, ""},
		{"Restarting (1) 3 seconds ago", 0, false, ""},
	} {
		up, ok := uptimeAtMost(c.status)
		if up != c.up || ok != c.upOK {
			t.Errorf("uptimeAtMost(%q) = %v, %v; want %v, %v", c.status, up, ok, c.up, c.upOK)
		}
		if h := healthFromStatus(c.status); h != c.health {
			t.Errorf("healthFromStatus(%q) = %q, want %q", c.status, h, c.health)
		}
	}
	code, ago, ok := exitedAtMost("Exited (137) 5 minutes ago")
	if code != 137 || ago != 6*time.Minute || !ok {
		t.Errorf("exitedAtMost = %d, %v, %v", code, ago, ok)
	}
	for _, bad := range []string{"Exited (x) 5 minutes ago", "Exited (1) 5 minutes", "Exited 1", "Created"} {
		if _, _, ok := exitedAtMost(bad); ok {
			t.Errorf("exitedAtMost(%q) ok", bad)
		}
	}
}

// TestUnchangedSince: what a list entry may keep the cached inspect for,
// and every change it must not.
func TestUnchangedSince(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	cached := Container{ID: "c1", Name: "panelx-shop-web-0", State: "running", ImageID: "sha256:a", SpecHash: "h1",
		StartedAt: now.Add(-10 * time.Minute), Networks: []string{"n1", "n2"}, Volumes: []string{"v1"},
		IPs: map[string]string{"n1": "10.0.0.2"}}
	listed := func(mut func(*ListedContainer)) ListedContainer {
		l := ListedContainer{Container: cached, Status: "Up 10 minutes", ListedAt: now}
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
		{"restarted since", cached, listed(func(l *ListedContainer) { l.Status = "Up 3 seconds" }), false},
		{"unreadable status", cached, listed(func(l *ListedContainer) { l.Status = "Up and about" }), false},
		{"stopped", cached, listed(func(l *ListedContainer) { l.State, l.Status = "exited", "Exited (0) 1 second ago" }), false},
		{"health changed", cached, listed(func(l *ListedContainer) { l.Health = "unhealthy" }), false},
		{"off a network", cached, listed(func(l *ListedContainer) { l.Networks = []string{"n1"} }), false},
		{"new address", cached, listed(func(l *ListedContainer) { l.IPs = map[string]string{"n1": "10.0.0.9"} }), false},
		{"renamed", cached, listed(func(l *ListedContainer) { l.Name += "-x" }), false},
		{"other image", cached, listed(func(l *ListedContainer) { l.ImageID = "sha256:b" }), false},
		{"volume gone", cached, listed(func(l *ListedContainer) { l.Volumes = nil }), false},
		{"start unknown", Container{ID: "c1", Name: cached.Name, State: "running", ImageID: "sha256:a", SpecHash: "h1",
			Networks: cached.Networks, Volumes: cached.Volumes, IPs: cached.IPs}, listed(nil), false},
		{"exited, same exit", exited, listed(func(l *ListedContainer) { l.Container = exited; l.Status = "Exited (1) 3 minutes ago" }), true},
		{"exited again, same code", exited, listed(func(l *ListedContainer) { l.Container = exited; l.Status = "Exited (1) 2 seconds ago" }), false},
		{"exited, listed an hour on", exited, listed(func(l *ListedContainer) {
			l.Container = exited
			l.ListedAt = now.Add(time.Hour)
			l.Status = "About an hour" // not a summary it can read
		}), false},
		{"exited, listed a minute on", exited, listed(func(l *ListedContainer) {
			l.Container = exited
			l.ListedAt = now.Add(time.Minute)
			l.Status = "Exited (1) 4 minutes ago"
		}), true},
		{"other exit code", exited, listed(func(l *ListedContainer) { l.Container = exited; l.Status = "Exited (2) 3 minutes ago" }), false},
		{"restarting", cached, listed(func(l *ListedContainer) { l.State, l.Status = "restarting", "Restarting (1) 1 second ago" }), false},
	} {
		c.l.ID = c.cached.ID
		if got := c.l.unchangedSince(c.cached); got != c.want {
			t.Errorf("%s: unchangedSince = %v, want %v", c.name, got, c.want)
		}
	}
}
