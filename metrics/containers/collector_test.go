package containers

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const (
	idA = "aaaaaaaaaaaa0000000000000000000000000000000000000000000000000001"
	idB = "bbbbbbbbbbbb0000000000000000000000000000000000000000000000000002"
)

func TestCollectorReadsCgroupFiles(t *testing.T) {
	tests := []struct {
		name       string
		v2         bool
		wantSource string
		wantCPU    time.Duration
		wantUsage  uint64
		wantWS     uint64
		wantBlocks []DeviceStats
	}{
		{
			name: "v1", wantSource: SourceCgroupV1,
			wantCPU: 97105012, wantUsage: 9449472, wantWS: 9449472 - 8388608,
			wantBlocks: []DeviceStats{{"/dev/dm-0", 4096, 0}, {"/dev/vda", 49152, 8404992}},
		},
		{
			name: "v2", v2: true, wantSource: SourceCgroupV2,
			wantCPU: 2093810 * time.Microsecond, wantUsage: 10543104, wantWS: 10543104 - 8388608,
			wantBlocks: []DeviceStats{{"/dev/dm-0", 4096, 0}, {"/dev/vda", 1459200, 8404992}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeHost(t, tt.v2)
			h.addContainer(idA, 100)
			src := &fakeSource{}
			src.set(target(idA, 100, "shop", "web", "0", "panelx-shop-web-0"))
			s := newStepper(t, src, h.options())

			s.tick(time.Second)
			got, ok := s.c.Latest(idA)
			if !ok {
				t.Fatal("no sample after the first tick")
			}
			if got.Source != tt.wantSource || got.CPUUsage != tt.wantCPU || got.MemoryUsage != tt.wantUsage ||
				got.MemoryWorkingSet != tt.wantWS || got.MemoryLimit != 64<<20 {
				t.Errorf("sample = %+v", got)
			}
			wantNet := []InterfaceStats{{"eth0", 1050112, 53211}, {"eth1", 4294967296000, 42}}
			if !reflect.DeepEqual(got.Networks, wantNet) {
				t.Errorf("networks = %+v, want %+v", got.Networks, wantNet)
			}
			if !reflect.DeepEqual(got.BlockIO, tt.wantBlocks) {
				t.Errorf("block I/O = %+v, want %+v", got.BlockIO, tt.wantBlocks)
			}
			if got.Rates.Valid || got.Rates.MemoryUsed != tt.wantWS || got.Rates.MemoryLimit != 64<<20 {
				t.Errorf("rates of a first sample = %+v: want memory only", got.Rates)
			}

			// Half a core for two seconds, 2,000 bytes in and 1,000 out.
			h.setCPU(idA, tt.wantCPU+time.Second)
			h.setNet(100, 1050112+2000, 53211+1000)
			s.tick(2 * time.Second)
			got, _ = s.c.Latest(idA)
			r := got.Rates
			if !r.Valid || r.Window != 2*time.Second || !near(r.CPUPercent, 50) ||
				!near(r.NetworkRxBytesPerSecond, 1000) || !near(r.NetworkTxBytesPerSecond, 500) {
				t.Errorf("rates = %+v, want 50%% CPU, 1000 B/s in, 500 B/s out over 2s", r)
			}
		})
	}
}

func near(got, want float64) bool { return got > want-0.001 && got < want+0.001 }

