package backup

import (
	"fmt"
	"slices"
	"time"

	"github.com/panelx/panelx/api"
)

// Archive is a successful backup retention decides about.
type Archive struct {
	ID   string
	Time time.Time
}

// Expired returns the IDs of the archives the retention policy no longer
// keeps: everything but the newest KeepLast, the newest of each of the
// newest KeepDaily days and the newest of each of the newest KeepWeekly
// ISO weeks (days and weeks in loc) that have an archive. A policy of all
// zeros keeps everything.
func Expired(archives []Archive, r api.BackupRetention, loc *time.Location) []string {
	if !r.Any() {
		return nil
	}
	if loc == nil {
		loc = time.UTC
	}
	sorted := slices.Clone(archives)
	slices.SortStableFunc(sorted, func(a, b Archive) int { return b.Time.Compare(a.Time) })
	keep := map[string]bool{}
	for i := 0; i < len(sorted) && i < int(r.KeepLast); i++ {
		keep[sorted[i].ID] = true
	}
	bucket := func(n int32, key func(time.Time) string) {
		seen := map[string]bool{}
		for _, a := range sorted {
			if len(seen) >= int(n) {
				return
			}
			k := key(a.Time.In(loc))
			if !seen[k] {
				seen[k] = true
				keep[a.ID] = true
			}
		}
	}
	bucket(r.KeepDaily, func(t time.Time) string { return t.Format("2006-01-02") })
	bucket(r.KeepWeekly, func(t time.Time) string {
		y, w := t.ISOWeek()
		return fmt.Sprintf("%d-W%02d", y, w)
	})
	var out []string
	for _, a := range sorted {
		if !keep[a.ID] {
			out = append(out, a.ID)
		}
	}
	return out
}
