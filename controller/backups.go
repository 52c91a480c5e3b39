package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"filippo.io/age"
	"go.uber.org/zap"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/backup"
	"github.com/panelx/panelx/reconcile"
	"github.com/panelx/panelx/seal"
	"github.com/panelx/panelx/store"
)

// BackupDocker is the Docker side of backups (cmd/panelx wires the one of
// internal/operations over operate): archives of volumes, restores into
// them, hook commands, and who mounts a volume.
type BackupDocker interface {
	// OpenVolume finds a PanelX volume and the image of its helper
	// containers (resolved now: a restore stops the services whose
	// containers it would otherwise take the image from).
	OpenVolume(ctx context.Context, project, volume string) (BackupVolume, error)
	// RunHook runs cmd (no shell) in a replica's running container.
	RunHook(ctx context.Context, project, service string, replica int, cmd []string, timeout time.Duration) (BackupHookResult, error)
	// RunningUsers lists the running containers that mount the volume.
	RunningUsers(ctx context.Context, project, volume string) ([]string, error)
}

// BackupVolume is an opened volume: its archive, and a sink to restore into.
type BackupVolume interface {
	backup.Source
	Sink(ctx context.Context) (backup.Sink, error)
}

// BackupHookResult is how a hook command ended.
type BackupHookResult struct {
	ExitCode  int
	Output    string
	Container string
}

// BackupOptions configure the backup manager.
type BackupOptions struct {
	Store  store.Store
	Docker BackupDocker
	// Mover copies volumes between nodes (the swarm runtime; nil: moves
	// fail, saying so). Instance labels the volumes it creates.
	Mover    reconcile.VolumeMover
	Instance string
	Keyring  *seal.Keyring
	// Dir is where local targets live: <Dir>/<project>/<path>.
	Dir     string
	Log     *zap.Logger
	Metrics *BackupMetrics
	// Tick is how often schedules and requested runs are looked at
	// (default 1s).
	Tick time.Duration
	// StartingDeadline: a scheduled time later than this is a missed run
	// (default 1m).
	StartingDeadline time.Duration
	// StopTimeout bounds the wait for a restored volume's services to stop
	// (default 5m).
	StopTimeout time.Duration
	Now         func() time.Time
}

// Backups runs the volumes' backup schedules, requested backups and
// restores, on the leader only (Lead is called with its lease).
type Backups struct {
	opts BackupOptions
	runs store.BackupRuns
	log  *zap.Logger

	mu sync.Mutex
	// running: volumes with a run in this process (runs never overlap;
	// the store's one-Running-run index makes it hold across servers).
	running map[api.Key]bool
	// schedules: the last reference time per volume with a schedule.
	lastRef map[api.Key]time.Time
	wg      sync.WaitGroup
}

