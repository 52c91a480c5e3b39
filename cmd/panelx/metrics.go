package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/docker/docker/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/panelx/panelx/apiserver"
	"github.com/panelx/panelx/metrics/containers"
)

// newRegistry holds every metric of the process: Go runtime and process
// collectors, and what the controller, the API and the container
// collector register.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// startContainerMetrics runs the container collector of this installation
// and registers it; it returns the live-stats source of the API.
func startContainerMetrics(ctx context.Context, cli *client.Client, instance string, reg prometheus.Registerer, log *zap.Logger) (apiserver.StatsSource, error) {
	src := containers.NewDockerSource(cli, instance, containers.DockerSourceOptions{Logger: log.Named("metrics")})
	c := containers.New(src, containers.Options{Stats: cli, Logger: log.Named("metrics")})
	if err := reg.Register(c); err != nil {
		return nil, fmt.Errorf("register container metrics: %w", err)
	}
	go func() {
		if err := src.Run(ctx); err != nil && ctx.Err() == nil {
			log.Error("container list for metrics stopped", zap.Error(err))
		}
	}()
	go func() {
		if err := c.Run(ctx); err != nil && ctx.Err() == nil {
			log.Error("container metrics stopped", zap.Error(err))
		}
	}()
	return liveStats{c}, nil
}

// liveStats adapts the collector's samples to the API's stream format.
type liveStats struct{ c *containers.Collector }

func (l liveStats) ProjectStats(project string) []apiserver.ContainerStats {
	samples := l.c.ForProject(project)
	out := make([]apiserver.ContainerStats, 0, len(samples))
	for _, s := range samples {
		r := s.Rates
		out = append(out, apiserver.ContainerStats{
			Name: s.Name, Service: s.Service, Replica: s.Replica, Time: s.Time,
			CPUPercent: r.CPUPercent, MemoryUsedBytes: r.MemoryUsed, MemoryLimitBytes: r.MemoryLimit, MemoryPercent: r.MemoryPercent,
			NetworkRxBytesPerSecond: r.NetworkRxBytesPerSecond, NetworkTxBytesPerSecond: r.NetworkTxBytesPerSecond,
			BlockReadBytesPerSecond: r.BlockReadBytesPerSecond, BlockWriteBytesPerSecond: r.BlockWriteBytesPerSecond,
		})
	}
	return out
}

// serveMetricsListener serves /metrics without authentication on its own
// address (PANELX_METRICS_LISTEN), for a private interface, until ctx ends.
func serveMetricsListener(ctx context.Context, addr string, g prometheus.Gatherer, profiler bool, log *zap.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics listener %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	if profiler {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Info("serving metrics", zap.String("addr", ln.Addr().String()))
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
