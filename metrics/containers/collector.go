package containers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Options configure a Collector.
type Options struct {
	// Interval between two samples of every container. Default 1s.
	Interval time.Duration
	// Stats is the Docker API the fallback streams come from; nil leaves
	// containers whose cgroup files cannot be read without samples.
	Stats StatsAPI
	// ForceStream uses Docker's streaming stats for every container, even
	// where the cgroup files could be read.
	ForceStream bool
	// ProcRoot is where the host's /proc is visible: "/proc" (default) when
	// PanelX runs on the host or in a container with the host's PID
	// namespace, e.g. "/host/proc" when the host's /proc is mounted there.
	ProcRoot string
	// SysRoot is where /sys is, for naming block devices. Default "/sys".
	SysRoot string
	// Logger gets the per-container choice of source and sampling trouble;
	// nil logs nothing.
	Logger *zap.Logger

	// mountinfo is the mount table cgroups are found in; tests change it.
	mountinfo string
}

const defaultInterval = time.Second

// Collector samples the containers a Source lists every Interval and keeps
// the latest two samples of each in memory. Its Prometheus side (Describe,
// Collect) and its Go API (Latest, ForProject) only read those samples:
// no Docker call, no file read.
type Collector struct {
	source  Source
	opts    Options
	log     *zap.Logger
	devices *deviceNames
	running atomic.Bool

	// Owned by the goroutine in Run.
	layout     cgroupLayout
	layoutErr  error
	hostMemory uint64
	fr         fileReader
	tracked    map[string]*tracked
	targets    []Target // last list the source gave
	streamCtx  context.Context
	now        func() time.Time // the clock of cgroup readings; tests replace it

	snap atomic.Pointer[snapshot]
}

// New returns a collector of the containers source lists; call Run.
func New(source Source, opts Options) *Collector {
	if opts.Interval <= 0 {
		opts.Interval = defaultInterval
	}
	if opts.ProcRoot == "" {
		opts.ProcRoot = "/proc"
	}
	if opts.SysRoot == "" {
		opts.SysRoot = "/sys"
	}
	if opts.mountinfo == "" {
		opts.mountinfo = "/proc/self/mountinfo"
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	c := &Collector{
		source: source, opts: opts, log: opts.Logger,
		devices: newDeviceNames(opts.SysRoot), tracked: map[string]*tracked{}, now: time.Now,
	}
	c.snap.Store(&snapshot{records: map[string]*record{}})
	return c
}

// tracked is the sampling goroutine's state of one container.
type tracked struct {
	target    Target
	inc       incarnation
	source    string // "" when nothing can be read (not running)
	reader    *cgroupReader
	stream    *statsStream
	lastFrame time.Time // of the stream frame sampled last
}

// close releases the container's open files or its stats stream.
func (t *tracked) close() {
	if t.reader != nil {
		t.reader.close()
	}
	if t.stream != nil {
		t.stream.stop()
	}
}

// snapshot is what readers see: replaced whole after every tick and never
// modified, so reading it takes no lock.
type snapshot struct {
	records map[string]*record
}

type record struct {
	target    Target
	inc       incarnation
	source    string
	series    *seriesLabels
	prev, cur *reading
	sample    *Sample // nil until the container has a reading
}

// Run samples until ctx ends. The samples taken stay readable after it
// returns. Only one Run may be active at a time.
func (c *Collector) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("container metrics: collector already running")
	}
	defer c.running.Store(false)
	c.streamCtx = ctx
	c.detect()
	defer c.closeAll()

	ticker := time.NewTicker(c.opts.Interval)
	defer ticker.Stop()
	c.tick(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			c.tick(ctx)
		}
	}
}

