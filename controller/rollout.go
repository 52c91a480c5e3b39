package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/reconcile"
	"github.com/panelx/panelx/store"
)

// ControllerUser is who the controller's own changes are attributed to.
const ControllerUser = "panelx"

// knownRevision is the newest revision of one incarnation of a service, so
// a reconcile that changes nothing does not read the revisions table.
type knownRevision struct {
	uid string
	rev api.Revision
	// inputs fingerprints what rev's template was last built from (the
	// service's resourceVersion, the image ID, the secrets' versions):
	// the same inputs build the same template, so it is not built and
	// hashed again.
	inputs string
}

// templateInputs fingerprints what BuildContainerSpec reads.
func templateInputs(svc *api.Service, imageID string, secrets reconcile.Secrets) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s/%s/%s", svc.Metadata.UID, svc.Metadata.ResourceVersion, imageID)
	for _, name := range slices.Sorted(maps.Keys(secrets)) {
		v := secrets[name]
		fmt.Fprintf(&b, "/%s:%d:%t:%q", name, v.Version, v.Missing, v.Err)
		for _, k := range slices.Sorted(maps.Keys(v.Digests)) {
			fmt.Fprintf(&b, ",%q=%s", k, v.Digests[k])
		}
	}
	return b.String()
}

// revision records the service's current template as a revision when it
// differs from the newest one, and returns the newest (nil while the
// template is not known: no image yet, or secrets that cannot be opened).
func (r *Reconciler) revision(ctx context.Context, svc *api.Service, img reconcile.ImageState, secrets reconcile.Secrets) (*api.Revision, bool, error) {
	key := api.KeyOf(svc)
	r.revisionsMu.Lock()
	known, ok := r.revisions[key]
	r.revisionsMu.Unlock()
	if ok && known.uid != svc.Metadata.UID {
		ok = false
	}
	// With pullPolicy Always a local image is not the template until the
	// registry has been asked: a tag left by someone else (or by an older
	// push) would otherwise become a revision that never ran.
	unchecked := svc.Spec.ImagePullPolicy == api.PullAlways && img.AttemptedAt.IsZero()
	if reason, _ := reconcile.SecretProblem(svc, secrets); !img.Present() || unchecked || reason != "" {
		if ok {
			return &known.rev, false, nil
		}
		latest, err := r.Store.Revisions().Latest(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("read revisions of %s: %w", key, err)
		}
		r.remember(svc, latest, "")
		return &latest, false, nil
	}
	inputs := templateInputs(svc, img.ID, secrets)
	if ok && known.inputs == inputs {
		return &known.rev, false, nil
	}
	spec := reconcile.BuildContainerSpec(r.Instance, svc, 0, img.ID, secrets)
	hash := spec.Hash()
	if ok && known.rev.TemplateHash == hash {
		r.remember(svc, known.rev, inputs)
		return &known.rev, false, nil
	}
	var prev *api.Revision
	if ok {
		prev = &known.rev
	} else if latest, err := r.Store.Revisions().Latest(ctx, key); err == nil {
		prev = &latest
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, false, fmt.Errorf("read revisions of %s: %w", key, err)
	}
	if prev != nil && prev.TemplateHash == hash {
		r.remember(svc, *prev, inputs)
		return prev, false, nil
	}
	digest, err := r.Runtime.ImageDigest(ctx, svc.RunImage())
	if err != nil {
		r.Log.Warn("image digest", zap.Stringer("service", key), zap.Error(err))
	}
	if digest == "" && svc.Spec.Build != nil {
		// A build is in no registry: its tag, which never moves, is what
		// a rollback brings back.
		digest = svc.RunImage()
	}
	rev := api.Revision{TemplateHash: hash, Spec: svc.Spec, ImageID: img.ID, ImageDigest: digest,
		SecretVersions: secrets.Versions()}
	rev.Cause = revisionCause(svc, prev, rev)
	keep := int(svc.Spec.Rollout.RevisionHistoryLimit)
	out, created, err := r.Store.Revisions().Record(ctx, svc.Metadata.UID, rev, keep)
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, nil // deleted or re-created meanwhile: its own change comes next
	}
	if err != nil {
		return nil, false, fmt.Errorf("record a revision of %s: %w", key, err)
	}
	r.remember(svc, out, inputs)
	if created {
		r.event(ctx, reconcile.ServiceKey(key.Project, key.Name), store.EventNormal, "RevisionCreated", describeRevision(out))
	}
	return &out, created, nil
}

