package main

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat and /proc/stat: 100
// on every Linux architecture Go supports.
const clockTicks = 100

// selfCPU is this process's user+system CPU time (all threads).
func selfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// procCPU sums the user+system CPU time of every process whose command
// name (/proc/<pid>/comm, at most 15 characters) has the given prefix.
func procCPU(prefix string) (time.Duration, int, error) {
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return 0, 0, err
	}
	var total time.Duration
	n := 0
	for _, dir := range dirs {
		comm, err := os.ReadFile(filepath.Join(dir, "comm"))
		if err != nil || !strings.HasPrefix(strings.TrimSpace(string(comm)), prefix) {
			continue
		}
		d, err := statCPU(filepath.Join(dir, "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		total += d
		n++
	}
	return total, n, nil
}

// statCPU reads utime+stime (fields 14 and 15) of /proc/<pid>/stat. The
// command name in parentheses may hold spaces, so fields count from the
// last ')'.
func statCPU(name string) (time.Duration, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("%s: malformed", name)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("%s: malformed", name)
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%s: malformed times", name)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// machineCPU returns the busy and total CPU time of the whole machine from
// the first line of /proc/stat (busy excludes idle and iowait).
func machineCPU() (busy, total time.Duration, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: malformed first line %q", line)
	}
	var sum, idle uint64
	for i, s := range f[1:] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %w", err)
		}
		if i >= 8 { // guest time is already counted in user
			break
		}
		sum += v
		if i == 3 || i == 4 {
			idle += v
		}
	}
	tick := time.Second / clockTicks
	return time.Duration(sum-idle) * tick, time.Duration(sum) * tick, nil
}

// cpuReadings are the counters read at both ends of a window.
type cpuReadings struct {
	at                   time.Time
	self                 time.Duration
	dockerd, containerd  time.Duration
	shims                time.Duration
	nShims               int
	machineBusy, machine time.Duration
}

func readCPU() (cpuReadings, error) {
	var r cpuReadings
	var err error
	r.at = time.Now()
	if r.self, err = selfCPU(); err != nil {
		return r, err
	}
	if r.dockerd, _, err = procCPU("dockerd"); err != nil {
		return r, err
	}
	// "containerd" is a prefix of the shims' "containerd-shim": subtract.
	all, _, err := procCPU("containerd")
	if err != nil {
		return r, err
	}
	if r.shims, r.nShims, err = procCPU("containerd-shim"); err != nil {
		return r, err
	}
	r.containerd = all - r.shims
	if r.machineBusy, r.machine, err = machineCPU(); err != nil {
		return r, err
	}
	return r, nil
}

// cpuReport is the CPU use over a window, in % of one core.
type cpuReport struct {
	wall                      time.Duration
	self, dockerd, containerd float64
	shims                     float64
	nShims                    int
	machineBusy               float64 // % of one core, summed over cores
	selfTime                  time.Duration
}

func diffCPU(a, b cpuReadings) cpuReport {
	wall := b.at.Sub(a.at)
	pct := func(d time.Duration) float64 { return 100 * float64(d) / float64(wall) }
	return cpuReport{
		wall: wall, selfTime: b.self - a.self,
		self: pct(b.self - a.self), dockerd: pct(b.dockerd - a.dockerd),
		containerd: pct(b.containerd - a.containerd), shims: pct(b.shims - a.shims), nShims: b.nShims,
		machineBusy: pct(b.machineBusy - a.machineBusy),
	}
}

func (r cpuReport) String() string {
	return fmt.Sprintf("collector process %.2f%% (%v CPU in %v) | dockerd %.2f%% | containerd %.2f%% | %d shims %.2f%% | machine busy %.1f%% (of one core; 200%% = both cores)",
		r.self, r.selfTime.Round(time.Millisecond), r.wall.Round(time.Millisecond), r.dockerd, r.containerd, r.nShims, r.shims, r.machineBusy)
}

// percentile of sorted durations, nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(float64(len(sorted))*p)) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func latencySummary(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmt.Sprintf("n=%d p50=%v p90=%v p99=%v max=%v", len(s),
		percentile(s, 0.50).Round(time.Microsecond), percentile(s, 0.90).Round(time.Microsecond),
		percentile(s, 0.99).Round(time.Microsecond), s[len(s)-1].Round(time.Microsecond))
}

// rss is this process's resident memory from /proc/self/status.
func rss() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}
