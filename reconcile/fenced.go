package reconcile

import (
	"context"
	"errors"
	"maps"
	"strconv"
	"time"
)

// Fence is the controller's lease as the runtime sees it.
type Fence interface {
	// Valid is checked right before each mutating call.
	Valid() bool
	// Context ends when the lease is lost or runs out unrenewed: calls in
	// flight are cut off then.
	Context() context.Context
	Epoch() int64
}

// ErrNotLeading: the lease is no longer valid; a mutating call was not
// made.
var ErrNotLeading = errors.New("not the leader any more (the controller lease is no longer valid); nothing was done")

// FencedRuntime keeps a stale leader's hands off the engine: every
// mutating call is made only while the lease is valid — checked right
// before it — and is cut off when the lease ends; containers it creates
// carry the term's epoch (LabelEpoch). Reads pass through.
type FencedRuntime struct {
	Runtime
	Fence Fence
}

func (f FencedRuntime) guard(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if !f.Fence.Valid() {
		return ctx, func() {}, ErrNotLeading
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(f.Fence.Context(), cancel)
	return ctx, func() { stop(); cancel() }, nil
}

// Events is a read, but the stream of an orchestrator also sweeps what no
// service uses any more (the Swarm runtime's task poll removes unused
// secrets): it is cut off when the lease ends, like the mutating calls, so
// a deposed leader sweeps nothing a new leader just made. (The controller
// leads with the lease's context already; this keeps the guarantee with
// the fence, not with each caller.)
func (f FencedRuntime) Events(ctx context.Context) (<-chan RuntimeEvent, <-chan error) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(f.Fence.Context(), cancel)
	go func() {
		<-ctx.Done()
		stop()
	}()
	return f.Runtime.Events(ctx)
}

func (f FencedRuntime) PullImage(ctx context.Context, ref string, auth *RegistryAuth) error {
	ctx, cancel, err := f.guard(ctx)
	defer cancel()
	if err != nil {
		return err
	}
	return f.Runtime.PullImage(ctx, ref, auth)
}

func (f FencedRuntime) CreateNetwork(ctx context.Context, name string, labels map[string]string) (Network, error) {
	ctx, cancel, err := f.guard(ctx)
	defer cancel()
	if err != nil {
		return Network{}, err
	}
	return f.Runtime.CreateNetwork(ctx, name, labels)
}

func (f FencedRuntime) RemoveNetwork(ctx context.Context, name string) error {
	ctx, cancel, err := f.guard(ctx)
	defer cancel()
	if err != nil {
		return err
	}
	return f.Runtime.RemoveNetwork(ctx, name)
}

func (f FencedRuntime) CreateVolume(ctx context.Context, spec VolumeSpec) (Volume, error) {
	ctx, cancel, err := f.guard(ctx)
	defer cancel()
	if err != nil {
		return Volume{}, err
	}
	return f.Runtime.CreateVolume(ctx, spec)
}

func (f FencedRuntime) RemoveVolume(ctx context.Context, name string) error {
	ctx, cancel, err := f.guard(ctx)
	defer cancel()
	if err != nil {
		return err
	}
	return f.Runtime.RemoveVolume(ctx, name)
}

func (f FencedRuntime) CreateContainer(ctx context.Context, spec ContainerSpec) (string, error) {
	ctx, cancel, err := f.guard(ctx)
	defer cancel()
	if err != nil {
		return "", err
	}
	spec.Labels = maps.Clone(spec.Labels)
	spec.Labels[LabelEpoch] = strconv.FormatInt(f.Fence.Epoch(), 10)
	return f.Runtime.CreateContainer(ctx, spec)
}

func (f FencedRuntime) StartContainer(ctx context.Context, ref string) error {
	ctx, cancel, err := f.guard(ctx)
	defer cancel()
	if err != nil {
		return err
	}
	return f.Runtime.StartContainer(ctx, ref)
}

func (f FencedRuntime) StopContainer(ctx context.Context, ref string, grace time.Duration) error {
	ctx, cancel, err := f.guard(ctx)
	defer cancel()
	if err != nil {
		return err
	}
	return f.Runtime.StopContainer(ctx, ref, grace)
}

func (f FencedRuntime) RemoveContainer(ctx context.Context, ref string) error {
	ctx, cancel, err := f.guard(ctx)
	defer cancel()
	if err != nil {
		return err
	}
	return f.Runtime.RemoveContainer(ctx, ref)
}

func (f FencedRuntime) RenameContainer(ctx context.Context, ref, newName string) error {
	ctx, cancel, err := f.guard(ctx)
	defer cancel()
	if err != nil {
		return err
	}
	return f.Runtime.RenameContainer(ctx, ref, newName)
}
