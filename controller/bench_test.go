package controller_test

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/controller"
	"github.com/panelx/panelx/reconcile"
	dockerruntime "github.com/panelx/panelx/reconcile/docker"
	"github.com/panelx/panelx/store"
)

// The benchmarks of the reconcile issue. Run them with `make bench`; each
// reports its numbers as custom metrics.

// readyWatcher signals when services become Ready, from the store's change
// feed rather than by polling, so the measurement is not a poll interval.
type readyWatcher struct {
	mu      sync.Mutex
	waiters map[string]chan struct{}
}

func watchReady(e *env) *readyWatcher {
	w := &readyWatcher{waiters: map[string]chan struct{}{}}
	ch, err := e.store.Watch(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	go func() {
		for c := range ch {
			if c.Kind != api.KindService || c.Type != store.ChangeUpsert {
				continue
			}
			svc, err := e.store.Services().Get(e.ctx, c.Key)
			if err != nil || !reconcile.ServiceReady(svc) {
				continue
			}
			w.mu.Lock()
			if done, ok := w.waiters[c.Key.String()]; ok {
				close(done)
				delete(w.waiters, c.Key.String())
			}
			w.mu.Unlock()
		}
	}()
	return w
}

// expect registers interest in a service before it is created.
func (w *readyWatcher) expect(project, name string) <-chan struct{} {
	done := make(chan struct{})
	w.mu.Lock()
	w.waiters[project+"/"+name] = done
	w.mu.Unlock()
	return done
}

func waitOrFail(tb testing.TB, done <-chan struct{}, what string) {
	tb.Helper()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		tb.Fatalf("timed out waiting for %s", what)
	}
}

