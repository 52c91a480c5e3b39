package controller

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/util/workqueue"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/reconcile"
)

// Metrics are the controller's Prometheus metrics. A nil *Metrics records
// nothing, so tests and tools need not register any.
type Metrics struct {
	reconciles        *prometheus.CounterVec
	reconcilePanics   *prometheus.CounterVec
	reconcileDuration *prometheus.HistogramVec
	feedLag           prometheus.Histogram
	dockerCalls       *prometheus.HistogramVec
	leader            prometheus.Gauge
	replicasDesired   *prometheus.GaugeVec
	replicasReady     *prometheus.GaugeVec
	secretFailures    prometheus.Counter
	rollbacks         prometheus.Counter
	deadlines         prometheus.Counter

	queueDepth       *prometheus.GaugeVec
	queueAdds        *prometheus.CounterVec
	queueLatency     *prometheus.HistogramVec
	queueWork        *prometheus.HistogramVec
	queueUnfinished  *prometheus.GaugeVec
	queueLongest     *prometheus.GaugeVec
	queueRetries     *prometheus.CounterVec
	pendingMu        sync.Mutex
	pendingCommitted map[reconcile.Key]time.Time
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	durations := []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}
	m := &Metrics{
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "panelx_reconciles_total", Help: "Reconciles by kind of object and result (success, error).",
		}, []string{"kind", "result"}),
		reconcilePanics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "panelx_reconcile_panics_total", Help: "Reconciles that panicked (recovered; the key is retried with backoff), by kind.",
		}, []string{"kind"}),
		reconcileDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "panelx_reconcile_duration_seconds", Help: "Time one reconcile of a key took, by kind.", Buckets: durations,
		}, []string{"kind"}),
		feedLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "panelx_change_feed_lag_seconds", Help: "Time from a committed store change to the start of the reconcile it caused.", Buckets: durations,
		}),
		dockerCalls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "panelx_docker_api_duration_seconds", Help: "Duration of Docker Engine API calls by operation and result.", Buckets: durations,
		}, []string{"operation", "result"}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "panelx_leader", Help: "1 while this server runs the reconcile loop, 0 while it stands by.",
		}),
		replicasDesired: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "panelx_service_replicas_desired", Help: "Replicas a service asks for.",
		}, []string{"project", "service"}),
		replicasReady: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "panelx_service_replicas_ready", Help: "Replicas of a service that run (and are healthy, with a healthcheck).",
		}, []string{"project", "service"}),
		secretFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "panelx_secret_open_failures_total", Help: "Secrets the controller could not open (wrong or missing master key, tampered data); the services using them are held back.",
		}),
		rollbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "panelx_rollout_auto_rollbacks_total", Help: "Automatic rollbacks of services whose new revision missed its progress deadline.",
		}),
		deadlines: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "panelx_rollout_deadline_exceeded_total", Help: "Rollouts that missed their progress deadline.",
		}),
		queueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "panelx_workqueue_depth", Help: "Keys waiting in the workqueue.",
		}, []string{"name"}),
		queueAdds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "panelx_workqueue_adds_total", Help: "Keys added to the workqueue.",
		}, []string{"name"}),
		queueLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "panelx_workqueue_queue_duration_seconds", Help: "Time a key waits in the workqueue before a worker takes it.", Buckets: durations,
		}, []string{"name"}),
		queueWork: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "panelx_workqueue_work_duration_seconds", Help: "Time a worker spends on a key.", Buckets: durations,
		}, []string{"name"}),
		queueUnfinished: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "panelx_workqueue_unfinished_work_seconds", Help: "Seconds of work in progress not yet observed by work_duration.",
		}, []string{"name"}),
		queueLongest: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "panelx_workqueue_longest_running_processor_seconds", Help: "Seconds the longest-running worker has been busy.",
		}, []string{"name"}),
		queueRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "panelx_workqueue_retries_total", Help: "Keys re-queued with backoff after a failed reconcile.",
		}, []string{"name"}),
		pendingCommitted: map[reconcile.Key]time.Time{},
	}
	reg.MustRegister(m.reconciles, m.reconcilePanics, m.reconcileDuration, m.feedLag, m.dockerCalls, m.leader,
		m.replicasDesired, m.replicasReady, m.secretFailures, m.rollbacks, m.deadlines, m.queueDepth, m.queueAdds, m.queueLatency, m.queueWork,
		m.queueUnfinished, m.queueLongest, m.queueRetries)
	return m
}

