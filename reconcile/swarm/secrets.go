package swarm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/errdefs"

	"github.com/panelx/panelx/reconcile"
)

// Secret files on Swarm. Each file of a service (spec.volumes[].secret,
// reconcile.ContainerSpec.Files) becomes a Swarm secret, which Swarm keeps
// encrypted in its Raft log and hands only to the nodes running the
// service's tasks, where it is a file on a tmpfs mounted at the file's path
// (Linux containers take an absolute target). A Swarm secret cannot change:
// its name carries a digest of the file's reference (which holds the value's
// HMAC digest, never the value), so a new value is a new secret, a new task
// template, and a rollout. Secrets no longer referenced by this
// installation's services are removed once no rollout can go back to them;
// Swarm refuses to remove a secret a service still names, so a removal that
// fails is tried again later, by the events stream's task poll.

// Swarm's limits: swarmkit's validation.MaxSecretSize (the data must be
// smaller, and not empty) and the length of an object's name.
const (
	maxSecretSize = 500 * 1024
	maxSecretName = 64
)

// secretMode is how the single-engine runtime writes secret files too:
// read-only to everyone, root-owned, so the process may run as any user.
const secretMode = 0o444

// secretRetry is the least time between two sweeps of the task poll.
const secretRetry = 2 * time.Second

// secretState is the runtime's bookkeeping of its Swarm secrets.
type secretState struct {
	// mu: a create or update holds it shared from making its secrets until
	// Swarm has the spec naming them, a sweep exclusively, so that a sweep
	// never removes a secret just made for a service not sent yet.
	mu sync.RWMutex
	// changes counts the changes of services; cleanAt is changes+1 as a
	// sweep that left nothing to remove later found it (neither is set at
	// start: a first sweep finds what a previous process left behind).
	changes, cleanAt atomic.Int64
	last             atomic.Int64 // unix nanoseconds of the last sweep
}

// secretFile is one file of a workload as a Swarm secret.
type secretFile struct {
	name   string
	labels map[string]string
	data   []byte
	target string
}

// secretName is the Swarm secret of one file of a service: the service's
// name and a digest of its project, service and the file's reference (the
// project and service in the digest keep names apart when a long name is
// cut to Swarm's 64 characters).
func secretName(project, service, ref string) string {
	sum := sha256.Sum256([]byte(project + "\x00" + service + "\x00" + ref))
	suffix := "-" + hex.EncodeToString(sum[:6])
	base := reconcile.WorkloadName(project, service)
	if len(base)+len(suffix) > maxSecretName {
		base = strings.TrimRight(base[:maxSecretName-len(suffix)], "-")
	}
	return base + suffix
}

// secretFiles are the workload's files as Swarm secrets, carrying the
// owner labels of the workload (never anything of the value). Errors name
// the file's path, never its content.
func secretFiles(ws reconcile.WorkloadSpec) ([]secretFile, error) {
	project, service := ws.Labels[reconcile.LabelProject], ws.Labels[reconcile.LabelService]
	var out []secretFile
	for _, f := range ws.Template.Files {
		switch {
		case strings.HasSuffix(f.Ref, "@") || !strings.Contains(f.Ref, "@"):
			// Without a digest a new value would keep the name.
			return nil, fmt.Errorf("secret file %s: no digest of its value", f.Path)
		case len(f.Content) == 0:
			return nil, fmt.Errorf("secret file %s is empty, and Swarm secrets cannot be", f.Path)
		case len(f.Content) >= maxSecretSize:
			return nil, fmt.Errorf("secret file %s is %d bytes: Swarm secrets hold less than %d", f.Path, len(f.Content), maxSecretSize)
		}
		out = append(out, secretFile{
			name: secretName(project, service, f.Ref),
			labels: map[string]string{
				reconcile.LabelManaged:  ws.Labels[reconcile.LabelManaged],
				reconcile.LabelInstance: ws.Labels[reconcile.LabelInstance],
				reconcile.LabelProject:  project,
				reconcile.LabelService:  service,
			},
			data:   f.Content,
			target: f.Path,
		})
	}
	slices.SortFunc(out, func(a, b secretFile) int { return strings.Compare(a.target, b.target) })
	return out, nil
}

