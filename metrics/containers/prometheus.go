package containers

import (
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The labels of every series: PanelX's identity labels and the container
// name (cAdvisor's "name"). Their values are bounded by the containers that
// exist: no container ID, image or free-form label is exported, so a
// replacement container under the same name continues the same series.
var baseLabels = []string{"project", "service", "replica", "name"}

func labelNames(extra ...string) []string {
	return append(append([]string(nil), baseLabels...), extra...)
}

// Descriptions with cAdvisor's names, help texts, types and units, so
// dashboards written for cAdvisor work unchanged. container_cpu_usage_-
// seconds_total carries cAdvisor's cpu="total" (its output when per-CPU
// metrics are off, as in the kubelet).
var (
	descCPU = prometheus.NewDesc("container_cpu_usage_seconds_total",
		"Cumulative cpu time consumed in seconds.", labelNames("cpu"), nil)
	descMemUsage = prometheus.NewDesc("container_memory_usage_bytes",
		"Current memory usage in bytes, including all memory regardless of when it was accessed", labelNames(), nil)
	descWorkingSet = prometheus.NewDesc("container_memory_working_set_bytes",
		"Current working set in bytes.", labelNames(), nil)
	descMemLimit = prometheus.NewDesc("container_spec_memory_limit_bytes",
		"Memory limit for the container.", labelNames(), nil)
	descNetRx = prometheus.NewDesc("container_network_receive_bytes_total",
		"Cumulative count of bytes received", labelNames("interface"), nil)
	descNetTx = prometheus.NewDesc("container_network_transmit_bytes_total",
		"Cumulative count of bytes transmitted", labelNames("interface"), nil)
	descFsReads = prometheus.NewDesc("container_fs_reads_bytes_total",
		"Cumulative count of bytes read", labelNames("device"), nil)
	descFsWrites = prometheus.NewDesc("container_fs_writes_bytes_total",
		"Cumulative count of bytes written", labelNames("device"), nil)
	descStart = prometheus.NewDesc("container_start_time_seconds",
		"Start time of the container since unix epoch in seconds.", labelNames(), nil)
	descLastSeen = prometheus.NewDesc("container_last_seen",
		"Last time a container was seen by the exporter", labelNames(), nil)

	// A counter, not a gauge: Docker's RestartCount only grows during a
	// container's life, and when PanelX replaces the container under the
	// same name the series restarts at 0 — a counter reset, which rate()
	// and increase() handle, so increase(...[1h]) answers "how often did
	// it crash" across replacements.
	descRestarts = prometheus.NewDesc("panelx_container_restarts_total",
		"Number of times Docker restarted the container under its restart policy (docker inspect's RestartCount).",
		labelNames(), nil)
	descSource = prometheus.NewDesc("panelx_container_metrics_source",
		"Where the container's metrics come from (value 1): cgroup_v1 or cgroup_v2 files, or Docker's stats_stream.",
		labelNames("source"), nil)
)

var allDescs = []*prometheus.Desc{
	descCPU, descMemUsage, descWorkingSet, descMemLimit, descNetRx, descNetTx,
	descFsReads, descFsWrites, descStart, descLastSeen, descRestarts, descSource,
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// Collect implements prometheus.Collector from the in-memory samples only.
// A container no longer listed is no longer in the snapshot, so its series
// end with the next scrape.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, rec := range c.snap.Load().records {
		collectRecord(ch, rec)
	}
}