// NewBackups checks the options.
func NewBackups(opts BackupOptions) (*Backups, error) {
	bs, ok := opts.Store.(store.BackupStore)
	if !ok || opts.Docker == nil || opts.Dir == "" {
		return nil, errors.New("backups: a store that records runs, Docker and a directory are required")
	}
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	if opts.Tick <= 0 {
		opts.Tick = time.Second
	}
	if opts.StartingDeadline <= 0 {
		opts.StartingDeadline = time.Minute
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = 5 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Backups{opts: opts, runs: bs.BackupRuns(), log: opts.Log.Named("backup"), running: map[api.Key]bool{}, lastRef: map[api.Key]time.Time{}}, nil
}

// Lead schedules and runs backups until ctx ends (the lease's term). Runs
// in flight end with it: their context is the lease's, and the run's
// final write is a compare-and-set that a newer term's recovery beats.
func (b *Backups) Lead(ctx context.Context, lease store.Lease) {
	defer b.wg.Wait()
	var epoch int64
	if lease != nil {
		epoch = lease.Epoch()
	}
	b.recover(ctx, epoch)
	tick := time.NewTicker(b.opts.Tick)
	defer tick.Stop()
	for {
		b.pass(ctx, lease, epoch)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// recover ends the runs an earlier term left Running (a killed or cut-off
// leader): Failed, with their services started again. Their temporary
// objects are swept after the volume's next run.
func (b *Backups) recover(ctx context.Context, epoch int64) {
	open, err := b.runs.Open(ctx)
	if err != nil {
		b.log.Warn("list open backup runs", zap.Error(err))
		return
	}
	for _, run := range open {
		if run.Phase != api.BackupRunning {
			continue
		}
		b.mu.Lock()
		mine := b.running[api.Key{Project: run.Project, Name: run.Volume}]
		b.mu.Unlock()
		if mine {
			continue
		}
		if st := stoppedBy(&run); st != nil && len(*st) > 0 {
			b.startServices(ctx, run)
		}
		b.finish(ctx, run, api.BackupRunning, fmt.Errorf("interrupted: the controller running it (term %d) stopped before it ended; no archive of it is marked good", run.Epoch))
	}
	b.initMetrics(ctx)
}

// pass starts what is due: requested runs, then schedules.
func (b *Backups) pass(ctx context.Context, lease store.Lease, epoch int64) {
	if ctx.Err() != nil || (lease != nil && !lease.Valid()) {
		return
	}
	open, err := b.runs.Open(ctx)
	if err != nil {
		b.log.Warn("list open backup runs", zap.Error(err))
		return
	}
	for _, run := range open {
		if run.Phase == api.BackupPending {
			b.start(ctx, lease, epoch, run)
		}
	}
	vols := map[api.Key]*api.Volume{}
	err = store.Each(ctx, b.opts.Store.Volumes(), store.ListOptions{}, func(v *api.Volume) {
		if v.Spec.Backup != nil && v.Metadata.DeletionTimestamp == nil {
			vols[api.KeyOf(v)] = v
		}
	})
	if err != nil {
		b.log.Warn("list volumes", zap.Error(err))
		return
	}
	now := b.opts.Now()
	for key, v := range vols {
		b.opts.Metrics.ensure(key)
		b.schedule(ctx, lease, epoch, key, v, now)
	}
}

// schedule starts a volume's scheduled run when one is due, and records
// the times it missed.
func (b *Backups) schedule(ctx context.Context, lease store.Lease, epoch int64, key api.Key, v *api.Volume, now time.Time) {
	spec := v.Spec.Backup
	if spec.Schedule == "" || spec.Suspend {
		return
	}
	sched, err := api.ParseBackupSchedule(spec.Schedule, spec.TimeZone)
	if err != nil {
		return
	}
	b.opts.Metrics.setInterval(key, sched, now)
	b.mu.Lock()
	ref, ok := b.lastRef[key]
	b.mu.Unlock()
	if !ok {
		// The newest scheduled run, else the volume's creation: a schedule
		// added to an old volume does not start with a missed run.
		ref = v.Metadata.CreationTimestamp
		list, err := b.runs.List(ctx, key.Project, store.BackupRunFilter{Volume: key.Name, Op: api.BackupOpBackup, Limit: 50})
		if err != nil {
			return
		}
		for _, r := range list {
			if r.Trigger == api.BackupScheduled && r.ScheduledAt != nil && r.ScheduledAt.After(ref) {
				ref = *r.ScheduledAt
			}
		}
		if ref.IsZero() {
			ref = now
		}
	}
	// The fire times since the reference, at most a few (a schedule of
	// every minute after a week away is one catch-up, not 10,000).
	var fires []time.Time
	for t := sched.Next(ref); !t.After(now) && len(fires) < 1000; t = sched.Next(t) {
		fires = append(fires, t)
	}
	if len(fires) == 0 {
		b.setRef(key, ref)
		return
	}
	latest := fires[len(fires)-1]
	b.setRef(key, latest)
	missed := len(fires) - 1
	late := now.Sub(latest) > b.opts.StartingDeadline
	if late {
		missed++
	}
	if missed > 0 {
		first := fires[0]
		reason := fmt.Sprintf("%d scheduled run(s) missed since %s (the controller was not running or not leading)", missed, first.UTC().Format(time.RFC3339))
		b.recordMissed(ctx, key, first, reason)
	}
	b.mu.Lock()
	busy := b.running[key]
	b.mu.Unlock()
	if busy {
		b.recordMissed(ctx, key, latest, "the previous run of the volume was still running (runs never overlap)")
		return
	}
	// A late fire time still gets its run (a catch-up), after the Missed
	// record says it was late.
	started := now
	run := api.BackupRun{Project: key.Project, Volume: key.Name, Op: api.BackupOpBackup, Trigger: api.BackupScheduled,
		Phase: api.BackupRunning, ScheduledAt: &latest, StartedAt: &started, Epoch: epoch}
	created, err := b.runs.Create(ctx, run)
	if errors.Is(err, store.ErrConflict) {
		b.recordMissed(ctx, key, latest, "another run of the volume was running (runs never overlap)")
		return
	}
	if err != nil {
		b.log.Warn("record scheduled backup", zap.Stringer("volume", key), zap.Error(err))
		return
	}
	b.launch(ctx, lease, created)
}

func (b *Backups) setRef(key api.Key, t time.Time) {
	b.mu.Lock()
	b.lastRef[key] = t
	b.mu.Unlock()
}

func (b *Backups) recordMissed(ctx context.Context, key api.Key, at time.Time, reason string) {
	now := b.opts.Now()
	run := api.BackupRun{Project: key.Project, Volume: key.Name, Op: api.BackupOpBackup, Trigger: api.BackupScheduled,
		Phase: api.BackupMissed, Reason: reason, ScheduledAt: &at, FinishedAt: &now}
	if _, err := b.runs.Create(ctx, run); err != nil {
		b.log.Warn("record missed backup", zap.Stringer("volume", key), zap.Error(err))
	}
	b.opts.Metrics.failed(key, "missed")
	b.event(ctx, key, store.EventWarning, "BackupMissed", reason)
	b.setCondition(ctx, key, false, "BackupMissed", reason)
}

// start moves a requested run to Running and launches it.
func (b *Backups) start(ctx context.Context, lease store.Lease, epoch int64, run api.BackupRun) {
	key := api.Key{Project: run.Project, Name: run.Volume}
	b.mu.Lock()
	busy := b.running[key]
	b.mu.Unlock()
	if busy {
		return // it waits its turn
	}
	now := b.opts.Now()
	run.Phase, run.StartedAt, run.Epoch = api.BackupRunning, &now, epoch
	updated, err := b.runs.Update(ctx, run, api.BackupPending)
	if errors.Is(err, store.ErrConflict) {
		return // another run of the volume is running (or this one moved)
	}
	if err != nil {
		b.log.Warn("start backup run", zap.String("run", run.ID), zap.Error(err))
		return
	}
	b.launch(ctx, lease, updated)
}

func (b *Backups) launch(ctx context.Context, lease store.Lease, run api.BackupRun) {
	key := api.Key{Project: run.Project, Name: run.Volume}
	b.mu.Lock()
	b.running[key] = true
	b.mu.Unlock()
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer func() {
			b.mu.Lock()
			delete(b.running, key)
			b.mu.Unlock()
		}()
		var err error
		switch run.Op {
		case api.BackupOpRestore:
			run, err = b.restore(ctx, lease, run)
		case api.BackupOpMove:
			run, err = b.move(ctx, lease, run)
		default:
			run, err = b.backup(ctx, lease, run)
		}
		b.finish(ctx, run, api.BackupRunning, err)
	}()
}

// fenced fails when the lease no longer allows acting.
func fenced(lease store.Lease) error {
	if lease != nil && !lease.Valid() {
		return errors.New("this server lost the controller lease during the run")
	}
	return nil
}

// finish records a run's end: Succeeded when err is nil, else Failed
// with the reason; an event, the volume's condition and the metrics.
func (b *Backups) finish(ctx context.Context, run api.BackupRun, from api.BackupPhase, err error) {
	// The final write outlives a canceled run context, briefly.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	key := api.Key{Project: run.Project, Name: run.Volume}
	now := b.opts.Now()
	run.FinishedAt = &now
	if err != nil {
		run.Phase, run.Reason = api.BackupFailed, err.Error()
	} else {
		run.Phase, run.Reason = api.BackupSucceeded, ""
	}
	if _, uerr := b.runs.Update(wctx, run, from); uerr != nil {
		b.log.Warn("record the end of a backup run", zap.String("run", run.ID), zap.Error(uerr))
		return // a newer term recorded it already
	}
	verb := run.Op.Title()
	if err != nil {
		b.log.Warn(strings.ToLower(verb)+" failed", zap.Stringer("volume", key), zap.String("run", run.ID), zap.Error(err))
		b.opts.Metrics.failed(key, string(run.Op))
		b.opts.Metrics.ran(run.Op, "failed", run)
		b.event(wctx, key, store.EventWarning, verb+"Failed", fmt.Sprintf("%s %s failed: %v", strings.ToLower(verb), run.ID, err))
		if run.Op == api.BackupOpBackup {
			b.setCondition(wctx, key, false, "BackupFailed", fmt.Sprintf("run %s failed: %v", run.ID, err))
		}
		return
	}
	b.opts.Metrics.ran(run.Op, "succeeded", run)
	if run.Op == api.BackupOpBackup {
		b.opts.Metrics.succeeded(key, now, run.Bytes)
		msg := fmt.Sprintf("backup %s: %d bytes, sha256 %s, %s %s (read back and verified)", run.ID, run.Bytes, run.SHA256, run.Target, run.Key)
		b.event(wctx, key, store.EventNormal, "BackupSucceeded", msg)
		b.setCondition(wctx, key, true, "BackupSucceeded", msg)
		return
	}
	if run.Op == api.BackupOpMove {
		b.event(wctx, key, store.EventNormal, "Moved", fmt.Sprintf("move %s: the data is on node %s now (%d files, %d bytes, sha256 %s); the copy on node %s stays as it was",
			run.ID, run.Move.Node, run.Move.Files, run.Bytes, run.SHA256, run.Move.From))
		return
	}
	b.event(wctx, key, store.EventNormal, "Restored", fmt.Sprintf("restore %s of backup %s into volume %s succeeded", run.ID, run.Restore.Backup, restoreInto(run)))
}

func restoreInto(run api.BackupRun) string {
	if run.Restore != nil && run.Restore.ToVolume != "" {
		return run.Restore.ToVolume
	}
	return run.Volume
}

func (b *Backups) event(ctx context.Context, key api.Key, typ store.EventType, reason, msg string) {
	err := b.opts.Store.Events().Record(ctx, store.Event{Project: key.Project, Kind: api.KindVolume, Name: key.Name, Type: typ, Reason: reason, Message: msg})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		b.log.Warn("record event", zap.Stringer("volume", key), zap.Error(err))
	}
}

// setCondition sets the volume's BackupHealthy condition by
// read-modify-write on its resourceVersion (the reconciler writes the
// rest of the status; it carries conditions over).
func (b *Backups) setCondition(ctx context.Context, key api.Key, ok bool, reason, msg string) {
	status := api.ConditionFalse
	if ok {
		status = api.ConditionTrue
	}
	for range 5 {
		v, err := b.opts.Store.Volumes().Get(ctx, key)
		if err != nil {
			return
		}
		if c := api.FindCondition(v.Status.Conditions, api.ConditionBackupHealthy); c != nil && c.Status == status && c.Reason == reason && c.Message == msg {
			return
		}
		v.Status.Conditions = api.SetCondition(v.Status.Conditions, api.Condition{Type: api.ConditionBackupHealthy, Status: status,
			Reason: reason, Message: msg, ObservedGeneration: v.Metadata.Generation}, b.opts.Now())
		_, err = b.opts.Store.Volumes().UpdateStatus(ctx, v)
		if !errors.Is(err, store.ErrConflict) {
			return
		}
	}
}

// ---- targets ----

// target builds the volume's target and the directory of its archives.
func (b *Backups) target(ctx context.Context, v *api.Volume) (backup.Target, string, error) {
	spec := v.Spec.Backup
	project := v.Metadata.Project
	switch {
	case spec.Target.Local != nil:
		rel := spec.Target.Local.Path
		dir := filepath.Join(b.opts.Dir, project, filepath.FromSlash(rel))
		return &backup.Local{Dir: dir, Name: "local:" + path.Join(project, rel)}, "", nil
	case spec.Target.S3 != nil:
		s := spec.Target.S3
		vals, err := b.secretValues(ctx, project, s.CredentialsSecret)
		if err != nil {
			return nil, "", err
		}
		ak, sk := vals[api.S3AccessKeyID], vals[api.S3SecretAccessKey]
		if ak == "" || sk == "" {
			return nil, "", fmt.Errorf("secret %s lacks %s or %s", s.CredentialsSecret, api.S3AccessKeyID, api.S3SecretAccessKey)
		}
		t, err := backup.NewS3(backup.S3Config{Endpoint: s.Endpoint, Bucket: s.Bucket, Prefix: s.Prefix, Region: s.Region,
			Insecure: s.Insecure, AccessKey: ak, SecretKey: sk})
		return t, project, err
	}
	return nil, "", errors.New("spec.backup.target names no target")
}

func (b *Backups) secretValues(ctx context.Context, project, name string) (map[string]string, error) {
	sec, err := b.opts.Store.Secrets().Get(ctx, api.Key{Project: project, Name: name})
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", name, err)
	}
	if b.opts.Keyring == nil {
		return nil, fmt.Errorf("secret %s: this server has no master key to open it", name)
	}
	vals, err := b.opts.Keyring.OpenSecret(seal.SecretContext(project, name), sec.Spec.Sealed)
	if err != nil {
		return nil, fmt.Errorf("secret %s: %s", name, seal.Describe(err))
	}
	return vals, nil
}

