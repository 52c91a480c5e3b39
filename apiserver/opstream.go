package apiserver

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/apiserver/authz"
	"github.com/panelx/panelx/store"
)

// Defaults of the operate endpoints (logs, terminal, files).
const (
	// DefaultMaxUploadBytes bounds a file upload (PANELX_MAX_UPLOAD_BYTES).
	DefaultMaxUploadBytes = 512 << 20
	// DefaultStreamRecheck: how often every stream (watch, logs, terminal,
	// live metrics, the edges' route feed) verifies its credential again
	// and the caller's role in the project.
	DefaultStreamRecheck = 10 * time.Second
	// DefaultExecIdleTimeout ends a terminal without input or output.
	DefaultExecIdleTimeout = 10 * time.Minute
	// streamWriteTimeout: a client that cannot take a message this fast
	// is dropped rather than buffered for.
	streamWriteTimeout = 10 * time.Second
	// streamPing keeps proxies from closing a quiet stream and finds dead
	// WebSocket peers.
	streamPing = 15 * time.Second
)

// opsSettings is what the operate endpoints need from Options.
type opsSettings struct {
	ops       Operations
	maxUpload int64
	recheck   time.Duration
	idle      time.Duration
}

func newOpsSettings(o Options) opsSettings {
	s := opsSettings{ops: o.Operations, maxUpload: o.MaxUploadBytes, recheck: o.StreamRecheck, idle: o.ExecIdleTimeout}
	if s.maxUpload <= 0 {
		s.maxUpload = DefaultMaxUploadBytes
	}
	if s.recheck <= 0 {
		s.recheck = DefaultStreamRecheck
	}
	if s.idle <= 0 {
		s.idle = DefaultExecIdleTimeout
	}
	return s
}

// operations returns the Operations or a 503.
func (s *Server) operations() (Operations, error) {
	if s.ops.ops == nil {
		return nil, httpErr(http.StatusServiceUnavailable, "logs, terminals and files need the Docker side, which this server does not run")
	}
	return s.ops.ops, nil
}

// serviceTarget authorizes the caller in the URL's project, then checks
// that the URL's service exists: strangers get the project's 404 before
// they can learn anything about services.
func (s *Server) serviceTarget(ctx context.Context, r *http.Request, p *authz.Principal, action authz.Action) (api.Key, error) {
	key := api.Key{Project: chi.URLParam(r, "project"), Name: chi.URLParam(r, "service")}
	if _, err := s.authz.Authorize(ctx, p, key.Project, action); err != nil {
		return key, err
	}
	notFound := httpErr(http.StatusNotFound, "service %q not found in project %q", key.Name, key.Project)
	if len(api.ValidateName("", key.Name)) > 0 {
		return key, notFound
	}
	if _, err := s.store.Services().Get(ctx, key); errors.Is(err, store.ErrNotFound) {
		return key, notFound
	} else if err != nil {
		return key, err
	}
	return key, nil
}

// volumeTarget is serviceTarget for the URL's volume.
func (s *Server) volumeTarget(r *http.Request, action authz.Action) (api.Key, error) {
	ctx := r.Context()
	key := api.Key{Project: chi.URLParam(r, "project"), Name: chi.URLParam(r, "volume")}
	if _, err := s.authz.Authorize(ctx, authz.PrincipalFrom(ctx), key.Project, action); err != nil {
		return key, err
	}
	notFound := httpErr(http.StatusNotFound, "volume %q not found in project %q", key.Name, key.Project)
	if len(api.ValidateName("", key.Name)) > 0 {
		return key, notFound
	}
	v, err := s.store.Volumes().Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return key, notFound
	} else if err != nil {
		return key, err
	}
	// On a swarm, the engine PanelX talks to holds only its own node's
	// volumes: one moved elsewhere may have a stale copy here, which must
	// never pass for the volume.
	if nn, ok := s.ops.ops.(NodeNamer); ok && v.Status.Node != "" {
		here, err := nn.NodeName(ctx)
		if err != nil {
			return key, err
		}
		if here != "" && here != v.Status.Node {
			return key, httpErr(http.StatusConflict, "volume %q holds its data on node %s; PanelX reaches the files of volumes on node %s only (move it there, or run PanelX on %s)",
				key.Name, v.Status.Node, here, v.Status.Node)
		}
	}
	return key, nil
}

// NodeNamer is Operations on a swarm: the node whose engine they reach
// ("" on one engine).
type NodeNamer interface {
	NodeName(ctx context.Context) (string, error)
}
