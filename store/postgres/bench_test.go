package postgres_test

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/store"
	"github.com/panelx/panelx/store/storetest"
)

// BenchmarkWatchLatency measures the time from a write to its delivery by
// Watch: each iteration updates a service's status and waits for the change
// to arrive. It reports two latencies, p50 and p99 of each (run with
// -benchtime=1000x for the 1,000 writes):
//   - trigger→delivered: from the trigger's clock_timestamp() inside the
//     writing transaction (just before COMMIT) to the watcher receiving it;
//   - write→delivered: from calling UpdateStatus to the watcher receiving
//     it, the whole round trip a client sees.
//
// Both clocks are this machine's, so the first is meaningful here.
func BenchmarkWatchLatency(b *testing.B) {
	s := newStore(b)
	defer s.Close()
	ctx := ctxFor(b)
	ch, err := s.Watch(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if c := <-ch; c.Type != store.ChangeResync {
		b.Fatalf("first change %+v", c)
	}
	if _, err := s.Projects().Create(ctx, storetest.Project("bench")); err != nil {
		b.Fatal(err)
	}
	svc, err := s.Services().Create(ctx, storetest.Service("bench", "web", "nginx"))
	if err != nil {
		b.Fatal(err)
	}
	for range 2 { // the two creates
		<-ch
	}
	svc.Metadata.ResourceVersion = ""
	fromTrigger := make([]time.Duration, 0, b.N)
	fromWrite := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		svc.Status.ReadyReplicas = int32(i)
		start := time.Now()
		out, err := s.Services().UpdateStatus(ctx, svc)
		if err != nil {
			b.Fatal(err)
		}
		want := out.Metadata.ResourceVersion
		for {
			c := <-ch
			if c.Kind == api.KindService && strconv.FormatInt(c.ResourceVersion, 10) == want {
				now := time.Now()
				fromTrigger = append(fromTrigger, now.Sub(c.CommittedAt))
				fromWrite = append(fromWrite, now.Sub(start))
				break
			}
		}
	}
	b.StopTimer()
	report := func(lat []time.Duration, name string) {
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), name+"-p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), name+"-p99-µs")
	}
	report(fromTrigger, "trigger→delivered")
	report(fromWrite, "write→delivered")
}
