package containers

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/blkiodev"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
	"github.com/docker/go-connections/nat"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap/zaptest"

	"github.com/panelx/panelx/internal/testenv"
	"github.com/panelx/panelx/internal/testimage"
	"github.com/panelx/panelx/naming"
)

// These tests run containers of internal/testimage on the real Docker
// Engine and read them with the collector. Every container carries
// testLabel=<instance>, the instance being unique per test, and is removed
// when the test ends.

const testLabel = "org.panelx.metrics.test"

// sampleInterval is short so that the tests do not wait for 1s ticks.
const sampleInterval = 250 * time.Millisecond

type dockerEnv struct {
	t        *testing.T
	cli      *client.Client
	ref      string
	instance string
}

func newDockerEnv(t *testing.T) *dockerEnv {
	t.Helper()
	cli := testenv.Docker(t)
	e := &dockerEnv{t: t, cli: cli, instance: "mtest-" + randomHex(5)}
	reg := testimage.StartRegistry(t, testimage.RegistryOptions{})
	// The label makes the image ID unique to this test, so cleanup may
	// remove it without touching anyone else's.
	e.ref = reg.Push(t, "metrics/app:1", testimage.Image(t, testimage.ImageOptions{
		Labels: map[string]string{testLabel: e.instance},
	}))
	t.Cleanup(e.cleanup)
	e.pull()
	return e
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (e *dockerEnv) pull() {
	e.t.Helper()
	rc, err := e.cli.ImagePull(e.t.Context(), e.ref, image.PullOptions{})
	if err != nil {
		e.t.Fatalf("pull %s: %v", e.ref, err)
	}
	defer rc.Close()
	if err := jsonmessage.DisplayJSONMessagesStream(rc, io.Discard, 0, false, nil); err != nil {
		e.t.Fatalf("pull %s: %v", e.ref, err)
	}
}

func (e *dockerEnv) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := filters.NewArgs(filters.Arg("label", testLabel+"="+e.instance))
	list, err := e.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		e.t.Errorf("cleanup: list containers: %v", err)
	}
	for _, c := range list {
		if err := e.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil {
			e.t.Errorf("cleanup: remove container %s: %v", c.ID, err)
		}
	}
	imgs, err := e.cli.ImageList(ctx, image.ListOptions{All: true, Filters: f})
	if err != nil {
		e.t.Errorf("cleanup: list images: %v", err)
	}
	for _, img := range imgs {
		if _, err := e.cli.ImageRemove(ctx, img.ID, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil {
			e.t.Errorf("cleanup: remove image %s: %v", img.ID, err)
		}
	}
}

// panelxLabels are the labels PanelX puts on a replica of instance.
func panelxLabels(instance, project, service string, replica int) map[string]string {
	return map[string]string{
		naming.LabelManaged: "true", naming.LabelInstance: instance,
		naming.LabelProject: project, naming.LabelService: service,
		naming.LabelReplica: strconv.Itoa(replica),
	}
}

// run creates and starts a container named name (prefixed with the
// instance, so parallel runs never collide) and returns its ID.
func (e *dockerEnv) run(name string, labels map[string]string, cfg container.Config, hc container.HostConfig) string {
	e.t.Helper()
	cfg.Image = e.ref
	cfg.Labels = map[string]string{testLabel: e.instance}
	for k, v := range labels {
		cfg.Labels[k] = v
	}
	created, err := e.cli.ContainerCreate(e.t.Context(), &cfg, &hc, nil, nil, e.instance+"-"+name)
	if err != nil {
		e.t.Fatalf("create %s: %v", name, err)
	}
	if err := e.cli.ContainerStart(e.t.Context(), created.ID, container.StartOptions{}); err != nil {
		e.t.Fatalf("start %s: %v", name, err)
	}
	return created.ID
}

const appPort = nat.Port(testimage.AppPort + "/tcp")

// publish is a HostConfig publishing the app's port on a random port of
// 127.0.0.1.
func publish() container.HostConfig {
	return container.HostConfig{PortBindings: nat.PortMap{appPort: {{HostIP: "127.0.0.1"}}}}
}

