package containers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/panelx/panelx/naming"
)

// fakeHost is a directory tree shaped like a host's /proc, /sys and cgroup
// mounts, filled from the fixtures, with the mount table pointing into it.
type fakeHost struct {
	t    *testing.T
	root string
	v2   bool
}

func newFakeHost(t *testing.T, v2 bool) *fakeHost {
	t.Helper()
	h := &fakeHost{t: t, root: t.TempDir(), v2: v2}
	var mountinfo string
	if v2 {
		mountinfo = fmt.Sprintf("26 25 0:23 / %s rw - cgroup2 cgroup2 rw\n", h.path("cgroup2"))
	} else {
		for i, ctrl := range []string{"cpuacct", "memory", "blkio"} {
			mountinfo += fmt.Sprintf("%d 30 0:%d / %s rw - cgroup cgroup rw,%s\n", 31+i, 28+i, h.path("cgroup", ctrl), ctrl)
		}
	}
	h.write(mountinfo, "mountinfo")
	h.write("MAJOR=254\nMINOR=0\nDEVNAME=vda\nDEVTYPE=disk\n", "sys/dev/block/254:0/uevent")
	h.write("MAJOR=253\nMINOR=0\nDEVNAME=dm-0\nDEVTYPE=disk\n", "sys/dev/block/253:0/uevent")
	return h
}

func (h *fakeHost) path(elem ...string) string {
	return filepath.Join(append([]string{h.root}, elem...)...)
}

func (h *fakeHost) write(content string, elem ...string) {
	h.t.Helper()
	name := h.path(elem...)
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// cgroupDir is where a container's files for one v1 controller (or the
// v2 unified directory) are.
func (h *fakeHost) cgroupDir(id, ctrl string) []string {
	if h.v2 {
		return []string{"cgroup2", "system.slice", "docker-" + id + ".scope"}
	}
	return []string{"cgroup", ctrl, "docker", id}
}

func (h *fakeHost) file(id, ctrl, name string) []string {
	return append(h.cgroupDir(id, ctrl), name)
}

// addContainer creates the cgroup and /proc files of a container whose
// init process has the given PID, with the fixtures' values.
func (h *fakeHost) addContainer(id string, pid int) {
	h.t.Helper()
	if h.v2 {
		h.write(fmt.Sprintf("0::/system.slice/docker-%s.scope\n", id), "proc", fmt.Sprint(pid), "cgroup")
		for _, f := range []string{"cpu.stat", "memory.current", "memory.stat", "io.stat"} {
			h.write(string(fixture(h.t, "v2/"+f)), h.file(id, "", f)...)
		}
	} else {
		h.write(fmt.Sprintf("7:blkio:/docker/%[1]s\n4:memory:/docker/%[1]s\n2:cpuacct:/docker/%[1]s\n0::/docker/%[1]s\n", id),
			"proc", fmt.Sprint(pid), "cgroup")
		h.write(string(fixture(h.t, "v1/cpuacct.usage")), h.file(id, "cpuacct", "cpuacct.usage")...)
		h.write(string(fixture(h.t, "v1/memory.usage_in_bytes")), h.file(id, "memory", "memory.usage_in_bytes")...)
		h.write(string(fixture(h.t, "v1/memory.stat")), h.file(id, "memory", "memory.stat")...)
		h.write(string(fixture(h.t, "v1/blkio.throttle.io_service_bytes_recursive")),
			h.file(id, "blkio", "blkio.throttle.io_service_bytes_recursive")...)
	}
	h.write(string(fixture(h.t, "net_dev")), "proc", fmt.Sprint(pid), "net", "dev")
}

// setCPU sets the container's cumulative CPU time.
func (h *fakeHost) setCPU(id string, d time.Duration) {
	h.t.Helper()
	if h.v2 {
		h.write(fmt.Sprintf("usage_usec %d\nuser_usec 0\nsystem_usec 0\n", d.Microseconds()), h.file(id, "", "cpu.stat")...)
		return
	}
	h.write(fmt.Sprintf("%d\n", d.Nanoseconds()), h.file(id, "cpuacct", "cpuacct.usage")...)
}

// setNet sets the eth0 counters of the process's network namespace.
func (h *fakeHost) setNet(pid int, rx, tx uint64) {
	h.t.Helper()
	h.write(fmt.Sprintf("Inter-|\n face |\n    lo: 5 1 0 0 0 0 0 0 5 1 0 0 0 0 0 0\n  eth0: %d 1 0 0 0 0 0 0 %d 1 0 0 0 0 0 0\n", rx, tx),
		"proc", fmt.Sprint(pid), "net", "dev")
}

func (h *fakeHost) options() Options {
	return Options{ProcRoot: h.path("proc"), SysRoot: h.path("sys"), mountinfo: h.path("mountinfo")}
}

// fakeSource is a Source whose list the test sets; it counts its calls.
type fakeSource struct {
	mu      sync.Mutex
	targets []Target
	calls   atomic.Int64
}

func (f *fakeSource) Containers(context.Context) ([]Target, error) {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.targets), nil
}

func (f *fakeSource) set(targets ...Target) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.targets = targets
}

func target(id string, pid int, project, service, replica, name string) Target {
	return Target{
		ID: id, Name: name, PID: pid,
		Labels: map[string]string{
			naming.LabelManaged: "true", naming.LabelInstance: "test",
			naming.LabelProject: project, naming.LabelService: service, naming.LabelReplica: replica,
		},
		StartedAt:    time.Unix(1700000000, 0),
		RestartCount: 2,
		MemoryLimit:  64 << 20,
		NetworkMode:  "bridge",
	}
}

// fakeClock is the collector's clock, moved by the test.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// stepper drives a collector tick by tick, without Run's ticker.
type stepper struct {
	c     *Collector
	clock *fakeClock
	ctx   context.Context
}

func newStepper(t *testing.T, src Source, opts Options) *stepper {
	t.Helper()
	c := New(src, opts)
	clock := &fakeClock{t: time.Unix(1700000100, 0)}
	c.now = clock.now
	ctx, cancel := context.WithCancel(context.Background())
	c.streamCtx = ctx
	c.detect()
	t.Cleanup(func() {
		cancel()
		c.closeAll()
	})
	return &stepper{c: c, clock: clock, ctx: ctx}
}

// tick advances the clock by d and samples once.
func (s *stepper) tick(d time.Duration) {
	s.clock.advance(d)
	s.c.tick(s.ctx)
}
