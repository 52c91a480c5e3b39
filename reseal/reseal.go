// Package reseal keeps what the store holds sealed under the master key:
// it rotates the key (re-wrapping every data key, touching no value),
// seals registry passwords stored before sealing existed, and finds items
// sealed under keys the key file does not hold.
package reseal

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/seal"
	"github.com/panelx/panelx/store"
)

// Report says what a pass changed.
type Report struct {
	// KeyID is the active master key after the pass; Retired the keys
	// removed from the key file.
	KeyID   string   `json:"keyId"`
	Retired []string `json:"retired,omitempty"`
	// Secrets, RegistryCredentials and CertificateKeys count the items
	// re-sealed.
	Secrets             int `json:"secrets"`
	RegistryCredentials int `json:"registryCredentials"`
	CertificateKeys     int `json:"certificateKeys"`
}

// Rotate makes a new master key the active one, re-wraps every secret and
// registry password under it and, unless keepOld, removes the old keys
// from the key file. Values, their digests and the secrets' versions stay
// the same, so no service restarts. Servers that read the same key file
// follow at once; servers with their own copy need the new file (keepOld
// leaves the old keys in it meanwhile).
func Rotate(ctx context.Context, st store.Store, kr *seal.Keyring, keepOld bool) (Report, error) {
	if kr == nil || kr.Path() == "" {
		return Report{}, seal.ErrNoKeyring
	}
	next, err := seal.NewKey()
	if err != nil {
		return Report{}, err
	}
	old, err := kr.Keys()
	if err != nil {
		return Report{}, err
	}
	if err := seal.WriteKeyFile(kr.Path(), append([]seal.Key{next}, old...)...); err != nil {
		return Report{}, err
	}
	if err := kr.Reload(); err != nil {
		return Report{}, err
	}
	rep := Report{KeyID: next.ID}
	// Twice: an item sealed by a request that read the old active key just
	// before the file changed is caught by the second pass.
	for range 2 {
		n, err := Rewrap(ctx, st, kr)
		rep.Secrets += n.Secrets
		rep.RegistryCredentials += n.RegistryCredentials
		rep.CertificateKeys += n.CertificateKeys
		if err != nil {
			return rep, err
		}
	}
	if keepOld {
		return rep, nil
	}
	if err := seal.WriteKeyFile(kr.Path(), next); err != nil {
		return rep, err
	}
	for _, k := range old {
		rep.Retired = append(rep.Retired, k.ID)
	}
	return rep, kr.Reload()
}

// Rewrap re-seals every item not under the active key (and seals legacy
// plaintext registry passwords and certificate keys).
func Rewrap(ctx context.Context, st store.Store, kr *seal.Keyring) (Report, error) {
	rep := Report{KeyID: kr.Active().ID}
	err := eachSecret(ctx, st, func(s *api.Secret) error {
		changed, err := rewrapSecret(ctx, st, kr, api.KeyOf(s))
		if changed {
			rep.Secrets++
		}
		return err
	})
	if err != nil {
		return rep, err
	}
	err = eachCredential(ctx, st, func(c store.RegistryCredential) error {
		sealed, changed, err := kr.RewrapText(seal.RegistryPasswordContext(c.Project, c.Registry), c.Password)
		if err != nil {
			return fmt.Errorf("re-seal the password for %s in project %s: %w", c.Registry, c.Project, err)
		}
		if !changed {
			return nil
		}
		c.Password = sealed
		if _, err := st.RegistryCredentials().Put(ctx, c); err != nil {
			return fmt.Errorf("store the re-sealed password for %s in project %s: %w", c.Registry, c.Project, err)
		}
		rep.RegistryCredentials++
		return nil
	})
	if err != nil {
		return rep, err
	}
	certs, err := st.Certificates().ListCustom(ctx, "")
	if err != nil {
		return rep, fmt.Errorf("list uploaded certificates: %w", err)
	}
	for _, c := range certs {
		sealed, changed, err := kr.RewrapText(seal.CertificateKeyContext(c.Host), c.PrivateKeyPEM)
		if err != nil {
			return rep, fmt.Errorf("re-seal the key of the certificate for %s: %w", c.Host, err)
		}
		if !changed {
			continue
		}
		c.PrivateKeyPEM = sealed
		if _, err := st.Certificates().PutCustom(ctx, c); err != nil {
			return rep, fmt.Errorf("store the re-sealed key of the certificate for %s: %w", c.Host, err)
		}
		rep.CertificateKeys++
	}
	return rep, nil
}