func collectRecord(ch chan<- prometheus.Metric, rec *record) {
	ls, t := rec.series, rec.target
	ch <- counter(descRestarts, float64(t.RestartCount), ls.base)
	ch <- gauge(descMemLimit, float64(max(t.MemoryLimit, 0)), ls.base)
	if !t.StartedAt.IsZero() {
		ch <- gauge(descStart, unixSeconds(t.StartedAt), ls.base)
	}
	if rec.source != "" {
		ch <- gauge(descSource, 1, ls.with("source", rec.source))
	}
	s := rec.sample
	if s == nil {
		return
	}
	ch <- gauge(descLastSeen, unixSeconds(s.Time), ls.base)
	ch <- counter(descCPU, s.CPUUsage.Seconds(), ls.with("cpu", "total"))
	ch <- gauge(descMemUsage, float64(s.MemoryUsage), ls.base)
	ch <- gauge(descWorkingSet, float64(s.MemoryWorkingSet), ls.base)
	for _, n := range s.Networks {
		l := ls.with("interface", n.Interface)
		ch <- counter(descNetRx, float64(n.RxBytes), l)
		ch <- counter(descNetTx, float64(n.TxBytes), l)
	}
	for _, d := range s.BlockIO {
		l := ls.with("device", d.Device)
		ch <- counter(descFsReads, float64(d.ReadBytes), l)
		ch <- counter(descFsWrites, float64(d.WriteBytes), l)
	}
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// metric is a prometheus.Metric over label pairs built once per container
// (see seriesLabels): prometheus.MustNewConstMetric would allocate and sort
// them again for every series of every scrape, a quarter of a scrape's
// time with 200 containers.
type metric struct {
	desc    *prometheus.Desc
	counter bool
	value   float64
	labels  []*dto.LabelPair
}

func counter(d *prometheus.Desc, v float64, labels []*dto.LabelPair) prometheus.Metric {
	return &metric{desc: d, counter: true, value: v, labels: labels}
}

func gauge(d *prometheus.Desc, v float64, labels []*dto.LabelPair) prometheus.Metric {
	return &metric{desc: d, value: v, labels: labels}
}

func (m *metric) Desc() *prometheus.Desc { return m.desc }

// Write shares the label pairs, as client_golang's own const metrics do:
// the registry only reads them.
func (m *metric) Write(out *dto.Metric) error {
	out.Label = m.labels
	v := m.value
	if m.counter {
		out.Counter = &dto.Counter{Value: &v}
	} else {
		out.Gauge = &dto.Gauge{Value: &v}
	}
	return nil
}

// seriesLabels are one container's label pairs, sorted by name as the
// exposition wants them: the base labels, and the base labels plus each
// extra label (cpu, interface, device, source) the container's series use.
// Published seriesLabels are never modified: a container that needs a new
// extra gets a copy.
type seriesLabels struct {
	values []string // project, service, replica, name
	base   []*dto.LabelPair
	extra  map[extraLabel][]*dto.LabelPair
}

type extraLabel struct{ name, value string }

func newSeriesLabels(values []string) *seriesLabels {
	return &seriesLabels{values: values, base: labelPairs(values, extraLabel{}), extra: map[extraLabel][]*dto.LabelPair{}}
}

// with returns the pairs with one extra label. Collect only asks for
// extras that prepare built; building one here is a fallback that keeps
// scrapes read-only.
func (s *seriesLabels) with(name, value string) []*dto.LabelPair {
	e := extraLabel{name, value}
	if p, ok := s.extra[e]; ok {
		return p
	}
	return labelPairs(s.values, e)
}

// prepare returns s, or a copy of s with the missing extras added, so that
// every series of the record finds its pairs.
func (s *seriesLabels) prepare(rec *record) *seriesLabels {
	var need []extraLabel
	add := func(name, value string) {
		if _, ok := s.extra[extraLabel{name, value}]; !ok {
			need = append(need, extraLabel{name, value})
		}
	}
	if rec.source != "" {
		add("source", rec.source)
	}
	if rec.sample != nil {
		add("cpu", "total")
		for _, n := range rec.sample.Networks {
			add("interface", n.Interface)
		}
		for _, d := range rec.sample.BlockIO {
			add("device", d.Device)
		}
	}
	if len(need) == 0 {
		return s
	}
	out := &seriesLabels{values: s.values, base: s.base, extra: maps.Clone(s.extra)}
	for _, e := range need {
		out.extra[e] = labelPairs(s.values, e)
	}
	return out
}

// labelPairs builds the sorted pairs of the base labels and, when
// extra.name is set, one more.
func labelPairs(values []string, extra extraLabel) []*dto.LabelPair {
	pairs := make([]*dto.LabelPair, 0, len(baseLabels)+1)
	for i, name := range baseLabels {
		pairs = append(pairs, &dto.LabelPair{Name: &name, Value: &values[i]})
	}
	if extra.name != "" {
		pairs = append(pairs, &dto.LabelPair{Name: &extra.name, Value: &extra.value})
	}
	slices.SortFunc(pairs, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
	return pairs
}