// ownedSecrets lists this installation's Swarm secrets.
func (r *Runtime) ownedSecrets(ctx context.Context, f filters.Args) ([]swarm.Secret, error) {
	var list []swarm.Secret
	err := r.call(ctx, "secret_list", func(ctx context.Context) (err error) {
		list, err = r.cli.SecretList(ctx, swarm.SecretListOptions{Filters: f})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list secrets: %w", err)
	}
	return slices.DeleteFunc(list, func(s swarm.Secret) bool { return !r.owned(s.Spec.Labels) }), nil
}

// attachSecrets makes the Swarm secrets of the workload's files that do not
// exist yet and names them in spec. The caller sends spec to Swarm, then
// calls release (also after an error).
func (r *Runtime) attachSecrets(ctx context.Context, ws reconcile.WorkloadSpec, spec *swarm.ServiceSpec) (release func(), err error) {
	files, err := secretFiles(ws)
	if err != nil || len(files) == 0 {
		return func() {}, err
	}
	r.secrets.mu.RLock()
	release = r.secrets.mu.RUnlock
	defer func() {
		if err != nil {
			release()
			release = func() {}
		}
	}()
	list, err := r.ownedSecrets(ctx, r.ownerFilter())
	if err != nil {
		return release, err
	}
	ids := map[string]string{}
	for _, s := range list {
		ids[s.Spec.Name] = s.ID
	}
	var refs []*swarm.SecretReference
	for _, f := range files {
		if ids[f.name] == "" {
			if ids[f.name], err = r.createSecret(ctx, f); err != nil {
				return release, err
			}
		}
		refs = append(refs, &swarm.SecretReference{SecretID: ids[f.name], SecretName: f.name,
			File: &swarm.SecretReferenceFileTarget{Name: f.target, UID: "0", GID: "0", Mode: secretMode}})
	}
	spec.TaskTemplate.ContainerSpec.Secrets = refs
	return release, nil
}

// createSecret makes one file's secret; one of the same name made meanwhile
// by this installation is the same file (the name holds its digest).
func (r *Runtime) createSecret(ctx context.Context, f secretFile) (string, error) {
	var id string
	err := r.call(ctx, "secret_create", func(ctx context.Context) error {
		resp, err := r.cli.SecretCreate(ctx, swarm.SecretSpec{Annotations: swarm.Annotations{Name: f.name, Labels: f.labels}, Data: f.data})
		id = resp.ID
		return err
	})
	if err == nil {
		return id, nil
	}
	if !errdefs.IsConflict(err) && !strings.Contains(err.Error(), "already exists") {
		return "", fmt.Errorf("create secret %s for file %s: %w", f.name, f.target, err)
	}
	list, lerr := r.listSecretsNamed(ctx, f.name)
	if lerr != nil {
		return "", fmt.Errorf("create secret %s for file %s: %w", f.name, f.target, lerr)
	}
	for _, s := range list {
		if s.Spec.Name != f.name {
			continue
		}
		if !r.owned(s.Spec.Labels) {
			return "", fmt.Errorf("create secret %s for file %s: the name is taken by a secret this installation does not manage: %w", f.name, f.target, err)
		}
		return s.ID, nil
	}
	return "", fmt.Errorf("create secret %s for file %s: %w", f.name, f.target, err)
}

func (r *Runtime) listSecretsNamed(ctx context.Context, name string) ([]swarm.Secret, error) {
	var list []swarm.Secret
	err := r.call(ctx, "secret_list", func(ctx context.Context) (err error) {
		list, err = r.cli.SecretList(ctx, swarm.SecretListOptions{Filters: filters.NewArgs(filters.Arg("names", name))})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list secrets: %w", err)
	}
	return list, nil
}

// secretsInUse are the IDs of the secrets the services name, and whether
// some are named only by a rollout that may still go back (kept: a rollback
// needs them).
func secretsInUse(svcs []swarm.Service) (ids map[string]bool, held bool) {
	ids = map[string]bool{}
	for _, s := range svcs {
		for _, ref := range secretRefs(&s.Spec) {
			ids[ref.SecretID] = true
		}
	}
	for _, s := range svcs {
		if s.PreviousSpec == nil || !rolloutOpen(s.UpdateStatus) {
			continue
		}
		for _, ref := range secretRefs(s.PreviousSpec) {
			held = held || !ids[ref.SecretID]
			ids[ref.SecretID] = true
		}
	}
	return ids, held
}

func secretRefs(spec *swarm.ServiceSpec) []*swarm.SecretReference {
	if cs := spec.TaskTemplate.ContainerSpec; cs != nil {
		return cs.Secrets
	}
	return nil
}

// rolloutOpen reports whether Swarm may still go back to the previous
// spec: an update running, paused or rolling back, or one Swarm has not
// begun yet (an update resets the status; the updater sets it when it
// starts).
func rolloutOpen(u *swarm.UpdateStatus) bool {
	if u == nil {
		return true
	}
	return u.State != swarm.UpdateStateCompleted && u.State != swarm.UpdateStateRollbackCompleted
}

// pruneSecrets removes this installation's secrets that none of its
// services names. again: some are to be removed later (a rollout still
// open, a removal Swarm refused, or busy: a create or update was sending
// its secrets, and wait was false).
func (r *Runtime) pruneSecrets(ctx context.Context, wait bool) (again bool, err error) {
	if wait {
		r.secrets.mu.Lock()
	} else if !r.secrets.mu.TryLock() {
		return true, nil
	}
	defer r.secrets.mu.Unlock()
	list, err := r.ownedSecrets(ctx, r.ownerFilter())
	if err != nil || len(list) == 0 {
		return err != nil, err
	}
	svcs, err := r.services(ctx)
	if err != nil {
		return true, err
	}
	inUse, held := secretsInUse(svcs)
	var failed []string
	for _, s := range list {
		if inUse[s.ID] {
			continue
		}
		err := r.call(ctx, "secret_remove", func(ctx context.Context) error { return r.cli.SecretRemove(ctx, s.ID) })
		if err != nil && !errdefs.IsNotFound(err) {
			// In use by a service updated meanwhile, or by one that is not
			// this installation's: the next sweep looks again.
			failed = append(failed, fmt.Sprintf("%s: %v", s.Spec.Name, err))
		}
	}
	if len(failed) > 0 {
		return true, fmt.Errorf("remove secrets: %s", strings.Join(failed, "; "))
	}
	return held, nil
}

// sweepSecrets prunes now and remembers whether the task poll must try
// again; its errors are the sweep's to retry, not the caller's.
func (r *Runtime) sweepSecrets(ctx context.Context, wait bool) {
	r.secrets.last.Store(time.Now().UnixNano())
	changes := r.secrets.changes.Load()
	if again, err := r.pruneSecrets(ctx, wait); !again && err == nil {
		// A change during the sweep leaves it dirty: the sweep may have
		// listed the services before it.
		r.secrets.cleanAt.Store(changes + 1)
	}
}

// secretsChanged says that services changed: the next task poll sweeps.
func (r *Runtime) secretsChanged() { r.secrets.changes.Add(1) }

// retrySecrets is the task poll's sweep, when one is due (never waiting
// for a create or update: the events stream goes on).
func (r *Runtime) retrySecrets(ctx context.Context) {
	if r.secrets.cleanAt.Load() == r.secrets.changes.Load()+1 || time.Since(time.Unix(0, r.secrets.last.Load())) < secretRetry {
		return
	}
	r.sweepSecrets(ctx, false)
}
