package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/builder"
	"github.com/panelx/panelx/reconcile"
	"github.com/panelx/panelx/seal"
	"github.com/panelx/panelx/store"
)

// maxIterations bounds observe → plan → execute rounds in one reconcile; a
// key that needs more is requeued.
const maxIterations = 8

// Reconciler reconciles one key at a time: it reads the desired state from
// the store and the observed state from the cache, plans, executes, and
// writes status and events back.
type Reconciler struct {
	Store        store.Store
	Runtime      reconcile.Runtime
	Cache        *reconcile.Cache
	Executor     *reconcile.Executor
	Instance     string
	Log          *zap.Logger
	PullInterval time.Duration
	Now          func() time.Time
	Metrics      *Metrics
	// DrainTimeout bounds how long a replica out of the edge's routes waits
	// for the edges before it is stopped (0: reconcile.DefaultDrainTimeout).
	DrainTimeout time.Duration

	drainMu sync.Mutex
	// drainSince remembers, per service, since when each container has
	// been out of the published endpoints.
	drainSince map[api.Key]map[string]time.Time
	// failures remembers, per service, the failed starts in a row of each
	// container (the planner recreates one that keeps failing) and the
	// failed removals of dead ones (retried with a backoff).
	failures map[api.Key]map[failureKey]reconcile.Failure

	// Keyring opens secrets (nil: services using secrets are held back).
	Keyring *seal.Keyring

	secretsMu sync.Mutex
	secrets   map[api.Key]openedSecret
	// revisions remembers each service's newest revision.
	revisionsMu sync.Mutex
	revisions   map[api.Key]knownRevision

	// Prober runs the services' readiness probes (nil: none run, and a
	// replica's readiness is Docker's alone).
	Prober *Prober
	// Builds builds the services that build from source (nil: they wait,
	// BuildPending).
	Builds     *builder.Manager
	buildsMu   sync.Mutex
	buildsSeen map[api.Key]string // the build change each service's events last told
	rowBuilds  map[api.Key]*api.BuildStatus

	imagesMu sync.Mutex
	// images remembers pulls per project and reference: credentials are per
	// project, so one project's failures must not hold back another's.
	images map[imageKey]reconcile.ImageState
}

type imageKey struct{ project, ref string }

// Result tells the queue when to look at the key again.
type Result struct {
	RequeueAfter time.Duration
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Reconcile converges one key.
func (r *Reconciler) Reconcile(ctx context.Context, key reconcile.Key) (Result, error) {
	switch key.Kind {
	case api.KindService:
		return r.reconcileService(ctx, key)
	case api.KindProject:
		return r.reconcileProject(ctx, key)
	case api.KindVolume:
		return r.reconcileVolume(ctx, key)
	case api.KindSecret:
		return r.reconcileSecret(ctx, key)
	}
	return Result{}, fmt.Errorf("reconcile %s: unknown kind", key)
}

// getOrNil returns nil for a missing object.
func getOrNil[T api.Object](ctx context.Context, res store.Resources[T], key api.Key) (T, error) {
	obj, err := res.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		var zero T
		return zero, nil
	}
	return obj, err
}

