package reconcile

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/distribution/reference"
)

// CredentialSource finds the registry credentials a project stored for a
// registry host; nil credentials mean an anonymous pull.
type CredentialSource interface {
	RegistryCredential(ctx context.Context, project, registry string) (*RegistryAuth, error)
}

// Executor runs plans: ops whose dependencies succeeded run in parallel, up
// to a bound. It makes no decisions; what it changes it writes through to
// the cache so the next plan sees it at once.
type Executor struct {
	Runtime     Runtime
	Cache       *Cache
	Credentials CredentialSource // may be nil
	Parallel    int
	// Teardown runs retire-container ops in the background; nil runs
	// them in the plan like the others.
	Teardown *Teardown
}

// OpResult is the outcome of one op.
type OpResult struct {
	Op      Op
	Err     error
	Skipped bool // a dependency failed
	// Queued: handed to the Teardown, whose callback reports the outcome.
	Queued   bool
	Duration time.Duration
}

// ErrLeftDead: a removal failed and the engine left the container dead.
// It holds nothing back — the next plan moves it aside (planDead) — so
// the reconciler reports it and carries on rather than failing.
var ErrLeftDead = errors.New("the engine could not remove the container and left it dead")

// stopGrace is the default time a stopped container has to exit before
// it is killed (Docker's and Compose's).
const stopGrace = 10 * time.Second

// errSkipped marks ops not run because a dependency failed.
var errSkipped = errors.New("skipped: a prerequisite failed")

// Run executes the plan and returns one result per op, in plan order.
func (e *Executor) Run(ctx context.Context, p Plan) []OpResult {
	n := len(p.Ops)
	results := make([]OpResult, n)
	done := make([]chan struct{}, n)
	for i := range done {
		done[i] = make(chan struct{})
	}
	parallel := e.Parallel
	if parallel <= 0 {
		parallel = 4
	}
	sem := make(chan struct{}, parallel)
	var (
		panicMu  sync.Mutex
		panicked *opPanic
	)
	for i := range p.Ops {
		go func() {
			defer close(done[i])
			// A panic in an op is carried to the caller's goroutine (below),
			// where the controller recovers it; here it would end the process.
			defer func() {
				if v := recover(); v != nil {
					panicMu.Lock()
					if panicked == nil {
						panicked = &opPanic{op: p.Ops[i], value: v, stack: debug.Stack()}
					}
					panicMu.Unlock()
					results[i].Err = fmt.Errorf("%s %s panicked: %v", p.Ops[i].Kind, p.Ops[i].Target, v)
				}
			}()
			op := p.Ops[i]
			results[i].Op = op
			for _, dep := range op.After {
				<-done[dep]
				if results[dep].Err != nil {
					results[i].Err, results[i].Skipped = errSkipped, true
					return
				}
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				results[i].Err = ctx.Err()
				return
			}
			if op.Kind == OpRetireContainer && e.Teardown != nil {
				e.Teardown.Submit(op)
				results[i].Queued = true
				<-sem
				return
			}
			start := time.Now()
			results[i].Err = e.runOp(ctx, op)
			results[i].Duration = time.Since(start)
			<-sem
		}()
	}
	for i := range done {
		<-done[i]
	}
	if panicked != nil {
		panic(panicked)
	}
	return results
}

// opPanic is a panic of one op, raised again in Run's goroutine.
type opPanic struct {
	op    Op
	value any
	stack []byte
}

func (p *opPanic) String() string { return fmt.Sprintf("%s %s: %v", p.op.Kind, p.op.Target, p.value) }

// Stack is where the op panicked.
func (p *opPanic) Stack() []byte { return p.stack }

