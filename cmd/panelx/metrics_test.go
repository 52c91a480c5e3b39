package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/panelx/panelx/internal/testenv"
	"github.com/panelx/panelx/internal/testimage"
)

// TestPrometheusScrapesPanelX: a real Prometheus scrapes the server's
// metrics listener. A test service's CPU counter is present and rises while
// it burns CPU, its memory working set is non-zero, and reconcile totals
// rise after a change.
func TestPrometheusScrapesPanelX(t *testing.T) {
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	e := newCLIEnv(t, "PANELX_METRICS_LISTEN="+metricsAddr)
	prom := testenv.StartPrometheus(t, metricsAddr)
	reg := testimage.StartRegistry(t, testimage.RegistryOptions{})
	img := reg.Push(t, "shop/web:1", testimage.Image(t, testimage.ImageOptions{Version: "1"}))
	project := uniqueName("metrics")
	port := freeTCPPort(t)
	manifest := func(greeting string) string {
		return e.write("m.yaml", fmt.Sprintf(`apiVersion: panelx.dev/v1
kind: Project
metadata: {name: %[1]s}
---
apiVersion: panelx.dev/v1
kind: Service
metadata: {project: %[1]s, name: web}
spec:
  image: %[2]s
  env: [{name: GREETING, value: %[4]s}]
  ports: [{containerPort: 8080, hostPort: %[3]d, hostIP: 127.0.0.1}]
`, project, img, port, greeting))
	}
	e.mustRun("apply", "-f", manifest("one"), "--wait", "--timeout", "90s")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sel := fmt.Sprintf(`{project=%q,service="web"}`, project)
	query := func(q string) (float64, bool) {
		got, err := prom.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			return 0, false
		}
		sum := 0.0
		for _, s := range got {
			sum += s.Value
		}
		return sum, true
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			select {
			case <-ctx.Done():
				t.Fatalf("timed out waiting for %s", what)
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	var cpuBefore float64
	waitFor("container_cpu_usage_seconds_total of the service", func() bool {
		v, ok := query("container_cpu_usage_seconds_total" + sel)
		cpuBefore = v
		return ok
	})
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/burn?seconds=4", port), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitFor("CPU use to rise by a second or more", func() bool {
		v, _ := query("container_cpu_usage_seconds_total" + sel)
		return v-cpuBefore >= 1
	})
	waitFor("a non-zero memory working set", func() bool {
		v, ok := query("container_memory_working_set_bytes" + sel)
		return ok && v > 0
	})
	for _, name := range []string{"panelx_service_replicas_ready", "panelx_http_requests_total", "go_goroutines", "panelx_leader"} {
		if _, ok := query(name); !ok {
			t.Errorf("%s is not exported", name)
		}
	}

	var reconcilesBefore float64
	waitFor("reconcile totals", func() bool {
		v, ok := query(`sum(panelx_reconciles_total{kind="Service"})`)
		reconcilesBefore = v
		return ok
	})
	e.mustRun("apply", "-f", manifest("two"), "--wait", "--timeout", "90s")
	waitFor("reconcile totals to rise after a change", func() bool {
		v, _ := query(`sum(panelx_reconciles_total{kind="Service"})`)
		return v > reconcilesBefore
	})
	if out := e.mustRun("get", "service", "web", "-p", project); !strings.Contains(out, "1/1") {
		t.Errorf("service not ready after the change:\n%s", out)
	}
}
