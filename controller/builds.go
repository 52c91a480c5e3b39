package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/builder"
	"github.com/panelx/panelx/reconcile"
	"github.com/panelx/panelx/store"
)

// ensureBuild puts the service's build status — starting a build when its
// spec or build request is new — in svc.Status.Build, from which the
// service's image comes (api.Service.RunImage).
func (r *Reconciler) ensureBuild(ctx context.Context, svc *api.Service) error {
	if svc.Spec.Build == nil || svc.Metadata.DeletionTimestamp != nil {
		return nil
	}
	if r.Builds == nil {
		return nil // RunImage stays what the row says; the planner waits without one
	}
	req := builder.Request{
		Key: api.KeyOf(svc), Spec: *svc.Spec.Build, Trigger: svc.Metadata.Annotations[api.AnnotationBuildRequest],
		Labels: map[string]string{reconcile.LabelManaged: "true", reconcile.LabelInstance: r.Instance},
	}
	if name := svc.Spec.Build.Git.SecretRef; name != "" {
		sec, err := getOrNil(ctx, r.Store.Secrets(), api.Key{Project: svc.Metadata.Project, Name: name})
		if err != nil {
			return err
		}
		if sec == nil {
			r.buildProblem(ctx, svc, fmt.Sprintf("build.git.secretRef: secret %q not found", name))
			return nil
		}
		v := r.openSecret(sec)
		if v.Err != "" {
			r.buildProblem(ctx, svc, fmt.Sprintf("build.git.secretRef: secret %q cannot be opened: %s", name, v.Err))
			return nil
		}
		req.Auth = builder.GitAuth{Username: v.Values["username"], Password: v.Values["password"],
			SSHKey: v.Values["sshPrivateKey"], SSHPassphrase: v.Values["sshPassphrase"], KnownHosts: v.Values["knownHosts"]}
		if t := v.Values["token"]; t != "" {
			req.Auth.Password = t
		}
	}
	project := svc.Metadata.Project
	req.Registries = func(ctx context.Context) ([]builder.RegistryLogin, error) { return r.buildRegistries(ctx, project) }
	prev := svc.Status.Build
	if c := svc.Metadata.Annotations[api.AnnotationBuildCancel]; c != "" && c == req.ID() {
		r.Builds.Cancel(req)
	}
	st := r.Builds.Ensure(req, prev)
	r.keepRowBuild(svc, prev)
	svc.Status.Build = &st
	r.buildEvents(ctx, svc, prev, &st)
	return nil
}

// buildRegistries opens the project's registry logins for the builder
// (a private FROM image). A login that cannot be opened fails the build
// and says why: an anonymous pull would hide it.
func (r *Reconciler) buildRegistries(ctx context.Context, project string) ([]builder.RegistryLogin, error) {
	creds, err := r.Store.RegistryCredentials().List(ctx, project)
	if err != nil {
		return nil, fmt.Errorf("read the project's registry credentials: %w", err)
	}
	var logins []builder.RegistryLogin
	for _, c := range creds {
		auth, err := r.Executor.Credentials.RegistryCredential(ctx, project, c.Registry)
		if err != nil {
			return nil, fmt.Errorf("registry credential %s: %w", c.Registry, err)
		}
		if auth != nil {
			logins = append(logins, builder.RegistryLogin{Registry: auth.Registry, Username: auth.Username, Password: auth.Password})
		}
	}
	return logins, nil
}

// buildSource names where a build comes from, for events.
func buildSource(b *api.BuildSpec) string {
	if b.Upload != nil {
		return "uploaded context " + b.Upload.Digest
	}
	return b.Git.URL + atRef(b.Git.Ref)
}

// buildProblem records why a build cannot start on the service's status
// (the running revision keeps serving).
func (r *Reconciler) buildProblem(ctx context.Context, svc *api.Service, msg string) {
	prev := svc.Status.Build
	r.keepRowBuild(svc, prev)
	st := api.BuildStatus{Phase: api.BuildFailed, Message: msg}
	if prev != nil {
		st.Image, st.ImageID, st.ImageCommit, st.Request = prev.Image, prev.ImageID, prev.ImageCommit, prev.Request
	}
	svc.Status.Build = &st
	r.buildEvents(ctx, svc, prev, &st)
}

// requestPolledBuild asks for a build of a commit a poll of the service's
// ref found, the way a webhook does: through the build-request
// annotation, so the request survives a restart and is taken once.
func (r *Reconciler) requestPolledBuild(ctx context.Context, key api.Key, commit string) {
	request := "poll " + commit
	for range 5 {
		svc, err := r.Store.Services().Get(ctx, key)
		if err != nil || svc.Spec.Build == nil || svc.Metadata.DeletionTimestamp != nil {
			return
		}
		if svc.Metadata.Annotations[api.AnnotationBuildRequest] == request {
			return
		}
		next := api.Clone(svc)
		if next.Metadata.Annotations == nil {
			next.Metadata.Annotations = map[string]string{}
		}
		next.Metadata.Annotations[api.AnnotationBuildRequest] = request
		_, err = r.Store.Services().Update(ctx, next)
		if err == nil {
			r.event(ctx, reconcile.ServiceKey(key.Project, key.Name), store.EventNormal, "BuildRequested", "a poll of "+svc.Spec.Build.Git.URL+atRef(svc.Spec.Build.Git.Ref)+" found commit "+short(commit))
			return
		}
		if !errors.Is(err, store.ErrConflict) {
			r.Log.Warn("request a polled build", zap.Stringer("service", key), zap.Error(err))
			return
		}
	}
}