// ObserveDockerCall records one Docker API call (the hook of
// the Docker runtime's Observe).
func (m *Metrics) ObserveDockerCall(op string, d time.Duration, err error) {
	if m == nil {
		return
	}
	result := "success"
	if err != nil {
		result = "error"
	}
	m.dockerCalls.WithLabelValues(op, result).Observe(d.Seconds())
}

func (m *Metrics) setLeader(on bool) {
	if m == nil {
		return
	}
	if on {
		m.leader.Set(1)
	} else {
		m.leader.Set(0)
	}
}

func (m *Metrics) observeReconcile(key reconcile.Key, d time.Duration, err error) {
	if m == nil {
		return
	}
	result := "success"
	if err != nil {
		result = "error"
	}
	m.reconciles.WithLabelValues(string(key.Kind), result).Inc()
	m.reconcileDuration.WithLabelValues(string(key.Kind)).Observe(d.Seconds())
}

func (m *Metrics) secretOpenFailed() {
	if m != nil {
		m.secretFailures.Inc()
	}
}

func (m *Metrics) rolledBack() {
	if m != nil {
		m.rollbacks.Inc()
	}
}

func (m *Metrics) deadlineExceeded() {
	if m != nil {
		m.deadlines.Inc()
	}
}

func (m *Metrics) reconcilePanicked(key reconcile.Key) {
	if m == nil {
		return
	}
	m.reconcilePanics.WithLabelValues(string(key.Kind)).Inc()
}

// changeQueued remembers the commit time of the oldest change not yet
// reconciled for a key.
func (m *Metrics) changeQueued(key reconcile.Key, committed time.Time) {
	if m == nil || committed.IsZero() {
		return
	}
	m.pendingMu.Lock()
	defer m.pendingMu.Unlock()
	if _, ok := m.pendingCommitted[key]; !ok {
		m.pendingCommitted[key] = committed
	}
}

// reconcileStarted observes the change-feed lag of the key, if a change
// caused this reconcile.
func (m *Metrics) reconcileStarted(key reconcile.Key) {
	if m == nil {
		return
	}
	m.pendingMu.Lock()
	committed, ok := m.pendingCommitted[key]
	delete(m.pendingCommitted, key)
	m.pendingMu.Unlock()
	if ok {
		m.feedLag.Observe(time.Since(committed).Seconds())
	}
}

// serviceStatus publishes a service's replica counts.
func (m *Metrics) serviceStatus(svc *api.Service) {
	if m == nil {
		return
	}
	p, s := svc.Metadata.Project, svc.Metadata.Name
	m.replicasDesired.WithLabelValues(p, s).Set(float64(svc.Spec.ReplicaCount()))
	m.replicasReady.WithLabelValues(p, s).Set(float64(svc.Status.ReadyReplicas))
}

// serviceGone drops a removed service's series (bounded cardinality).
func (m *Metrics) serviceGone(project, service string) {
	if m == nil {
		return
	}
	m.replicasDesired.DeleteLabelValues(project, service)
	m.replicasReady.DeleteLabelValues(project, service)
}

// workqueue.MetricsProvider, so client-go's queue reports through us.

func (m *Metrics) NewDepthMetric(name string) workqueue.GaugeMetric {
	return m.queueDepth.WithLabelValues(name)
}
func (m *Metrics) NewAddsMetric(name string) workqueue.CounterMetric {
	return m.queueAdds.WithLabelValues(name)
}
func (m *Metrics) NewLatencyMetric(name string) workqueue.HistogramMetric {
	return m.queueLatency.WithLabelValues(name)
}
func (m *Metrics) NewWorkDurationMetric(name string) workqueue.HistogramMetric {
	return m.queueWork.WithLabelValues(name)
}
func (m *Metrics) NewUnfinishedWorkSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return m.queueUnfinished.WithLabelValues(name)
}
func (m *Metrics) NewLongestRunningProcessorSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return m.queueLongest.WithLabelValues(name)
}
func (m *Metrics) NewRetriesMetric(name string) workqueue.CounterMetric {
	return m.queueRetries.WithLabelValues(name)
}

// ReplicasReady returns the ready-replicas gauge of a service (for tests).
func (m *Metrics) ReplicasReady(project, service string) prometheus.Gauge {
	return m.replicasReady.WithLabelValues(project, service)
}
