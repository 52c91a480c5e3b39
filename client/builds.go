package client

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
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

// BuildContext is an uploaded build context.
type BuildContext struct {
	Digest  string    `json:"digest"`
	Size    int64     `json:"size"`
	Created time.Time `json:"created"`
}

func buildContextsPath(project string) string {
	return "/api/v1/projects/" + url.PathEscape(project) + "/build-contexts"
}

// StatBuildContext returns the project's uploaded context of digest; a
// context the project does not hold is an error IsNotFound tells.
func (c *Client) StatBuildContext(ctx context.Context, project, digest string) (*BuildContext, error) {
	var out BuildContext
	if err := c.do(ctx, request{method: http.MethodGet, path: buildContextsPath(project) + "/" + url.PathEscape(digest)}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UploadBuildContext sends the tar r as a build context of the project
// and returns what the server stored. It is gzipped as it streams unless
// the server is on this machine (loopback), where compressing costs more
// time than it saves.
func (c *Client) UploadBuildContext(ctx context.Context, project string, r io.Reader) (*BuildContext, error) {
	rq := request{method: http.MethodPost, path: buildContextsPath(project), body: r, contentType: "application/x-tar"}
	if !c.loopback() {
		pr, pw := io.Pipe()
		go func() {
			zw, _ := gzip.NewWriterLevel(pw, gzip.BestSpeed)
			_, err := io.Copy(zw, r)
			if err == nil {
				err = zw.Close()
			}
			pw.CloseWithError(err)
		}()
		defer pr.Close()
		rq.body, rq.header = pr, http.Header{"Content-Encoding": {"gzip"}}
	}
	var out BuildContext
	if err := c.do(ctx, rq, &out); err != nil {
		return nil, fmt.Errorf("upload the build context: %w", err)
	}
	return &out, nil
}

// loopback says whether the server is on this machine.
func (c *Client) loopback() bool {
	host := c.base.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
