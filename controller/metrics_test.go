package controller_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/controller"
	dockerruntime "github.com/panelx/panelx/reconcile/docker"
)

// TestMetricsRecorded: after a service converges, the controller's metrics
// say so: reconciles, durations, change-feed lag, Docker calls, the
// workqueue, leader status and the service's replica counts.
func TestMetricsRecorded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	reg := prometheus.NewPedanticRegistry()
	m := controller.NewMetrics(reg)
	opts := e.controllerOptions()
	opts.Metrics = m
	rt := dockerruntime.NewRuntime(e.docker, e.instance)
	rt.Observe = m.ObserveDockerCall
	opts.Runtime = rt
	e.startController(opts)
	img := e.image("shop/web:1", "1")
	shop := e.uniq("shop")
	e.createProject(shop)
	two := int32(2)
	e.createService(shop, "web", img, func(s *api.Service) { s.Spec.Replicas = &two })
	e.waitReady(shop, "web")

	if got := testutil.ToFloat64(m.ReplicasReady(shop, "web")); got != 2 {
		t.Errorf("panelx_service_replicas_ready = %v, want 2", got)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	seen := map[string]float64{}
	for _, f := range families {
		for _, mt := range f.GetMetric() {
			v := mt.GetCounter().GetValue() + mt.GetGauge().GetValue() + float64(mt.GetHistogram().GetSampleCount())
			seen[f.GetName()] += v
		}
	}
	for _, name := range []string{
		"panelx_reconciles_total", "panelx_reconcile_duration_seconds", "panelx_change_feed_lag_seconds",
		"panelx_docker_api_duration_seconds", "panelx_workqueue_adds_total", "panelx_workqueue_queue_duration_seconds",
		"panelx_leader", "panelx_service_replicas_desired",
	} {
		if seen[name] <= 0 {
			t.Errorf("%s recorded nothing (families: %s)", name, names(seen))
		}
	}
}

func names(m map[string]float64) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return strings.Join(out, ", ")
}
