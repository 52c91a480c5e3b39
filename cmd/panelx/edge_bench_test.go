package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/panelx/panelx/internal/testenv"
	"github.com/panelx/panelx/internal/testimage"
	"github.com/panelx/panelx/reconcile"
	"github.com/panelx/panelx/store/postgres"
)

// The edge's benchmarks (the numbers of the edge issue), with the real
// server, Docker and edge processes on this machine:
//
//	go test -run '^$' -bench Edge -benchtime 1x -timeout 30m ./cmd/panelx/
//
// BenchmarkEdgeProxy needs wrk (apt-get install -y wrk) and compares with
// Caddy as a reverse proxy on the same route when PANELX_BENCH_CADDY names a
// caddy binary (built from the module proxy into a temporary directory; see
// docs/architecture.md, "Edge").

// benchEnv is a server (PostgreSQL), an edge (no ACME) and one service
// "web" of project "bench" serving bench.test over plain HTTP.
type benchEnv struct {
	b         *testing.B
	bin       string
	serverEnv []string
	server    *exec.Cmd
	alice     apiClient
	edgeHTTP  string
	reg       *testimage.Registry
	project   string
}

func newBenchEnv(b *testing.B, replicas int, healthcheck bool) *benchEnv {
	b.Helper()
	docker := testenv.Docker(b)
	dbURL := testenv.NewDatabase(b)
	bin := buildPanelx(b)
	dataDir := b.TempDir()
	e := &benchEnv{b: b, bin: bin, project: uniqueName("bench")}
	e.serverEnv = []string{"PANELX_DATABASE_URL=" + dbURL, "PANELX_DATA_DIR=" + dataDir,
		"PANELX_LISTEN=127.0.0.1:" + strconv.Itoa(freeTCPPort(b))}
	var instance string
	b.Cleanup(func() {
		if instance != "" {
			testenv.RemoveLabelled(docker, reconcile.LabelInstance+"="+instance)
		}
	})
	var base string
	e.server, base, _ = startServer(b, bin, e.serverEnv...)
	st, err := postgres.Open(context.Background(), dbURL, postgres.Options{})
	if err != nil {
		b.Fatal(err)
	}
	instance, err = st.InstallationID(context.Background())
	st.Close()
	if err != nil {
		b.Fatal(err)
	}
	out, err := exec.Command(bin, "token", "create", "--user", "alice", "--database-url", dbURL).Output()
	if err != nil {
		b.Fatal(err)
	}
	e.alice = apiClient{t: b, base: base, token: strings.TrimSpace(string(out))}
	e.edgeHTTP = "127.0.0.1:" + strconv.Itoa(freeTCPPort(b))
	startEdge(b, bin, nil, "--server", base, "--data-dir", dataDir, "--http", e.edgeHTTP,
		"--https", "127.0.0.1:0", "--admin-listen", "", "--acme=false")
	e.reg = testimage.StartRegistry(b, testimage.RegistryOptions{})
	e.alice.must(201, "POST", "/api/v1/projects", map[string]any{"metadata": map[string]any{"name": e.project}})
	e.alice.must(201, "POST", "/api/v1/projects/"+e.project+"/services", e.webSpec(e.image(0), replicas, healthcheck, "bench.test"))
	e.waitServing(e.image(0), replicas)
	return e
}

// image returns the reference of version v of the workload, pushing it once.
func (e *benchEnv) image(v int) string {
	return e.reg.Push(e.b, fmt.Sprintf("bench/web:%d", v), testimage.Image(e.b, testimage.ImageOptions{Version: strconv.Itoa(v)}))
}

func (e *benchEnv) webSpec(image string, replicas int, healthcheck bool, hosts ...string) map[string]any {
	var domains []any
	for _, h := range hosts {
		domains = append(domains, map[string]any{"host": h, "tls": "Off"})
	}
	spec := map[string]any{"image": image, "replicas": replicas, "ports": []any{map[string]any{"containerPort": 8080}}, "domains": domains}
	if healthcheck {
		spec["healthcheck"] = map[string]any{"command": []string{"/testapp", "-check"}, "interval": "1s"}
	}
	return map[string]any{"metadata": map[string]any{"name": "web"}, "spec": spec}
}

// waitServing waits until web is Ready at its generation, every old
// replica gone, with the image's replicas as endpoints.
func (e *benchEnv) waitServing(image string, replicas int) {
	e.b.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		s := e.alice.service(e.project, "web")
		if reconcile.ServiceReady(&s) && s.Spec.Image == image && len(s.Status.Endpoints) == replicas {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.b.Fatalf("web never served %s", image)
}

// load sends requests through the edge from workers goroutines until
// stop; it counts answers that are not 200 (or no answer at all).
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       map[string]int
	cancel     context.CancelFunc
	wg         sync.WaitGroup
}

