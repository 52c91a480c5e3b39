package swarm

import (
	"context"

	"github.com/panelx/panelx/reconcile"
)

// Volumes are the manager engine's local volumes (the embedded
// single-engine runtime's): they live on the manager's node, which the
// volume's status names, and the services that mount one are constrained
// to that node (serviceSpec).

var _ reconcile.NodeNamer = (*Runtime)(nil)

// NodeName is the manager's node, where PanelX creates volumes.
func (r *Runtime) NodeName(ctx context.Context) (string, error) { return r.managerName(ctx) }

func (r *Runtime) managerName(ctx context.Context) (string, error) {
	if _, err := r.managerNode(ctx); err != nil {
		return "", err
	}
	r.nodeMu.Lock()
	defer r.nodeMu.Unlock()
	return r.nodeName, nil
}

func (r *Runtime) ListVolumes(ctx context.Context) ([]reconcile.Volume, error) {
	vs, err := r.Runtime.ListVolumes(ctx)
	if err != nil {
		return nil, err
	}
	node, err := r.managerName(ctx)
	if err != nil {
		return nil, err
	}
	for i := range vs {
		vs[i].Node = node
	}
	return vs, nil
}

func (r *Runtime) InspectVolume(ctx context.Context, name string) (reconcile.Volume, error) {
	return onManager(ctx, r, r.Runtime.InspectVolume, name)
}

func (r *Runtime) CreateVolume(ctx context.Context, spec reconcile.VolumeSpec) (reconcile.Volume, error) {
	return onManager(ctx, r, r.Runtime.CreateVolume, spec)
}

// onManager runs a volume call of the manager's engine and names the node.
func onManager[A any](ctx context.Context, r *Runtime, fn func(context.Context, A) (reconcile.Volume, error), arg A) (reconcile.Volume, error) {
	v, err := fn(ctx, arg)
	if err != nil {
		return v, err
	}
	if v.Node, err = r.managerName(ctx); err != nil {
		return reconcile.Volume{}, err
	}
	return v, nil
}
