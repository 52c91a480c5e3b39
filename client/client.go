// Package client talks to a PanelX server's REST API: the CLI is built on
// it. It decodes resources into the api types and problem documents into
// *APIError.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/internal/version"
)

// Client is an API client. The zero value is not usable; use New.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// New returns a client of the server at base (http://host:port) that
// authenticates with token (a PanelX API token or a Supabase JWT).
func New(base, token string) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server %q: want an http:// or https:// URL", base)
	}
	if token == "" {
		return nil, errors.New("no token: run `panelx login`, or set PANELX_TOKEN or --token")
	}
	return &Client{base: u, token: token, http: &http.Client{Timeout: 0}}, nil
}

// Problem is the server's RFC 9457 problem document.
type Problem = api.Problem

// APIError is a non-2xx answer.
type APIError struct {
	Status  int
	Problem Problem
}

func (e *APIError) Error() string {
	var b strings.Builder
	detail := e.Problem.Detail
	if detail == "" {
		detail = e.Problem.Title
	}
	if detail == "" {
		detail = http.StatusText(e.Status)
	}
	fmt.Fprintf(&b, "%s (HTTP %d)", detail, e.Status)
	for _, fe := range e.Problem.Errors {
		fmt.Fprintf(&b, "\n  %s", fe.Error())
	}
	return b.String()
}

// IsNotFound reports whether err is a 404.
func IsNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// request describes one call.
type request struct {
	method      string
	path        string
	query       url.Values
	body        io.Reader
	contentType string
	header      http.Header
	// escaped: path is already escaped (segments with PathEscape) and
	// must reach the server exactly so.
	escaped bool
}

func (c *Client) newRequest(ctx context.Context, r request) (*http.Request, error) {
	u := *c.base
	u.Path = c.base.Path + r.path
	if r.escaped {
		u.RawPath = c.base.EscapedPath() + r.path
		p, err := url.PathUnescape(u.RawPath)
		if err != nil {
			return nil, fmt.Errorf("path %q: %w", r.path, err)
		}
		u.Path = p
	}
	u.RawQuery = r.query.Encode()
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), r.body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("User-Agent", "panelx-cli/"+version.Version)
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	return req, nil
}

// do sends the request and decodes a 2xx body into out (unless nil).
func (c *Client) do(ctx context.Context, r request, out any) error {
	req, err := c.newRequest(ctx, r)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", r.method, r.path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return decodeError(resp)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode the answer: %w", r.method, r.path, err)
	}
	return nil
}

func decodeError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	e := &APIError{Status: resp.StatusCode}
	if json.Unmarshal(data, &e.Problem) != nil {
		e.Problem.Detail = strings.TrimSpace(string(data))
	}
	return e
}

// collection returns the path of a kind's collection.
func collection(kind api.Kind, project string) (string, error) {
	switch kind {
	case api.KindProject:
		return "/api/v1/projects", nil
	case api.KindService, api.KindVolume, api.KindSecret:
		if project == "" {
			return "", fmt.Errorf("a %s belongs to a project: give -p PROJECT", kind)
		}
		return "/api/v1/projects/" + url.PathEscape(project) + "/" + strings.ToLower(string(kind)) + "s", nil
	}
	return "", fmt.Errorf("unknown kind %q", kind)
}

func objectPath(kind api.Kind, project, name string) (string, error) {
	if kind == api.KindProject {
		project = ""
	}
	coll, err := collection(kind, project)
	if err != nil {
		return "", err
	}
	return coll + "/" + url.PathEscape(name), nil
}

// Get returns one object.
func (c *Client) Get(ctx context.Context, kind api.Kind, project, name string) (api.Object, error) {
	p, err := objectPath(kind, project, name)
	if err != nil {
		return nil, err
	}
	obj, err := api.New(kind)
	if err != nil {
		return nil, err
	}
	if err := c.do(ctx, request{method: http.MethodGet, path: p}, obj); err != nil {
		return nil, err
	}
	return obj, nil
}

type listPage struct {
	Metadata struct {
		Continue string `json:"continue"`
	} `json:"metadata"`
	Items []json.RawMessage `json:"items"`
}