func (e *benchEnv) startLoad(workers int, host string) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel, errs: map[string]int{}}
	for i := 0; i < workers; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+e.edgeHTTP+"/", nil)
				req.Host = host
				resp, err := client.Do(req)
				if ctx.Err() != nil {
					return
				}
				what := ""
				if err != nil {
					what = err.Error()
				} else {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						what = resp.Status + " " + resp.Header.Get("X-PanelX-Edge")
					}
				}
				if what == "" {
					l.ok.Add(1)
					continue
				}
				l.failed.Add(1)
				l.mu.Lock()
				l.errs[what]++
				l.mu.Unlock()
			}
		}()
	}
	return l
}

func (l *load) stop() { l.cancel(); l.wg.Wait() }

// BenchmarkEdgeRollouts (b): 20 consecutive image updates of a 2-replica
// service under continuous load through the edge. Goal: 0 failed requests.
func BenchmarkEdgeRollouts(b *testing.B) {
	for range b.N {
		e := newBenchEnv(b, 2, true)
		images := []string{e.image(0)}
		for v := 1; v <= 20; v++ {
			images = append(images, e.image(v))
		}
		l := e.startLoad(8, "bench.test")
		var took []time.Duration
		for v := 1; v <= 20; v++ {
			start := time.Now()
			e.alice.must(200, "PUT", "/api/v1/projects/"+e.project+"/services/web", e.webSpec(images[v], 2, true, "bench.test"))
			e.waitServing(images[v], 2)
			took = append(took, time.Since(start))
		}
		l.stop()
		b.Logf("20 rollouts of 2 replicas under load: %d requests ok, %d failed %v; rollout took p50 %v, max %v",
			l.ok.Load(), l.failed.Load(), l.errs, percentile(took, 50), slices.Max(took))
		b.ReportMetric(float64(l.failed.Load()), "failed")
		b.ReportMetric(float64(l.ok.Load()), "ok")
		b.ReportMetric(percentile(took, 50).Seconds(), "s/rollout-p50")
	}
}

// BenchmarkEdgeServerKill (c): kill -9 of panelx server, five times, under
// load through the edge; the server comes back after a second each time.
// Goal: 0 failed requests.
func BenchmarkEdgeServerKill(b *testing.B) {
	for range b.N {
		e := newBenchEnv(b, 2, true)
		l := e.startLoad(8, "bench.test")
		for i := 0; i < 5; i++ {
			time.Sleep(time.Second)
			if err := e.server.Process.Kill(); err != nil {
				b.Fatal(err)
			}
			_, _ = e.server.Process.Wait()
			time.Sleep(time.Second)
			e.server, _, _ = startServer(b, e.bin, e.serverEnv...)
		}
		time.Sleep(time.Second)
		l.stop()
		b.Logf("5 × kill -9 of the server under load: %d requests ok through the edge, %d failed %v", l.ok.Load(), l.failed.Load(), l.errs)
		b.ReportMetric(float64(l.failed.Load()), "failed")
		b.ReportMetric(float64(l.ok.Load()), "ok")
	}
}

// BenchmarkEdgeNewHostname (d): a new hostname written (the API's answer
// to the write) → the first answer of the service through the edge.
func BenchmarkEdgeNewHostname(b *testing.B) {
	for range b.N {
		e := newBenchEnv(b, 1, false)
		image := e.image(0)
		hosts := []string{"bench.test"}
		var took []time.Duration
		client := &http.Client{Timeout: 5 * time.Second}
		for i := 0; i < 40; i++ {
			host := fmt.Sprintf("h%d.bench.test", i)
			hosts = append(hosts, host)
			e.alice.must(200, "PUT", "/api/v1/projects/"+e.project+"/services/web", e.webSpec(image, 1, false, hosts...))
			written := time.Now()
			for {
				req, _ := http.NewRequest("GET", "http://"+e.edgeHTTP+"/healthz", nil)
				req.Host = host
				resp, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == 200 {
						break
					}
				}
				if time.Since(written) > 10*time.Second {
					b.Fatalf("%s never answered", host)
				}
				time.Sleep(500 * time.Microsecond)
			}
			took = append(took, time.Since(written))
		}
		b.Logf("store write of a new hostname → first proxied answer (40 writes): p50 %v, p99 %v, max %v",
			percentile(took, 50), percentile(took, 99), slices.Max(took))
		b.ReportMetric(float64(percentile(took, 50).Microseconds())/1000, "ms-p50")
		b.ReportMetric(float64(percentile(took, 99).Microseconds())/1000, "ms-p99")
	}
}