func (e *dockerEnv) appURL(id string) string {
	e.t.Helper()
	in, err := e.cli.ContainerInspect(e.t.Context(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	b := in.NetworkSettings.Ports[appPort]
	if len(b) == 0 {
		e.t.Fatalf("port %s not published: %v", appPort, in.NetworkSettings.Ports)
	}
	return "http://127.0.0.1:" + b[0].HostPort
}

// do sends a request, retrying while the app is not listening yet.
func (e *dockerEnv) do(method, url string, body []byte) []byte {
	e.t.Helper()
	var last error
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		req, err := http.NewRequestWithContext(e.t.Context(), method, url, bytes.NewReader(body))
		if err != nil {
			e.t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			last = err
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode < 300 {
			return b
		}
		last = fmt.Errorf("%s: %s %v", resp.Status, b, err)
	}
	e.t.Fatalf("%s %s: %v", method, url, last)
	return nil
}

// startCollector runs a DockerSource following events and a Collector on
// the instance's containers until the test ends.
func (e *dockerEnv) startCollector(api interface {
	DockerAPI
	StatsAPI
}, opts Options) (*Collector, *prometheus.Registry) {
	e.t.Helper()
	log := zaptest.NewLogger(e.t)
	src := NewDockerSource(api, e.instance, DockerSourceOptions{Resync: 2 * time.Second, Logger: log})
	opts.Interval, opts.Stats, opts.Logger = sampleInterval, api, log
	c := New(src, opts)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = src.Run(ctx) })
	wg.Go(func() {
		if err := c.Run(ctx); err != nil {
			e.t.Errorf("collector: %v", err)
		}
	})
	// Logging after the test ended panics: stop everything first.
	e.t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return c, reg
}

// waitFor polls cond until it holds, failing the test with cond's last
// explanation after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	var why string
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var ok bool
		if ok, why = cond(); ok {
			return
		}
	}
	t.Fatalf("%s: still not after %v: %s", what, timeout, why)
}

func waitSample(t *testing.T, c *Collector, id string, rates bool) Sample {
	t.Helper()
	var s Sample
	waitFor(t, 30*time.Second, "sample of "+shortID(id), func() (bool, string) {
		var ok bool
		s, ok = c.Latest(id)
		return ok && (!rates || s.Rates.Valid), fmt.Sprintf("have=%v rates=%+v", ok, s.Rates)
	})
	return s
}