// TestCollectorExport checks names, help texts, types and labels against
// cAdvisor's, for a container read from the v1 fixtures.
func TestCollectorExport(t *testing.T) {
	h := newFakeHost(t, false)
	h.addContainer(idA, 100)
	src := &fakeSource{}
	src.set(target(idA, 100, "shop", "web", "0", "panelx-shop-web-0"))
	s := newStepper(t, src, h.options())
	s.tick(time.Second)

	const labels = `name="panelx-shop-web-0",project="shop",replica="0",service="web"`
	want := `
# HELP container_cpu_usage_seconds_total Cumulative cpu time consumed in seconds.
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{cpu="total",` + labels + `} 0.097105012
# HELP container_fs_reads_bytes_total Cumulative count of bytes read
# TYPE container_fs_reads_bytes_total counter
container_fs_reads_bytes_total{device="/dev/dm-0",` + labels + `} 4096
container_fs_reads_bytes_total{device="/dev/vda",` + labels + `} 49152
# HELP container_fs_writes_bytes_total Cumulative count of bytes written
# TYPE container_fs_writes_bytes_total counter
container_fs_writes_bytes_total{device="/dev/dm-0",` + labels + `} 0
container_fs_writes_bytes_total{device="/dev/vda",` + labels + `} 8404992
# HELP container_last_seen Last time a container was seen by the exporter
# TYPE container_last_seen gauge
container_last_seen{` + labels + `} 1.700000101e+09
# HELP container_memory_usage_bytes Current memory usage in bytes, including all memory regardless of when it was accessed
# TYPE container_memory_usage_bytes gauge
container_memory_usage_bytes{` + labels + `} 9449472
# HELP container_memory_working_set_bytes Current working set in bytes.
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{` + labels + `} 1060864
# HELP container_network_receive_bytes_total Cumulative count of bytes received
# TYPE container_network_receive_bytes_total counter
container_network_receive_bytes_total{interface="eth0",` + labels + `} 1050112
container_network_receive_bytes_total{interface="eth1",` + labels + `} 4294967296000
# HELP container_network_transmit_bytes_total Cumulative count of bytes transmitted
# TYPE container_network_transmit_bytes_total counter
container_network_transmit_bytes_total{interface="eth0",` + labels + `} 53211
container_network_transmit_bytes_total{interface="eth1",` + labels + `} 42
# HELP container_spec_memory_limit_bytes Memory limit for the container.
# TYPE container_spec_memory_limit_bytes gauge
container_spec_memory_limit_bytes{` + labels + `} 67108864
# HELP container_start_time_seconds Start time of the container since unix epoch in seconds.
# TYPE container_start_time_seconds gauge
container_start_time_seconds{` + labels + `} 1.7e+09
# HELP panelx_container_metrics_source Where the container's metrics come from (value 1): cgroup_v1 or cgroup_v2 files, or Docker's stats_stream.
# TYPE panelx_container_metrics_source gauge
panelx_container_metrics_source{` + labels + `,source="cgroup_v1"} 1
# HELP panelx_container_restarts_total Number of times Docker restarted the container under its restart policy (docker inspect's RestartCount).
# TYPE panelx_container_restarts_total counter
panelx_container_restarts_total{` + labels + `} 2
`
	if err := testutil.CollectAndCompare(s.c, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	// The registry's consistency checks (descriptions, label names) pass.
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(s.c)
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
}

func TestCollectorFollowsTheSource(t *testing.T) {
	h := newFakeHost(t, false)
	h.addContainer(idA, 100)
	h.addContainer(idB, 200)
	src := &fakeSource{}
	a := target(idA, 100, "shop", "web", "10", "panelx-shop-web-10")
	b := target(idB, 200, "shop", "web", "9", "panelx-shop-web-9")
	src.set(a, b)
	s := newStepper(t, src, h.options())
	s.tick(time.Second)

	got := s.c.ForProject("shop")
	if len(got) != 2 || got[0].Name != "panelx-shop-web-9" || got[1].Name != "panelx-shop-web-10" {
		t.Fatalf("ForProject = %v, want replica 9 before 10", names(got))
	}
	if n := len(s.c.ForProject("other")); n != 0 {
		t.Errorf("ForProject(other) = %d samples", n)
	}

	// B disappears: it leaves the output at the next tick.
	src.set(a)
	s.tick(time.Second)
	if _, ok := s.c.Latest(idB); ok {
		t.Error("Latest of a removed container still answers")
	}
	if n := testutil.CollectAndCount(s.c, "container_cpu_usage_seconds_total"); n != 1 {
		t.Errorf("%d CPU series after removal, want 1", n)
	}
	if n := testutil.CollectAndCount(s.c, "panelx_container_restarts_total"); n != 1 {
		t.Errorf("%d restart series after removal, want 1", n)
	}

	// A restarts: new PID and start time, counters start again from a
	// lower value. Its first sample has no rates, never negative ones.
	h.addContainer(idA, 101)
	h.setCPU(idA, time.Millisecond)
	a.PID, a.StartedAt, a.RestartCount = 101, a.StartedAt.Add(time.Minute), 3
	src.set(a)
	s.tick(time.Second)
	sa, ok := s.c.Latest(idA)
	if !ok || sa.Rates.Valid || sa.CPUUsage != time.Millisecond || sa.RestartCount != 3 {
		t.Fatalf("after a restart: ok=%v sample=%+v", ok, sa)
	}
	s.tick(time.Second)
	if sa, _ = s.c.Latest(idA); !sa.Rates.Valid || sa.Rates.CPUPercent != 0 {
		t.Errorf("second sample after the restart: rates %+v, want valid and 0%% CPU", sa.Rates)
	}
}

func names(ss []Sample) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Name)
	}
	return out
}