// detect finds the cgroup layout and the host's memory once per Run.
func (c *Collector) detect() {
	c.layout, c.layoutErr = readLayout(c.opts.mountinfo)
	switch {
	case c.layoutErr != nil:
		c.log.Warn("container metrics: cgroup files unusable; Docker's streaming stats for every container",
			zap.Error(c.layoutErr))
	case c.layout.v2:
		c.log.Info("container metrics: cgroup v2", zap.String("mount", c.layout.single.point))
	default:
		c.log.Info("container metrics: cgroup v1",
			zap.String("cpuacct", c.layout.v1[ctrlCPU].point),
			zap.String("memory", c.layout.v1[ctrlMemory].point),
			zap.String("blkio", c.layout.v1[ctrlBlkio].point))
	}
	mem, err := readMemTotal()
	if err != nil {
		c.log.Warn("container metrics: host memory unknown; memory percentages of unlimited containers stay 0", zap.Error(err))
	}
	c.hostMemory = mem
}

func readLayout(mountinfo string) (cgroupLayout, error) {
	data, err := os.ReadFile(mountinfo)
	if err != nil {
		return cgroupLayout{}, fmt.Errorf("read mount table: %w", err)
	}
	mounts, err := parseMountinfo(data)
	if err != nil {
		return cgroupLayout{}, fmt.Errorf("%s: %w", mountinfo, err)
	}
	return detectLayout(mounts)
}

func readMemTotal() (uint64, error) {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, fmt.Errorf("read host memory: %w", err)
	}
	return parseMemTotal(data)
}

func (c *Collector) closeAll() {
	for id, t := range c.tracked {
		t.close()
		delete(c.tracked, id)
	}
}

// tick refreshes the set of containers, samples each and publishes.
func (c *Collector) tick(ctx context.Context) {
	targets, err := c.source.Containers(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		c.log.Warn("container metrics: listing containers failed; sampling the previous list", zap.Error(err))
		targets = c.targets
	}
	c.targets = targets
	c.reconcile(ctx, targets)
	c.publish(c.sampleAll(ctx))
}

// reconcile starts watching new containers (and new incarnations of
// restarted ones) and stops watching those that are gone.
func (c *Collector) reconcile(ctx context.Context, targets []Target) {
	seen := make(map[string]bool, len(targets))
	for _, t := range targets {
		seen[t.ID] = true
		cur := c.tracked[t.ID]
		if cur != nil && cur.inc == t.incarnation() {
			cur.target = t // name, restart count or limit may have changed
			continue
		}
		if cur != nil {
			cur.close()
		}
		c.tracked[t.ID] = c.attach(ctx, t)
	}
	for id, t := range c.tracked {
		if !seen[id] {
			t.close()
			delete(c.tracked, id)
		}
	}
}

// attach chooses where a container's readings come from: its cgroup files
// when they can be resolved and read, else one streaming stats
// subscription. The choice is logged and exported as
// panelx_container_metrics_source.
func (c *Collector) attach(ctx context.Context, t Target) *tracked {
	tr := &tracked{target: t, inc: t.incarnation()}
	if t.PID <= 0 {
		return tr // restarting: nothing to read until it runs again
	}
	reason := "forced by Options.ForceStream"
	if !c.opts.ForceStream {
		r, err := c.openCgroup(ctx, t)
		if err == nil {
			tr.reader, tr.source = r, r.source()
			c.log.Debug("container metrics: reading cgroup files", zap.String("container", t.Name),
				zap.String("source", tr.source), zap.String("memory", r.memoryDir))
			return tr
		}
		reason = err.Error()
	}
	if c.opts.Stats == nil {
		c.log.Warn("container metrics: no readings: cgroup files unreadable and no Docker stats API to fall back to",
			zap.String("container", t.Name), zap.String("reason", reason))
		return tr
	}
	tr.stream, tr.source = startStream(c.streamCtx, c.opts.Stats, t, c.devices, c.log), SourceStatsStream
	c.log.Info("container metrics: using Docker's streaming stats", zap.String("container", t.Name),
		zap.String("reason", reason))
	return tr
}

func (c *Collector) openCgroup(ctx context.Context, t Target) (*cgroupReader, error) {
	if c.layoutErr != nil {
		return nil, c.layoutErr
	}
	return newCgroupReader(ctx, c.layout, c.opts.ProcRoot, t, c.devices, &c.fr)
}