func (r *Reconciler) remember(svc *api.Service, rev api.Revision, inputs string) {
	r.revisionsMu.Lock()
	defer r.revisionsMu.Unlock()
	if r.revisions == nil {
		r.revisions = map[api.Key]knownRevision{}
	}
	r.revisions[api.KeyOf(svc)] = knownRevision{uid: svc.Metadata.UID, rev: rev, inputs: inputs}
}

func describeRevision(rev api.Revision) string {
	msg := fmt.Sprintf("revision %d", rev.Number)
	if len(rev.Cause.Fields) > 0 {
		msg += ": " + strings.Join(rev.Cause.Fields, ", ")
	}
	if rev.Cause.Message != "" {
		msg += " (" + rev.Cause.Message + ")"
	}
	if rev.Cause.By != "" {
		msg += " by " + rev.Cause.By
	}
	return msg
}

// revisionCause says who changed what since prev. The service's
// annotations name who last changed its spec; a change of a secret's
// values alone is no one's edit of the service.
func revisionCause(svc *api.Service, prev *api.Revision, rev api.Revision) api.RevisionCause {
	if prev == nil {
		return api.RevisionCause{By: svc.Metadata.Annotations[api.AnnotationChangedBy], Message: "first revision"}
	}
	specFields := specChanges(prev.Spec, rev.Spec)
	fields := slices.Clone(specFields)
	if prev.ImageID != rev.ImageID && !slices.Contains(fields, "image") {
		fields = append(fields, "image (new digest)")
	}
	for _, name := range slices.Sorted(maps.Keys(rev.SecretVersions)) {
		if old, ok := prev.SecretVersions[name]; ok && old != rev.SecretVersions[name] {
			fields = append(fields, fmt.Sprintf("secret %s (version %d → %d)", name, old, rev.SecretVersions[name]))
		}
	}
	c := api.RevisionCause{Fields: fields}
	if len(specFields) > 0 {
		c.By = svc.Metadata.Annotations[api.AnnotationChangedBy]
		c.Message = svc.Metadata.Annotations[api.AnnotationChangeCause]
	}
	return c
}

