package apiserver

import (
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/panelx/panelx/apiserver/authz"
	"github.com/panelx/panelx/builder/buildctx"
)

// uploadIdleTimeout drops an upload that sends nothing for this long; a
// slow one that keeps sending goes on (a context can be large).
const uploadIdleTimeout = time.Minute

// putBuildContext: POST /api/v1/projects/{project}/build-contexts — store
// a build context (a tar, optionally Content-Encoding: gzip) for services
// of the project to build from (spec.build.upload.digest). Contexts are
// content-addressed: the answer names the digest.
func (s *Server) putBuildContext(w http.ResponseWriter, r *http.Request) {
	project := chi.URLParam(r, "project")
	if _, err := s.authorize(r, project, authz.Write); err != nil {
		s.fail(w, r, err)
		return
	}
	if s.contexts == nil {
		s.fail(w, r, httpErr(http.StatusServiceUnavailable, "this server keeps no build contexts"))
		return
	}
	if err := checkContentType(r, []string{"application/x-tar", "application/octet-stream"}); err != nil {
		s.fail(w, r, err)
		return
	}
	body := io.Reader(&idleReader{r: r.Body, rc: http.NewResponseController(w)})
	switch enc := strings.ToLower(r.Header.Get("Content-Encoding")); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			s.fail(w, r, httpErr(http.StatusBadRequest, "the body is not gzip: %v", err))
			return
		}
		defer zr.Close()
		body = zr
	default:
		s.fail(w, r, httpErr(http.StatusUnsupportedMediaType, "Content-Encoding %q: send the tar as is or gzip", enc))
		return
	}
	info, err := s.contexts.Put(r.Context(), project, body)
	if err != nil {
		s.fail(w, r, contextError(err))
		return
	}
	writeJSON(w, http.StatusCreated, info)
}

// getBuildContext: GET …/build-contexts/{digest} — whether the project
// has the context (the CLI asks before uploading an unchanged one).
func (s *Server) getBuildContext(w http.ResponseWriter, r *http.Request) {
	project := chi.URLParam(r, "project")
	if _, err := s.authorize(r, project, authz.Read); err != nil {
		s.fail(w, r, err)
		return
	}
	if s.contexts == nil {
		s.fail(w, r, httpErr(http.StatusServiceUnavailable, "this server keeps no build contexts"))
		return
	}
	info, err := s.contexts.Stat(project, chi.URLParam(r, "digest"))
	if err != nil {
		s.fail(w, r, contextError(err))
		return
	}
	writeJSON(w, http.StatusOK, info)
}

func contextError(err error) error {
	var maxErr *http.MaxBytesError
	switch {
	case errors.Is(err, buildctx.ErrTooLarge):
		return httpErr(http.StatusRequestEntityTooLarge, "%v", err)
	case errors.Is(err, buildctx.ErrInvalid):
		return httpErr(http.StatusBadRequest, "%v", err)
	case errors.Is(err, buildctx.ErrNotFound):
		return httpErr(http.StatusNotFound, "%v", err)
	case errors.As(err, &maxErr), errors.Is(err, gzip.ErrHeader), errors.Is(err, gzip.ErrChecksum), errors.Is(err, io.ErrUnexpectedEOF):
		return httpErr(http.StatusBadRequest, "could not read the upload: %v", err)
	}
	return err
}

// idleReader gives each read of the body uploadIdleTimeout.
type idleReader struct {
	r  io.Reader
	rc *http.ResponseController
}

func (i *idleReader) Read(p []byte) (int, error) {
	_ = i.rc.SetReadDeadline(time.Now().Add(uploadIdleTimeout))
	return i.r.Read(p)
}
