package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// RequestBuild asks for a new build of a service built from source and
// returns the request's stamp.
func (c *Client) RequestBuild(ctx context.Context, project, service string) (string, error) {
	var out struct {
		Request string `json:"request"`
	}
	err := c.do(ctx, request{method: http.MethodPost, path: servicePath(project, service, "build")}, &out)
	return out.Request, err
}

// BuildLogs copies the log of the service's newest build to w; with
// follow, until the build ends.
func (c *Client) BuildLogs(ctx context.Context, project, service string, follow bool, w io.Writer) error {
	q := url.Values{}
	if follow {
		q.Set("follow", "true")
	}
	req, err := c.newRequest(ctx, request{method: http.MethodGet, path: servicePath(project, service, "build/logs"), query: q})
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("build logs of %s: %w", service, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return decodeError(resp)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

// CancelBuild cancels the service's queued or running build.
func (c *Client) CancelBuild(ctx context.Context, project, service string) error {
	return c.do(ctx, request{method: http.MethodPost, path: servicePath(project, service, "build/cancel")}, nil)
}