// gathered reads one series value; ok is false when no series of name has
// all the given label values.
func gathered(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if hasLabels(m, labels) {
				if f.GetType() == dto.MetricType_COUNTER {
					return m.GetCounter().GetValue(), true
				}
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := want[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

// seriesNamed lists the metric names that have a series of container name.
func seriesNamed(t *testing.T, reg prometheus.Gatherer, container string) map[string]bool {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]bool{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			if hasLabels(m, map[string]string{"name": container}) {
				out[f.GetName()] = true
			}
		}
	}
	return out
}

func TestDockerCgroupMetrics(t *testing.T) {
	e := newDockerEnv(t)
	app := e.run("app", panelxLabels(e.instance, "shop", "web", 0), container.Config{}, withHost(publish(), func(hc *container.HostConfig) {
		hc.Memory = 64 << 20
		hc.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: 3}
	}))
	stranger := e.run("stranger", nil, container.Config{Cmd: []string{"-sleep"}}, container.HostConfig{})
	other := e.run("other", panelxLabels(e.instance+"-other", "shop", "web", 1), container.Config{Cmd: []string{"-sleep"}}, container.HostConfig{})
	c, reg := e.startCollector(e.cli, Options{})
	url := e.appURL(app)
	appName := e.instance + "-app"
	lv := map[string]string{"name": appName, "project": "shop", "service": "web", "replica": "0"}

	s := waitSample(t, c, app, true)
	t.Logf("source %s, working set %d, usage %d", s.Source, s.MemoryWorkingSet, s.MemoryUsage)
	if !strings.HasPrefix(s.Source, "cgroup_") {
		t.Errorf("source %q: the test runs on the host, cgroup files must be readable", s.Source)
	}
	if v, ok := gathered(t, reg, "panelx_container_metrics_source", map[string]string{"name": appName, "source": s.Source}); !ok || v != 1 {
		t.Errorf("panelx_container_metrics_source{source=%q} = %v, %v", s.Source, v, ok)
	}
	if s.MemoryWorkingSet == 0 || s.MemoryUsage < s.MemoryWorkingSet {
		t.Errorf("memory usage %d, working set %d: want 0 < working set <= usage", s.MemoryUsage, s.MemoryWorkingSet)
	}
	if v, _ := gathered(t, reg, "container_spec_memory_limit_bytes", lv); v != 64<<20 {
		t.Errorf("container_spec_memory_limit_bytes = %v, want %d", v, 64<<20)
	}
	if v, _ := gathered(t, reg, "container_start_time_seconds", lv); time.Since(time.Unix(int64(v), 0)) > time.Minute {
		t.Errorf("container_start_time_seconds = %v, want about now", v)
	}

	t.Run("only this instance's containers", func(t *testing.T) {
		for _, n := range []string{e.instance + "-stranger", e.instance + "-other"} {
			if got := seriesNamed(t, reg, n); len(got) > 0 {
				t.Errorf("container %s is exported: %v", n, got)
			}
		}
		for _, id := range []string{stranger, other} {
			if _, ok := c.Latest(id); ok {
				t.Errorf("Latest(%s) answers for a container that is not the instance's", shortID(id))
			}
		}
	})

	t.Run("CPU burn", func(t *testing.T) {
		e.checkBurn(c, app, url, 2*time.Second)
	})

	t.Run("network", func(t *testing.T) {
		eth0 := map[string]string{"name": appName, "interface": "eth0"}
		rx0, ok := gathered(t, reg, "container_network_receive_bytes_total", eth0)
		if !ok {
			t.Fatal("no container_network_receive_bytes_total{interface=eth0}")
		}
		tx0, _ := gathered(t, reg, "container_network_transmit_bytes_total", eth0)
		const size = 2 << 20
		e.do("PUT", url+"/files/blob", bytes.Repeat([]byte("x"), size))
		if got := e.do("GET", url+"/files/blob", nil); len(got) != size {
			t.Fatalf("GET /files/blob: %d bytes", len(got))
		}
		waitFor(t, 10*time.Second, "network counters", func() (bool, string) {
			rx, _ := gathered(t, reg, "container_network_receive_bytes_total", eth0)
			tx, _ := gathered(t, reg, "container_network_transmit_bytes_total", eth0)
			return rx-rx0 >= size && tx-tx0 >= size, fmt.Sprintf("rx +%.0f, tx +%.0f, want both >= %d", rx-rx0, tx-tx0, size)
		})
	})

	t.Run("restart", func(t *testing.T) {
		start0, _ := gathered(t, reg, "container_start_time_seconds", lv)
		e.do("POST", url+"/exit?code=3", nil)
		waitFor(t, 30*time.Second, "restart counted", func() (bool, string) {
			n, _ := gathered(t, reg, "panelx_container_restarts_total", lv)
			start, _ := gathered(t, reg, "container_start_time_seconds", lv)
			return n == 1 && start > start0, fmt.Sprintf("restarts %v, start time %v (was %v)", n, start, start0)
		})
	})

	t.Run("removed container disappears", func(t *testing.T) {
		if err := e.cli.ContainerRemove(t.Context(), app, container.RemoveOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "series of the removed container gone", func() (bool, string) {
			got := seriesNamed(t, reg, appName)
			_, ok := c.Latest(app)
			return len(got) == 0 && !ok, fmt.Sprintf("still exported: %v (Latest: %v)", got, ok)
		})
	})
}