// specChanges names the template fields that differ: "image", "env
// LOG_LEVEL", "ports". Replicas, domains, dependencies and rollout settings
// are not part of a template.
func specChanges(a, b api.ServiceSpec) []string {
	var out []string
	env := func(s api.ServiceSpec) map[string]string {
		m := map[string]string{}
		for _, e := range s.Env {
			data, _ := json.Marshal(e)
			m[e.Name] = string(data)
		}
		return m
	}
	ea, eb := env(a), env(b)
	for _, name := range slices.Sorted(maps.Keys(eb)) {
		if ea[name] != eb[name] {
			out = append(out, "env "+name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(ea)) {
		if _, ok := eb[name]; !ok {
			out = append(out, "env "+name)
		}
	}
	fa, fb := templateFields(a), templateFields(b)
	for _, f := range slices.Sorted(maps.Keys(fb)) {
		if fa[f] != fb[f] {
			out = append(out, f)
		}
	}
	for _, f := range slices.Sorted(maps.Keys(fa)) {
		if _, ok := fb[f]; !ok {
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// templateFields is a spec's template fields but env, by JSON name.
func templateFields(s api.ServiceSpec) map[string]string {
	s.Env, s.Replicas, s.Domains, s.DependsOn, s.Rollout = nil, nil, nil, nil, api.RolloutSpec{}
	data, _ := json.Marshal(s)
	var m map[string]json.RawMessage
	_ = json.Unmarshal(data, &m)
	out := map[string]string{}
	for k, v := range m {
		out[k] = string(v)
	}
	delete(out, "rollout")
	return out
}

// rollout decides the rollout part of the status, records a revision that
// became ready and, past the deadline, rolls back when the service asks
// for it.
func (r *Reconciler) rollout(ctx context.Context, svc *api.Service, status *api.ServiceStatus, latest *api.Revision, recorded bool) reconcile.RolloutDecision {
	key := reconcile.ServiceKey(svc.Metadata.Project, svc.Metadata.Name)
	now := r.now()
	d := reconcile.DecideRollout(reconcile.RolloutInput{Service: svc, Status: *status, Previous: svc.Status,
		Latest: latest, Recorded: recorded, Now: now})
	if d.MarkReady && latest != nil {
		err := r.Store.Revisions().MarkReady(ctx, api.KeyOf(svc), latest.Number, now)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			r.Log.Warn("mark revision ready", zap.Stringer("key", key), zap.Error(err))
		} else if err == nil {
			rev := *latest
			rev.ReadyAt = &now
			r.remember(svc, rev, "")
			r.event(ctx, key, store.EventNormal, "RolloutComplete", fmt.Sprintf("revision %d is ready", latest.Number))
		}
	}
	reconcile.ApplyRollout(status, d, svc.Metadata.Generation, now)
	if !d.Exceeded {
		return d
	}
	if c := api.FindCondition(svc.Status.Conditions, api.ConditionProgressing); c == nil || c.Reason != reconcile.ReasonProgressDeadlineExceeded {
		r.Metrics.deadlineExceeded()
		r.event(ctx, key, store.EventWarning, reconcile.ReasonProgressDeadlineExceeded, d.Message)
	}
	if svc.Spec.Rollout.AutoRollback {
		if err := r.autoRollback(ctx, svc, latest, d); err != nil {
			r.Log.Warn("automatic rollback", zap.Stringer("key", key), zap.Error(err))
		}
	}
	return d
}

// autoRollback writes the template of the last revision that was Ready
// back into the service's spec — once per failed revision: if that one
// fails too, the service stays Degraded for a person to look at.
func (r *Reconciler) autoRollback(ctx context.Context, svc *api.Service, latest *api.Revision, d reconcile.RolloutDecision) error {
	readyNumber := d.Status.ReadyRevision
	if readyNumber == 0 || latest == nil || readyNumber == latest.Number {
		return nil
	}
	key := reconcile.ServiceKey(svc.Metadata.Project, svc.Metadata.Name)
	target, err := r.Store.Revisions().Get(ctx, api.KeyOf(svc), readyNumber)
	if errors.Is(err, store.ErrNotFound) {
		r.event(ctx, key, store.EventWarning, "RollbackImpossible", fmt.Sprintf("revision %d, the last that was ready, is no longer kept", readyNumber))
		return nil
	}
	if err != nil {
		return err
	}
	if target.TemplateHash == latest.TemplateHash {
		return nil // it is that template that fails now: a rollback would change nothing
	}
	next := api.Clone(svc)
	next.Spec = target.RollbackSpec(svc.Spec)
	next.Default()
	if next.Metadata.Annotations == nil {
		next.Metadata.Annotations = map[string]string{}
	}
	cause := fmt.Sprintf("automatic rollback to revision %d: %s", target.Number, d.Message)
	next.Metadata.Annotations[api.AnnotationChangedBy] = ControllerUser
	next.Metadata.Annotations[api.AnnotationChangeCause] = cause
	if _, err := r.Store.Services().Update(ctx, next); err != nil {
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			return nil // changed meanwhile: that change is looked at next
		}
		return err
	}
	r.Metrics.rolledBack()
	r.event(ctx, key, store.EventWarning, "RolledBack", cause)
	r.Log.Info("rolled back", zap.Stringer("key", key), zap.Int64("from", latest.Number), zap.Int64("to", target.Number))
	return nil
}