func (e *Executor) runOp(ctx context.Context, op Op) error {
	rt := e.Runtime
	switch op.Kind {
	case OpCreateNetwork:
		n, err := rt.CreateNetwork(ctx, op.Target, op.Labels)
		if err == nil {
			e.Cache.SetNetwork(n)
		}
		return err
	case OpRemoveNetwork:
		err := rt.RemoveNetwork(ctx, op.Target)
		if err == nil {
			e.Cache.NetworkRemoved(op.Target)
		}
		return err
	case OpCreateVolume:
		v, err := rt.CreateVolume(ctx, *op.VolumeSpec)
		if err == nil {
			e.Cache.SetVolume(v)
		}
		return err
	case OpRemoveVolume:
		err := rt.RemoveVolume(ctx, op.Target)
		if err == nil {
			e.Cache.VolumeRemoved(op.Target)
		}
		return err
	case OpPullImage:
		auth, err := e.credentials(ctx, op.Project, op.Target)
		if err != nil {
			return err
		}
		if err := rt.PullImage(ctx, op.Target, auth); err != nil {
			return err
		}
		e.Cache.ImagesChanged() // this reconcile's next look sees the new ID
		return nil
	case OpCreateContainer:
		spec := *op.Container
		if spec.Network != "" {
			// Attach by ID: names of networks are not unique in Docker.
			n := e.Cache.NetworkNamed(spec.Network)
			if n == nil {
				return fmt.Errorf("create container %s: network %s does not exist", spec.Name, spec.Network)
			}
			spec.NetworkID = n.ID
			spec.MoreNetworkIDs = nil
			for _, name := range spec.MoreNetworks {
				n := e.Cache.NetworkNamed(name)
				if n == nil {
					return fmt.Errorf("create container %s: network %s does not exist", spec.Name, name)
				}
				spec.MoreNetworkIDs = append(spec.MoreNetworkIDs, n.ID)
			}
		}
		id, err := rt.CreateContainer(ctx, spec)
		if err != nil {
			return err
		}
		return e.Cache.RefreshContainer(ctx, id)
	case OpStartContainer:
		err := rt.StartContainer(ctx, op.ref())
		// Refresh even after a failed start: the container records why.
		if rerr := e.Cache.RefreshContainer(ctx, op.ref()); err == nil {
			err = rerr
		}
		return err
	case OpRetireContainer:
		return retire(ctx, rt, e.Cache, op)
	case OpStopContainer:
		grace := op.Grace
		if grace <= 0 {
			grace = stopGrace
		}
		if err := rt.StopContainer(ctx, op.ref(), grace); err != nil {
			return err
		}
		return e.Cache.RefreshContainer(ctx, op.ref())
	case OpRemoveContainer:
		if err := rt.RemoveContainer(ctx, op.ref()); err != nil {
			// A failed removal may leave the container dead, which the
			// engine announces with no event: look, so the next plan knows.
			if e.Cache.RefreshContainer(ctx, op.ref()) == nil && e.Cache.containerState(op.ref()) == "dead" {
				return fmt.Errorf("%w: %w", ErrLeftDead, err)
			}
			return err
		}
		e.Cache.ContainerRemoved(op.ref())
		return nil
	case OpRenameContainer:
		if err := rt.RenameContainer(ctx, op.ref(), op.NewName); err != nil {
			return err
		}
		return e.Cache.RefreshContainer(ctx, op.ref())
	case OpCreateWorkload, OpUpdateWorkload, OpRemoveWorkload:
		return e.runWorkloadOp(ctx, op)
	}
	return fmt.Errorf("unknown op %q", op.Kind)
}

// runWorkloadOp runs an orchestrator's op: the networks resolved to IDs,
// the project's registry credentials handed over for every node's pull.
func (e *Executor) runWorkloadOp(ctx context.Context, op Op) error {
	o, ok := AsOrchestrator(e.Runtime)
	if !ok {
		return fmt.Errorf("%s %s: the runtime is not an orchestrator", op.Kind, op.Target)
	}
	if op.Kind == OpRemoveWorkload {
		if err := o.RemoveWorkload(ctx, op.Target); err != nil {
			return err
		}
		_, err := e.Cache.RefreshWorkload(ctx, op.Target)
		return err
	}
	spec := *op.Workload
	tpl := &spec.Template
	if tpl.Network != "" {
		n := e.Cache.NetworkNamed(tpl.Network)
		if n == nil {
			return fmt.Errorf("%s %s: network %s does not exist", op.Kind, op.Target, tpl.Network)
		}
		tpl.NetworkID = n.ID
		tpl.MoreNetworkIDs = nil
		for _, name := range tpl.MoreNetworks {
			n := e.Cache.NetworkNamed(name)
			if n == nil {
				return fmt.Errorf("%s %s: network %s does not exist", op.Kind, op.Target, name)
			}
			tpl.MoreNetworkIDs = append(tpl.MoreNetworkIDs, n.ID)
		}
	}
	auth, err := e.credentials(ctx, spec.Project, tpl.ImageRef)
	if err != nil {
		return err
	}
	spec.Auth = auth
	e.Cache.WorkloadAttempted(spec.Name, spec.Hash())
	var w Workload
	if op.Kind == OpCreateWorkload {
		w, err = o.CreateWorkload(ctx, spec)
	} else {
		w, err = o.UpdateWorkload(ctx, spec)
	}
	if err != nil {
		return err
	}
	e.Cache.SetWorkload(w)
	return nil
}

func (e *Executor) credentials(ctx context.Context, project, ref string) (*RegistryAuth, error) {
	if e.Credentials == nil {
		return nil, nil
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	auth, err := e.Credentials.RegistryCredential(ctx, project, reference.Domain(named))
	if err != nil {
		return nil, fmt.Errorf("pull %s: look up registry credentials: %w", ref, err)
	}
	return auth, nil
}
