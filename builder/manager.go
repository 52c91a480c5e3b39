package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
	"go.uber.org/zap"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/builder/buildctx"
	"github.com/panelx/panelx/builder/buildlog"
	"github.com/panelx/panelx/naming"
)

// Labels of the images PanelX builds.
const (
	LabelBuildProject = naming.LabelProject
	LabelBuildService = naming.LabelService
	LabelBuildCommit  = "dev.panelx.build-commit"
)

// DefaultRepository is where built images are tagged:
// <repository>/<project>-<service>:<commit-12>-<spec-8>.
const DefaultRepository = "panelx-build"

// Request is what a service asks to be built.
type Request struct {
	Key  api.Key
	Spec api.BuildSpec
	// Trigger is the service's build-request annotation: a new value
	// builds again even if nothing else changed.
	Trigger string
	Auth    GitAuth
	// Registries gives the project's registry logins, for a private FROM
	// image, when the build starts: the engine gets them, no log line does.
	Registries func(context.Context) ([]RegistryLogin, error)
	// Labels are put on the image (the installation's owner labels).
	Labels map[string]string
}

// RegistryLogin is a login the builder may use to pull base images.
type RegistryLogin struct {
	Registry, Username, Password string
}

// ID says what is to be built: the spec and the trigger. Credentials are
// not part of it (a rotated token builds nothing).
func (r Request) ID() string {
	data, _ := json.Marshal(struct {
		Spec    api.BuildSpec
		Trigger string
	}{r.Spec, r.Trigger})
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8])
}

// ManagerOptions configure a Manager.
type ManagerOptions struct {
	Docker *client.Client
	Log    *zap.Logger
	// Repository prefixes the built images' names (DefaultRepository).
	Repository string
	// Concurrency bounds the builds that run at once on this host
	// (default 1): the rest wait, Queued.
	Concurrency int
	// OnChange is called when a service's build status changed.
	OnChange func(api.Key)
	// Logs keeps each service's newest build log (NewLogs() when nil).
	Logs *buildlog.Logs
	// Contexts keeps uploaded build contexts (spec.build.upload); nil:
	// such builds fail and say so.
	Contexts *buildctx.Store
	// OnPoll is called when a polled ref (spec.build.git.poll) shows a
	// commit the service has not built: the controller asks for a build.
	OnPoll func(key api.Key, commit string)
}

// Manager runs the builds services ask for, one request at a time per
// service; a newer request cancels an older one still running.
type Manager struct {
	ctx  context.Context
	opts ManagerOptions
	sem  chan struct{}

	mu     sync.Mutex
	builds map[api.Key]*current
}

type current struct {
	status api.BuildStatus
	cancel context.CancelFunc
	done   chan struct{}
	// poll is the running poller of the service's ref, and what it polls.
	poll     context.CancelFunc
	pollWhat string
}

// NewManager runs builds until ctx ends.
func NewManager(ctx context.Context, opts ManagerOptions) *Manager {
	if opts.Repository == "" {
		opts.Repository = DefaultRepository
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 1
	}
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	if opts.Logs == nil {
		opts.Logs = buildlog.New()
	}
	return &Manager{ctx: ctx, opts: opts, sem: make(chan struct{}, opts.Concurrency), builds: map[api.Key]*current{}}
}

// Ensure returns the service's build status, starting a build when the
// request is new. prev is the status the service's row holds: after a
// restart it says what was built and whether a build was cut short.
func (m *Manager) Ensure(req Request, prev *api.BuildStatus) api.BuildStatus {
	id := req.ID()
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.builds[req.Key]
	if !ok {
		cur = &current{}
		if prev != nil {
			cur.status = *prev
		}
		m.builds[req.Key] = cur
	}
	m.pollLocked(cur, req)
	finished := cur.status.Phase == api.BuildSucceeded || cur.status.Phase == api.BuildFailed
	if cur.status.Request == id && (finished || cur.cancel != nil) {
		return cur.status
	}
	// New (or cut short by a restart): build it, after any older one.
	if cur.cancel != nil {
		cur.cancel()
	}
	ctx, cancel := context.WithCancel(m.ctx)
	prevDone := cur.done
	done := make(chan struct{})
	cur.cancel, cur.done = cancel, done
	cur.status = api.BuildStatus{Phase: api.BuildQueued, Request: id,
		Image: cur.status.Image, ImageID: cur.status.ImageID, ImageCommit: cur.status.ImageCommit}
	go func() {
		defer close(done)
		defer cancel()
		if prevDone != nil {
			<-prevDone
		}
		m.run(ctx, req, id)
	}()
	return cur.status
}

