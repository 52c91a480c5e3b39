package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/internal/testimage"
	"github.com/panelx/panelx/reconcile"
)

// BenchmarkRollbackVsForward: the time from a rollback request to the old
// revision Ready (its version answering, alone), against a forward apply
// of the same change (a PATCH back to the old image by tag), interleaved
// in one run on the real server, PostgreSQL and Docker:
//
//	go test -run '^$' -bench RollbackVsForward -benchtime 10x ./cmd/panelx/
func BenchmarkRollbackVsForward(b *testing.B) {
	e := newSealedEnv(b, "postgres")
	reg := testimage.StartRegistry(b, testimage.RegistryOptions{})
	img1 := reg.Push(b, "shop/web:1", testimage.Image(b, testimage.ImageOptions{Version: "1"}))
	img2 := reg.Push(b, "shop/web:2", testimage.Image(b, testimage.ImageOptions{Version: "2"}))
	p := "/api/v1/projects/" + e.project
	e.call(e.alice, 201, "POST", "/api/v1/projects", map[string]any{"metadata": map[string]any{"name": e.project}})
	e.call(e.alice, 201, "POST", p+"/services", map[string]any{"metadata": map[string]any{"name": "web"}, "spec": map[string]any{"image": img1}})
	e.waitReady("web")
	to := func(image, version string) {
		e.call(e.alice, 200, "PATCH", p+"/services/web", map[string]any{"spec": map[string]any{"image": image}})
		e.settle(version)
	}
	var rollback, forward []time.Duration
	b.ResetTimer()
	for range b.N {
		to(img2, "2")
		start := time.Now()
		e.call(e.alice, 200, "POST", p+"/services/web/rollback", nil)
		e.settle("1")
		rollback = append(rollback, time.Since(start))

		to(img2, "2")
		start = time.Now()
		to(img1, "1")
		forward = append(forward, time.Since(start))
	}
	b.StopTimer()
	rb, fw := percentile(rollback, 50), percentile(forward, 50)
	b.ReportMetric(float64(rb.Milliseconds()), "rollback-p50-ms")
	b.ReportMetric(float64(fw.Milliseconds()), "forward-p50-ms")
	b.ReportMetric(float64(rb)/float64(fw), "rollback/forward")
	b.Logf("%d rounds: rollback p50 %v p99 %v; forward apply p50 %v p99 %v", b.N,
		rb.Round(time.Millisecond), percentile(rollback, 99).Round(time.Millisecond), fw.Round(time.Millisecond), percentile(forward, 99).Round(time.Millisecond))
}

// settle waits until the service is Ready for its generation and its one
// replica answers with version.
func (e *sealedEnv) settle(version string) {
	e.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var s api.Service
		_ = json.Unmarshal(e.call(e.alice, 200, "GET", "/api/v1/projects/"+e.project+"/services/web", nil), &s)
		if reconcile.ServiceReady(&s) && len(e.containers("web")) == 1 && e.version("web") == version {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("web never settled on version %s: %s %+v", version, s.Status.Phase, s.Status.Conditions)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
