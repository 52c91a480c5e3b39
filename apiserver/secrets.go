package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"sync"

	"github.com/go-chi/chi/v5"
	"go.uber.org/zap"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/apiserver/authz"
	"github.com/panelx/panelx/reseal"
	"github.com/panelx/panelx/seal"
	"github.com/panelx/panelx/store"
)

// errNoKeyring answers secret writes and reads on a server without a
// master key.
func errNoKeyring() error {
	return httpErr(http.StatusServiceUnavailable, "secrets are unavailable: the server has no master key (set PANELX_SECRET_KEY_FILE)")
}

// sealFailed explains a sealed item the server cannot open: the fault is
// the server's key file, never the client's request.
func sealFailed(what string, err error) error {
	if errors.Is(err, seal.ErrNoKeyring) {
		return errNoKeyring()
	}
	return httpErr(http.StatusServiceUnavailable, "%s cannot be opened: %s", what, seal.Describe(err))
}

// sealSecret turns the values a client sent into the sealed form the store
// keeps. Writing the same values again changes nothing (same version, same
// sealed data), so re-applying a manifest rolls no service.
func (s *Server) sealSecret(r *http.Request, next, current *api.Secret) (*api.Secret, error) {
	if s.keyring == nil {
		return nil, errNoKeyring()
	}
	key := api.KeyOf(next)
	ctx := seal.SecretContext(key.Project, key.Name)
	data := next.Spec.Data
	if data == nil {
		data = map[string]string{}
	}
	var prev *api.Sealed
	var version int64
	if current != nil && current.Spec.Sealed != nil {
		same, err := s.keyring.SameValues(ctx, current.Spec.Sealed, data)
		if err != nil {
			return nil, sealFailed(fmt.Sprintf("the stored values of secret %q", key.Name), err)
		}
		if same {
			next.Spec = current.Spec
			return next, nil
		}
		prev, version = current.Spec.Sealed, current.Spec.Version
	}
	sealed, err := s.keyring.SealSecret(ctx, data, prev)
	if err != nil {
		return nil, sealFailed(fmt.Sprintf("secret %q", key.Name), err)
	}
	next.Spec = api.SecretSpec{Keys: seal.Keys(data), Version: version + 1, Sealed: sealed}
	return next, nil
}

// openSecret returns a stored secret with its values in spec.data (and
// nothing else in spec): what a merge patch applies to.
func (s *Server) openSecret(_ context.Context, current *api.Secret) (*api.Secret, error) {
	if s.keyring == nil {
		return nil, errNoKeyring()
	}
	key := api.KeyOf(current)
	data, err := s.keyring.OpenSecret(seal.SecretContext(key.Project, key.Name), current.Spec.Sealed)
	if err != nil {
		return nil, sealFailed(fmt.Sprintf("secret %q", key.Name), err)
	}
	out := api.Clone(current)
	out.Spec = api.SecretSpec{Data: data}
	return out, nil
}

// SecretData is a secret's values, for the roles that may read them back.
type SecretData struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   api.ObjectMeta    `json:"metadata"`
	Version    int64             `json:"version"`
	Data       map[string]string `json:"data"`
}

// revealSecret: GET …/secrets/{secret}/data — the values, for owners and
// admins only; every read is recorded as an event (without the values).
func (s *Server) revealSecret(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	key := api.Key{Project: chi.URLParam(r, "project"), Name: chi.URLParam(r, "secret")}
	_, err := s.authorize(r, key.Project, authz.RevealSecrets)
	if err == nil && len(api.ValidateName("", key.Name)) > 0 {
		err = store.ErrNotFound
	}
	var sec *api.Secret
	if err == nil {
		sec, err = s.store.Secrets().Get(ctx, key)
	}
	if errors.Is(err, store.ErrNotFound) {
		err = httpErr(http.StatusNotFound, "secret %q not found in project %q", key.Name, key.Project)
	}
	var opened *api.Secret
	if err == nil {
		opened, err = s.openSecret(ctx, sec)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.recordEvent(ctx, store.Event{Project: key.Project, Kind: api.KindSecret, Name: key.Name, Type: store.EventNormal,
		Reason: "SecretRevealed", Message: fmt.Sprintf("the values of version %d were read by %s", sec.Spec.Version, authz.PrincipalFrom(ctx).UserID)})
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, SecretData{APIVersion: api.APIVersion, Kind: "SecretData",
		Metadata: api.ObjectMeta{Project: key.Project, Name: key.Name, ResourceVersion: sec.Metadata.ResourceVersion},
		Version:  sec.Spec.Version, Data: opened.Spec.Data})
}

// stampService notes who changed a service's spec, for the revision the
// controller records; a change cause set for an earlier change goes.
func (s *Server) stampService(r *http.Request, next, current *api.Service) (*api.Service, error) {
	if current != nil && reflect.DeepEqual(current.Spec, next.Spec) {
		return next, nil
	}
	m := &next.Metadata
	if m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	m.Annotations[api.AnnotationChangedBy] = authz.PrincipalFrom(r.Context()).UserID
	delete(m.Annotations, api.AnnotationChangeCause)
	return next, nil
}

// recordEvent records an event, best effort: the request it describes has
// already succeeded.
func (s *Server) recordEvent(ctx context.Context, e store.Event) {
	if err := s.store.Events().Record(ctx, e); err != nil {
		s.log.Warn("record event", zap.Error(err))
	}
}

// rotateMu serialises master key rotations.
var rotateMu sync.Mutex

// rotateKey: POST /api/v1/admin/secret-key/rotate — a new master key
// becomes the active one and every secret and registry password is
// re-wrapped under it, without touching values (no service restarts);
// the old keys leave the key file unless keepOld=true. Server
// administrators only.
func (s *Server) rotateKey(w http.ResponseWriter, r *http.Request) {
	p := authz.PrincipalFrom(r.Context())
	var err error
	keepOld := false
	switch {
	case !p.Admin:
		err = authz.Forbidden("only server administrators may rotate the master key")
	case s.keyring == nil || s.keyring.Path() == "":
		err = errNoKeyring()
	default:
		switch v := r.URL.Query().Get("keepOld"); v {
		case "", "false":
		case "true":
			keepOld = true
		default:
			err = badQuery("keepOld", "must be true or false")
		}
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rotateMu.Lock()
	defer rotateMu.Unlock()
	rep, err := reseal.Rotate(r.Context(), s.store, s.keyring, keepOld)
	if err != nil {
		s.log.Error("master key rotation failed", zap.Error(err), zap.Int("secrets", rep.Secrets), zap.Int("registryCredentials", rep.RegistryCredentials))
		s.fail(w, r, sealFailed("the rotation", err))
		return
	}
	s.log.Info("rotated the master key", zap.String("keyId", rep.KeyID), zap.Strings("retired", rep.Retired),
		zap.Int("secrets", rep.Secrets), zap.Int("registryCredentials", rep.RegistryCredentials))
	writeJSON(w, http.StatusOK, rep)
}