// pollLocked keeps one poller per service whose spec asks for one, with
// the spec's URL, ref, interval and credentials.
func (m *Manager) pollLocked(cur *current, req Request) {
	every := req.Spec.Git.Poll.Duration
	what := ""
	if every > 0 && m.opts.OnPoll != nil {
		what = fmt.Sprintf("%s|%s|%s|%s|%s|%s", req.Spec.Git.URL, req.Spec.Git.Ref, every, req.Auth.Password, req.Auth.SSHKey, req.Auth.KnownHosts)
	}
	if what == cur.pollWhat {
		return
	}
	if cur.poll != nil {
		cur.poll()
		cur.poll = nil
	}
	cur.pollWhat = what
	if what == "" {
		return
	}
	ctx, cancel := context.WithCancel(m.ctx)
	cur.poll = cancel
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			lctx, lcancel := context.WithTimeout(ctx, min(every, time.Minute))
			head, err := Head(lctx, req.Spec.Git.URL, req.Spec.Git.Ref, req.Auth)
			lcancel()
			if err != nil {
				m.opts.Log.Info("poll", zap.Stringer("service", req.Key), zap.Error(err))
				continue
			}
			m.mu.Lock()
			seen := m.builds[req.Key]
			known := seen != nil && (seen.status.Commit == head || seen.status.ImageCommit == head || seen.cancel != nil)
			m.mu.Unlock()
			if !known {
				m.opts.OnPoll(req.Key, head)
			}
		}
	}()
}

// Forget drops a service that is gone, cancelling its build.
func (m *Manager) Forget(key api.Key) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.builds[key]; ok {
		if cur.cancel != nil {
			cur.cancel()
		}
		if cur.poll != nil {
			cur.poll()
		}
		delete(m.builds, key)
	}
	m.opts.Logs.Forget(key)
}

// Cancel stops the build of req if it is queued or running; it ends
// Failed, "cancelled", and is not started again for the same request.
func (m *Manager) Cancel(req Request) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.builds[req.Key]
	if !ok || cur.cancel == nil || cur.status.Request != req.ID() {
		return false
	}
	cur.cancel()
	return true
}

// Contexts keeps uploaded build contexts (nil: none).
func (m *Manager) Contexts() *buildctx.Store { return m.opts.Contexts }

// Logs is where build logs are kept.
func (m *Manager) Logs() *buildlog.Logs { return m.opts.Logs }

// update changes the status of the build id, if it is still the
// service's newest, and tells the controller.
func (m *Manager) update(key api.Key, id string, change func(*api.BuildStatus)) {
	m.mu.Lock()
	cur, ok := m.builds[key]
	if !ok || cur.status.Request != id {
		m.mu.Unlock()
		return
	}
	change(&cur.status)
	if f := cur.status.Phase; f == api.BuildSucceeded || f == api.BuildFailed {
		cur.cancel = nil
	}
	m.mu.Unlock()
	if m.opts.OnChange != nil {
		m.opts.OnChange(key)
	}
}

