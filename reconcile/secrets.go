package reconcile

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/panelx/panelx/api"
)

// Reasons a service's secrets hold it back.
const (
	ReasonSecretNotFound    = "SecretNotFound"
	ReasonSecretUnavailable = "SecretUnavailable"
)

// SecretValues is one secret as the controller opened it.
type SecretValues struct {
	// Missing: no secret of that name exists.
	Missing bool
	// Err says why its values could not be opened (wrong master key…);
	// never the values.
	Err     string
	Version int64
	Values  map[string]string
	// Digests stand in for the values in spec hashes (see api.Sealed).
	Digests map[string]string
}

// Secrets are the secrets a service uses, by name.
type Secrets map[string]SecretValues

// Versions returns the version of each secret that was opened.
func (s Secrets) Versions() map[string]int64 {
	if len(s) == 0 {
		return nil
	}
	out := map[string]int64{}
	for _, name := range slices.Sorted(maps.Keys(s)) {
		if v := s[name]; !v.Missing && v.Err == "" {
			out[name] = v.Version
		}
	}
	return out
}

// SecretProblem says why a service's containers cannot be built with all
// of their environment: a required secret or key is missing, or a secret
// cannot be opened. It fails closed — a container is never created with a
// variable left out that it asked for.
func SecretProblem(svc *api.Service, secrets Secrets) (reason, msg string) {
	var missing, unavailable []string
	for _, e := range svc.Spec.Env {
		if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			continue
		}
		ref := e.ValueFrom.SecretKeyRef
		s, ok := secrets[ref.Name]
		switch {
		case ok && s.Err != "":
			unavailable = append(unavailable, fmt.Sprintf("secret %q cannot be opened: %s", ref.Name, s.Err))
		case ref.Optional:
		case !ok || s.Missing:
			missing = append(missing, fmt.Sprintf("env %s: secret %q not found", e.Name, ref.Name))
		case !hasKey(s, ref.Key):
			missing = append(missing, fmt.Sprintf("env %s: secret %q has no key %q", e.Name, ref.Name, ref.Key))
		}
	}
	for i, m := range svc.Spec.Volumes {
		ref := m.Secret
		if ref == nil {
			continue
		}
		s, ok := secrets[ref.Name]
		switch {
		case ok && s.Err != "":
			unavailable = append(unavailable, fmt.Sprintf("secret %q cannot be opened: %s", ref.Name, s.Err))
		case ref.Optional:
		case !ok || s.Missing:
			missing = append(missing, fmt.Sprintf("volumes[%d]: secret %q not found", i, ref.Name))
		case !hasKey(s, ref.Key):
			missing = append(missing, fmt.Sprintf("volumes[%d]: secret %q has no key %q", i, ref.Name, ref.Key))
		}
	}
	switch {
	case len(unavailable) > 0:
		return ReasonSecretUnavailable, strings.Join(slices.Compact(unavailable), "; ") + " (nothing is deployed without its secrets; running containers keep running)"
	case len(missing) > 0:
		return ReasonSecretNotFound, strings.Join(missing, "; ")
	}
	return "", ""
}

func hasKey(s SecretValues, key string) bool {
	_, ok := s.Values[key]
	return ok
}

// resolveEnv returns the container's environment and what its spec hash
// covers instead: a secret variable is hashed as a reference with the
// value's digest, never the value. Call it only when SecretProblem is "".
func resolveEnv(sp *api.ServiceSpec, secrets Secrets) (env, hashed []string) {
	for _, e := range sp.Env {
		if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			env = append(env, e.Name+"="+e.Value)
			hashed = append(hashed, e.Name+"="+e.Value)
			continue
		}
		ref := e.ValueFrom.SecretKeyRef
		s := secrets[ref.Name]
		v, ok := s.Values[ref.Key]
		if !ok {
			continue // optional and absent
		}
		env = append(env, e.Name+"="+v)
		hashed = append(hashed, fmt.Sprintf("%s=secret:%s/%s@%s", e.Name, ref.Name, ref.Key, s.Digests[ref.Key]))
	}
	return env, hashed
}

func secretsOK(svc *api.Service, secrets Secrets) bool {
	reason, _ := SecretProblem(svc, secrets)
	return reason == ""
}
