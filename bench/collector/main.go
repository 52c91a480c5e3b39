// Command collector measures the container metrics collector
// (metrics/containers) against the local Docker Engine: it starts N idle
// containers of internal/testimage's app (-sleep mode) labelled as PanelX
// containers of a benchmark instance, runs the collector at the given
// resolution, and reports
//
//   - the collector's CPU: this process's CPU time over the window
//     (getrusage) divided by wall time, as % of one core, next to what
//     dockerd, containerd, the shims and the whole machine used meanwhile;
//   - the latency of a scrape: the /metrics handler (gather and text
//     encoding, no network) served -scrapes times while the collector runs.
//
// Every container is removed at the end, also after Ctrl-C.
//
//	go run ./bench/collector -n 200 -duration 60s
//	go run ./bench/collector -n 200 -duration 60s -mode stream
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/http/httptest"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/docker/docker/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/panelx/panelx/internal/programtb"
	"github.com/panelx/panelx/metrics/containers"
)

type config struct {
	n           int
	duration    time.Duration
	baseline    time.Duration
	interval    time.Duration
	scrapes     int
	mode        string
	parallel    int
	memoryLimit int64
	verbose     bool
	cpuprofile  string
}

func main() {
	var cfg config
	flag.IntVar(&cfg.n, "n", 100, "number of idle containers")
	flag.DurationVar(&cfg.duration, "duration", 60*time.Second, "measurement window of the collector's CPU")
	flag.DurationVar(&cfg.baseline, "baseline", 20*time.Second, "window measured before the collector starts (0: none), to tell its cost from the idle containers'")
	flag.DurationVar(&cfg.interval, "interval", time.Second, "sampling interval of the collector")
	flag.IntVar(&cfg.scrapes, "scrapes", 1000, "scrapes of /metrics for the latency percentiles")
	flag.StringVar(&cfg.mode, "mode", "cgroup", "cgroup: read cgroup files (streams only where they fail); stream: Docker's streaming stats for every container")
	flag.IntVar(&cfg.parallel, "parallel", 8, "containers created at once")
	flag.Int64Var(&cfg.memoryLimit, "memory-limit", 32<<20, "memory limit of each container in bytes")
	flag.BoolVar(&cfg.verbose, "v", false, "log the collector's debug output")
	flag.StringVar(&cfg.cpuprofile, "cpuprofile", "", "write a CPU profile of the measurement window to this file")
	flag.Parse()
	if cfg.mode != "cgroup" && cfg.mode != "stream" {
		log.Fatalf("-mode %q: want cgroup or stream", cfg.mode)
	}
	if err := run(cfg); err != nil {
		log.Fatal(err)
	}
}

func run(cfg config) error {
	// The signal stays caught until cleanup is done, so a second Ctrl-C
	// cannot interrupt the removal of the containers.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return fmt.Errorf("docker client: %w", err)
	}
	defer cli.Close()
	tb := &programtb.TB{}
	defer tb.RunCleanups()

	b := newBench(cli, tb)
	defer b.cleanup()
	if err := b.prepareImage(ctx); err != nil {
		return err
	}
	start := time.Now()
	if err := b.startContainers(ctx, cfg.n, cfg.parallel, cfg.memoryLimit); err != nil {
		return err
	}
	log.Printf("%d containers of instance %s running after %v", cfg.n, b.instance, time.Since(start).Round(time.Second))

	if cfg.baseline > 0 {
		rep, err := measureCPU(ctx, cfg.baseline)
		if err != nil {
			return err
		}
		fmt.Printf("baseline (no collector), %d idle containers: %v\n", cfg.n, rep)
	}
	return b.measureCollector(ctx, cfg)
}

// measureCPU reads the CPU counters across a window of length d.
func measureCPU(ctx context.Context, d time.Duration) (cpuReport, error) {
	before, err := readCPU()
	if err != nil {
		return cpuReport{}, err
	}
	select {
	case <-ctx.Done():
		return cpuReport{}, ctx.Err()
	case <-time.After(d):
	}
	after, err := readCPU()
	if err != nil {
		return cpuReport{}, err
	}
	return diffCPU(before, after), nil
}