func (r *Reconciler) reconcileService(ctx context.Context, key reconcile.Key) (Result, error) {
	akey := api.Key{Project: key.Project, Name: key.Name}
	var (
		svc      *api.Service
		img      reconcile.ImageState
		secrets  reconcile.Secrets
		recorded bool
	)
	plan, lastErr, err := r.converge(ctx, key, func() (reconcile.Plan, error) {
		in, err := r.serviceInput(ctx, akey)
		if err != nil {
			return reconcile.Plan{}, err
		}
		// A replica leaves the edge's routes before anything may stop it.
		if err := r.publishEndpoints(ctx, &in); err != nil {
			return reconcile.Plan{}, err
		}
		svc, img, secrets = in.Service, in.Image, in.Secrets
		// The revision is recorded before anything of it is created: the
		// rollout (and its deadline) starts with the change.
		if svc != nil && svc.Metadata.DeletionTimestamp == nil {
			_, rec, err := r.revision(ctx, svc, img, secrets)
			if err != nil {
				return reconcile.Plan{}, err
			}
			recorded = recorded || rec
		}
		return reconcile.PlanService(in), nil
	})
	if err != nil {
		return Result{}, err
	}
	if svc == nil {
		r.Metrics.serviceGone(key.Project, key.Name)
		if r.Builds != nil {
			r.Builds.Forget(akey)
			if _, err := r.Builds.Prune(ctx, akey, nil); err != nil { // its containers are gone
				r.Log.Warn("prune build images", zap.Stringer("service", akey), zap.Error(err))
			}
		}
		return Result{RequeueAfter: plan.RequeueAfter}, lastErr
	}
	if plan.Finalize {
		err := r.Store.Services().Remove(ctx, akey, svc.Metadata.UID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return Result{}, err
		}
		r.Metrics.serviceGone(key.Project, key.Name)
		r.event(ctx, key, store.EventNormal, "Deleted", "service removed: its containers are gone")
		return Result{}, lastErr
	}
	if svc.Metadata.DeletionTimestamp == nil {
		projectDomain, certs, err := r.domainInputs(ctx, svc)
		if err != nil {
			return Result{}, err
		}
		latest, rec, err := r.revision(ctx, svc, img, secrets)
		if err != nil {
			return Result{}, err
		}
		recorded = recorded || rec
		workload, _ := r.Cache.Workload(key.Project, key.Name)
		status := reconcile.ComputeServiceStatus(reconcile.ServiceStatusInput{
			Instance: r.Instance, Service: svc, Previous: svc.Status, Containers: r.Prober.withProbes(svc, r.Cache.Containers(key.Project, key.Name)),
			Image: img, Plan: plan, Err: lastErr, Now: r.now(), Workload: workload,
			Network: reconcile.FirstNetwork(key.Project, &svc.Spec, r.Cache.Networks(key.Project)), ProjectDomain: projectDomain, Certificates: certs, Secrets: secrets,
		})
		status.Build = svc.Status.Build
		if d := r.rollout(ctx, svc, &status, latest, recorded); d.RequeueAfter > 0 && (plan.RequeueAfter == 0 || d.RequeueAfter < plan.RequeueAfter) {
			plan.RequeueAfter = d.RequeueAfter
		}
		if err := r.writeServiceStatus(ctx, svc, status); err != nil && lastErr == nil {
			lastErr = err
		}
		withStatus := *svc
		withStatus.Status = status
		r.Metrics.serviceStatus(&withStatus)
	}
	return Result{RequeueAfter: plan.RequeueAfter}, lastErr
}

// publishEndpoints writes the service's endpoints to its status when they
// changed, before the plan is made: the edges follow the status, and the
// planner stops a replica only once it is out of them and drained. It
// fills in.Drain.
func (r *Reconciler) publishEndpoints(ctx context.Context, in *reconcile.ServiceInput) error {
	svc := in.Service
	now := r.now()
	r.drainMu.Lock()
	since := r.drainSince[in.Key]
	r.drainMu.Unlock()
	if svc == nil {
		return nil
	}
	needed := len(svc.Spec.Domains) > 0 || len(svc.Status.Endpoints) > 0 || len(since) > 0
	if !needed {
		return nil
	}
	published := svc.Status.Endpoints
	desired := reconcile.DesiredEndpoints(reconcile.EndpointsInput{Instance: r.Instance, Service: svc, Image: in.Image,
		Network: in.Network, Containers: in.Containers, Secrets: in.Secrets})
	if !sameJSON(published, desired) {
		upd := api.Clone(svc)
		upd.Status.Endpoints = desired
		upd.Metadata.ResourceVersion = ""
		stored, err := r.Store.Services().UpdateStatus(ctx, upd)
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
			in.Service = nil // deleted or re-created meanwhile: its own change comes next
			return nil
		}
		if err != nil {
			return fmt.Errorf("publish endpoints of %s: %w", in.Key, err)
		}
		in.Service, published = stored, desired
		r.Log.Debug("endpoints published", zap.Stringer("key", in.Key), zap.Int("endpoints", len(desired)))
	}
	routed := map[string]bool{}
	for _, e := range published {
		routed[e.ContainerID] = true
	}
	// Remember since when each running container has been out of the
	// endpoints; forget containers that are gone.
	next := map[string]time.Time{}
	for _, c := range in.Containers {
		if routed[c.ID] {
			continue
		}
		if t, ok := since[c.ID]; ok {
			next[c.ID] = t
		} else {
			next[c.ID] = now
		}
	}
	r.drainMu.Lock()
	if r.drainSince == nil {
		r.drainSince = map[api.Key]map[string]time.Time{}
	}
	if len(next) == 0 {
		delete(r.drainSince, in.Key)
	} else {
		r.drainSince[in.Key] = next
	}
	r.drainMu.Unlock()

	reports, err := r.Store.Edges().List(ctx)
	if err != nil {
		return fmt.Errorf("read edge reports: %w", err)
	}
	views := make([]reconcile.EdgeReportView, len(reports))
	for i, e := range reports {
		views[i] = reconcile.EdgeReportView{ID: e.ID, Active: e.Active, Draining: e.Draining, SeenAt: e.SeenAt}
	}
	in.Drain = reconcile.DrainInput{Needed: true, Routed: routed, Since: next, Timeout: r.DrainTimeout,
		Edges: reconcile.EdgeViews(now, views)}
	return nil
}

