package apiserver_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/panelx/panelx/api"
)

// Benchmarks of whole requests over loopback HTTP against PostgreSQL, with
// an API token (the credential a CLI or CI uses: one store lookup per
// request). They report the 99th percentile latency next to ns/op; the
// throughput under concurrent load is measured by bench/api with wrk.

func reportP99(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
}

func BenchmarkGetService(b *testing.B) {
	e := newEnv(b)
	owner := e.jwtFor("bench")
	e.project(b, owner, "shop")
	e.service(b, owner, "shop", "web")
	tok, _ := e.apiToken(b, owner, nil)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if r := e.do(b, req{method: "GET", path: "/api/v1/projects/shop/services/web", token: tok}); r.Status != http.StatusOK {
			b.Fatalf("GET: %d", r.Status)
		}
		lat = append(lat, time.Since(start))
	}
	reportP99(b, lat)
}

func BenchmarkCreateService(b *testing.B) {
	e := newEnv(b)
	owner := e.jwtFor("bench")
	e.project(b, owner, "shop")
	tok, _ := e.apiToken(b, owner, nil)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		body := fmt.Sprintf(`{"metadata": {"name": "s%d", "labels": {"tier": "front"}}, "spec": {"image": "nginx:1.27", "ports": [{"containerPort": 80}], "env": [{"name": "A", "value": "1"}]}}`, i)
		start := time.Now()
		r := e.do(b, req{method: "POST", path: "/api/v1/projects/shop/services", token: tok, body: body,
			header: map[string]string{"Content-Type": "application/json"}})
		if r.Status != http.StatusCreated {
			b.Fatalf("POST: %d %s", r.Status, r.Body)
		}
		lat = append(lat, time.Since(start))
	}
	reportP99(b, lat)
}

// BenchmarkListThousandServices: one page of 1,000 services, whose env
// takes a value from a secret or holds a literal. Listing services reads
// no secret and decrypts nothing (values are resolved by the controller
// only), so both cost the same:
//
//	go test -run '^$' -bench ListThousandServices -benchtime 200x ./apiserver/
func BenchmarkListThousandServices(b *testing.B) {
	for _, variant := range []string{"literal-env", "secret-refs"} {
		b.Run(variant, func(b *testing.B) {
			e := newEnv(b)
			owner := e.jwtFor("bench")
			e.project(b, owner, "shop")
			e.secret(b, owner, "shop", "db")
			tok, _ := e.apiToken(b, owner, nil)
			for i := range 1000 {
				env := api.EnvVar{Name: "DB_PASSWORD", Value: "literal"}
				if variant == "secret-refs" {
					env = api.EnvVar{Name: "DB_PASSWORD", ValueFrom: &api.EnvVarSource{SecretKeyRef: &api.SecretKeySelector{Name: "db", Key: "password"}}}
				}
				svc := &api.Service{Metadata: api.ObjectMeta{Project: "shop", Name: fmt.Sprintf("s%04d", i)},
					Spec: api.ServiceSpec{Image: "nginx:1.27", Env: []api.EnvVar{env, {Name: "A", Value: "1"}}}}
				svc.Default()
				if _, err := e.Store.Services().Create(context.Background(), svc); err != nil {
					b.Fatal(err)
				}
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				if r := e.do(b, req{method: "GET", path: "/api/v1/projects/shop/services?limit=1000", token: tok}); r.Status != http.StatusOK {
					b.Fatalf("GET: %d", r.Status)
				}
				lat = append(lat, time.Since(start))
			}
			reportP99(b, lat)
		})
	}
}