func (m *Manager) run(ctx context.Context, req Request, id string) {
	log := m.opts.Log.With(zap.Stringer("service", req.Key), zap.String("request", id))
	if rest, ok := strings.CutPrefix(req.Trigger, api.BuildRollbackPrefix); ok {
		m.adopt(ctx, req.Key, id, rest)
		return
	}
	select {
	case m.sem <- struct{}{}:
		defer func() { <-m.sem }()
	case <-ctx.Done():
		m.fail(req.Key, id, "cancelled while queued")
		return
	}
	ctx, cancel := context.WithTimeoutCause(ctx, req.Spec.Deadline.Duration,
		fmt.Errorf("the build took longer than its deadline (%s)", req.Spec.Deadline.Duration))
	defer cancel()
	now := time.Now()
	m.update(req.Key, id, func(s *api.BuildStatus) { s.Phase, s.StartedAt = api.BuildBuilding, &now })
	logs := m.opts.Logs.Start(req.Key)
	defer logs.Finish()
	secrets := req.Auth.secrets()
	var logins []RegistryLogin
	if req.Registries != nil {
		var err error
		if logins, err = req.Registries(ctx); err != nil {
			logs.Add(err.Error())
			m.fail(req.Key, id, err.Error())
			return
		}
	}
	auths := map[string]registry.AuthConfig{}
	for _, l := range logins {
		auths[l.Registry] = registry.AuthConfig{ServerAddress: l.Registry, Username: l.Username, Password: l.Password}
		if l.Password != "" {
			secrets = append(secrets, l.Password)
		}
	}
	logf := func(format string, args ...any) { logs.Add(redact(fmt.Sprintf(format, args...), secrets)) }

	commit, buildCtx, dockerfile, err := m.source(ctx, req, logf)
	if err != nil {
		logf("%v", err)
		m.fail(req.Key, id, describe(ctx, err))
		return
	}
	defer buildCtx.Close()
	logf("commit %s", commit)
	m.update(req.Key, id, func(s *api.BuildStatus) { s.Commit = commit })
	memory, _ := req.Spec.Memory.Bytes()
	labels := map[string]string{LabelBuildProject: req.Key.Project, LabelBuildService: req.Key.Name, LabelBuildCommit: commit}
	for k, v := range req.Labels {
		labels[k] = v
	}
	tag := fmt.Sprintf("%s/%s-%s:%s-%s", m.opts.Repository, req.Key.Project, req.Key.Name, commit[:12], id[:8])
	buildKit, why := NeedsBuildKit(dockerfile)
	if buildKit {
		logf("building with BuildKit, which the Dockerfile needs (%s); the Engine applies no memory limit to its steps", why)
	}
	if buildKit {
		if err := PullBases(ctx, m.opts.Docker, dockerfile, auths, func(l string) { logf("%s", l) }); err != nil {
			logf("%v", err)
			m.fail(req.Key, id, describe(ctx, err))
			return
		}
	}
	imageID, err := Build(ctx, m.opts.Docker, buildCtx, Options{
		Tag: tag, Dockerfile: req.Spec.Dockerfile, Args: req.Spec.Args, Target: req.Spec.Target,
		Memory: memory, Labels: labels, Redact: secrets, Auth: auths, BuildKit: buildKit,
		Log: logs.Add,
		Step: func(step string) {
			m.update(req.Key, id, func(s *api.BuildStatus) { s.Step = step })
		},
	})
	if err != nil {
		var be *BuildError
		if !errors.As(err, &be) {
			logf("%v", describe(ctx, err))
		}
		log.Info("build failed", zap.Error(err))
		m.fail(req.Key, id, describe(ctx, err))
		return
	}
	end := time.Now()
	logf("built %s (%s) in %s", tag, imageID, end.Sub(now).Round(time.Millisecond))
	log.Info("built", zap.String("image", tag), zap.String("id", imageID), zap.Duration("took", end.Sub(now)))
	m.update(req.Key, id, func(s *api.BuildStatus) {
		s.Phase, s.FinishedAt, s.Step, s.Message = api.BuildSucceeded, &end, "", ""
		s.Image, s.ImageID, s.ImageCommit = tag, imageID, commit
	})
}

// maxDockerfile bounds the Dockerfile read to choose the builder.
const maxDockerfile = 1 << 20

// source gives the build's context as a tar stream, its commit (the
// clone's, or for an uploaded context the hex of its digest) and its
// Dockerfile, which chooses the builder.
func (m *Manager) source(ctx context.Context, req Request, logf func(string, ...any)) (string, io.ReadCloser, []byte, error) {
	if u := req.Spec.Upload; u != nil {
		logf("build context %s (uploaded)", u.Digest)
		if m.opts.Contexts == nil {
			return "", nil, nil, errors.New("this server keeps no uploaded build contexts")
		}
		// A missing Dockerfile is the builder's to report.
		dockerfile, _ := m.opts.Contexts.ReadFile(req.Key.Project, u.Digest, req.Spec.Dockerfile, maxDockerfile)
		rc, err := m.opts.Contexts.Open(req.Key.Project, u.Digest)
		if err != nil {
			return "", nil, nil, err
		}
		return strings.TrimPrefix(u.Digest, "sha256:"), rc, dockerfile, nil
	}
	dir, err := os.MkdirTemp("", "panelx-build-")
	if err != nil {
		return "", nil, nil, fmt.Errorf("clone: %w", err)
	}
	logf("cloning %s%s", req.Spec.Git.URL, atRef(req.Spec.Git.Ref))
	commit, err := Clone(ctx, req.Spec.Git.URL, req.Spec.Git.Ref, req.Auth, dir)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, nil, err
	}
	rc, err := Context(dir, req.Spec.Git.Dir, req.Spec.Dockerfile)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, nil, err
	}
	dockerfile, _ := readDockerfile(dir, req.Spec.Git.Dir, req.Spec.Dockerfile)
	return commit, removeOnClose{rc, dir}, dockerfile, nil
}