// BenchmarkEdgeProxy (a): requests per second and p99 with wrk, to the
// container directly, through the edge, and (with PANELX_BENCH_CADDY)
// through Caddy on the same route; rounds interleaved.
func BenchmarkEdgeProxy(b *testing.B) {
	if _, err := exec.LookPath("wrk"); err != nil {
		b.Skip("wrk is not installed (apt-get install -y wrk)")
	}
	for range b.N {
		e := newBenchEnv(b, 1, false)
		s := e.alice.service(e.project, "web")
		direct := "http://" + s.Status.Endpoints[0].IP + ":8080/healthz"
		targets := []struct{ name, url, host string }{
			{"direct to the container", direct, ""},
			{"through panelx edge", "http://" + e.edgeHTTP + "/healthz", "bench.test"},
		}
		if caddy := os.Getenv("PANELX_BENCH_CADDY"); caddy != "" {
			addr := startCaddy(b, caddy, s.Status.Endpoints[0].IP+":8080")
			targets = append(targets, struct{ name, url, host string }{"through Caddy " + caddyVersion(caddy), "http://" + addr + "/healthz", "bench.test"})
		}
		const rounds = 3
		res := map[string][]wrkResult{}
		for r := 0; r < rounds; r++ {
			for _, tg := range targets {
				res[tg.name] = append(res[tg.name], runWrk(b, tg.url, tg.host, 10*time.Second))
			}
		}
		var lines []string
		med := map[string]wrkResult{}
		for _, tg := range targets {
			rs := res[tg.name]
			sort.Slice(rs, func(i, j int) bool { return rs[i].rps < rs[j].rps })
			m := rs[len(rs)/2]
			med[tg.name] = m
			lines = append(lines, fmt.Sprintf("%-32s %9.0f req/s  p50 %-9s p99 %-9s errors %d (rounds: %s)", tg.name, m.rps, m.p50, m.p99, m.errors, rpsList(rs)))
		}
		edge, dir := med["through panelx edge"], med["direct to the container"]
		lines = append(lines, fmt.Sprintf("edge / direct: %.2f of the requests/s", edge.rps/dir.rps))
		for name, m := range med {
			if strings.HasPrefix(name, "through Caddy") {
				lines = append(lines, fmt.Sprintf("edge / Caddy: %.2f of the requests/s, p99 %s vs %s", edge.rps/m.rps, edge.p99, m.p99))
			}
		}
		b.Logf("wrk -t2 -c32 -d10s, %d interleaved rounds, median:\n%s", rounds, strings.Join(lines, "\n"))
		b.ReportMetric(edge.rps, "edge-req/s")
		b.ReportMetric(dir.rps, "direct-req/s")
	}
}

type wrkResult struct {
	rps      float64
	p50, p99 string
	errors   int
}

var (
	wrkRPS    = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkP50    = regexp.MustCompile(`\s50%\s+([0-9.]+\w+)`)
	wrkP99    = regexp.MustCompile(`\s99%\s+([0-9.]+\w+)`)
	wrkNon2xx = regexp.MustCompile(`Non-2xx or 3xx responses:\s+(\d+)`)
	wrkSocket = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

func runWrk(b *testing.B, url, host string, d time.Duration) wrkResult {
	b.Helper()
	args := []string{"-t2", "-c32", "-d" + d.String(), "--latency"}
	if host != "" {
		args = append(args, "-H", "Host: "+host)
	}
	out, err := exec.Command("wrk", append(args, url)...).CombinedOutput()
	if err != nil {
		b.Fatalf("wrk: %v\n%s", err, out)
	}
	var r wrkResult
	if m := wrkRPS.FindStringSubmatch(string(out)); m != nil {
		r.rps, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := wrkP50.FindStringSubmatch(string(out)); m != nil {
		r.p50 = m[1]
	}
	if m := wrkP99.FindStringSubmatch(string(out)); m != nil {
		r.p99 = m[1]
	}
	if m := wrkNon2xx.FindStringSubmatch(string(out)); m != nil {
		r.errors, _ = strconv.Atoi(m[1])
	}
	if m := wrkSocket.FindStringSubmatch(string(out)); m != nil {
		for _, v := range m[1:] {
			n, _ := strconv.Atoi(v)
			r.errors += n
		}
	}
	return r
}

func rpsList(rs []wrkResult) string {
	var parts []string
	for _, r := range rs {
		parts = append(parts, fmt.Sprintf("%.0f", r.rps))
	}
	return strings.Join(parts, ", ")
}

// startCaddy runs caddy as a plain reverse proxy for bench.test to
// upstream, with its admin API and automatic HTTPS off.
func startCaddy(b *testing.B, bin, upstream string) string {
	b.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(freeTCPPort(b))
	cfg := map[string]any{
		"admin": map[string]any{"disabled": true},
		"apps": map[string]any{"http": map[string]any{"servers": map[string]any{"bench": map[string]any{
			"listen":          []string{addr},
			"automatic_https": map[string]any{"disable": true},
			"routes": []any{map[string]any{
				"match":  []any{map[string]any{"host": []string{"bench.test"}}},
				"handle": []any{map[string]any{"handler": "reverse_proxy", "upstreams": []any{map[string]any{"dial": upstream}}}},
			}},
		}}}},
	}
	data, _ := json.Marshal(cfg)
	path := filepath.Join(b.TempDir(), "caddy.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", path)
	cmd.Env = append(os.Environ(), "HOME="+b.TempDir())
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest("GET", "http://"+addr+"/healthz", nil)
		req.Host = "bench.test"
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return addr
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Fatal("caddy did not start")
	return ""
}

func caddyVersion(bin string) string {
	out, _ := exec.Command(bin, "version").Output()
	if f := strings.Fields(string(out)); len(f) > 0 {
		return f[0]
	}
	return ""
}

func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}
