package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/distribution/reference"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/reconcile"
	"github.com/panelx/panelx/store"
)

// move carries out a move run: the volume's data copied to another node of
// the swarm while the services that mount it are stopped; then the new
// node recorded in the volume's status (where its services are placed from
// then on) and the services started again. Until the record changes, the
// data on the old node is the volume's: a failed or interrupted move
// leaves the services where they were.
func (b *Backups) move(ctx context.Context, lease store.Lease, run api.BackupRun) (api.BackupRun, error) {
	p := run.Move
	if p == nil {
		return run, errors.New("a move without parameters")
	}
	mover := b.opts.Mover
	if mover == nil {
		return run, errors.New("moving a volume between nodes needs the swarm runtime (PANELX_RUNTIME=swarm)")
	}
	if mover.MoveImage() == "" {
		return run, reconcile.ErrNoMoveImage
	}
	key := api.Key{Project: run.Project, Name: run.Volume}
	v, err := b.opts.Store.Volumes().Get(ctx, key)
	switch {
	case err != nil:
		return run, fmt.Errorf("volume: %w", err)
	case v.Metadata.DeletionTimestamp != nil:
		return run, fmt.Errorf("volume %s is being deleted", run.Volume)
	case v.Status.Node == "":
		return run, fmt.Errorf("volume %s has no node recorded yet (not created, or not on the swarm runtime)", run.Volume)
	case v.Status.Node == p.Node:
		return run, fmt.Errorf("volume %s is already on node %s", run.Volume, p.Node)
	}
	if p.From != v.Status.Node {
		p.From = v.Status.Node
		if run, err = b.runs.Update(ctx, run, api.BackupRunning); err != nil {
			return run, fmt.Errorf("record the move's source node: %w", err)
		}
		p = run.Move
	}
	auth, err := b.moveAuth(ctx, run.Project, mover.MoveImage())
	if err != nil {
		return run, err
	}
	dockerName := reconcile.VolumeName(run.Project, run.Volume)
	run, stopErr := b.stopServices(ctx, lease, run, run.Volume, func(ctx context.Context) ([]string, error) {
		return mover.VolumeTasks(ctx, dockerName)
	})
	moved := false
	defer func() {
		if !moved {
			b.startServices(context.WithoutCancel(ctx), run)
		}
	}()
	if stopErr != nil {
		return run, stopErr
	}
	if err := fenced(lease); err != nil {
		return run, err
	}
	res, err := mover.MoveVolume(ctx, reconcile.VolumeMove{Project: run.Project, Volume: run.Volume, From: p.From, To: p.Node,
		Spec: *reconcile.BuildVolumeSpec(b.opts.Instance, v), Auth: auth})
	if err != nil {
		return run, err
	}
	run.Bytes, run.SHA256, run.Move.Files = res.Bytes, res.SHA256, res.Files
	// A deposed leader records nothing: the new one ends this run Failed
	// and starts the services on the old node, whose data is untouched.
	if err := fenced(lease); err != nil {
		return run, err
	}
	if err := b.recordNode(ctx, key, p.From, p.Node); err != nil {
		return run, err
	}
	moved = true
	b.startServices(context.WithoutCancel(ctx), run)
	return run, nil
}

// recordNode sets the volume's status.node from `from` to `to`, by
// compare-and-set on its resourceVersion (the reconciler writes the rest
// of the status, by compare-and-set too).
func (b *Backups) recordNode(ctx context.Context, key api.Key, from, to string) error {
	for range 10 {
		v, err := b.opts.Store.Volumes().Get(ctx, key)
		if err != nil {
			return fmt.Errorf("record the volume's new node: %w", err)
		}
		if v.Status.Node != from {
			return fmt.Errorf("record the volume's new node: status.node is %s, not %s any more", v.Status.Node, from)
		}
		v.Status.Node = to
		_, err = b.opts.Store.Volumes().UpdateStatus(ctx, v)
		if !errors.Is(err, store.ErrConflict) {
			if err != nil {
				return fmt.Errorf("record the volume's new node: %w", err)
			}
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("record the volume's new node: the volume's status kept changing")
}

// moveAuth is the project's credential for the helper image's registry
// (nil: none, the image is pulled anonymously).
func (b *Backups) moveAuth(ctx context.Context, project, image string) (*reconcile.RegistryAuth, error) {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return nil, fmt.Errorf("helper image %q: %w", image, err)
	}
	auth, err := StoreCredentials{Store: b.opts.Store, Keyring: b.opts.Keyring}.RegistryCredential(ctx, project, reference.Domain(named))
	if err != nil {
		return nil, fmt.Errorf("credentials for the helper image: %w", err)
	}
	return auth, nil
}

// onThisNode: backups and restores reach the volumes of the engine PanelX
// talks to; a volume whose data a move took to another node may have a
// stale copy here, which must never be backed up or restored into.
func (b *Backups) onThisNode(ctx context.Context, v *api.Volume) error {
	nn, ok := b.opts.Mover.(reconcile.NodeNamer)
	if !ok {
		return nil
	}
	here, err := nn.NodeName(ctx)
	if err != nil {
		return err
	}
	if reconcile.VolumeElsewhere(v, here) {
		return fmt.Errorf("volume %s holds its data on node %s; PanelX reaches the volumes of node %s only (move it there, or run PanelX on %s)",
			v.Metadata.Name, v.Status.Node, here, v.Status.Node)
	}
	return nil
}
