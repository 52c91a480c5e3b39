package containers

import (
	"fmt"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// withFakeSamples publishes n containers with one interface and one block
// device each, as idle PanelX replicas look, without reading anything.
func withFakeSamples(n int) *Collector {
	c := New(&fakeSource{}, Options{})
	recs := make(map[string]*record, n)
	now := time.Now()
	for i := range n {
		id := fmt.Sprintf("%064d", i)
		t := target(id, 1000+i, "bench", fmt.Sprintf("svc-%d", i), "0", fmt.Sprintf("panelx-bench-svc-%d-0", i))
		cur := &reading{at: now, stats: rawStats{
			cpu: time.Duration(i) * time.Millisecond, memUsage: 2 << 20, memWorkSet: 1 << 20,
			networks: []InterfaceStats{{"eth0", uint64(i) * 100, uint64(i) * 50}},
			blockIO:  []DeviceStats{{"/dev/vda", 4096, uint64(i) * 4096}},
		}}
		rec := &record{target: t, inc: t.incarnation(), source: SourceCgroupV1, cur: cur}
		rec.sample = c.makeSample(rec)
		rec.series = seriesFor(nil, t).prepare(rec)
		recs[id] = rec
	}
	c.snap.Store(&snapshot{records: recs})
	return c
}

// BenchmarkScrape200 is one Prometheus scrape of 200 containers: gather
// through a registry, and the whole /metrics handler (gather and text
// encoding). The numbers README and the issue quote come from
//
//	go test -run '^$' -bench Scrape200 -benchtime 1000x ./metrics/containers/
func BenchmarkScrape200(b *testing.B) {
	c := withFakeSamples(200)
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	b.Run("gather", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := reg.Gather(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("http", func(b *testing.B) {
		h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
		b.ReportAllocs()
		var lat []time.Duration
		for b.Loop() {
			rec := httptest.NewRecorder()
			start := time.Now()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
			lat = append(lat, time.Since(start))
			if rec.Code != 200 {
				b.Fatalf("status %d", rec.Code)
			}
		}
		slices.Sort(lat)
		p99 := lat[(len(lat)*99+99)/100-1] // nearest rank
		b.ReportMetric(float64(p99.Microseconds()), "p99-µs")
	})
}

func TestFakeSamplesExportAll(t *testing.T) {
	c := withFakeSamples(200)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range fams {
		n += len(f.GetMetric())
	}
	// 8 single series, 2 per interface and 2 per device: 12 per container.
	if n != 200*12 {
		t.Fatalf("%d series, want %d", n, 200*12)
	}
}