// List returns every object of a kind (all pages), optionally filtered by a
// label selector.
func (c *Client) List(ctx context.Context, kind api.Kind, project, selector string) ([]api.Object, error) {
	p, err := collection(kind, project)
	if err != nil {
		return nil, err
	}
	var out []api.Object
	q := url.Values{}
	if selector != "" {
		q.Set("labelSelector", selector)
	}
	for {
		var page listPage
		if err := c.do(ctx, request{method: http.MethodGet, path: p, query: q}, &page); err != nil {
			return nil, err
		}
		for _, raw := range page.Items {
			obj, _ := api.New(kind)
			if err := json.Unmarshal(raw, obj); err != nil {
				return nil, fmt.Errorf("decode %s: %w", kind, err)
			}
			out = append(out, obj)
		}
		if page.Metadata.Continue == "" {
			return out, nil
		}
		q.Set("continue", page.Metadata.Continue)
	}
}

// Create stores a new object: POST to its kind's collection. The answer is
// the object as stored (a secret without its values).
func (c *Client) Create(ctx context.Context, obj api.Object) (api.Object, error) {
	m := obj.GetMeta()
	p, err := collection(obj.GetKind(), m.Project)
	if err != nil {
		return nil, err
	}
	return c.send(ctx, http.MethodPost, p, obj)
}

// Replace overwrites an existing object: PUT, so the spec sent is the
// whole spec (a secret's keys not sent are gone). A resourceVersion in
// obj makes it conditional (412 when the object changed since).
func (c *Client) Replace(ctx context.Context, obj api.Object) (api.Object, error) {
	m := obj.GetMeta()
	p, err := objectPath(obj.GetKind(), m.Project, m.Name)
	if err != nil {
		return nil, err
	}
	return c.send(ctx, http.MethodPut, p, obj)
}

// send writes obj as JSON and decodes the object answered.
func (c *Client) send(ctx context.Context, method, path string, obj api.Object) (api.Object, error) {
	body, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", obj.GetKind(), err)
	}
	out, err := api.New(obj.GetKind())
	if err != nil {
		return nil, err
	}
	err = c.do(ctx, request{method: method, path: path, body: bytes.NewReader(body), contentType: "application/json"}, out)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteOptions of a delete.
type DeleteOptions struct {
	PurgeVolumes bool
}

// Delete deletes one object (two-phase: the controller removes it).
func (c *Client) Delete(ctx context.Context, kind api.Kind, project, name string, opts DeleteOptions) error {
	p, err := objectPath(kind, project, name)
	if err != nil {
		return err
	}
	q := url.Values{}
	if opts.PurgeVolumes {
		q.Set("purgeVolumes", "true")
	}
	return c.do(ctx, request{method: http.MethodDelete, path: p, query: q}, nil)
}