// checkBurn makes the app burn CPU and compares the rise of the
// collector's CPU counter with the CPU time the kernel accounted to the
// app's process in /proc/<pid>/stat, an independent count. The burn lasts
// a wall-clock time, so on a loaded machine it gets less than a core: the
// expected amount is what it really got, not the nominal burn.
func (e *dockerEnv) checkBurn(c *Collector, id, url string, burn time.Duration) {
	t := e.t
	t.Helper()
	pid := e.pid(id)
	c0 := freshSample(t, c, id, time.Now()).CPUUsage
	p0 := taskCPU(t, pid)
	e.do("POST", url+"/burn?seconds="+fmt.Sprint(burn.Seconds()), nil)
	var peak float64
	for deadline := time.Now().Add(burn + 500*time.Millisecond); time.Now().Before(deadline); time.Sleep(sampleInterval / 2) {
		if s, ok := c.Latest(id); ok {
			peak = max(peak, s.Rates.CPUPercent)
		}
	}
	p1 := taskCPU(t, pid) // the burn is over: the process idles again
	c1 := freshSample(t, c, id, time.Now()).CPUUsage
	got, want := c1-c0, p1-p0
	avg := 100 * want.Seconds() / burn.Seconds()
	t.Logf("burn of %v: the process got %v CPU (%.0f%% of a core); container_cpu_usage_seconds_total rose by %v; peak rate %.0f%%",
		burn, want, avg, got.Round(time.Millisecond), peak)
	if want < 100*time.Millisecond {
		t.Fatalf("the burn got only %v CPU: the machine is too busy to check the collector against it", want)
	}
	// /proc/<pid>/stat counts in 10 ms ticks; the idle server adds a little.
	if diff := (got - want).Abs(); diff > 50*time.Millisecond+want/10 {
		t.Errorf("CPU counter rose by %v, the process used %v", got, want)
	}
	if peak < avg/2 || peak > 130 {
		t.Errorf("peak CPU rate %.0f%%, want between half the burn's average (%.0f%%) and one core", peak, avg)
	}
}

func (e *dockerEnv) pid(id string) int {
	e.t.Helper()
	in, err := e.cli.ContainerInspect(e.t.Context(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return in.State.Pid
}

// taskCPU is the user+system time of a process, all threads.
func taskCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("/proc/%d/stat: %q", pid, b)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond // USER_HZ is 100
}

// freshSample waits for a sample read after the given time.
func freshSample(t *testing.T, c *Collector, id string, after time.Time) Sample {
	t.Helper()
	var s Sample
	waitFor(t, 10*time.Second, "a fresh sample", func() (bool, string) {
		var ok bool
		s, ok = c.Latest(id)
		return ok && s.Time.After(after), fmt.Sprintf("latest sample of %v", s.Time)
	})
	return s
}

func withHost(hc container.HostConfig, f func(*container.HostConfig)) container.HostConfig {
	f(&hc)
	return hc
}

// TestDockerFsWrites: a container writes 8 MiB with fsync and its
// container_fs_writes_bytes_total rises by at least that.
//
// On cgroup v1 the kernel counts blkio bytes in blk-throttle; since Linux
// 6.10 (this host runs 6.18) that code only runs for a disk on which some
// cgroup has a throttle rule, so without one every container's counters
// stay 0 — docker stats shows "0B / 0B" too. The container therefore gets
// a generous write limit (1 GiB/s) on the disk of Docker's data root.
// Without fsync the data would wait in the page cache and be written back
// later by the kernel's flusher threads, which cgroup v1 charges to the
// root cgroup, not the container: buffered writes are not observable there.
func TestDockerFsWrites(t *testing.T) {
	e := newDockerEnv(t)
	disk := dockerDisk(t, e.cli)
	helper := buildFswrite(t)
	id := e.run("writer", panelxLabels(e.instance, "shop", "db", 0), container.Config{Cmd: []string{"-sleep"}},
		container.HostConfig{
			Mounts: []mount.Mount{{Type: mount.TypeBind, Source: filepath.Dir(helper), Target: "/helper", ReadOnly: true}},
			Resources: container.Resources{
				BlkioDeviceWriteBps: []*blkiodev.ThrottleDevice{{Path: disk, Rate: 1 << 30}},
			},
		})
	c, reg := e.startCollector(e.cli, Options{})
	waitSample(t, c, id, false)
	dev := map[string]string{"name": e.instance + "-writer", "device": disk}
	before, _ := gathered(t, reg, "container_fs_writes_bytes_total", dev)

	const mib = 8
	e.exec(id, "/helper/fswrite", "-mib", strconv.Itoa(mib), "/data/blob")
	waitFor(t, 10*time.Second, "fs writes counted", func() (bool, string) {
		after, ok := gathered(t, reg, "container_fs_writes_bytes_total", dev)
		return ok && after-before >= mib<<20, fmt.Sprintf("container_fs_writes_bytes_total{device=%q} rose by %.0f (series present: %v), want >= %d",
			disk, after-before, ok, mib<<20)
	})
	s, _ := c.Latest(id)
	t.Logf("block I/O after the write: %+v", s.BlockIO)
}

// dockerDisk is the whole disk (/dev/<name>) Docker's data root lives on.
func dockerDisk(t *testing.T, cli *client.Client) string {
	t.Helper()
	info, err := cli.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(info.DockerRootDir, &st); err != nil {
		t.Fatalf("stat %s: %v", info.DockerRootDir, err)
	}
	dev := fmt.Sprintf("%d:%d", unixMajor(st.Dev), unixMinor(st.Dev))
	sysDir, err := filepath.EvalSymlinks("/sys/dev/block/" + dev)
	if err != nil {
		t.Skipf("Docker's data root %s is on %s, which is no block device (%v): no block I/O to count", info.DockerRootDir, dev, err)
	}
	// Throttle rules take whole disks; a partition's parent is the disk.
	if _, err := os.Stat(filepath.Join(sysDir, "partition")); err == nil {
		sysDir = filepath.Dir(sysDir)
	}
	return "/dev/" + filepath.Base(sysDir)
}

func unixMajor(dev uint64) uint64 { return (dev >> 8) & 0xfff }
func unixMinor(dev uint64) uint64 { return (dev & 0xff) | ((dev >> 12) & 0xfff00) }

// buildFswrite builds ./internal/fswrite into a directory of its own (it is
// bind-mounted into the container) and returns the binary's path.
func buildFswrite(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "fswrite")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "github.com/panelx/panelx/metrics/containers/internal/fswrite")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build fswrite: %v\n%s", err, b)
	}
	// The daemon reads it as root; the temp dir may be 0700.
	if err := os.Chmod(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	return out
}