// sampleAll takes one reading of every container that has a new one.
func (c *Collector) sampleAll(ctx context.Context) map[string]*reading {
	out := make(map[string]*reading, len(c.tracked))
	for id, t := range c.tracked {
		if ctx.Err() != nil {
			break
		}
		switch {
		case t.reader != nil:
			s, err := t.reader.read(ctx, &c.fr)
			if err != nil {
				// Usually a container that just stopped; its event follows.
				c.log.Debug("container metrics: reading cgroup failed", zap.String("container", t.target.Name), zap.Error(err))
				continue
			}
			out[id] = &reading{stats: s, at: c.now()}
		case t.stream != nil:
			if r := t.stream.latest.Load(); r != nil && r.at.After(t.lastFrame) {
				t.lastFrame = r.at
				out[id] = r
			}
		}
	}
	return out
}

// publish builds the next snapshot: a new reading pushes the current one
// to prev; a container without one keeps its samples until it is gone.
func (c *Collector) publish(readings map[string]*reading) {
	old := c.snap.Load().records
	recs := make(map[string]*record, len(c.tracked))
	for id, t := range c.tracked {
		rec := &record{target: t.target, inc: t.inc, source: t.source}
		o := old[id]
		if o != nil && o.inc == t.inc {
			rec.prev, rec.cur = o.prev, o.cur
		}
		if r := readings[id]; r != nil {
			rec.prev, rec.cur = rec.cur, r
		}
		if rec.cur != nil {
			rec.sample = c.makeSample(rec)
		}
		rec.series = seriesFor(o, t.target).prepare(rec)
		recs[id] = rec
	}
	c.snap.Store(&snapshot{records: recs})
}

func labelValues(t Target) []string {
	return []string{t.Project(), t.Service(), t.Replica(), t.Name}
}

// seriesFor reuses the label pairs of the container's previous record
// while its label values stay the same (the usual case: every tick).
func seriesFor(old *record, t Target) *seriesLabels {
	values := labelValues(t)
	if old != nil && slices.Equal(old.series.values, values) {
		return old.series
	}
	return newSeriesLabels(values)
}

func (c *Collector) makeSample(rec *record) *Sample {
	t, s := rec.target, rec.cur.stats
	limit := uint64(max(t.MemoryLimit, 0))
	return &Sample{
		ContainerID:      t.ID,
		Name:             t.Name,
		Project:          t.Project(),
		Service:          t.Service(),
		Replica:          t.Replica(),
		Source:           rec.source,
		Time:             rec.cur.at,
		StartedAt:        t.StartedAt,
		RestartCount:     t.RestartCount,
		CPUUsage:         s.cpu,
		MemoryUsage:      s.memUsage,
		MemoryWorkingSet: s.memWorkSet,
		MemoryLimit:      limit,
		Networks:         s.networks,
		BlockIO:          s.blockIO,
		Rates:            computeRates(rec.prev, rec.cur, limit, c.hostMemory),
	}
}

// Latest returns the latest sample of a container by its full ID; false
// when the container is not watched or has no reading yet.
func (c *Collector) Latest(containerID string) (Sample, bool) {
	rec := c.snap.Load().records[containerID]
	if rec == nil || rec.sample == nil {
		return Sample{}, false
	}
	return *rec.sample, true
}

// ForProject returns the latest samples of a project's containers, by
// service, then replica, then name.
func (c *Collector) ForProject(project string) []Sample {
	var out []Sample
	for _, rec := range c.snap.Load().records {
		if rec.sample != nil && rec.sample.Project == project {
			out = append(out, *rec.sample)
		}
	}
	slices.SortFunc(out, func(a, b Sample) int {
		return cmp.Or(
			cmp.Compare(a.Service, b.Service),
			cmp.Compare(replicaIndex(a.Replica), replicaIndex(b.Replica)),
			cmp.Compare(a.Name, b.Name),
		)
	})
	return out
}

// replicaIndex orders "10" after "9"; a label that is no number sorts first.
func replicaIndex(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}