// Events lists a project's events, newest first.
func (c *Client) Events(ctx context.Context, project string, kind api.Kind, name string, limit int) ([]api.Event, error) {
	q := url.Values{}
	if kind != "" {
		q.Set("kind", string(kind))
	}
	if name != "" {
		q.Set("name", name)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out struct {
		Items []api.Event `json:"items"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/projects/" + url.PathEscape(project) + "/events", query: q}, &out)
	return out.Items, err
}

// ApplyOptions of an apply.
type ApplyOptions struct {
	DryRun       bool
	Prune        bool
	PruneVolumes bool
}

// ApplyResult is the server's answer for one object.
type ApplyResult = api.ApplyResult

// Apply sends manifests (YAML or JSON, one or many documents) to the
// server's apply endpoint.
func (c *Client) Apply(ctx context.Context, manifests []byte, opts ApplyOptions) ([]ApplyResult, error) {
	q := url.Values{}
	if opts.DryRun {
		q.Set("dryRun", "true")
	}
	if opts.Prune {
		q.Set("prune", "true")
	}
	if opts.PruneVolumes {
		q.Set("pruneVolumes", "true")
	}
	var out struct {
		Items []ApplyResult `json:"items"`
	}
	err := c.do(ctx, request{method: http.MethodPost, path: "/api/v1/apply", query: q,
		body: bytes.NewReader(manifests), contentType: "application/yaml"}, &out)
	return out.Items, err
}

// WatchEvent is one event of the watch stream; its Object is decoded
// by kind.
type WatchEvent = api.WatchEvent

// WatchFilter narrows a watch.
type WatchFilter struct {
	Project string
	Kind    api.Kind
	Name    string
}

// Watch follows the server's watch stream (Server-Sent Events): first the
// current state, then every change. The channel closes when the stream
// ends; the error channel then says why (nil when ctx ended).
func (c *Client) Watch(ctx context.Context, f WatchFilter) (<-chan WatchEvent, <-chan error, error) {
	q := url.Values{}
	if f.Project != "" {
		q.Set("project", f.Project)
	}
	if f.Kind != "" {
		q.Set("kind", string(f.Kind))
	}
	if f.Name != "" {
		q.Set("name", f.Name)
	}
	req, err := c.newRequest(ctx, request{method: http.MethodGet, path: "/api/v1/watch", query: q,
		header: http.Header{"Accept": {"text/event-stream"}}})
	if err != nil {
		return nil, nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("watch: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, nil, decodeError(resp)
	}
	events := make(chan WatchEvent)
	errc := make(chan error, 1)
	go func() {
		defer resp.Body.Close()
		defer close(events)
		errc <- readSSE(ctx, resp.Body, events)
	}()
	return events, errc, nil
}

// readSSE reads "data:" lines of Server-Sent Events as JSON watch events.
func readSSE(ctx context.Context, r io.Reader, out chan<- WatchEvent) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "data:"):
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		case line == "" && data.Len() > 0:
			var ev WatchEvent
			if err := json.Unmarshal([]byte(data.String()), &ev); err != nil {
				return fmt.Errorf("watch: bad event: %w", err)
			}
			data.Reset()
			select {
			case out <- ev:
			case <-ctx.Done():
				return nil
			}
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	return errors.New("watch: the server ended the stream")
}

// Ping checks that the server answers and the token is accepted.
func (c *Client) Ping(ctx context.Context) (string, error) {
	var me struct {
		UserID string `json:"userId"`
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/me"}, &me); err != nil {
		return "", err
	}
	return me.UserID, nil
}

// ServerVersion is the server's build (GET /api/v1/version).
type ServerVersion struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Date    string `json:"date"`
	Go      string `json:"go"`
}

// Version asks the server for its build.
func (c *Client) Version(ctx context.Context) (ServerVersion, error) {
	var v ServerVersion
	err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/version"}, &v)
	return v, err
}

// IsUnauthorized tells whether the server refused the credential (401).
func IsUnauthorized(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusUnauthorized
}

// APIToken is one of the caller's API tokens, as listed (never its secret).
type APIToken struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	Project    string     `json:"project,omitempty"`
	ExpiresAt  *time.Time `json:"expiresAt,omitempty"`
	CreatedAt  time.Time  `json:"createdAt"`
	LastUsedAt *time.Time `json:"lastUsedAt,omitempty"`
}

// Tokens lists the caller's API tokens.
func (c *Client) Tokens(ctx context.Context) ([]APIToken, error) {
	var page struct {
		Items []APIToken `json:"items"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/tokens"}, &page)
	return page.Items, err
}

// RevokeToken deletes one of the caller's API tokens by id.
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: "/api/v1/tokens/" + url.PathEscape(id)}, nil)
}

// RetainedVolume is a Docker volume no Volume holds any more.
type RetainedVolume struct {
	Name          string    `json:"name"`
	Project       string    `json:"project"`
	Volume        string    `json:"volume"`
	CreatedAt     time.Time `json:"createdAt"`
	UsedBy        []string  `json:"usedBy,omitempty"`
	ProjectExists bool      `json:"projectExists"`
}

// RetainedVolumes lists the retained Docker volumes the caller may purge.
func (c *Client) RetainedVolumes(ctx context.Context) ([]RetainedVolume, error) {
	var page struct {
		Items []RetainedVolume `json:"items"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: "/api/v1/retained-volumes"}, &page)
	return page.Items, err
}

// PurgeVolume removes a retained Docker volume and its data.
func (c *Client) PurgeVolume(ctx context.Context, name string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: "/api/v1/retained-volumes/" + url.PathEscape(name)}, nil)
}
