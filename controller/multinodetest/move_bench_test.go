package multinodetest

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/volume"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/internal/testedge"
	"github.com/panelx/panelx/internal/testenv/dockerd"
	"github.com/panelx/panelx/internal/testimage"
	"github.com/panelx/panelx/reconcile"
	swarmruntime "github.com/panelx/panelx/reconcile/swarm"
)

// BenchmarkVolumeMove: the runtime's copy of a volume from node 1 to node 2
// (helper tasks started on both, the tree streamed over the overlay,
// checked, synced, the helper objects removed), for an empty volume — the
// fixed cost — and for 64 MiB in 1 000 files. Each op moves a fresh
// volume; filling it is not timed.
//
//	go test -run '^$' -bench VolumeMove -benchtime 3x ./controller/multinodetest/
func BenchmarkVolumeMove(b *testing.B) {
	c := dockerd.StartCluster(b, dockerd.ClusterOptions{Nodes: 3})
	reg := testimage.StartRegistry(b, testimage.RegistryOptions{Listen: net.JoinHostPort(c.HostAddr().String(), "0")})
	helper := reg.Push(b, "bench/panelx:test", testedge.Image(b))
	mgr := c.Manager().Client(b)
	opts := multinodeOptions
	opts.HelperImage = helper
	rt := swarmruntime.New(mgr, "bench", opts)
	ctx := context.Background()
	n := 0 // every op moves a volume of its own
	for _, size := range []struct {
		name  string
		files int
		each  int
	}{{"empty", 0, 0}, {"64MiB-1000files", 1000, 64 << 20 / 1000}} {
		b.Run(size.name, func(b *testing.B) {
			var moved int64
			for range b.N {
				b.StopTimer()
				n++
				vol := &api.Volume{Metadata: api.ObjectMeta{Project: "bench", Name: fmt.Sprintf("v%d", n)}}
				spec := reconcile.BuildVolumeSpec("bench", vol)
				v, err := mgr.VolumeCreate(ctx, volume.CreateOptions{Name: spec.Name, Labels: spec.Labels})
				if err != nil {
					b.Fatal(err)
				}
				// The nodes share this machine's filesystem: the volume is
				// filled from the host.
				for f := range size.files {
					dir := filepath.Join(v.Mountpoint, fmt.Sprintf("d%02d", f%50))
					if err := os.MkdirAll(dir, 0o755); err != nil {
						b.Fatal(err)
					}
					data := make([]byte, size.each)
					rand.Read(data)
					if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d", f)), data, 0o644); err != nil {
						b.Fatal(err)
					}
				}
				// The target syncs the filesystem before it answers: the
				// data just written is flushed now, not on the clock.
				syscall.Sync()
				b.StartTimer()
				start := time.Now()
				res, err := rt.MoveVolume(ctx, reconcile.VolumeMove{Project: "bench", Volume: vol.Metadata.Name,
					From: c.Manager().Hostname(), To: c.Node(2).Hostname(), Spec: *spec})
				if err != nil {
					b.Fatal(err)
				}
				b.Logf("%s: %d entries, %d bytes in %v", vol.Metadata.Name, res.Files, res.Bytes, time.Since(start).Round(time.Millisecond))
				moved += res.Bytes
			}
			b.ReportMetric(float64(moved)/(1<<20)/b.Elapsed().Seconds(), "MiB/s")
		})
	}
}