// domainInputs reads what a service's domain status needs: its project's
// domain and the certificate states of its hostnames.
func (r *Reconciler) domainInputs(ctx context.Context, svc *api.Service) (string, map[string]api.CertificateStatus, error) {
	if len(svc.Spec.Domains) == 0 {
		return "", nil, nil
	}
	project, err := getOrNil(ctx, r.Store.Projects(), api.Key{Name: svc.Metadata.Project})
	if err != nil || project == nil {
		return "", nil, err
	}
	var hosts []string
	for _, d := range svc.Spec.Domains {
		if h := api.EffectiveHost(d, svc.Metadata.Name, project.Spec.Domain); h != "" && d.TLS != api.TLSOff {
			hosts = append(hosts, h)
		}
	}
	certs, err := r.Store.Certificates().Statuses(ctx, hosts)
	if err != nil {
		return "", nil, fmt.Errorf("read certificate status: %w", err)
	}
	return project.Spec.Domain, certs, nil
}

// failureKey names one kind of operation on one container.
type failureKey struct {
	kind reconcile.OpKind
	id   string
}

// recordFailures counts failed starts, and failed best-effort removals, per
// container; a success forgets the count.
func (r *Reconciler) recordFailures(key api.Key, results []reconcile.OpResult) {
	r.drainMu.Lock()
	defer r.drainMu.Unlock()
	for _, res := range results {
		kind := res.Op.Kind
		removal := (kind == reconcile.OpRemoveContainer || kind == reconcile.OpRetireContainer) &&
			(res.Op.BestEffort || errors.Is(res.Err, reconcile.ErrLeftDead))
		if res.Skipped || res.Queued || !(kind == reconcile.OpStartContainer || removal) {
			continue
		}
		id := res.Op.ContainerID
		if id == "" { // created in this plan: find it by name
			for _, c := range r.Cache.Containers(key.Project, key.Name) {
				if c.Name == res.Op.Target {
					id = c.ID
				}
			}
		}
		if id == "" {
			continue
		}
		if r.failures == nil {
			r.failures = map[api.Key]map[failureKey]reconcile.Failure{}
		}
		m := r.failures[key]
		fk := failureKey{kind, id}
		if res.Err == nil {
			delete(m, fk)
			continue
		}
		if m == nil {
			m = map[failureKey]reconcile.Failure{}
			r.failures[key] = m
		}
		f := m[fk]
		f.Count++
		f.Err = res.Err.Error()
		f.At = r.now()
		m[fk] = f
	}
}

// failuresOf returns the service's failed starts and removals by container
// ID, forgetting containers that are gone.
func (r *Reconciler) failuresOf(key api.Key, cs []reconcile.Container) (starts, removals map[string]reconcile.Failure) {
	r.drainMu.Lock()
	defer r.drainMu.Unlock()
	m := r.failures[key]
	if len(m) == 0 {
		return nil, nil
	}
	live := map[string]bool{}
	for _, c := range cs {
		live[c.ID] = true
	}
	starts, removals = map[string]reconcile.Failure{}, map[string]reconcile.Failure{}
	for fk, f := range m {
		switch {
		case !live[fk.id]:
			delete(m, fk)
		case fk.kind == reconcile.OpStartContainer:
			starts[fk.id] = f
		default:
			removals[fk.id] = f
		}
	}
	return starts, removals
}

