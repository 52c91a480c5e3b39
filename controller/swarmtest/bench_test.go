package swarmtest_test

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/reconcile"
	"github.com/panelx/panelx/store"
)

// BenchmarkFiftyServices (issue 21): on the same engine, in the same run and
// interleaved, 50 new services until all are Ready — on the single-node
// swarm and with the single-engine runtime — then drift repair: a
// replica's container removed behind PanelX's back (docker rm -f) until the
// service is Ready on a new replica (5 trials per round). It reports per
// runtime the mean seconds for the 50 (ready-s) and the repairs' p50 and
// max.
//
//	go test -run '^$' -bench FiftyServices -benchtime 1x ./controller/swarmtest/
func BenchmarkFiftyServices(b *testing.B) {
	var ready = map[string][]time.Duration{}
	var repairs = map[string][]time.Duration{}
	for i := 0; i < b.N; i++ {
		for _, onSwarm := range []bool{false, true} { // interleaved: the same engine, the same load
			name := map[bool]string{false: "docker", true: "swarm"}[onSwarm]
			r, rs := fiftyServices(b, onSwarm)
			ready[name] = append(ready[name], r)
			repairs[name] = append(repairs[name], rs...)
			b.Logf("round %d, %s: 50 services Ready in %v; repairs %v", i, name, r.Round(time.Millisecond), rs)
		}
	}
	for _, name := range []string{"docker", "swarm"} {
		rs := repairs[name]
		sort.Slice(rs, func(i, j int) bool { return rs[i] < rs[j] })
		var sum time.Duration
		for _, r := range ready[name] {
			sum += r
		}
		b.ReportMetric((sum / time.Duration(len(ready[name]))).Seconds(), name+"-ready-s")
		b.ReportMetric(rs[len(rs)/2].Seconds(), name+"-repair-p50-s")
		b.ReportMetric(rs[len(rs)-1].Seconds(), name+"-repair-max-s")
	}
}

func fiftyServices(b *testing.B, onSwarm bool) (time.Duration, []time.Duration) {
	const n, trials = 50, 5
	w := newWorldOn(b, onSwarm)
	p := w.project()
	img := w.Registry.Push(b, "t"+w.Instance[len(w.Instance)-6:]+"/web:1", "1")
	// The image is pulled before the clock starts: both runtimes pull once.
	w.apply(p, "warm", func(s *api.Service) { s.Spec.Image = img })
	w.wait(p, "warm", "warm-up Ready", reconcile.ServiceReady)
	start := time.Now()
	for i := 0; i < n; i++ {
		w.apply(p, fmt.Sprintf("s%02d", i), func(s *api.Service) { s.Spec.Image = img })
	}
	for {
		list, err := w.Store.Services().List(w.ctx, store.ListOptions{Project: p})
		if err != nil {
			b.Fatal(err)
		}
		ready := 0
		for _, s := range list.Items {
			if reconcile.ServiceReady(s) {
				ready++
			}
		}
		if ready == n+1 {
			break
		}
		if time.Since(start) > 10*time.Minute {
			b.Fatalf("%d of %d Ready after 10 minutes", ready, n+1)
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(start)

	var repairs []time.Duration
	for i := 0; i < trials; i++ {
		name := fmt.Sprintf("s%02d", i)
		svc, err := w.Store.Services().Get(w.ctx, api.Key{Project: p, Name: name})
		if err != nil || len(svc.Status.Replicas) != 1 {
			b.Fatalf("%s: %v %+v", name, err, svc)
		}
		old := svc.Status.Replicas[0].ContainerID
		begin := time.Now()
		if err := w.Outside.RemoveContainer(w.ctx, old); err != nil {
			b.Fatal(err)
		}
		w.wait(p, name, "repaired", func(s *api.Service) bool {
			return reconcile.ServiceReady(s) && len(s.Status.Replicas) == 1 && s.Status.Replicas[0].ContainerID != old
		})
		repairs = append(repairs, time.Since(begin))
	}
	return took, repairs
}