func (b *bench) measureCollector(ctx context.Context, cfg config) error {
	logger := zap.NewNop()
	if cfg.verbose {
		logger, _ = zap.NewDevelopment()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	src := containers.NewDockerSource(b.cli, b.instance, containers.DockerSourceOptions{Logger: logger})
	c := containers.New(src, containers.Options{
		Interval: cfg.interval, Stats: b.cli, ForceStream: cfg.mode == "stream", Logger: logger,
	})
	done := make(chan struct{}, 2)
	go func() { _ = src.Run(ctx); done <- struct{}{} }()
	go func() { _ = c.Run(ctx); done <- struct{}{} }()
	defer func() { cancel(); <-done; <-done }()

	warm := time.Now()
	sources, err := waitAllSampled(ctx, c, b.instance, cfg.n)
	if err != nil {
		return err
	}
	log.Printf("all %d containers sampled after %v: %v", cfg.n, time.Since(warm).Round(time.Millisecond), sources)
	// Let the start-up work (inspects, subscriptions) settle before measuring.
	if err := sleep(ctx, 3*cfg.interval); err != nil {
		return err
	}

	stopProfile, err := startProfile(cfg.cpuprofile)
	if err != nil {
		return err
	}
	rep, err := measureCPU(ctx, cfg.duration)
	stopProfile()
	if err != nil {
		return err
	}
	fmt.Printf("collector (%s mode, %v interval), %d containers: %v\n", cfg.mode, cfg.interval, cfg.n, rep)
	fmt.Printf("time between a container's last two samples: %s\n", windows(c.ForProject(b.instance)))

	lat, series, err := scrapeLatency(ctx, c, cfg.scrapes)
	if err != nil {
		return err
	}
	fmt.Printf("scrape of /metrics (%d series): %s\n", series, latencySummary(lat))
	fmt.Printf("collector RSS after the run: %s\n", rss())
	return nil
}

// windows summarises the time between the last two samples of each
// container: the resolution the collector really achieves (a stream
// delivers a frame only as often as the daemon manages to collect).
func windows(ss []containers.Sample) string {
	var ws []time.Duration
	for _, s := range ss {
		if s.Rates.Valid {
			ws = append(ws, s.Rates.Window)
		}
	}
	if len(ws) == 0 {
		return "no container has two samples"
	}
	return latencySummary(ws)
}

// waitAllSampled waits until every container has a sample and says where
// the samples came from.
func waitAllSampled(ctx context.Context, c *containers.Collector, project string, n int) (map[string]int, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ss := c.ForProject(project)
		if len(ss) >= n {
			sources := map[string]int{}
			for _, s := range ss {
				sources[s.Source]++
			}
			return sources, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("only %d of %d containers sampled after 2 minutes", len(ss), n)
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// scrapeLatency serves the collector's /metrics handler (gather and text
// encoding, as Prometheus gets it, minus the network) n times.
func scrapeLatency(ctx context.Context, c *containers.Collector, n int) ([]time.Duration, int, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(c); err != nil {
		return nil, 0, fmt.Errorf("register collector: %w", err)
	}
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	lat := make([]time.Duration, 0, n)
	for range n {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		req := httptest.NewRequest("GET", "/metrics", nil)
		rec := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(rec, req)
		lat = append(lat, time.Since(start))
		if rec.Code != 200 {
			return nil, 0, fmt.Errorf("/metrics answered %d: %s", rec.Code, rec.Body)
		}
	}
	fams, err := reg.Gather()
	if err != nil {
		return nil, 0, fmt.Errorf("gather: %w", err)
	}
	series := 0
	for _, f := range fams {
		series += len(f.GetMetric())
	}
	return lat, series, nil
}

// startProfile starts a CPU profile into name ("" profiles nothing) and
// returns the function that ends it.
func startProfile(name string) (stop func(), err error) {
	if name == "" {
		return func() {}, nil
	}
	f, err := os.Create(name)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			log.Printf("cpu profile: %v", err)
		}
	}, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