// createReady writes n services svc-0…svc-<n-1> of img in one transaction
// and waits until every one is Ready.
func (w *readyWatcher) createReady(e *env, project string, n int, img string) {
	e.t.Helper()
	var dones []<-chan struct{}
	for j := 0; j < n; j++ {
		dones = append(dones, w.expect(project, fmt.Sprintf("svc-%d", j)))
	}
	err := e.store.InTx(e.ctx, func(r store.Repo) error {
		for j := 0; j < n; j++ {
			svc := &api.Service{Metadata: api.ObjectMeta{Project: project, Name: fmt.Sprintf("svc-%d", j)}, Spec: api.ServiceSpec{Image: img}}
			svc.Default()
			if _, err := r.Services().Create(e.ctx, svc); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	for j, d := range dones {
		waitOrFail(e.t, d, fmt.Sprintf("svc-%d", j))
	}
}

func percentile(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// BenchmarkServiceToReady (a): from the store write of a new service to its
// status saying Ready, against creating and starting the same container
// with raw Docker calls in the same run.
func BenchmarkServiceToReady(b *testing.B) {
	e := newEnv(b)
	e.startController(e.controllerOptions())
	img := e.image("bench/web:1", "1")
	shop := e.uniq("bench")
	e.createProject(shop)
	// Warm up: the first service pulls the image and creates the network.
	w := watchReady(e)
	done := w.expect(shop, "warmup")
	e.createService(shop, "warmup", img, nil)
	waitOrFail(b, done, "warm-up service")

	var panelx, raw []time.Duration
	netID := reconcile.NetworkName(shop)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("svc-%d", i)
		done := w.expect(shop, name)
		start := time.Now()
		e.createService(shop, name, img, nil)
		waitOrFail(b, done, name)
		panelx = append(panelx, time.Since(start))

		// The same container by hand: create on the project network, start.
		start = time.Now()
		resp, err := e.docker.ContainerCreate(e.ctx, &container.Config{Image: img, Labels: map[string]string{reconcile.LabelInstance: e.instance}},
			&container.HostConfig{NetworkMode: container.NetworkMode(netID)},
			&network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{netID: {Aliases: []string{"raw"}}}}, nil, "")
		if err != nil {
			b.Fatal(err)
		}
		if err := e.docker.ContainerStart(e.ctx, resp.ID, container.StartOptions{}); err != nil {
			b.Fatal(err)
		}
		raw = append(raw, time.Since(start))
	}
	b.StopTimer()
	b.ReportMetric(ms(percentile(panelx, 50)), "panelx-p50-ms")
	b.ReportMetric(ms(percentile(panelx, 99)), "panelx-p99-ms")
	b.ReportMetric(ms(percentile(raw, 50)), "raw-docker-p50-ms")
	b.ReportMetric(ms(percentile(raw, 99)), "raw-docker-p99-ms")
}

// BenchmarkFiftyServicesToReady (b): 50 new services written at once until
// all report Ready.
func BenchmarkFiftyServicesToReady(b *testing.B) {
	const n = 50
	for i := 0; i < b.N; i++ {
		func() {
			e := newEnv(b)
			opts := e.controllerOptions()
			if w := os.Getenv("BENCH_WORKERS"); w != "" {
				opts.Workers, _ = strconv.Atoi(w)
			}
			e.startController(opts)
			img := e.image("bench/web:1", "1")
			shop := e.uniq("bench")
			e.createProject(shop)
			w := watchReady(e)
			start := time.Now()
			w.createReady(e, shop, n, img)
			b.ReportMetric(time.Since(start).Seconds(), "s-all-50-ready")
		}()
	}
}

// BenchmarkRepairAfterRemoval (c): docker rm -f behind PanelX's back until a
// replacement container runs, over 20 trials.
func BenchmarkRepairAfterRemoval(b *testing.B) {
	const trials = 20
	e := newEnv(b)
	e.startController(e.controllerOptions())
	img := e.image("bench/web:1", "1")
	shop := e.uniq("bench")
	e.createProject(shop)
	w := watchReady(e)
	done := w.expect(shop, "web")
	e.createService(shop, "web", img, nil)
	waitOrFail(b, done, "web")

	// Docker's own events tell when the replacement starts.
	f := filters.NewArgs(filters.Arg("type", "container"), filters.Arg("event", "start"),
		filters.Arg("label", reconcile.LabelProject+"="+shop))
	msgs, errs := e.docker.Events(e.ctx, events.ListOptions{Filters: f})
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N*trials; i++ {
		cs := e.containers(shop, "web")
		if len(cs) != 1 {
			b.Fatalf("%d containers before trial %d", len(cs), i)
		}
		start := time.Now()
		if err := e.docker.ContainerRemove(e.ctx, cs[0].ID, container.RemoveOptions{Force: true}); err != nil {
			b.Fatal(err)
		}
	wait:
		for {
			select {
			case m := <-msgs:
				if m.Actor.ID != cs[0].ID {
					break wait
				}
			case err := <-errs:
				b.Fatal(err)
			case <-time.After(time.Minute):
				b.Fatalf("trial %d: no replacement", i)
			}
		}
		lat = append(lat, time.Since(start))
		// Let the status settle so the next trial starts from a converged state.
		e.eventually(30*time.Second, "converged", func() (bool, string) {
			cs := e.containers(shop, "web")
			return len(cs) == 1 && cs[0].State == "running" && strings.HasSuffix(cs[0].Names[0], "-web-0"), ""
		})
	}
	b.StopTimer()
	b.ReportMetric(ms(percentile(lat, 50)), "repair-p50-ms")
	b.ReportMetric(ms(percentile(lat, 99)), "repair-p99-ms")
}

// BenchmarkIdleCPU (d): the controller's CPU while 100 converged services
// sit idle for 60 s (the whole test process, which is the controller, its
// store client and an idle in-process registry).
func BenchmarkIdleCPU(b *testing.B) {
	const services = 100
	window := 60 * time.Second
	e := newEnv(b)
	e.startController(e.controllerOptions())
	img := e.image("bench/web:1", "1")
	shop := e.uniq("bench")
	e.createProject(shop)
	watchReady(e).createReady(e, shop, services, img)
	time.Sleep(5 * time.Second) // let the last status writes and events settle
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		before := cpuTime(b)
		start := time.Now()
		time.Sleep(window)
		used := cpuTime(b) - before
		b.ReportMetric(100*used.Seconds()/time.Since(start).Seconds(), "cpu-%-of-one-core")
	}
}

func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkResync200 (hot paths b): a resync of 200 converged services
// with no drift — its duration, from the lists to the last key
// reconciled, and the Docker API calls it made by operation, as
// panelx_docker_api_duration_seconds_count counts them.
func BenchmarkResync200(b *testing.B) {
	const services = 200
	e := newEnv(b)
	reg := prometheus.NewRegistry()
	metrics := controller.NewMetrics(reg)
	docker := dockerruntime.NewRuntime(e.docker, e.instance)
	docker.Observe = metrics.ObserveDockerCall
	opts := e.controllerOptions()
	opts.Runtime, opts.Metrics = docker, metrics
	opts.ResyncInterval = time.Hour // only the resyncs measured here
	e.startController(opts)
	img := e.image("bench/web:1", "1")
	shop := e.uniq("bench")
	e.createProject(shop)
	watchReady(e).createReady(e, shop, services, img)
	if err := e.ctrl.Resync(e.ctx); err != nil { // unmeasured: the last status writes settle
		b.Fatal(err)
	}
	var took []time.Duration
	var calls []map[string]float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		before := dockerCalls(b, reg)
		start := time.Now()
		if err := e.ctrl.Resync(e.ctx); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
		after := dockerCalls(b, reg)
		for op := range after {
			after[op] -= before[op]
			if after[op] == 0 {
				delete(after, op)
			}
		}
		calls = append(calls, after)
	}
	b.StopTimer()
	b.ReportMetric(ms(percentile(took, 50)), "resync-p50-ms")
	b.ReportMetric(ms(percentile(took, 99)), "resync-max-ms")
	most := 0.0
	for _, c := range calls {
		n := 0.0
		for _, v := range c {
			n += v
		}
		most = max(most, n)
	}
	b.ReportMetric(most, "docker-calls-max")
	b.Logf("Docker calls by operation, per resync: %v", calls)
}

// dockerCalls reads panelx_docker_api_duration_seconds_count by operation.
func dockerCalls(tb testing.TB, g prometheus.Gatherer) map[string]float64 {
	mfs, err := g.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "panelx_docker_api_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "operation" {
					out[l.GetValue()] += float64(m.GetHistogram().GetSampleCount())
				}
			}
		}
	}
	return out
}