// exec runs a command in the container and fails the test unless it
// exits 0.
func (e *dockerEnv) exec(id string, cmd ...string) {
	e.t.Helper()
	ctx := e.t.Context()
	created, err := e.cli.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: cmd})
	if err != nil {
		e.t.Fatalf("exec %v: %v", cmd, err)
	}
	if err := e.cli.ContainerExecStart(ctx, created.ID, container.ExecStartOptions{Detach: true}); err != nil {
		e.t.Fatalf("exec %v: %v", cmd, err)
	}
	waitFor(e.t, 30*time.Second, fmt.Sprintf("exec %v", cmd), func() (bool, string) {
		in, err := e.cli.ContainerExecInspect(ctx, created.ID)
		if err != nil {
			e.t.Fatalf("exec %v: %v", cmd, err)
		}
		if !in.Running && in.ExitCode != 0 {
			e.t.Fatalf("exec %v: exit code %d", cmd, in.ExitCode)
		}
		return !in.Running, "running"
	})
}

// TestDockerStreamFallback forces Docker's streaming stats and expects the
// same metric names with plausible values, from one subscription per
// container.
func TestDockerStreamFallback(t *testing.T) {
	e := newDockerEnv(t)
	app := e.run("app", panelxLabels(e.instance, "shop", "web", 0), container.Config{}, withHost(publish(), func(hc *container.HostConfig) {
		hc.Memory = 48 << 20
	}))
	counting := &countingDocker{DockerAPI: e.cli, stats: e.cli}
	c, reg := e.startCollector(counting, Options{ForceStream: true})
	url := e.appURL(app)
	appName := e.instance + "-app"
	lv := map[string]string{"name": appName}

	s := waitSample(t, c, app, true)
	if s.Source != SourceStatsStream {
		t.Fatalf("source %q, want %q", s.Source, SourceStatsStream)
	}
	names := seriesNamed(t, reg, appName)
	for _, want := range []string{
		"container_cpu_usage_seconds_total", "container_memory_usage_bytes", "container_memory_working_set_bytes",
		"container_spec_memory_limit_bytes", "container_network_receive_bytes_total", "container_network_transmit_bytes_total",
		"container_start_time_seconds", "container_last_seen", "panelx_container_restarts_total", "panelx_container_metrics_source",
	} {
		if !names[want] {
			t.Errorf("no %s from the stats stream (have %v)", want, names)
		}
	}
	if s.MemoryWorkingSet == 0 || s.MemoryUsage < s.MemoryWorkingSet || s.MemoryLimit != 48<<20 {
		t.Errorf("memory: usage %d, working set %d, limit %d", s.MemoryUsage, s.MemoryWorkingSet, s.MemoryLimit)
	}

	e.checkBurn(c, app, url, 2*time.Second)
	rx0, _ := gathered(t, reg, "container_network_receive_bytes_total", lv)
	const size = 1 << 20
	e.do("PUT", url+"/files/blob", bytes.Repeat([]byte("y"), size))
	waitFor(t, 10*time.Second, "received bytes counted", func() (bool, string) {
		rx, _ := gathered(t, reg, "container_network_receive_bytes_total", lv)
		return rx-rx0 >= size, fmt.Sprintf("rx +%.0f, want >= %d", rx-rx0, size)
	})
	if n, oneShot := counting.streams.Load(), counting.oneShot.Load(); n != 1 || oneShot != 0 {
		t.Errorf("stats calls: %d streaming, %d one-shot; want exactly one stream", n, oneShot)
	}
}

