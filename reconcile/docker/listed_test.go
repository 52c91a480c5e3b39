package docker

import (
	"testing"
	"time"

	"github.com/panelx/panelx/reconcile"
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

// TestListed: what a list entry's summary becomes.
func TestListed(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		state, status string
		want          reconcile.ListedContainer
	}{
		{"running", "Up 3 minutes (healthy)", reconcile.ListedContainer{Container: reconcile.Container{State: "running", Health: "healthy"}, UpAtMost: 4 * time.Minute, Timed: true}},
		{"paused", "Up 3 minutes (Paused)", reconcile.ListedContainer{Container: reconcile.Container{State: "paused"}, UpAtMost: 4 * time.Minute, Timed: true}},
		{"exited", "Exited (137) 5 minutes ago", reconcile.ListedContainer{Container: reconcile.Container{State: "exited", ExitCode: 137}, ExitedAtMost: 6 * time.Minute, Timed: true}},
		{"exited", "Exited oddly", reconcile.ListedContainer{Container: reconcile.Container{State: "exited"}}},
		{"restarting", "Restarting (1) 1 second ago", reconcile.ListedContainer{Container: reconcile.Container{State: "restarting"}}},
		{"created", "Created", reconcile.ListedContainer{Container: reconcile.Container{State: "created"}}},
	} {
		got := listed(reconcile.Container{}, c.state, c.status, now)
		c.want.ListedAt = now
		if got.State != c.want.State || got.Health != c.want.Health || got.ExitCode != c.want.ExitCode ||
			got.UpAtMost != c.want.UpAtMost || got.ExitedAtMost != c.want.ExitedAtMost || got.Timed != c.want.Timed || !got.ListedAt.Equal(now) {
			t.Errorf("listed(%s, %q) = %+v, want %+v", c.state, c.status, got, c.want)
		}
	}
}