func (b *Backups) recipients(spec *api.BackupSpec) ([]age.Recipient, []string, error) {
	if spec.Encryption == nil {
		return nil, nil, nil
	}
	var out []age.Recipient
	for _, r := range spec.Encryption.Recipients {
		rec, err := age.ParseX25519Recipient(r)
		if err != nil {
			return nil, nil, fmt.Errorf("encryption recipient %q: %w", r, err)
		}
		out = append(out, rec)
	}
	return out, spec.Encryption.Recipients, nil
}

func (b *Backups) identities(ctx context.Context, project string, sel *api.SecretKeySelector) ([]age.Identity, error) {
	if sel == nil {
		return nil, nil
	}
	vals, err := b.secretValues(ctx, project, sel.Name)
	if err != nil {
		return nil, err
	}
	raw, ok := vals[sel.Key]
	if !ok {
		return nil, fmt.Errorf("secret %s has no key %s", sel.Name, sel.Key)
	}
	ids, err := age.ParseIdentities(strings.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("secret %s key %s holds no age identity", sel.Name, sel.Key)
	}
	return ids, nil
}

// ---- backup ----

func (b *Backups) backup(ctx context.Context, lease store.Lease, run api.BackupRun) (api.BackupRun, error) {
	key := api.Key{Project: run.Project, Name: run.Volume}
	v, err := b.opts.Store.Volumes().Get(ctx, key)
	if err != nil {
		return run, fmt.Errorf("volume: %w", err)
	}
	if err := b.onThisNode(ctx, v); err != nil {
		return run, err
	}
	spec := v.Spec.Backup
	if spec == nil {
		return run, errors.New("the volume has no spec.backup (target, schedule)")
	}
	ctx, cancel := context.WithTimeout(ctx, spec.DeadlineOrDefault())
	defer cancel()
	tgt, dir, err := b.target(ctx, v)
	if err != nil {
		return run, err
	}
	recips, names, err := b.recipients(spec)
	if err != nil {
		return run, err
	}
	run.Target, run.Encrypted = tgt.Describe(), len(recips) > 0
	if h := spec.Hook; h != nil {
		if err := fenced(lease); err != nil {
			return run, err
		}
		res, err := b.opts.Docker.RunHook(ctx, key.Project, h.Service, int(h.Replica), h.Command, h.TimeoutOrDefault())
		if err != nil {
			return run, fmt.Errorf("hook in service %s: %w", h.Service, deadlineErr(ctx, spec, err))
		}
		if res.ExitCode != 0 {
			return run, fmt.Errorf("hook %s in %s exited with %d: %s", h.Command[0], res.Container, res.ExitCode, firstLines(res.Output))
		}
		b.event(ctx, key, store.EventNormal, "BackupHookSucceeded", fmt.Sprintf("hook %s ran in %s before backup %s", h.Command[0], res.Container, run.ID))
	}
	if err := fenced(lease); err != nil {
		return run, err
	}
	vol, err := b.opts.Docker.OpenVolume(ctx, key.Project, key.Name)
	if err != nil {
		return run, err
	}
	start := b.opts.Now()
	objKey := backup.ArchiveKey(dir, key.Name, start, run.ID, len(recips) > 0)
	res, err := backup.Backup(ctx, fencedSource{Source: vol, lease: lease}, backup.Options{
		Target: tgt, Key: objKey, Recipients: recips, RecipientNames: names,
		Meta: backup.Metadata{Project: key.Project, Volume: key.Name, VolumeUID: v.Metadata.UID, Labels: v.Metadata.Labels, CreatedAt: start.UTC(), RunID: run.ID},
	})
	if err != nil {
		return run, deadlineErr(ctx, spec, err)
	}
	run.Bytes, run.SHA256, run.Key = res.Bytes, res.SHA256, res.Key
	// Retention and the sweep of leftovers happen after the run is
	// recorded as good, so a failure there never fails the backup.
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.afterBackup(context.WithoutCancel(ctx), key, v, tgt, dir, run)
	}()
	return run, nil
}

