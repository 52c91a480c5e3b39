package containers

import (
	"time"
)

// Where a container's readings come from (Sample.Source, and the source
// label of panelx_container_metrics_source).
const (
	SourceCgroupV1    = "cgroup_v1"    // cgroup v1 files and /proc/<pid>/net/dev
	SourceCgroupV2    = "cgroup_v2"    // cgroup v2 files and /proc/<pid>/net/dev
	SourceStatsStream = "stats_stream" // Docker's streaming stats API
)

// InterfaceStats are the cumulative byte counters of one network interface.
type InterfaceStats struct {
	Interface string
	RxBytes   uint64
	TxBytes   uint64
}

// DeviceStats are the cumulative block I/O bytes on one device.
type DeviceStats struct {
	Device     string // /dev/<name>, as cAdvisor labels it
	ReadBytes  uint64
	WriteBytes uint64
}

// Sample is the latest reading of one container with the rates derived
// from the reading before it. The collector replaces samples and never
// changes one, so callers may keep them; they must not modify the Networks
// and BlockIO slices, which later scrapes share.
type Sample struct {
	ContainerID  string
	Name         string
	Project      string
	Service      string
	Replica      string
	Source       string    // SourceCgroupV1, SourceCgroupV2 or SourceStatsStream
	Time         time.Time // when the counters were read
	StartedAt    time.Time
	RestartCount int

	CPUUsage         time.Duration // cumulative CPU time of all its processes
	MemoryUsage      uint64        // bytes, page cache included
	MemoryWorkingSet uint64        // bytes: usage minus inactive file pages
	MemoryLimit      uint64        // configured limit in bytes; 0: unlimited
	Networks         []InterfaceStats
	BlockIO          []DeviceStats

	Rates Rates
}

// Rates are derived between a container's last two samples. Memory needs
// one sample only and is always set; the per-second fields are zero until
// a second sample exists (Valid false), and again when CPU time went
// backwards (a recreated cgroup). Network and block rates count only the
// interfaces and devices present in both samples.
type Rates struct {
	Valid  bool
	Window time.Duration // time between the two samples

	// CPUPercent is of one core, as docker stats shows it: 150 means one
	// and a half cores busy.
	CPUPercent float64
	// MemoryUsed is the working set (docker stats' "MEM USAGE");
	// MemoryLimit the configured limit or, when there is none, the host's
	// memory (docker stats' "LIMIT").
	MemoryUsed    uint64
	MemoryLimit   uint64
	MemoryPercent float64

	NetworkRxBytesPerSecond  float64
	NetworkTxBytesPerSecond  float64
	BlockReadBytesPerSecond  float64
	BlockWriteBytesPerSecond float64
}

// reading is a raw reading and its time.
type reading struct {
	stats rawStats
	at    time.Time
}

// computeRates derives the rates of cur from prev (nil: none yet).
func computeRates(prev, cur *reading, memLimit, hostMemory uint64) Rates {
	r := Rates{MemoryUsed: cur.stats.memWorkSet, MemoryLimit: memLimit}
	if r.MemoryLimit == 0 || (hostMemory > 0 && r.MemoryLimit > hostMemory) {
		r.MemoryLimit = hostMemory
	}
	if r.MemoryLimit > 0 {
		r.MemoryPercent = 100 * float64(r.MemoryUsed) / float64(r.MemoryLimit)
	}
	if prev == nil {
		return r
	}
	window := cur.at.Sub(prev.at)
	if window <= 0 {
		return r
	}
	cpu, ok := delta(uint64(prev.stats.cpu), uint64(cur.stats.cpu))
	if !ok {
		return r // CPU time never goes back unless the cgroup was recreated
	}
	secs := window.Seconds()
	rx, tx := networkDelta(prev.stats.networks, cur.stats.networks)
	rd, wr := blockDelta(prev.stats.blockIO, cur.stats.blockIO)
	r.Valid, r.Window = true, window
	r.CPUPercent = 100 * float64(cpu) / float64(window)
	r.NetworkRxBytesPerSecond = float64(rx) / secs
	r.NetworkTxBytesPerSecond = float64(tx) / secs
	r.BlockReadBytesPerSecond = float64(rd) / secs
	r.BlockWriteBytesPerSecond = float64(wr) / secs
	return r
}

// networkDelta sums the growth of the interfaces present in both readings:
// an interface that came or went with a network (dis)connect adds nothing,
// and a counter that went back counts as a reset.
func networkDelta(prev, cur []InterfaceStats) (rx, tx uint64) {
	for _, c := range cur {
		for _, p := range prev {
			if p.Interface == c.Interface {
				d, _ := delta(p.RxBytes, c.RxBytes)
				rx += d
				d, _ = delta(p.TxBytes, c.TxBytes)
				tx += d
			}
		}
	}
	return rx, tx
}

// blockDelta is networkDelta for block devices.
func blockDelta(prev, cur []DeviceStats) (read, write uint64) {
	for _, c := range cur {
		for _, p := range prev {
			if p.Device == c.Device {
				d, _ := delta(p.ReadBytes, c.ReadBytes)
				read += d
				d, _ = delta(p.WriteBytes, c.WriteBytes)
				write += d
			}
		}
	}
	return read, write
}

// delta is cur-prev; ok is false when the counter went backwards (reset).
func delta(prev, cur uint64) (d uint64, ok bool) {
	if cur < prev {
		return 0, false
	}
	return cur - prev, true
}
