package controller

import (
	"context"
	"errors"

	"github.com/panelx/panelx/reconcile"
	"github.com/panelx/panelx/store"
)

// StoreCredentials finds registry credentials in the store, per project:
// one tenant's credentials never serve another's pulls.
type StoreCredentials struct{ Store store.Store }

// RegistryCredential implements reconcile.CredentialSource.
func (c StoreCredentials) RegistryCredential(ctx context.Context, project, registry string) (*reconcile.RegistryAuth, error) {
	cred, err := c.Store.RegistryCredentials().Get(ctx, project, registry)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil // anonymous pull
	}
	if err != nil {
		return nil, err
	}
	return &reconcile.RegistryAuth{Registry: registry, Username: cred.Username, Password: cred.Password}, nil
}