// converge is the loop every kind runs: observe (read the desired and
// observed state) and plan, execute, and again — until the plan is empty
// or only waits, or an operation failed (opErr), at most maxIterations
// rounds; a key that needs more is requeued at once. err is a failure to
// observe.
func (r *Reconciler) converge(ctx context.Context, key reconcile.Key, observe func() (reconcile.Plan, error)) (plan reconcile.Plan, opErr, err error) {
	akey := api.Key{Project: key.Project, Name: key.Name}
	for iter := 0; iter < maxIterations; iter++ {
		if plan, err = observe(); err != nil || plan.Empty() {
			return plan, opErr, err
		}
		r.Log.Debug("executing plan", zap.Stringer("key", key), zap.String("plan", plan.String()))
		results := r.Executor.Run(ctx, plan)
		r.recordFailures(akey, results)
		if opErr = r.afterRun(ctx, key, results); opErr != nil {
			return plan, opErr, nil
		}
	}
	plan.RequeueAfter = time.Millisecond // more to do: come back at once
	return plan, opErr, nil
}

func (r *Reconciler) serviceInput(ctx context.Context, key api.Key) (reconcile.ServiceInput, error) {
	// A container whose readiness rests on how long it has run is looked
	// at again once that time is up (see reconcile.MinReadyTime).
	for _, c := range r.Cache.Containers(key.Project, key.Name) {
		if c.NeedsLook() {
			if err := r.Cache.RefreshContainer(ctx, c.ID); err != nil {
				return reconcile.ServiceInput{}, err
			}
		}
	}
	in := reconcile.ServiceInput{
		Instance: r.Instance, Key: key, Now: r.now(), PullInterval: r.PullInterval,
		Networks: r.Cache.Networks(key.Project), DockerVolumes: r.Cache.Volumes(key.Project),
		Containers: r.Cache.Containers(key.Project, key.Name),
	}
	in.Workload, in.Orchestrated = r.Cache.Workload(key.Project, key.Name)
	var err error
	if in.Node, err = r.nodeName(ctx); err != nil {
		return in, err
	}
	for i := range in.Containers {
		in.Containers[i].Retiring = r.Executor.Teardown.Retiring(in.Containers[i].ID)
	}
	in.StartFailures, in.RemoveFailures = r.failuresOf(key, in.Containers)
	if in.Service, err = getOrNil(ctx, r.Store.Services(), key); err != nil {
		return in, err
	}
	if in.Project, err = getOrNil(ctx, r.Store.Projects(), api.Key{Name: key.Project}); err != nil {
		return in, err
	}
	if in.Service != nil {
		in.Network = reconcile.FirstNetwork(key.Project, &in.Service.Spec, in.Networks)
	}
	r.syncProbes(key, in.Service, in.Containers, in.Network)
	in.Containers = r.Prober.withProbes(in.Service, in.Containers)
	if in.Service == nil || in.Project == nil {
		return in, nil
	}
	sp := &in.Service.Spec
	if len(sp.Volumes) > 0 {
		vols, err := r.Store.Volumes().List(ctx, store.ListOptions{Project: key.Project})
		if err != nil {
			return in, err
		}
		in.Volumes = map[string]*api.Volume{}
		for _, v := range vols.Items {
			in.Volumes[v.Metadata.Name] = v
		}
	}
	for _, m := range sp.Volumes {
		if m.DockerVolume == "" {
			continue
		}
		_, err := r.Runtime.InspectVolume(ctx, m.DockerVolume)
		if err != nil && !errors.Is(err, reconcile.ErrNotFound) && !errors.Is(err, reconcile.ErrNotOwned) {
			return in, err
		}
		if in.DockerVolumesFound == nil {
			in.DockerVolumesFound = map[string]bool{}
		}
		in.DockerVolumesFound[m.DockerVolume] = err == nil || errors.Is(err, reconcile.ErrNotOwned)
	}
	if len(sp.DependsOn) > 0 {
		in.Ready = map[string]bool{}
		for _, dep := range sp.DependsOn {
			d, err := getOrNil(ctx, r.Store.Services(), api.Key{Project: key.Project, Name: dep})
			if err != nil {
				return in, err
			}
			in.Ready[dep] = d != nil && d.Status.ReadyReplicas > 0
		}
	}
	if in.Secrets, err = r.resolveSecrets(ctx, in.Service); err != nil {
		return in, err
	}
	if err := r.ensureBuild(ctx, in.Service); err != nil {
		return in, err
	}
	in.Image, err = r.imageState(ctx, key.Project, in.Service.RunImage())
	return in, err
}