func deadlineErr(ctx context.Context, spec *api.BackupSpec, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("deadline of %v exceeded: %w", spec.DeadlineOrDefault(), err)
	}
	return err
}

func firstLines(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 500 {
		s = s[:500] + "…"
	}
	return s
}

// fencedSource refuses to start reading when the lease is gone.
type fencedSource struct {
	backup.Source
	lease store.Lease
}

func (f fencedSource) Open(ctx context.Context) (io.ReadCloser, error) {
	if err := fenced(f.lease); err != nil {
		return nil, err
	}
	return f.Source.Open(ctx)
}

// afterBackup applies retention to the volume's archives on this target
// and sweeps temporary objects older than a day.
func (b *Backups) afterBackup(ctx context.Context, key api.Key, v *api.Volume, tgt backup.Target, dir string, last api.BackupRun) {
	// Wait until the run is recorded Succeeded, so it counts.
	for i := 0; i < 100; i++ {
		r, err := b.runs.Get(ctx, key.Project, last.ID)
		if err != nil || r.Phase.Finished() {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	prefix := path.Join(dir, key.Name) + "/"
	if n, err := backup.SweepPartials(ctx, tgt, prefix, 24*time.Hour, b.opts.Now()); err != nil {
		b.log.Warn("sweep partial backups", zap.Stringer("volume", key), zap.Error(err))
	} else if n > 0 {
		b.event(ctx, key, store.EventNormal, "BackupPartialsRemoved", fmt.Sprintf("removed %d temporary object(s) of runs cut short", n))
	}
	spec := v.Spec.Backup
	if !spec.Retention.Any() {
		return
	}
	list, err := b.runs.List(ctx, key.Project, store.BackupRunFilter{Volume: key.Name, Op: api.BackupOpBackup, Phase: api.BackupSucceeded, Limit: 1000})
	if err != nil {
		b.log.Warn("retention: list runs", zap.Stringer("volume", key), zap.Error(err))
		return
	}
	byID := map[string]api.BackupRun{}
	var archives []backup.Archive
	for _, r := range list {
		if r.Pruned != nil || r.Target != tgt.Describe() || r.Key == "" || r.FinishedAt == nil {
			continue
		}
		byID[r.ID] = r
		archives = append(archives, backup.Archive{ID: r.ID, Time: *r.StartedAt})
	}
	var removed []string
	for _, id := range backup.Expired(archives, spec.Retention, spec.Location()) {
		r := byID[id]
		if err := tgt.Delete(ctx, r.Key+backup.ManifestSuffix); err != nil {
			b.log.Warn("retention: delete manifest", zap.String("key", r.Key), zap.Error(err))
			continue
		}
		if err := tgt.Delete(ctx, r.Key); err != nil {
			b.log.Warn("retention: delete archive", zap.String("key", r.Key), zap.Error(err))
			continue
		}
		now := b.opts.Now()
		r.Pruned = &now
		if _, err := b.runs.Update(ctx, r, api.BackupSucceeded); err != nil {
			b.log.Warn("retention: record", zap.String("run", r.ID), zap.Error(err))
		}
		removed = append(removed, id)
	}
	if len(removed) > 0 {
		b.event(ctx, key, store.EventNormal, "BackupsPruned", fmt.Sprintf("retention removed %d archive(s): %s", len(removed), strings.Join(removed, ", ")))
	}
}

// ---- restore ----

func (b *Backups) restore(ctx context.Context, lease store.Lease, run api.BackupRun) (api.BackupRun, error) {
	p := run.Restore
	if p == nil {
		return run, errors.New("a restore without parameters")
	}
	key := api.Key{Project: run.Project, Name: run.Volume}
	src, err := b.runs.Get(ctx, run.Project, p.Backup)
	switch {
	case err != nil:
		return run, fmt.Errorf("backup %s: %w", p.Backup, err)
	case src.Op != api.BackupOpBackup || src.Phase != api.BackupSucceeded || src.Volume != run.Volume:
		return run, fmt.Errorf("backup %s is not a successful backup of volume %s", p.Backup, run.Volume)
	case src.Pruned != nil:
		return run, fmt.Errorf("backup %s was removed by retention", p.Backup)
	}
	v, err := b.opts.Store.Volumes().Get(ctx, key)
	if err != nil {
		return run, fmt.Errorf("volume: %w", err)
	}
	if v.Spec.Backup == nil {
		return run, errors.New("the volume has no spec.backup: its target is unknown")
	}
	ctx, cancel := context.WithTimeout(ctx, v.Spec.Backup.DeadlineOrDefault())
	defer cancel()
	tgt, _, err := b.target(ctx, v)
	if err != nil {
		return run, err
	}
	if tgt.Describe() != src.Target {
		return run, fmt.Errorf("backup %s is on %s; the volume's target is now %s", src.ID, src.Target, tgt.Describe())
	}
	run.Target, run.Key, run.Bytes, run.SHA256, run.Encrypted = src.Target, src.Key, src.Bytes, src.SHA256, src.Encrypted
	idSel := p.IdentitySecret
	if idSel == nil && v.Spec.Backup.Encryption != nil {
		idSel = v.Spec.Backup.Encryption.IdentitySecret
	}
	ids, err := b.identities(ctx, run.Project, idSel)
	if err != nil {
		return run, err
	}
	want := backup.Expect{Bytes: src.Bytes, SHA256: src.SHA256, Project: run.Project, Volume: run.Volume}
	// Everything is checked before a service stops or a byte is written.
	if _, err := backup.Verify(ctx, tgt, src.Key, want, ids); err != nil {
		return run, err
	}
	into := restoreInto(run)
	if into != run.Volume {
		if err := b.ensureVolume(ctx, run.Project, into, run.ID); err != nil {
			return run, err
		}
	}
	intoVol, err := b.opts.Store.Volumes().Get(ctx, api.Key{Project: run.Project, Name: into})
	if err != nil {
		return run, fmt.Errorf("volume %s: %w", into, err)
	}
	if err := b.onThisNode(ctx, intoVol); err != nil {
		return run, err
	}
	if err := fenced(lease); err != nil {
		return run, err
	}
	vol, err := b.openWhenCreated(ctx, run.Project, into)
	if err != nil {
		return run, err
	}
	if into == run.Volume || p.Overwrite {
		var stopErr error
		run, stopErr = b.stopServices(ctx, lease, run, into, func(ctx context.Context) ([]string, error) {
			return b.opts.Docker.RunningUsers(ctx, run.Project, into)
		})
		defer func() { b.startServices(context.WithoutCancel(ctx), run) }()
		if stopErr != nil {
			return run, stopErr
		}
	}
	if err := fenced(lease); err != nil {
		return run, err
	}
	sink, err := vol.Sink(ctx)
	if err != nil {
		return run, err
	}
	if _, err := backup.Restore(ctx, tgt, src.Key, want, ids, sink); err != nil {
		return run, err
	}
	return run, nil
}

// ensureVolume creates the Volume to restore into unless it exists.
func (b *Backups) ensureVolume(ctx context.Context, project, name, runID string) error {
	obj, _ := api.New(api.KindVolume)
	v := obj.(*api.Volume)
	v.Metadata = api.ObjectMeta{Project: project, Name: name, Labels: map[string]string{"panelx.dev/restored-by": runID}}
	v.Default()
	if errs := v.Validate(); len(errs) > 0 {
		return fmt.Errorf("volume %s: %v", name, errs)
	}
	_, err := b.opts.Store.Volumes().Create(ctx, v)
	if err != nil && !errors.Is(err, store.ErrAlreadyExists) {
		return fmt.Errorf("create volume %s: %w", name, err)
	}
	return nil
}

// openWhenCreated opens a volume, waiting a while for the reconciler to
// create a new one.
func (b *Backups) openWhenCreated(ctx context.Context, project, name string) (BackupVolume, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		vol, err := b.opts.Docker.OpenVolume(ctx, project, name)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return vol, err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// stopServices scales the services that mount the volume to 0 (a change
// attributed to the run, so their rollout says why), records what they had
// in the run so a later term can start them again, and waits until users
// (the running containers or tasks that mount the volume) names none.
func (b *Backups) stopServices(ctx context.Context, lease store.Lease, run api.BackupRun, volume string, users func(context.Context) ([]string, error)) (api.BackupRun, error) {
	svcs, err := b.opts.Store.Services().List(ctx, store.ListOptions{Project: run.Project})
	if err != nil {
		return run, err
	}
	cause := fmt.Sprintf("%s %s of volume %s", run.Op, run.ID, volume)
	stopped := map[string]int32{}
	for _, s := range svcs.Items {
		if s.Metadata.DeletionTimestamp != nil || s.Spec.Replicas == nil || *s.Spec.Replicas == 0 || !mounts(s, volume) {
			continue
		}
		stopped[s.Metadata.Name] = *s.Spec.Replicas
	}
	if len(stopped) > 0 {
		*stoppedBy(&run) = stopped
		updated, err := b.runs.Update(ctx, run, api.BackupRunning)
		if err != nil {
			return run, fmt.Errorf("record the services to stop: %w", err)
		}
		run = updated
	}
	for name := range stopped {
		if err := fenced(lease); err != nil {
			return run, err
		}
		if err := b.setReplicas(ctx, api.Key{Project: run.Project, Name: name}, -1, 0, cause); err != nil {
			return run, err
		}
		b.serviceEvent(ctx, run.Project, name, "StoppedFor"+run.Op.Title(), "scaled to 0 for "+cause)
	}
	deadline := time.Now().Add(b.opts.StopTimeout)
	for {
		users, err := users(ctx)
		if err != nil {
			return run, err
		}
		if len(users) == 0 {
			return run, nil
		}
		if time.Now().After(deadline) {
			return run, fmt.Errorf("containers still mount volume %s after %v: %s", volume, b.opts.StopTimeout, strings.Join(users, ", "))
		}
		select {
		case <-ctx.Done():
			return run, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// stoppedBy is where a run that stops services records them (nil: a run
// that stops none).
func stoppedBy(run *api.BackupRun) *map[string]int32 {
	switch {
	case run.Restore != nil:
		return &run.Restore.Stopped
	case run.Move != nil:
		return &run.Move.Stopped
	}
	return nil
}

func mounts(s *api.Service, volume string) bool {
	for _, m := range s.Spec.Volumes {
		if m.Name == volume {
			return true
		}
	}
	return false
}

// startServices gives the services a restore or move stopped their replicas back,
// unless someone changed them meanwhile.
func (b *Backups) startServices(ctx context.Context, run api.BackupRun) {
	stopped := stoppedBy(&run)
	if stopped == nil {
		return
	}
	cause := fmt.Sprintf("%s %s of volume %s ended", run.Op, run.ID, restoreInto(run))
	for name, n := range *stopped {
		if err := b.setReplicas(ctx, api.Key{Project: run.Project, Name: name}, 0, n, cause); err != nil {
			b.log.Warn("start service after "+string(run.Op), zap.String("service", name), zap.Error(err))
			continue
		}
		b.serviceEvent(ctx, run.Project, name, "StartedAfter"+run.Op.Title(), fmt.Sprintf("scaled back to %d: %s", n, cause))
	}
}

// setReplicas changes a service's replicas from `from` (-1: any) to n,
// attributing the change to cause.
func (b *Backups) setReplicas(ctx context.Context, key api.Key, from, n int32, cause string) error {
	for range 5 {
		s, err := b.opts.Store.Services().Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if s.Spec.Replicas != nil && *s.Spec.Replicas == n {
			return nil
		}
		if from >= 0 && (s.Spec.Replicas == nil || *s.Spec.Replicas != from) {
			return nil // changed by someone else meanwhile: theirs wins
		}
		s.Spec.Replicas = &n
		if s.Metadata.Annotations == nil {
			s.Metadata.Annotations = map[string]string{}
		}
		s.Metadata.Annotations[api.AnnotationChangedBy] = ControllerUser + " (" + cause + ")"
		_, err = b.opts.Store.Services().Update(ctx, s)
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("service %s kept changing", key)
}

func (b *Backups) serviceEvent(ctx context.Context, project, service, reason, msg string) {
	err := b.opts.Store.Events().Record(ctx, store.Event{Project: project, Kind: api.KindService, Name: service, Type: store.EventNormal, Reason: reason, Message: msg})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		b.log.Warn("record event", zap.String("service", service), zap.Error(err))
	}
}

// initMetrics sets the last-success gauge of every volume with backups
// from the runs table, so a new leader does not report "never".
func (b *Backups) initMetrics(ctx context.Context) {
	if b.opts.Metrics == nil {
		return
	}
	_ = store.Each(ctx, b.opts.Store.Volumes(), store.ListOptions{}, func(v *api.Volume) {
		if v.Spec.Backup == nil {
			return
		}
		key := api.KeyOf(v)
		list, err := b.runs.List(ctx, key.Project, store.BackupRunFilter{Volume: key.Name, Op: api.BackupOpBackup, Phase: api.BackupSucceeded, Limit: 1})
		if err != nil {
			return
		}
		if len(list) == 1 && list[0].FinishedAt != nil {
			b.opts.Metrics.succeeded(key, *list[0].FinishedAt, list[0].Bytes)
		} else {
			b.opts.Metrics.succeeded(key, time.Time{}, 0)
		}
	})
}