// rewrapSecret re-wraps one secret, retrying when it changed meanwhile.
func rewrapSecret(ctx context.Context, st store.Store, kr *seal.Keyring, key api.Key) (bool, error) {
	for range 5 {
		s, err := st.Secrets().Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		sealed, changed, err := kr.Rewrap(seal.SecretContext(key.Project, key.Name), s.Spec.Sealed)
		if err != nil {
			return false, fmt.Errorf("re-seal secret %s: %w", key, err)
		}
		if !changed {
			return false, nil
		}
		s.Spec.Sealed = sealed
		_, err = st.Secrets().Update(ctx, s) // guarded by the version read
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		return err == nil, err
	}
	return false, fmt.Errorf("re-seal secret %s: it kept changing", key)
}

// UnknownKeys counts, per master key ID, the secrets and registry
// passwords sealed under a key the keyring does not hold: what the server
// cannot open until the right key file is back.
func UnknownKeys(ctx context.Context, st store.Store, kr *seal.Keyring) (map[string]int, error) {
	var held []string
	if kr != nil {
		held = kr.IDs()
	}
	out := map[string]int{}
	count := func(id string) {
		if id != "" && !slices.Contains(held, id) {
			out[id]++
		}
	}
	err := eachSecret(ctx, st, func(s *api.Secret) error {
		if s.Spec.Sealed != nil {
			count(s.Spec.Sealed.KeyID)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = eachCredential(ctx, st, func(c store.RegistryCredential) error {
		count(seal.TextKeyID(c.Password))
		return nil
	})
	if err != nil {
		return nil, err
	}
	certs, err := st.Certificates().ListCustom(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list uploaded certificates: %w", err)
	}
	for _, c := range certs {
		count(seal.TextKeyID(c.PrivateKeyPEM))
	}
	return out, nil
}

func eachSecret(ctx context.Context, st store.Store, fn func(*api.Secret) error) error {
	opts := store.ListOptions{Limit: 500}
	for {
		page, err := st.Secrets().List(ctx, opts)
		if err != nil {
			return fmt.Errorf("list secrets: %w", err)
		}
		for _, s := range page.Items {
			if err := fn(s); err != nil {
				return err
			}
		}
		if page.Continue == "" {
			return nil
		}
		opts.Continue = page.Continue
	}
}

// eachCredential visits every registry credential with its (sealed)
// password.
func eachCredential(ctx context.Context, st store.Store, fn func(store.RegistryCredential) error) error {
	opts := store.ListOptions{Limit: 500}
	for {
		page, err := st.Projects().List(ctx, opts)
		if err != nil {
			return fmt.Errorf("list projects: %w", err)
		}
		for _, p := range page.Items {
			creds, err := st.RegistryCredentials().List(ctx, p.Metadata.Name)
			if err != nil {
				return fmt.Errorf("list registry credentials of %s: %w", p.Metadata.Name, err)
			}
			for _, c := range creds {
				full, err := st.RegistryCredentials().Get(ctx, c.Project, c.Registry)
				if errors.Is(err, store.ErrNotFound) {
					continue
				}
				if err != nil {
					return err
				}
				if err := fn(full); err != nil {
					return err
				}
			}
		}
		if page.Continue == "" {
			return nil
		}
		opts.Continue = page.Continue
	}
}