// syncProbes keeps the service's readiness probes running against its
// current replicas (and stops them with the service or its probe).
func (r *Reconciler) syncProbes(key api.Key, svc *api.Service, cs []reconcile.Container, network *reconcile.Network) {
	var probe *api.Probe
	if svc != nil && svc.Metadata.DeletionTimestamp == nil {
		probe = svc.Spec.ReadinessProbe
	}
	netID := ""
	if network != nil {
		netID = network.ID
	}
	r.Prober.Sync(key, probe, cs, netID)
}

// imageState combines what PanelX remembers of pulls with the local
// image's current ID (an image may be removed behind PanelX's back).
func (r *Reconciler) imageState(ctx context.Context, project, ref string) (reconcile.ImageState, error) {
	id, err := r.Cache.ImageID(ctx, ref)
	if err != nil {
		return reconcile.ImageState{}, err
	}
	r.imagesMu.Lock()
	defer r.imagesMu.Unlock()
	if r.images == nil {
		r.images = map[imageKey]reconcile.ImageState{}
	}
	k := imageKey{project, ref}
	st := r.images[k]
	st.Ref, st.ID = ref, id
	r.images[k] = st
	return st, nil
}

func (r *Reconciler) recordPull(project, ref string, err error) {
	r.imagesMu.Lock()
	defer r.imagesMu.Unlock()
	if r.images == nil {
		r.images = map[imageKey]reconcile.ImageState{}
	}
	k := imageKey{project, ref}
	st := r.images[k]
	st.AttemptedAt = r.now()
	if err != nil {
		st.Failures++
		// The message is shown after "pull <ref>: " by whoever reports it;
		// the runtime's error already starts so.
		st.PullError = strings.TrimPrefix(err.Error(), "pull "+ref+": ")
	} else {
		st.Failures, st.PullError, st.PulledAt = 0, "", st.AttemptedAt
	}
	r.images[k] = st
}

// afterRun records events for what happened and returns the first failure
// that should stop this reconcile. A failed pull does not: the next plan
// reports it (and backs off) or runs the local image.
func (r *Reconciler) afterRun(ctx context.Context, key reconcile.Key, results []reconcile.OpResult) error {
	var firstErr error
	for _, res := range results {
		op := res.Op
		if op.Kind == reconcile.OpPullImage {
			r.recordPull(op.Project, op.Target, res.Err)
		}
		switch {
		case res.Skipped || res.Queued:
			continue
		case res.Err != nil && (op.BestEffort || errors.Is(res.Err, reconcile.ErrLeftDead)):
			r.event(ctx, key, store.EventWarning, "CleanupFailed", fmt.Sprintf("%s %s (%s; retried later): %v", op.Kind, op.Target, op.Cause, res.Err))
			r.Log.Warn("best-effort operation failed; retrying later", zap.Stringer("key", key), zap.String("op", string(op.Kind)),
				zap.String("target", op.Target), zap.Error(res.Err))
		case res.Err != nil:
			reason := "Failed"
			if op.Kind == reconcile.OpPullImage {
				reason = reconcile.ReasonPullFailed
			}
			r.event(ctx, key, store.EventWarning, reason, fmt.Sprintf("%s %s: %v", op.Kind, op.Target, res.Err))
			r.Log.Warn("operation failed", zap.Stringer("key", key), zap.String("op", string(op.Kind)),
				zap.String("target", op.Target), zap.Error(res.Err))
			if op.Kind != reconcile.OpPullImage && firstErr == nil {
				firstErr = res.Err
			}
		default:
			if reason, msg := eventFor(op); reason != "" {
				r.event(ctx, key, store.EventNormal, reason, msg)
			}
		}
	}
	return firstErr
}