// countingDocker counts every Docker call the collector and its source make.
type countingDocker struct {
	DockerAPI
	stats            StatsAPI
	calls            atomic.Int64
	streams, oneShot atomic.Int64
}

func (d *countingDocker) ContainerList(ctx context.Context, o container.ListOptions) ([]container.Summary, error) {
	d.calls.Add(1)
	return d.DockerAPI.ContainerList(ctx, o)
}

func (d *countingDocker) ContainerInspect(ctx context.Context, id string) (container.InspectResponse, error) {
	d.calls.Add(1)
	return d.DockerAPI.ContainerInspect(ctx, id)
}

func (d *countingDocker) Events(ctx context.Context, o events.ListOptions) (<-chan events.Message, <-chan error) {
	d.calls.Add(1)
	return d.DockerAPI.Events(ctx, o)
}

func (d *countingDocker) ContainerStats(ctx context.Context, id string, stream bool) (container.StatsResponseReader, error) {
	d.calls.Add(1)
	if stream {
		d.streams.Add(1)
	} else {
		d.oneShot.Add(1)
	}
	return d.stats.ContainerStats(ctx, id, stream)
}

// countingSource counts the calls of a Source.
type countingSource struct {
	Source
	calls atomic.Int64
}

func (s *countingSource) Containers(ctx context.Context) ([]Target, error) {
	s.calls.Add(1)
	return s.Source.Containers(ctx)
}

// TestDockerScrapeMakesNoDockerCall scrapes while the collector runs and
// after it stopped; neither scrape calls Docker or the source.
func TestDockerScrapeMakesNoDockerCall(t *testing.T) {
	for _, force := range []bool{false, true} {
		t.Run(fmt.Sprintf("ForceStream=%v", force), func(t *testing.T) {
			e := newDockerEnv(t)
			id := e.run("idle", panelxLabels(e.instance, "shop", "worker", 0), container.Config{Cmd: []string{"-sleep"}}, container.HostConfig{})
			docker := &countingDocker{DockerAPI: e.cli, stats: e.cli}
			// No events, and a resync far away: after the first list the
			// collector itself makes no Docker call, so any call while
			// scraping would be the scrape's.
			src := &countingSource{Source: NewDockerSource(docker, e.instance, DockerSourceOptions{Resync: time.Hour})}
			c := New(src, Options{Interval: sampleInterval, Stats: docker, ForceStream: force, Logger: zaptest.NewLogger(t)})
			reg := prometheus.NewRegistry()
			reg.MustRegister(c)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				_ = c.Run(ctx)
			}()
			defer func() { cancel(); <-done }()
			waitSample(t, c, id, true)

			calls := docker.calls.Load()
			scrape := func() {
				n := 0
				for range 20 {
					n = max(n, len(seriesNamed(t, reg, e.instance+"-idle")))
				}
				if n < 8 {
					t.Fatalf("scrape found %d metrics of the container", n)
				}
			}
			scrape()
			if got := docker.calls.Load(); got != calls {
				t.Errorf("20 scrapes while running made %d Docker calls", got-calls)
			}

			cancel()
			<-done
			calls, srcCalls := docker.calls.Load(), src.calls.Load()
			scrape()
			if docker.calls.Load() != calls || src.calls.Load() != srcCalls {
				t.Errorf("scrapes after Run stopped: %d Docker calls, %d source calls",
					docker.calls.Load()-calls, src.calls.Load()-srcCalls)
			}
		})
	}
}