// TestScrapeReadsMemoryOnly: once sampled, scrapes neither call the
// source nor read a file — the fake host is deleted before scraping.
func TestScrapeReadsMemoryOnly(t *testing.T) {
	h := newFakeHost(t, false)
	h.addContainer(idA, 100)
	src := &fakeSource{}
	src.set(target(idA, 100, "shop", "web", "0", "panelx-shop-web-0"))
	s := newStepper(t, src, h.options())
	s.tick(time.Second)
	s.tick(time.Second)

	if err := os.RemoveAll(h.root); err != nil {
		t.Fatal(err)
	}
	calls := src.calls.Load()
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.c)
	for range 5 {
		n, err := testutil.GatherAndCount(reg)
		if err != nil {
			t.Fatal(err)
		}
		if n != 16 {
			t.Fatalf("%d series, want 16", n)
		}
	}
	if got := src.calls.Load(); got != calls {
		t.Errorf("scrapes called the source %d times", got-calls)
	}
}

func TestCollectorCardinalityBounds(t *testing.T) {
	h := newFakeHost(t, false)
	h.addContainer(idA, 100)
	netDev := "Inter-|\n face |\n"
	for _, name := range []string{"lo", "eth9", "eth8", "eth7", "eth6", "eth5", "eth4", "eth3", "eth2", "eth1", "eth0"} {
		netDev += "  " + name + ": 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0\n"
	}
	// A tunnel device of the ip_gre module, never used: left out, so it
	// does not take one of the 8 places although it sorts first.
	netDev += "  erspan0: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
	h.write(netDev, "proc", "100", "net", "dev")
	// 7:0 is no block device of this host (no /sys/dev/block/7:0).
	h.write("254:0 Read 1\n254:0 Write 2\n7:0 Read 3\n7:0 Write 4\nTotal 10\n",
		h.file(idA, "blkio", "blkio.throttle.io_service_bytes_recursive")...)
	src := &fakeSource{}
	src.set(target(idA, 100, "shop", "web", "0", "panelx-shop-web-0"))
	s := newStepper(t, src, h.options())
	s.tick(time.Second)

	got, _ := s.c.Latest(idA)
	if len(got.Networks) != maxInterfaces || got.Networks[0].Interface != "eth0" || got.Networks[maxInterfaces-1].Interface != "eth7" {
		t.Errorf("interfaces = %+v, want eth0…eth7", got.Networks)
	}
	if want := []DeviceStats{{"/dev/vda", 1, 2}}; !reflect.DeepEqual(got.BlockIO, want) {
		t.Errorf("devices = %+v, want %+v", got.BlockIO, want)
	}
}

func TestCollectorSharedNetworkNamespace(t *testing.T) {
	h := newFakeHost(t, false)
	h.addContainer(idA, 100)
	src := &fakeSource{}
	tg := target(idA, 100, "shop", "web", "0", "panelx-shop-web-0")
	tg.NetworkMode = "host"
	src.set(tg)
	s := newStepper(t, src, h.options())
	s.tick(time.Second)
	got, ok := s.c.Latest(idA)
	if !ok || len(got.Networks) != 0 {
		t.Fatalf("host network container: ok=%v networks=%+v, want a sample without networks", ok, got.Networks)
	}
}

// fakeStats serves streams of JSON frames and counts the calls.
type fakeStats struct {
	frames []container.StatsResponse
	calls  atomic.Int64
	stream atomic.Int64 // calls with stream=true
}

