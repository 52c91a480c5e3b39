package controller

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docker/docker/client"
	"go.uber.org/zap"
	"k8s.io/client-go/util/workqueue"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/builder"
	"github.com/panelx/panelx/builder/buildctx"
	"github.com/panelx/panelx/builder/buildlog"
	"github.com/panelx/panelx/reconcile"
	"github.com/panelx/panelx/seal"
	"github.com/panelx/panelx/store"
)

// Defaults of Options.
const (
	DefaultWorkers        = 4
	DefaultResyncInterval = 5 * time.Minute
	DefaultPullInterval   = 5 * time.Minute
	reconcileTimeout      = 15 * time.Minute
	feedRetryMin          = 200 * time.Millisecond
	feedRetryMax          = 10 * time.Second
	// dockerRetryMax: the local engine is asked again at least every
	// second while it is away, so a restarted engine (a package upgrade)
	// is seen, re-listed and converged within seconds of its return.
	dockerRetryMax = time.Second
)

// Options configure a Controller.
type Options struct {
	Store    store.Store
	Runtime  reconcile.Runtime
	Instance string
	Log      *zap.Logger
	// Workers reconcile keys in parallel; a key is never handled by two.
	Workers int
	// ResyncInterval is the period of the full resync safety net.
	ResyncInterval time.Duration
	// PullInterval is how often pullPolicy Always looks for a moved tag.
	PullInterval time.Duration
	// Parallel bounds the Docker operations one plan runs at once.
	Parallel int
	// TeardownParallel bounds the containers stopped and removed at once
	// in the background (reconcile.DefaultTeardownParallel when 0).
	TeardownParallel int
	// Credentials finds registry credentials (default: the store's).
	Credentials reconcile.CredentialSource
	// RateLimiter overrides the per-key backoff (tests use short ones).
	RateLimiter workqueue.TypedRateLimiter[reconcile.Key]
	// Metrics, when set, records the controller's Prometheus metrics
	// (and the workqueue's).
	Metrics *Metrics
	// OnLeader is called with true when this process starts acting and
	// false when it stops.
	OnLeader func(bool)
	// DrainTimeout bounds how long a replica taken out of the edge's routes
	// waits for the edges to drain it (0: reconcile.DefaultDrainTimeout).
	DrainTimeout time.Duration
	// Keyring opens secrets and registry passwords. Without one, services
	// that use secrets are held back (SecretUnavailable); the others run.
	Keyring *seal.Keyring
	// Docker, when set, builds the services that build from source (the
	// build API is Docker's; nil: they wait, BuildPending). BuildLogs keeps
	// their logs for the API; BuildRepository and BuildConcurrency are
	// builder.ManagerOptions'.
	Docker           *client.Client
	BuildLogs        *buildlog.Logs
	BuildRepository  string
	BuildConcurrency int
	// BuildContexts keeps uploaded build contexts (spec.build.upload).
	BuildContexts *buildctx.Store
	// Backups, when set, runs the volumes' backups and restores while
	// this process leads (see backups.go).
	Backups *Backups
}

// Controller runs the reconcile loop: keys come from the store's change
// feed, the Docker events stream and a periodic resync; workers reconcile
// them through a de-duplicating, rate-limited queue.
type Controller struct {
	opts Options
	log  *zap.Logger

	mu      sync.Mutex
	current *loop // while leading
}

// ErrNotLeading: this process does not run the reconcile loop now.
var ErrNotLeading = errors.New("controller: not leading")