// keepRowBuild remembers the build status the service's row holds before
// ensureBuild puts the builder's in its place: the status write compares
// with the row, or a change of the build alone would never be written.
// A key is reconciled by one worker at a time.
func (r *Reconciler) keepRowBuild(svc *api.Service, prev *api.BuildStatus) {
	r.buildsMu.Lock()
	defer r.buildsMu.Unlock()
	if r.rowBuilds == nil {
		r.rowBuilds = map[api.Key]*api.BuildStatus{}
	}
	r.rowBuilds[api.KeyOf(svc)] = prev
}

// rowStatus is the service's status as its row holds it.
func (r *Reconciler) rowStatus(svc *api.Service) *api.Service {
	if svc.Spec.Build == nil {
		return svc
	}
	r.buildsMu.Lock()
	prev, ok := r.rowBuilds[api.KeyOf(svc)]
	r.buildsMu.Unlock()
	if !ok {
		return svc
	}
	row := *svc
	row.Status.Build = prev
	return &row
}

// buildEvents records a build's progress as events, once per change of
// phase of a request.
func (r *Reconciler) buildEvents(ctx context.Context, svc *api.Service, prev, cur *api.BuildStatus) {
	if cur == nil || (prev != nil && prev.Phase == cur.Phase && prev.Request == cur.Request && prev.Message == cur.Message) {
		return
	}
	key := api.KeyOf(svc)
	mark := string(cur.Phase) + "/" + cur.Request + "/" + cur.Message
	r.buildsMu.Lock()
	if r.buildsSeen == nil {
		r.buildsSeen = map[api.Key]string{}
	}
	seen := r.buildsSeen[key] == mark
	r.buildsSeen[key] = mark
	r.buildsMu.Unlock()
	if seen {
		return
	}
	k := reconcile.ServiceKey(key.Project, key.Name)
	switch cur.Phase {
	case api.BuildQueued:
		r.event(ctx, k, store.EventNormal, "BuildQueued", "build of "+buildSource(svc.Spec.Build)+" queued")
	case api.BuildBuilding:
		r.event(ctx, k, store.EventNormal, "Building", "build started")
	case api.BuildSucceeded:
		r.event(ctx, k, store.EventNormal, "Built", fmt.Sprintf("built %s from commit %s", cur.Image, short(cur.ImageCommit)))
		r.pruneBuilds(ctx, svc, cur)
	case api.BuildFailed:
		r.event(ctx, k, store.EventWarning, "BuildFailed", cur.Message)
	}
}

// pruneBuilds removes the service's older build images, keeping the
// current one and those its revisions ran (rollbacks take them back).
func (r *Reconciler) pruneBuilds(ctx context.Context, svc *api.Service, cur *api.BuildStatus) {
	key := api.KeyOf(svc)
	revs, err := r.Store.Revisions().List(ctx, key)
	if err != nil {
		r.Log.Warn("prune build images: read revisions", zap.Stringer("service", key), zap.Error(err))
		return
	}
	keep := map[string]bool{cur.Image: true, cur.ImageID: true}
	for _, rev := range revs {
		keep[rev.ImageDigest], keep[rev.ImageID] = true, true
	}
	removed, err := r.Builds.Prune(ctx, key, keep)
	if err != nil {
		r.Log.Warn("prune build images", zap.Stringer("service", key), zap.Error(err))
	}
	if len(removed) > 0 {
		r.event(ctx, reconcile.ServiceKey(key.Project, key.Name), store.EventNormal, "BuildImagesPruned",
			fmt.Sprintf("%d older build image(s) removed: %s", len(removed), strings.Join(removed, ", ")))
	}
	if svc.Spec.Build.Upload != nil {
		r.pruneContexts(ctx, key.Project)
	}
}

// contextGrace keeps an uploaded context no service names yet: the apply
// that names it follows its upload.
const contextGrace = time.Hour

// pruneContexts removes the project's uploaded build contexts that no
// service's spec names any more (a rebuild needs the one it names).
func (r *Reconciler) pruneContexts(ctx context.Context, project string) {
	contexts := r.Builds.Contexts()
	if contexts == nil {
		return
	}
	keep := map[string]bool{}
	err := store.Each(ctx, r.Store.Services(), store.ListOptions{Project: project}, func(s *api.Service) {
		if s.Spec.Build != nil && s.Spec.Build.Upload != nil {
			keep[s.Spec.Build.Upload.Digest] = true
		}
	})
	if err != nil {
		r.Log.Warn("prune build contexts: list services", zap.String("project", project), zap.Error(err))
		return
	}
	if _, err := contexts.Prune(project, keep, contextGrace); err != nil {
		r.Log.Warn("prune build contexts", zap.String("project", project), zap.Error(err))
	}
}

func atRef(ref string) string {
	if ref == "" {
		return ""
	}
	return "@" + ref
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	if commit == "" {
		return "(resolving)"
	}
	return commit
}