func (f *fakeStats) ContainerStats(ctx context.Context, id string, stream bool) (container.StatsResponseReader, error) {
	f.calls.Add(1)
	if stream {
		f.stream.Add(1)
	}
	pr, pw := io.Pipe()
	go func() {
		enc := json.NewEncoder(pw)
		for _, fr := range f.frames {
			if err := enc.Encode(fr); err != nil {
				return
			}
		}
		<-ctx.Done() // a stream stays open until the reader goes away
		pw.CloseWithError(ctx.Err())
	}()
	return container.StatsResponseReader{Body: pr, OSType: "linux"}, nil
}

func statsFrame(at time.Time, cpu uint64) container.StatsResponse {
	var f container.StatsResponse
	f.Read = at
	f.CPUStats.CPUUsage.TotalUsage = cpu
	f.MemoryStats.Usage = 9449472
	f.MemoryStats.Stats = map[string]uint64{"total_inactive_file": 8388608}
	f.Networks = map[string]container.NetworkStats{"eth0": {RxBytes: 1000, TxBytes: 2000}}
	f.BlkioStats.IoServiceBytesRecursive = []container.BlkioStatEntry{
		{Major: 254, Minor: 0, Op: "Read", Value: 10}, {Major: 254, Minor: 0, Op: "Write", Value: 20},
		{Major: 254, Minor: 0, Op: "Total", Value: 30},
	}
	return f
}

func TestCollectorStreamFallback(t *testing.T) {
	tests := []struct {
		name       string
		noProc     bool // the container's PID is not visible: PanelX in a container
		force      bool
		stats      bool
		wantSource string
	}{
		{name: "PID not visible", noProc: true, stats: true, wantSource: SourceStatsStream},
		{name: "forced", force: true, stats: true, wantSource: SourceStatsStream},
		{name: "readable cgroup needs no stream", stats: true, wantSource: SourceCgroupV1},
		{name: "no stats API: no readings", noProc: true, wantSource: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeHost(t, false)
			if !tt.noProc {
				h.addContainer(idA, 100)
			}
			at := time.Unix(1700000200, 0)
			fs := &fakeStats{frames: []container.StatsResponse{
				{}, // a stopped container's frame: skipped
				statsFrame(at, 1e9),
			}}
			opts := h.options()
			opts.ForceStream = tt.force
			if tt.stats {
				opts.Stats = fs
			}
			src := &fakeSource{}
			src.set(target(idA, 100, "shop", "web", "0", "panelx-shop-web-0"))
			s := newStepper(t, src, opts)
			s.tick(time.Second)

			var got Sample
			var ok bool
			deadline := time.Now().Add(5 * time.Second)
			for ; time.Now().Before(deadline); s.tick(time.Second) {
				if got, ok = s.c.Latest(idA); ok || tt.wantSource == "" {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if tt.wantSource == "" {
				if ok {
					t.Fatalf("a sample without any way to read one: %+v", got)
				}
				return
			}
			if !ok || got.Source != tt.wantSource {
				t.Fatalf("ok=%v source=%q, want %q", ok, got.Source, tt.wantSource)
			}
			if tt.wantSource != SourceStatsStream {
				if fs.calls.Load() != 0 {
					t.Errorf("%d stats calls for a readable cgroup", fs.calls.Load())
				}
				return
			}
			want := Sample{CPUUsage: time.Second, MemoryUsage: 9449472, MemoryWorkingSet: 1060864, Time: at}
			if got.CPUUsage != want.CPUUsage || got.MemoryUsage != want.MemoryUsage ||
				got.MemoryWorkingSet != want.MemoryWorkingSet || !got.Time.Equal(at) ||
				!reflect.DeepEqual(got.Networks, []InterfaceStats{{"eth0", 1000, 2000}}) ||
				!reflect.DeepEqual(got.BlockIO, []DeviceStats{{"/dev/vda", 10, 20}}) {
				t.Errorf("sample from the stream = %+v", got)
			}
			// More ticks reuse the one subscription; none is a one-shot call.
			s.tick(time.Second)
			s.tick(time.Second)
			if fs.calls.Load() != 1 || fs.stream.Load() != 1 {
				t.Errorf("stats calls = %d (streaming %d), want one streaming subscription", fs.calls.Load(), fs.stream.Load())
			}
		})
	}
}