// Resync does what the periodic resync does — lists the engine into the
// cache and queues every key — and returns once the queue has drained:
// every key reconciled once. Benchmarks and tests use it; the loop itself
// needs no caller.
func (c *Controller) Resync(ctx context.Context) error {
	c.mu.Lock()
	l := c.current
	c.mu.Unlock()
	if l == nil {
		return ErrNotLeading
	}
	l.resync(ctx, "requested", false, false)
	// Drained: no key waiting and no worker busy, seen twice in a row (a
	// key between the queue and a worker is in neither for an instant).
	for quiet := 0; quiet < 2; {
		if l.queue.Len() == 0 && l.busy.Load() == 0 {
			quiet++
		} else {
			quiet = 0
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// New checks the options and fills defaults.
func New(opts Options) (*Controller, error) {
	if opts.Store == nil || opts.Runtime == nil || opts.Instance == "" {
		return nil, errors.New("controller: Store, Runtime and Instance are required")
	}
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.ResyncInterval <= 0 {
		opts.ResyncInterval = DefaultResyncInterval
	}
	if opts.PullInterval <= 0 {
		opts.PullInterval = DefaultPullInterval
	}
	if opts.Credentials == nil {
		opts.Credentials = StoreCredentials{Store: opts.Store, Keyring: opts.Keyring}
	}
	if opts.RateLimiter == nil {
		opts.RateLimiter = workqueue.NewTypedMaxOfRateLimiter(
			workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Key](500*time.Millisecond, 5*time.Minute),
			&workqueue.TypedBucketRateLimiter[reconcile.Key]{Limiter: defaultBucket()},
		)
	}
	return &Controller{opts: opts, log: opts.Log.Named("controller")}, nil
}

// Run acts as the controller whenever this process holds leadership, until
// ctx ends. Backends without an Elector (the embedded one) always lead.
func (c *Controller) Run(ctx context.Context) error {
	elector, shared := c.opts.Store.(store.Elector)
	if !shared {
		return c.lead(ctx, nil)
	}
	for ctx.Err() == nil {
		c.log.Info("waiting for leadership")
		lease, err := elector.Campaign(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		c.log.Info("acting as the leader", zap.Int64("epoch", lease.Epoch()))
		err = c.lead(lease.Context(), lease)
		lease.Release()
		if err != nil && ctx.Err() == nil {
			c.log.Error("controller stopped; campaigning again", zap.Error(err))
		}
	}
	return nil
}

// lead runs the loop until ctx ends. With a lease, every mutating runtime
// call is fenced by it.
func (c *Controller) lead(ctx context.Context, lease store.Lease) error {
	c.opts.Metrics.setLeader(true)
	defer c.opts.Metrics.setLeader(false)
	if c.opts.OnLeader != nil {
		c.opts.OnLeader(true)
		defer c.opts.OnLeader(false)
	}
	rt := c.opts.Runtime
	if lease != nil {
		rt = reconcile.FencedRuntime{Runtime: rt, Fence: lease}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cache := reconcile.NewCache(rt)
	qcfg := workqueue.TypedRateLimitingQueueConfig[reconcile.Key]{}
	if c.opts.Metrics != nil {
		qcfg.Name, qcfg.MetricsProvider = "reconcile", c.opts.Metrics
	}
	queue := workqueue.NewTypedRateLimitingQueueWithConfig(c.opts.RateLimiter, qcfg)
	defer queue.ShutDown()
	r := &Reconciler{
		Store: c.opts.Store, Runtime: rt, Cache: cache, Instance: c.opts.Instance, Log: c.log,
		PullInterval: c.opts.PullInterval, Metrics: c.opts.Metrics, DrainTimeout: c.opts.DrainTimeout,
		Keyring:  c.opts.Keyring,
		Executor: &reconcile.Executor{Runtime: rt, Cache: cache, Credentials: c.opts.Credentials, Parallel: c.opts.Parallel},
	}
	l := &loop{c: c, cache: cache, queue: queue, rec: r}
	if c.opts.Docker != nil {
		r.Builds = builder.NewManager(ctx, builder.ManagerOptions{
			Docker: c.opts.Docker, Log: c.log.Named("build"), Repository: c.opts.BuildRepository,
			Concurrency: c.opts.BuildConcurrency, Logs: c.opts.BuildLogs, Contexts: c.opts.BuildContexts,
			OnChange: func(k api.Key) { l.add(reconcile.ServiceKey(k.Project, k.Name)) },
			OnPoll:   func(k api.Key, commit string) { r.requestPolledBuild(ctx, k, commit) },
		})
	}
	execer, _ := c.opts.Runtime.(ProbeExecer)
	r.Prober = NewProber(ctx, execer, func(k api.Key) { l.add(reconcile.ServiceKey(k.Project, k.Name)) })
	// Containers are stopped and removed in the background; each outcome
	// is recorded like an op's, and its service looks again.
	r.Executor.Teardown = reconcile.NewTeardown(ctx, rt, cache, c.opts.TeardownParallel, func(res reconcile.OpResult) {
		key := reconcile.ServiceKey(res.Op.Project, res.Op.Service)
		r.recordFailures(api.Key{Project: key.Project, Name: key.Name}, []reconcile.OpResult{res})
		_ = r.afterRun(ctx, key, []reconcile.OpResult{res})
		if res.Err != nil {
			queue.AddRateLimited(key)
		} else {
			l.add(key)
		}
	})
	defer r.Executor.Teardown.Wait()
	c.mu.Lock()
	c.current = l
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.current = nil
		c.mu.Unlock()
	}()

	// The store feed and the Docker feed each resync after (re)connecting;
	// workers wait until the cache has been listed once.
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	wg.Add(2)
	go func() { defer wg.Done(); errc <- l.followStore(ctx) }()
	go func() { defer wg.Done(); l.followDocker(ctx) }()
	go l.periodicResync(ctx)
	if c.opts.Backups != nil {
		wg.Add(1)
		go func() { defer wg.Done(); c.opts.Backups.Lead(ctx, lease) }()
	}
	for i := 0; i < c.opts.Workers; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); l.work(ctx) }()
	}
	<-ctx.Done()
	queue.ShutDown()
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

type loop struct {
	c     *Controller
	cache *reconcile.Cache
	queue workqueue.TypedRateLimitingInterface[reconcile.Key]
	rec   *Reconciler

	resyncMu sync.Mutex
	busy     atomic.Int32 // workers reconciling a key now
}

// followStore turns store changes into keys; a resync marker (at start and
// after every reconnect) triggers a full resync.
func (l *loop) followStore(ctx context.Context) error {
	ch, err := l.c.opts.Store.Watch(ctx)
	if err != nil {
		return fmt.Errorf("watch store: %w", err)
	}
	for change := range ch {
		switch change.Type {
		case store.ChangeResync:
			l.resync(ctx, "store feed (re)connected", true, false)
		default:
			l.enqueueChange(ctx, change)
		}
	}
	return nil
}

func (l *loop) enqueueChange(ctx context.Context, ch store.Change) {
	switch ch.Kind {
	case api.KindService:
		// A status-only write is the controller's own report: the service
		// needs no new look, but its project's summary does.
		if !ch.StatusChanged || ch.SpecChanged || ch.Deleting || ch.Type != store.ChangeUpsert {
			k := reconcile.ServiceKey(ch.Key.Project, ch.Key.Name)
			l.c.opts.Metrics.changeQueued(k, ch.CommittedAt)
			l.addNow(k)
		}
		l.add(reconcile.ProjectKey(ch.Key.Project))
	case api.KindProject:
		if !ch.StatusChanged || ch.SpecChanged || ch.Deleting || ch.Type != store.ChangeUpsert {
			k := reconcile.ProjectKey(ch.Key.Name)
			l.c.opts.Metrics.changeQueued(k, ch.CommittedAt)
			l.addNow(k)
		}
		// A new domain moves the default hostnames its services report.
		if ch.SpecChanged && ch.Type == store.ChangeUpsert {
			l.enqueueServicesOf(ctx, ch.Key.Name)
		}
	case api.KindVolume:
		k := reconcile.VolumeKey(ch.Key.Project, ch.Key.Name)
		if !ch.StatusChanged || ch.SpecChanged || ch.Deleting || ch.Type != store.ChangeUpsert {
			l.c.opts.Metrics.changeQueued(k, ch.CommittedAt)
			l.addNow(k)
		} else {
			// A status write may be a move's new status.node (or a backup
			// condition): one more look, which writes nothing when the
			// status is what it computes.
			l.add(k)
		}
		// Services waiting for this volume to be declared look again.
		if ch.SpecChanged || ch.Type == store.ChangeRemoved || ch.Deleting {
			l.enqueueServicesOf(ctx, ch.Key.Project)
		}
	case api.KindSecret:
		if ch.Deleting {
			l.addNow(reconcile.SecretKey(ch.Key.Project, ch.Key.Name))
		}
		// The services using it roll (or are held back, or go ahead).
		if ch.SpecChanged || ch.Type == store.ChangeRemoved || ch.Deleting {
			l.enqueueServicesOf(ctx, ch.Key.Project)
		}
	}
}

// addNow queues a key whose desired state changed: a new spec deserves a
// new chance, so any failure backoff is reset.
func (l *loop) addNow(k reconcile.Key) {
	l.queue.Forget(k)
	l.queue.Add(k)
}

// add queues a key for another look, unless it is backing off after a
// failure: its retry is already scheduled, and a reconcile's own Docker
// calls (a failed start emits events) must not turn backoff into a spin.
func (l *loop) add(k reconcile.Key) {
	if l.queue.NumRequeues(k) > 0 {
		return
	}
	l.queue.Add(k)
}

func (l *loop) enqueueServicesOf(ctx context.Context, project string) {
	list, err := l.c.opts.Store.Services().List(ctx, store.ListOptions{Project: project})
	if err != nil {
		l.c.log.Warn("list services", zap.String("project", project), zap.Error(err))
		return
	}
	for _, s := range list.Items {
		l.add(reconcile.ServiceKey(project, s.Metadata.Name))
	}
}

// followDocker keeps the cache current from the events stream. Docker
// replays at most a short buffer of missed events (none after a daemon
// restart), so every (re)connect is followed by a full list.
func (l *loop) followDocker(ctx context.Context) {
	backoff := feedRetryMin
	for ctx.Err() == nil {
		events, errs := l.c.opts.Runtime.Events(ctx)
		// Subscribed first, then listed: nothing falls in between.
		l.resync(ctx, "docker events (re)connected", true, true)
		connected := time.Now()
	recv:
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					break recv
				}
				keys, err := l.cache.Apply(ctx, ev)
				if err != nil {
					l.c.log.Warn("apply docker event", zap.String("type", string(ev.Type)), zap.String("id", ev.ID), zap.Error(err))
				}
				for _, k := range keys {
					l.add(k)
				}
			case err := <-errs:
				if ctx.Err() == nil {
					l.c.log.Warn("docker events stream ended; reconnecting", zap.Error(err))
				}
				break recv
			case <-ctx.Done():
				return
			}
		}
		if time.Since(connected) > time.Minute {
			backoff = feedRetryMin
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, dockerRetryMax)
	}
}

