package client

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/panelx/panelx/api"
)

// Revisions lists a service's revisions, newest first (only the newest
// spec.rollout.revisionHistoryLimit are kept).
func (c *Client) Revisions(ctx context.Context, project, service string) ([]api.Revision, error) {
	var out struct {
		Items []api.Revision `json:"items"`
	}
	if err := c.do(ctx, request{method: http.MethodGet, path: servicePath(project, service, "revisions")}, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}

// Revision returns revision n of a service.
func (c *Client) Revision(ctx context.Context, project, service string, n int64) (*api.Revision, error) {
	var rev api.Revision
	p := servicePath(project, service, "revisions/"+strconv.FormatInt(n, 10))
	if err := c.do(ctx, request{method: http.MethodGet, path: p}, &rev); err != nil {
		return nil, err
	}
	return &rev, nil
}

// Rollback puts a service back on the template of a revision (0: the
// newest one before the current that ran something else) and returns the
// service as updated; the controller then rolls it out like any change.
func (c *Client) Rollback(ctx context.Context, project, service string, revision int64) (*api.Service, error) {
	r := request{method: http.MethodPost, path: servicePath(project, service, "rollback")}
	if revision > 0 {
		body, err := json.Marshal(struct {
			Revision int64 `json:"revision"`
		}{revision})
		if err != nil {
			return nil, err
		}
		r.body, r.contentType = bytes.NewReader(body), "application/json"
	}
	var svc api.Service
	if err := c.do(ctx, r, &svc); err != nil {
		return nil, err
	}
	return &svc, nil
}
