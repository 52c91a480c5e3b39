package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/panelx/panelx/api"
)

// SecretData is a secret's values as the server reveals them to owners
// and admins (GET …/secrets/{name}/data).
type SecretData struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   api.ObjectMeta    `json:"metadata"`
	Version    int64             `json:"version"`
	Data       map[string]string `json:"data"`
}

// SecretData reads a secret's values. The server records every read as an
// event of the project (without the values).
func (c *Client) SecretData(ctx context.Context, project, name string) (*SecretData, error) {
	p, err := objectPath(api.KindSecret, project, name)
	if err != nil {
		return nil, err
	}
	var out SecretData
	if err := c.do(ctx, request{method: http.MethodGet, path: p + "/data"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RotateReport is the server's account of a master key rotation.
type RotateReport struct {
	// KeyID is the active master key now; Retired the keys that left the
	// key file.
	KeyID   string   `json:"keyId"`
	Retired []string `json:"retired,omitempty"`
	// Secrets and RegistryCredentials count the items re-sealed.
	Secrets             int `json:"secrets"`
	RegistryCredentials int `json:"registryCredentials"`
}

// RotateKey makes a new master key the active one and has the server
// re-seal every secret and registry password under it (server
// administrators only). keepOld leaves the old keys in the key file, for
// servers that read their own copy of it.
func (c *Client) RotateKey(ctx context.Context, keepOld bool) (*RotateReport, error) {
	q := url.Values{}
	if keepOld {
		q.Set("keepOld", "true")
	}
	var rep RotateReport
	if err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/admin/secret-key/rotate", query: q}, &rep); err != nil {
		return nil, err
	}
	return &rep, nil
}