func (l *loop) periodicResync(ctx context.Context) {
	t := time.NewTicker(l.c.opts.ResyncInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			l.resync(ctx, "periodic", false, false)
		}
	}
}

// resync lists Docker into the cache and enqueues every key the store or
// Docker knows of. Failures are retried: a resync must happen. fresh
// (after a feed reconnected) also forgets every key's failure backoff: the
// failures were the outage's, and what it held back should converge now,
// not after the minutes of backoff it piled up. inspect asks the engine
// about every container, not only those whose list entry changed: after
// the events stream (re)connected, changes a list cannot show (a restart,
// a new exit) may have been missed.
func (l *loop) resync(ctx context.Context, why string, fresh, inspect bool) {
	l.resyncMu.Lock()
	defer l.resyncMu.Unlock()
	backoff := feedRetryMin
	for ctx.Err() == nil {
		err := l.resyncOnce(ctx, fresh, inspect)
		if err == nil {
			l.c.log.Debug("resynced", zap.String("why", why))
			return
		}
		l.c.log.Warn("resync failed; retrying", zap.String("why", why), zap.Error(err), zap.Duration("backoff", backoff))
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(2*backoff, feedRetryMax)
	}
}

func (l *loop) resyncOnce(ctx context.Context, fresh, inspect bool) error {
	if err := l.cache.Sync(ctx, inspect); err != nil {
		return err
	}
	keys := l.cache.Keys()
	st := l.c.opts.Store
	if err := store.Each(ctx, st.Projects(), store.ListOptions{}, func(p *api.Project) { keys = append(keys, reconcile.ProjectKey(p.Metadata.Name)) }); err != nil {
		return err
	}
	if err := store.Each(ctx, st.Services(), store.ListOptions{}, func(s *api.Service) {
		keys = append(keys, reconcile.ServiceKey(s.Metadata.Project, s.Metadata.Name))
	}); err != nil {
		return err
	}
	if err := store.Each(ctx, st.Volumes(), store.ListOptions{}, func(v *api.Volume) {
		keys = append(keys, reconcile.VolumeKey(v.Metadata.Project, v.Metadata.Name))
	}); err != nil {
		return err
	}
	if err := store.Each(ctx, st.Secrets(), store.ListOptions{}, func(s *api.Secret) {
		if s.Metadata.DeletionTimestamp != nil {
			keys = append(keys, reconcile.SecretKey(s.Metadata.Project, s.Metadata.Name))
		}
	}); err != nil {
		return err
	}
	for _, k := range keys {
		if fresh {
			l.queue.Forget(k)
		}
		l.queue.Add(k)
	}
	return nil
}

