package backup

import (
	"slices"
	"testing"
	"time"

	"github.com/panelx/panelx/api"
)

func TestExpired(t *testing.T) {
	day := func(d, h int) time.Time { return time.Date(2026, 3, d, h, 0, 0, 0, time.UTC) }
	// Mar 2 2026 is a Monday.
	archives := []Archive{
		{"a", day(2, 1)}, {"b", day(2, 13)}, {"c", day(3, 1)}, {"d", day(4, 1)}, {"e", day(4, 20)},
		{"f", day(9, 1)}, {"g", day(10, 1)}, {"h", day(16, 1)},
	}
	for _, tc := range []struct {
		name string
		r    api.BackupRetention
		want []string
	}{
		{"keep all", api.BackupRetention{}, nil},
		{"last 3", api.BackupRetention{KeepLast: 3}, []string{"e", "d", "c", "b", "a"}},
		{"daily 3", api.BackupRetention{KeepDaily: 3}, []string{"e", "d", "c", "b", "a"}},
		{"weekly 2", api.BackupRetention{KeepWeekly: 2}, []string{"f", "e", "d", "c", "b", "a"}},
		{"last 1 + daily 2 + weekly 3", api.BackupRetention{KeepLast: 1, KeepDaily: 2, KeepWeekly: 3}, []string{"f", "d", "c", "b", "a"}},
		{"more than there are", api.BackupRetention{KeepLast: 100}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Expired(archives, tc.r, time.UTC)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("expired %v, want %v", got, tc.want)
			}
		})
	}
	// Days follow the schedule's time zone: 23:30 UTC on Mar 2 is Mar 3 in Berlin.
	berlin, _ := time.LoadLocation("Europe/Berlin")
	late := []Archive{{"x", time.Date(2026, 3, 2, 23, 30, 0, 0, time.UTC)}, {"y", time.Date(2026, 3, 3, 8, 0, 0, 0, time.UTC)}}
	if got := Expired(late, api.BackupRetention{KeepDaily: 1}, berlin); !slices.Equal(got, []string{"x"}) {
		t.Fatalf("berlin: %v", got)
	}
	if got := Expired(late, api.BackupRetention{KeepDaily: 2}, time.UTC); got != nil {
		t.Fatalf("utc: %v", got)
	}
}