// eventFor names the notable ops; stops and renames within a replacement
// are covered by the create/remove events around them.
func eventFor(op reconcile.Op) (string, string) {
	switch op.Kind {
	case reconcile.OpPullImage:
		return "Pulled", "pulled image " + op.Target
	case reconcile.OpCreateContainer:
		return "Created", fmt.Sprintf("created container %s: %s", op.Target, op.Cause)
	case reconcile.OpStartContainer:
		return "Started", fmt.Sprintf("started container %s: %s", op.Target, op.Cause)
	case reconcile.OpRemoveContainer, reconcile.OpRetireContainer:
		return "Removed", fmt.Sprintf("removed container %s: %s", op.Target, op.Cause)
	case reconcile.OpRenameContainer:
		return "Replaced", fmt.Sprintf("container %s now serves as %s", op.Target, op.NewName)
	case reconcile.OpCreateNetwork:
		return "NetworkCreated", fmt.Sprintf("created network %s: %s", op.Target, op.Cause)
	case reconcile.OpRemoveNetwork:
		return "NetworkRemoved", "removed network " + op.Target
	case reconcile.OpCreateVolume:
		return "VolumeCreated", "created volume " + op.Target
	case reconcile.OpCreateWorkload:
		return "Created", fmt.Sprintf("created service %s: %s", op.Target, op.Cause)
	case reconcile.OpUpdateWorkload:
		return "Updated", fmt.Sprintf("updated service %s: %s", op.Target, op.Cause)
	case reconcile.OpRemoveWorkload:
		return "Removed", fmt.Sprintf("removed service %s: %s", op.Target, op.Cause)
	case reconcile.OpRemoveVolume:
		return "VolumeRemoved", fmt.Sprintf("removed volume %s: %s", op.Target, op.Cause)
	}
	return "", ""
}

func (r *Reconciler) event(ctx context.Context, key reconcile.Key, typ store.EventType, reason, msg string) {
	project := key.Project
	if key.Kind == api.KindProject {
		project = key.Name
	}
	err := r.Store.Events().Record(ctx, store.Event{Project: project, Kind: key.Kind, Name: key.Name, Type: typ, Reason: reason, Message: msg})
	if err != nil && !errors.Is(err, store.ErrNotFound) { // the project may be gone
		r.Log.Warn("record event", zap.Stringer("key", key), zap.Error(err))
	}
}

// sameJSON compares statuses; an unchanged status is not written, so a
// status write does not set off an endless chain of reconciles.
func sameJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

// writeStatus stores a new status unless it equals the current one.
// A service's and a project's status are the controller's alone, so no
// resourceVersion guards them; the uid guards the incarnation. A conflict
// or a missing object means the object was deleted or re-created
// meanwhile: its own change comes next.
func writeStatus[T api.Object](ctx context.Context, res store.Resources[T], obj T, status any, set func(T)) error {
	return putStatus(ctx, res, obj, status, set, false)
}

// writeStatusCAS is writeStatus on the version of obj read, for a status
// others write too (a volume's: backups, moves): a conflict drops this
// write, and the other write queues another reconcile.
func writeStatusCAS[T api.Object](ctx context.Context, res store.Resources[T], obj T, status any, set func(T)) error {
	return putStatus(ctx, res, obj, status, set, true)
}

func putStatus[T api.Object](ctx context.Context, res store.Resources[T], obj T, status any, set func(T), onVersion bool) error {
	if sameJSON(obj.StatusPtr(), status) { // a pointer encodes like its value
		return nil
	}
	upd := api.Clone(obj)
	set(upd)
	if !onVersion {
		upd.GetMeta().ResourceVersion = ""
	}
	_, err := res.UpdateStatus(ctx, upd)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
		return nil
	}
	return err
}

func (r *Reconciler) writeServiceStatus(ctx context.Context, svc *api.Service, status api.ServiceStatus) error {
	return writeStatus(ctx, r.Store.Services(), r.rowStatus(svc), status, func(s *api.Service) { s.Status = status })
}

