package controller

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"

	"github.com/panelx/panelx/api"
)

// BackupMetrics are the backup manager's Prometheus metrics (deploy/
// alerts.yml fires on them). A nil *BackupMetrics records nothing.
type BackupMetrics struct {
	lastSuccess *prometheus.GaugeVec
	lastBytes   *prometheus.GaugeVec
	interval    *prometheus.GaugeVec
	failures    *prometheus.CounterVec
	runs        *prometheus.CounterVec
	duration    *prometheus.HistogramVec
}

// NewBackupMetrics creates the metrics and registers them with reg.
func NewBackupMetrics(reg prometheus.Registerer) *BackupMetrics {
	m := &BackupMetrics{
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "panelx_backup_last_success_timestamp_seconds",
			Help: "When the volume's newest verified backup finished (Unix seconds; 0: none yet). Only the leader exports it.",
		}, []string{"project", "volume"}),
		lastBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "panelx_backup_last_success_bytes", Help: "Size of the volume's newest verified archive.",
		}, []string{"project", "volume"}),
		interval: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "panelx_backup_schedule_interval_seconds", Help: "Time between the volume's scheduled backups (the current one).",
		}, []string{"project", "volume"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "panelx_backup_failures_total", Help: "Backup and restore runs that failed, and scheduled backups missed, by volume and kind (backup, restore, missed).",
		}, []string{"project", "volume", "kind"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "panelx_backup_runs_total", Help: "Finished runs by operation and result.",
		}, []string{"op", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "panelx_backup_run_duration_seconds", Help: "Duration of finished runs by operation.",
			Buckets: []float64{1, 5, 15, 60, 300, 900, 3600, 4 * 3600},
		}, []string{"op"}),
	}
	reg.MustRegister(m.lastSuccess, m.lastBytes, m.interval, m.failures, m.runs, m.duration)
	return m
}

func (m *BackupMetrics) succeeded(key api.Key, at time.Time, bytes int64) {
	if m == nil {
		return
	}
	v := 0.0
	if !at.IsZero() {
		v = float64(at.UnixNano()) / 1e9
	}
	m.lastSuccess.WithLabelValues(key.Project, key.Name).Set(v)
	m.lastBytes.WithLabelValues(key.Project, key.Name).Set(float64(bytes))
}

// ensure creates the volume's failure series at 0, so the alert's
// increase() sees the first failure (a series born at 1 shows none).
func (m *BackupMetrics) ensure(key api.Key) {
	if m == nil {
		return
	}
	for _, kind := range []string{"backup", "restore", "missed"} {
		m.failures.WithLabelValues(key.Project, key.Name, kind)
	}
}

func (m *BackupMetrics) failed(key api.Key, kind string) {
	if m == nil {
		return
	}
	m.failures.WithLabelValues(key.Project, key.Name, kind).Inc()
}

func (m *BackupMetrics) ran(op api.BackupOp, result string, run api.BackupRun) {
	if m == nil {
		return
	}
	m.runs.WithLabelValues(string(op), result).Inc()
	if run.StartedAt != nil && run.FinishedAt != nil {
		m.duration.WithLabelValues(string(op)).Observe(run.FinishedAt.Sub(*run.StartedAt).Seconds())
	}
}

func (m *BackupMetrics) setInterval(key api.Key, s cron.Schedule, now time.Time) {
	if m == nil {
		return
	}
	next := s.Next(now)
	m.interval.WithLabelValues(key.Project, key.Name).Set(s.Next(next).Sub(next).Seconds())
}
