package edge

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the edge's Prometheus series, named like the Traefik and
// Caddy exporters' (requests, duration, upstream errors per router/host).
// The host label only ever holds hostnames of the route table (anything
// else is "unmatched"), so clients cannot grow the series.
type metrics struct {
	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	upstreamErrors *prometheus.CounterVec
	routes         prometheus.Gauge
	endpoints      *prometheus.GaugeVec
	certExpiry     *prometheus.GaugeVec
	feedConnected  prometheus.Gauge
	tableVersion   *prometheus.GaugeVec
}

const unmatchedHost = "unmatched"

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "panelx_edge_requests_total",
			Help: "Requests the edge answered, by hostname and status class (2xx, 3xx, 4xx, 5xx).",
		}, []string{"host", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "panelx_edge_request_duration_seconds",
			Help:    "Time from the request to the end of the response headers, by hostname and status class.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"host", "code"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "panelx_edge_upstream_errors_total",
			Help: "Requests the edge could not pass to a replica, by hostname and reason (refused, timeout, upstream-error, no-ready-replica); refused connections retried on another replica count too.",
		}, []string{"host", "reason"}),
		routes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "panelx_edge_routes",
			Help: "Routes in the table the edge serves.",
		}),
		endpoints: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "panelx_edge_endpoints",
			Help: "Ready replicas a hostname's routes send to.",
		}, []string{"host"}),
		certExpiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "panelx_edge_certificate_expiry_timestamp_seconds",
			Help: "When the certificate the edge serves for a hostname expires (Unix time).",
		}, []string{"host"}),
		feedConnected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "panelx_edge_feed_connected",
			Help: "1 while the edge follows the server's route feed; 0 while it serves its kept routes alone.",
		}),
		tableVersion: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "panelx_edge_route_table_info",
			Help: "The version of the route table being served, and since when (the value, Unix time).",
		}, []string{"version"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.upstreamErrors, m.routes, m.endpoints, m.certExpiry, m.feedConnected, m.tableVersion)
	}
	return m
}

func codeClass(status int) string {
	if status < 100 || status > 599 {
		return "other"
	}
	return strconv.Itoa(status/100) + "xx"
}

func (m *metrics) observe(host string, status int, d time.Duration) {
	c := codeClass(status)
	m.requests.WithLabelValues(host, c).Inc()
	m.duration.WithLabelValues(host, c).Observe(d.Seconds())
}

// tableChanged keeps the per-host series to the hosts of the new table.
func (m *metrics) tableChanged(old, st *state) {
	m.routes.Set(float64(len(st.table.Routes)))
	eps := map[string]map[string]bool{}
	for _, r := range st.table.Routes {
		if eps[r.Host] == nil {
			eps[r.Host] = map[string]bool{}
		}
		for _, ip := range r.Endpoints {
			eps[r.Host][ip] = true
		}
	}
	for host, set := range eps {
		m.endpoints.WithLabelValues(host).Set(float64(len(set)))
	}
	if old != nil {
		for host := range old.hosts {
			if !st.hosts[host] {
				m.endpoints.DeleteLabelValues(host)
				m.certExpiry.DeleteLabelValues(host)
				m.requests.DeletePartialMatch(prometheus.Labels{"host": host})
				m.duration.DeletePartialMatch(prometheus.Labels{"host": host})
				m.upstreamErrors.DeletePartialMatch(prometheus.Labels{"host": host})
			}
		}
	}
	m.tableVersion.Reset()
	m.tableVersion.WithLabelValues(st.table.Version).Set(float64(time.Now().Unix()))
}
