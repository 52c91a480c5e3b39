package controller

import (
	"context"
	"errors"
	"fmt"

	"github.com/panelx/panelx/reconcile"
	"github.com/panelx/panelx/seal"
	"github.com/panelx/panelx/store"
)

// StoreCredentials finds registry credentials in the store, per project:
// one tenant's credentials never serve another's pulls. Passwords are
// sealed (seal package); Keyring opens them.
type StoreCredentials struct {
	Store   store.Store
	Keyring *seal.Keyring
}

// RegistryCredential implements reconcile.CredentialSource.
func (c StoreCredentials) RegistryCredential(ctx context.Context, project, registry string) (*reconcile.RegistryAuth, error) {
	cred, err := c.Store.RegistryCredentials().Get(ctx, project, registry)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil // anonymous pull
	}
	if err != nil {
		return nil, err
	}
	password, err := c.Keyring.OpenText(seal.RegistryPasswordContext(project, registry), cred.Password)
	if err != nil {
		// Fail closed: an anonymous pull would hide why the pull fails.
		return nil, fmt.Errorf("open the password for registry %s: %s", registry, seal.Describe(err))
	}
	return &reconcile.RegistryAuth{Registry: registry, Username: cred.Username, Password: password}, nil
}
