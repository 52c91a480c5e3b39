package controller

import (
	"context"
	"testing"

	"github.com/panelx/panelx/api"
)

// TestVolumeStatusWriteKeepsAMove: the reconciler computes a volume's
// status from the row it read; when a move records a new node meanwhile,
// writing that status by compare-and-set drops it and the move's node
// stays (written blindly, as service status is, it would undo the move).
func TestVolumeStatusWriteKeepsAMove(t *testing.T) {
	for _, c := range []struct {
		name     string
		cas      bool
		wantNode string
	}{
		{"compare-and-set", true, "px-node-2"},
		{"blind (the mistake it prevents)", false, "px-node-1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, s, _, _ := newBackupsTest(t)
			ctx := context.Background()
			res := s.Volumes()
			write := func(v *api.Volume, st api.VolumeStatus) error {
				set := func(v *api.Volume) { v.Status = st }
				if c.cas {
					return writeStatusCAS(ctx, res, v, st, set)
				}
				return writeStatus(ctx, res, v, st, set)
			}
			v := createVolume(t, s, "data", nil)
			key := api.KeyOf(v)
			if err := write(v, api.VolumeStatus{Node: "px-node-1", Phase: api.PhaseReady}); err != nil {
				t.Fatal(err)
			}
			read, err := res.Get(ctx, key) // what a reconcile reads
			if err != nil {
				t.Fatal(err)
			}
			if err := b.recordNode(ctx, key, "px-node-1", "px-node-2"); err != nil {
				t.Fatal(err)
			}
			stale := read.Status
			stale.Phase = api.PhaseDegraded
			if err := write(read, stale); err != nil {
				t.Fatal(err)
			}
			got, err := res.Get(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status.Node != c.wantNode {
				t.Errorf("status.node = %s after the stale write, want %s", got.Status.Node, c.wantNode)
			}
		})
	}
}