// work processes keys until the queue shuts down.
func (l *loop) work(ctx context.Context) {
	// Plans made from a cache that was never listed would re-create what exists.
	for !l.cache.Synced() {
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	for {
		key, shutdown := l.queue.Get()
		if shutdown {
			return
		}
		l.busy.Add(1)
		l.process(ctx, key)
		l.busy.Add(-1)
	}
}

// reconcile runs one reconcile; a panic in it is recovered as an error,
// so one bad key is retried with backoff and the server (and its API)
// goes on.
func (l *loop) reconcile(ctx context.Context, key reconcile.Key) (res Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			l.c.opts.Metrics.reconcilePanicked(key)
			stack := debug.Stack()
			if s, ok := p.(interface{ Stack() []byte }); ok {
				stack = s.Stack() // an op's panic, carried over from its goroutine
			}
			l.c.log.Error("reconcile panicked; retrying the key with backoff", zap.Stringer("key", key),
				zap.String("panic", fmt.Sprint(p)), zap.ByteString("stack", stack))
			res, err = Result{}, fmt.Errorf("reconcile %s panicked: %v", key, p)
		}
	}()
	return l.rec.Reconcile(ctx, key)
}

func (l *loop) process(ctx context.Context, key reconcile.Key) {
	defer l.queue.Done(key)
	rctx, cancel := context.WithTimeout(ctx, reconcileTimeout)
	defer cancel()
	l.c.opts.Metrics.reconcileStarted(key)
	start := time.Now()
	res, err := l.reconcile(rctx, key)
	l.c.opts.Metrics.observeReconcile(key, time.Since(start), err)
	switch {
	case ctx.Err() != nil:
		return
	case err != nil:
		l.c.log.Warn("reconcile failed; retrying with backoff", zap.Stringer("key", key), zap.Error(err),
			zap.Int("retries", l.queue.NumRequeues(key)))
		l.queue.AddRateLimited(key)
	default:
		l.queue.Forget(key)
		if res.RequeueAfter > 0 {
			l.queue.AddAfter(key, res.RequeueAfter)
		}
	}
}
