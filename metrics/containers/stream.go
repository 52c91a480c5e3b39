package containers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/docker/docker/api/types/container"
	"go.uber.org/zap"
)

// StatsAPI is the stats call of the Docker client; *client.Client
// implements it. The collector only ever opens streams (stream=true): a
// one-shot call takes about a second per container on Engine 20.10, while
// a stream delivers a frame every second for as long as it is open.
type StatsAPI interface {
	ContainerStats(ctx context.Context, containerID string, stream bool) (container.StatsResponseReader, error)
}

const maxStreamBackoff = 30 * time.Second

// statsStream keeps one streaming stats subscription open for a container
// and holds the latest decoded frame.
type statsStream struct {
	id         string
	api        StatsAPI
	ownNetwork bool
	devices    *deviceNames
	log        *zap.Logger

	latest atomic.Pointer[reading]
	cancel context.CancelFunc
	done   chan struct{}
}

// startStream subscribes in the background until stop is called or ctx ends.
func startStream(ctx context.Context, api StatsAPI, t Target, devices *deviceNames, log *zap.Logger) *statsStream {
	ctx, cancel := context.WithCancel(ctx)
	s := &statsStream{
		id: t.ID, api: api, ownNetwork: t.ownNetwork(), devices: devices, log: log,
		cancel: cancel, done: make(chan struct{}),
	}
	go s.run(ctx)
	return s
}

// stop ends the subscription and waits for its goroutine.
func (s *statsStream) stop() {
	s.cancel()
	<-s.done
}

// run re-subscribes with backoff whenever the stream ends: Docker closes
// it when the daemon restarts, and a dropped connection must not leave the
// container without readings.
func (s *statsStream) run(ctx context.Context) {
	defer close(s.done)
	backoff := time.Second
	for {
		frames, err := s.follow(ctx)
		if ctx.Err() != nil {
			return
		}
		if frames > 0 {
			backoff = time.Second
		}
		s.log.Debug("container metrics: stats stream ended; re-subscribing",
			zap.String("container", shortID(s.id)), zap.Error(err), zap.Duration("backoff", backoff))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxStreamBackoff)
	}
}

// follow reads frames until the stream ends and says how many it got.
func (s *statsStream) follow(ctx context.Context) (frames int, err error) {
	resp, err := s.api.ContainerStats(ctx, s.id, true)
	if err != nil {
		return 0, fmt.Errorf("open stats stream of %s: %w", shortID(s.id), err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var f container.StatsResponse
		if err := dec.Decode(&f); err != nil {
			return frames, fmt.Errorf("decode stats stream of %s: %w", shortID(s.id), err)
		}
		// A stopped container's frames carry no read time and all zeros.
		if f.Read.IsZero() {
			continue
		}
		frames++
		s.latest.Store(&reading{stats: s.rawFromFrame(&f), at: f.Read})
	}
}

// rawFromFrame converts a frame to the readings the cgroup files give.
// Docker's numbers are the same cgroup counters: CPU in nanoseconds,
// memory usage with page cache, block I/O per device number.
func (s *statsStream) rawFromFrame(f *container.StatsResponse) rawStats {
	r := rawStats{
		cpu:      time.Duration(f.CPUStats.CPUUsage.TotalUsage),
		memUsage: f.MemoryStats.Usage,
	}
	inactive, v1 := f.MemoryStats.Stats["total_inactive_file"]
	if !v1 {
		inactive = f.MemoryStats.Stats["inactive_file"]
	}
	r.memWorkSet = workingSet(r.memUsage, inactive)
	if s.ownNetwork {
		ifs := make([]InterfaceStats, 0, len(f.Networks))
		for name, n := range f.Networks {
			if name != "lo" {
				ifs = append(ifs, InterfaceStats{Interface: name, RxBytes: n.RxBytes, TxBytes: n.TxBytes})
			}
		}
		r.networks = boundInterfaces(ifs)
	}
	r.blockIO = s.devices.stats(blkioFromFrame(f.BlkioStats.IoServiceBytesRecursive))
	return r
}

// blkioFromFrame sums Docker's per-device entries; the operation is
// "Read"/"Write" on cgroup v1 and "read"/"write" on v2.
func blkioFromFrame(entries []container.BlkioStatEntry) []devBytes {
	var out []devBytes
	index := map[devID]int{}
	for _, e := range entries {
		dev := devID{uint32(e.Major), uint32(e.Minor)}
		i, ok := index[dev]
		if !ok {
			i = len(out)
			index[dev] = i
			out = append(out, devBytes{dev: dev})
		}
		switch strings.ToLower(e.Op) {
		case "read":
			out[i].read = e.Value
		case "write":
			out[i].write = e.Value
		}
	}
	return out
}