func (r *Reconciler) reconcileProject(ctx context.Context, key reconcile.Key) (Result, error) {
	akey := api.Key{Name: key.Name}
	var (
		project  *api.Project
		services []*api.Service
	)
	plan, lastErr, err := r.converge(ctx, key, func() (reconcile.Plan, error) {
		var err error
		if project, err = getOrNil(ctx, r.Store.Projects(), akey); err != nil {
			return reconcile.Plan{}, err
		}
		svcs, err := r.Store.Services().List(ctx, store.ListOptions{Project: key.Name})
		if err != nil {
			return reconcile.Plan{}, err
		}
		vols, err := r.Store.Volumes().List(ctx, store.ListOptions{Project: key.Name})
		if err != nil {
			return reconcile.Plan{}, err
		}
		services = svcs.Items
		return reconcile.PlanProject(reconcile.ProjectInput{
			Instance: r.Instance, Name: key.Name, Project: project, Services: services, Volumes: vols.Items,
			Networks: slices.Collect(maps.Values(r.Cache.Networks(key.Name))), DockerVolumes: r.Cache.Volumes(key.Name), Containers: r.Cache.Containers(key.Name, ""),
		}), nil
	})
	if err != nil {
		return Result{}, err
	}
	if project == nil {
		return Result{RequeueAfter: plan.RequeueAfter}, lastErr
	}
	if plan.Finalize {
		if r.Builds != nil && r.Builds.Contexts() != nil {
			// Its services are gone: so are the contexts they built from.
			if _, err := r.Builds.Contexts().Prune(key.Name, nil, 0); err != nil {
				return Result{}, err
			}
		}
		err := r.Store.Projects().Remove(ctx, akey, project.Metadata.UID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return Result{}, err
		}
		r.Log.Info("project removed", zap.String("project", key.Name))
		return Result{}, nil
	}
	status := reconcile.ComputeProjectStatus(project, services, r.Cache.Network(key.Name), plan, lastErr, r.now())
	if err := writeStatus(ctx, r.Store.Projects(), project, status, func(p *api.Project) { p.Status = status }); err != nil && lastErr == nil {
		lastErr = err
	}
	return Result{RequeueAfter: plan.RequeueAfter}, lastErr
}

func (r *Reconciler) reconcileVolume(ctx context.Context, key reconcile.Key) (Result, error) {
	akey := api.Key{Project: key.Project, Name: key.Name}
	name := reconcile.VolumeName(key.Project, key.Name)
	var vol *api.Volume
	plan, lastErr, err := r.converge(ctx, key, func() (reconcile.Plan, error) {
		var err error
		if vol, err = getOrNil(ctx, r.Store.Volumes(), akey); err != nil {
			return reconcile.Plan{}, err
		}
		project, err := getOrNil(ctx, r.Store.Projects(), api.Key{Name: key.Project})
		if err != nil {
			return reconcile.Plan{}, err
		}
		in := reconcile.VolumeInput{Instance: r.Instance, Key: akey, Volume: vol, Project: project, UsedBy: r.Cache.VolumeUsers(name)}
		if in.Node, err = r.nodeName(ctx); err != nil {
			return reconcile.Plan{}, err
		}
		if dv, ok := r.Cache.Volumes(key.Project)[name]; ok {
			in.DockerVolume = &dv
		}
		return reconcile.PlanVolume(in), nil
	})
	if err != nil {
		return Result{}, err
	}
	if vol == nil {
		return Result{RequeueAfter: plan.RequeueAfter}, lastErr
	}
	if plan.Finalize {
		err := r.Store.Volumes().Remove(ctx, akey, vol.Metadata.UID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return Result{}, err
		}
		return Result{}, nil
	}
	var dv *reconcile.Volume
	if v, ok := r.Cache.Volumes(key.Project)[name]; ok {
		dv = &v
	}
	node, err := r.nodeName(ctx)
	if err != nil {
		return Result{}, err
	}
	status := reconcile.ComputeVolumeStatus(vol, dv, node, plan, lastErr, r.now())
	// Compare-and-set: status.node is the record of where the data is,
	// which a move (controller/volumemove.go) changes meanwhile.
	if err := writeStatusCAS(ctx, r.Store.Volumes(), vol, status, func(v *api.Volume) { v.Status = status }); err != nil && lastErr == nil {
		lastErr = err
	}
	return Result{RequeueAfter: plan.RequeueAfter}, lastErr
}

// nodeName is the host whose engine creates volumes, on a runtime of
// several hosts ("" otherwise).
func (r *Reconciler) nodeName(ctx context.Context) (string, error) {
	return reconcile.NodeName(ctx, r.Runtime)
}