// readDockerfile reads the Dockerfile of a clone (Context has checked it
// stays in the clone).
func readDockerfile(root, dir, dockerfile string) ([]byte, error) {
	f, err := os.Open(filepath.Join(root, filepath.FromSlash(dir), filepath.FromSlash(dockerfile)))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxDockerfile))
}

// removeOnClose removes the clone when its context has been sent.
type removeOnClose struct {
	io.ReadCloser
	dir string
}

func (r removeOnClose) Close() error {
	err := r.ReadCloser.Close()
	os.RemoveAll(r.dir)
	return err
}

// adopt takes the image an older revision built ("<revision>:<image>")
// as the service's build: a rollback never builds.
func (m *Manager) adopt(ctx context.Context, key api.Key, id, target string) {
	revision, ref, _ := strings.Cut(target, ":")
	inspect, _, err := m.opts.Docker.ImageInspectWithRaw(ctx, ref)
	if err != nil {
		m.fail(key, id, fmt.Sprintf("the image of revision %s (%s) is gone: build its commit again (%v)", revision, ref, err))
		return
	}
	if inspect.Config == nil || inspect.Config.Labels[LabelBuildProject] != key.Project || inspect.Config.Labels[LabelBuildService] != key.Name {
		m.fail(key, id, fmt.Sprintf("image %s was not built for this service", ref))
		return
	}
	now := time.Now()
	m.update(key, id, func(s *api.BuildStatus) {
		s.Phase, s.StartedAt, s.FinishedAt, s.Step, s.Message = api.BuildSucceeded, &now, &now, "", "rolled back to the image of revision "+revision
		s.Image, s.ImageID, s.ImageCommit, s.Commit = ref, inspect.ID, inspect.Config.Labels[LabelBuildCommit], inspect.Config.Labels[LabelBuildCommit]
	})
}

func (m *Manager) fail(key api.Key, id, msg string) {
	end := time.Now()
	m.update(key, id, func(s *api.BuildStatus) {
		s.Phase, s.FinishedAt, s.Message = api.BuildFailed, &end, msg
	})
}

// describe says why a build stopped: its deadline, a cancel, or err.
func describe(ctx context.Context, err error) string {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause.Error()
	}
	if ctx.Err() != nil {
		return "cancelled"
	}
	return strings.TrimSpace(err.Error())
}

// Prune removes the images built for the service but those keep names
// (tags or IDs): the service's current image and those of its recorded
// revisions, so a rollback finds them. An image a container still uses
// is left. It returns the tags removed.
func (m *Manager) Prune(ctx context.Context, key api.Key, keep map[string]bool) ([]string, error) {
	list, err := m.opts.Docker.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", LabelBuildProject+"="+key.Project),
		filters.Arg("label", LabelBuildService+"="+key.Name),
		filters.Arg("label", LabelBuildCommit))})
	if err != nil {
		return nil, fmt.Errorf("list the images built for %s: %w", key, err)
	}
	var removed []string
	for _, img := range list {
		if keep[img.ID] || slices.ContainsFunc(img.RepoTags, func(t string) bool { return keep[t] }) {
			continue
		}
		for _, tag := range img.RepoTags {
			if _, err := m.opts.Docker.ImageRemove(ctx, tag, image.RemoveOptions{PruneChildren: true}); err != nil {
				if errdefs.IsConflict(err) {
					continue // a container runs it
				}
				return removed, fmt.Errorf("remove image %s: %w", tag, err)
			}
			removed = append(removed, tag)
		}
	}
	return removed, nil
}
