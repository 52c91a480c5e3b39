package controller

import (
	"context"
	"errors"
	"fmt"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/reconcile"
	"github.com/panelx/panelx/seal"
	"github.com/panelx/panelx/store"
)

// openedSecret is a secret's values as last opened, for one version of one
// incarnation: a service's every reconcile reads the secret's row, but
// decrypts only when it changed.
type openedSecret struct {
	uid     string
	version int64
	keyID   string
	values  reconcile.SecretValues
}

// resolveSecrets reads and opens the secrets a service uses. A secret that
// cannot be opened is reported in its SecretValues (the planner holds the
// service back), not as an error: the other services go on.
func (r *Reconciler) resolveSecrets(ctx context.Context, svc *api.Service) (reconcile.Secrets, error) {
	names := svc.Spec.SecretRefs()
	if len(names) == 0 {
		return nil, nil
	}
	out := reconcile.Secrets{}
	for _, name := range names {
		key := api.Key{Project: svc.Metadata.Project, Name: name}
		sec, err := getOrNil(ctx, r.Store.Secrets(), key)
		if err != nil {
			return nil, fmt.Errorf("read secret %s: %w", key, err)
		}
		if sec == nil || sec.Metadata.DeletionTimestamp != nil {
			out[name] = reconcile.SecretValues{Missing: true}
			continue
		}
		out[name] = r.openSecret(sec)
	}
	return out, nil
}

func (r *Reconciler) openSecret(sec *api.Secret) reconcile.SecretValues {
	key := api.KeyOf(sec)
	sealed := sec.Spec.Sealed
	keyID := ""
	if sealed != nil {
		keyID = sealed.KeyID
	}
	r.secretsMu.Lock()
	cached, ok := r.secrets[key]
	r.secretsMu.Unlock()
	// A re-wrap under a new master key changes the key ID but not the
	// values; it is opened again all the same, to prove the key works.
	if ok && cached.uid == sec.Metadata.UID && cached.version == sec.Spec.Version && cached.keyID == keyID {
		return cached.values
	}
	v := reconcile.SecretValues{Version: sec.Spec.Version}
	values, err := r.Keyring.OpenSecret(seal.SecretContext(key.Project, key.Name), sealed)
	if err != nil {
		v.Err = seal.Describe(err)
		r.Metrics.secretOpenFailed()
		return v // not cached: a fixed key file is picked up at the next look
	}
	v.Values = values
	if sealed != nil {
		v.Digests = sealed.Digests
	}
	r.secretsMu.Lock()
	if r.secrets == nil {
		r.secrets = map[api.Key]openedSecret{}
	}
	r.secrets[key] = openedSecret{uid: sec.Metadata.UID, version: sec.Spec.Version, keyID: keyID, values: v}
	r.secretsMu.Unlock()
	return v
}

// reconcileSecret removes a deleted secret's row: nothing in Docker is a
// secret's own. The services that used it are queued by the change feed
// and held back (SecretNotFound) until it is back or no longer used.
func (r *Reconciler) reconcileSecret(ctx context.Context, key reconcile.Key) (Result, error) {
	akey := api.Key{Project: key.Project, Name: key.Name}
	sec, err := getOrNil(ctx, r.Store.Secrets(), akey)
	if err != nil || sec == nil || sec.Metadata.DeletionTimestamp == nil {
		return Result{}, err
	}
	r.secretsMu.Lock()
	delete(r.secrets, akey)
	r.secretsMu.Unlock()
	if err := r.Store.Secrets().Remove(ctx, akey, sec.Metadata.UID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return Result{}, fmt.Errorf("remove secret %s: %w", akey, err)
	}
	r.event(ctx, key, store.EventNormal, "Deleted", "secret removed")
	return Result{}, nil
}
