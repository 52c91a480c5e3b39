package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/apiserver/authz"
	"github.com/panelx/panelx/store"
)

// Problem is the problem document (api.Problem).
type Problem = api.Problem

// Problem types a client may tell apart.
const (
	ProblemDatabaseUnavailable = api.ProblemDatabaseUnavailable
	ProblemNoSpace             = api.ProblemNoSpace
)

// apiError is an error that already knows its HTTP answer.
type apiError struct {
	status int
	detail string
	errs   api.ErrorList
	cause  error // for the log only
}

func (e *apiError) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("%d %s: %v", e.status, e.detail, e.cause)
	}
	return fmt.Sprintf("%d %s", e.status, e.detail)
}

func (e *apiError) Unwrap() error { return e.cause }

func httpErr(status int, format string, args ...any) *apiError {
	return &apiError{status: status, detail: fmt.Sprintf(format, args...)}
}

// invalid is a 422 listing every field problem.
func invalid(errs api.ErrorList) *apiError {
	detail := "the object is invalid"
	if len(errs) == 1 {
		detail = errs[0].Error()
	} else if len(errs) > 1 {
		detail = fmt.Sprintf("%d problems: %s; …", len(errs), errs[0].Error())
	}
	return &apiError{status: http.StatusUnprocessableEntity, detail: detail, errs: errs}
}

// badQuery is a 400 naming the query parameter.
func badQuery(param, detail string) *apiError {
	return &apiError{status: http.StatusBadRequest, detail: param + ": " + detail,
		errs: api.ErrorList{{Field: param, Type: api.ErrInvalid, Detail: detail}}}
}

// writeJSON writes v as JSON with the status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// fail answers err as a problem document. Errors that know their status
// say so; store and authorization errors map by kind; anything else is a
// 500 whose detail says nothing about the cause (which is logged).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	p := Problem{Type: "about:blank", Instance: r.URL.Path, RequestID: requestID(r.Context())}
	var (
		ae     *apiError
		maxErr *http.MaxBytesError
		nf     *authz.ProjectNotFoundError
		taken  *store.HostnameTakenError
	)
	switch {
	case errors.As(err, &ae):
		p.Status, p.Detail, p.Errors = ae.status, ae.detail, ae.errs
	case errors.As(err, &maxErr):
		p.Status, p.Detail = http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than %d bytes", maxErr.Limit)
	case errors.Is(err, authz.ErrUnauthenticated):
		reason := authz.Reason(err)
		p.Status, p.Detail = http.StatusUnauthorized, reason
		w.Header().Set("WWW-Authenticate", wwwAuthenticate(reason))
	case errors.Is(err, authz.ErrOriginNotAllowed):
		p.Status, p.Detail = http.StatusForbidden, "this origin may not call the API"
	case errors.Is(err, authz.ErrForbidden):
		p.Status, p.Detail = http.StatusForbidden, err.Error()
	case errors.As(err, &nf):
		p.Status, p.Detail = http.StatusNotFound, nf.Error()
	case errors.Is(err, store.ErrNotFound):
		p.Status, p.Detail = http.StatusNotFound, "not found"
	case errors.As(err, &taken):
		// Says which hostname, never who holds it (unless in the same project).
		p.Status, p.Detail = http.StatusConflict, taken.Error()
		p.Errors = api.ErrorList{{Field: "spec.domains", Type: api.ErrDuplicate, Detail: taken.Error()}}
	case errors.Is(err, store.ErrAlreadyExists):
		p.Status, p.Detail = http.StatusConflict, "already exists"
	case errors.Is(err, store.ErrConflict):
		p.Status, p.Detail = http.StatusConflict, "the object changed or is being deleted; read it again"
	case errors.Is(err, store.ErrInvalid):
		p.Status, p.Detail = http.StatusBadRequest, "the request was refused as invalid"
	case errors.Is(err, store.ErrUnavailable):
		// Nothing was written: the client may simply try again.
		p.Type, p.Status = ProblemDatabaseUnavailable, http.StatusServiceUnavailable
		p.Detail = "the database is unreachable (down or restarting); nothing was changed, try again shortly"
		w.Header().Set("Retry-After", "1")
	case errors.Is(err, store.ErrNoSpace):
		p.Type, p.Status = ProblemNoSpace, http.StatusInsufficientStorage
		p.Detail = "the server's disk is full: the database cannot write (reads still work); nothing was changed — free space on the server"
	case r.Context().Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)):
		p.Status, p.Detail = http.StatusServiceUnavailable, "the request was cancelled"
	default:
		p.Status, p.Detail = http.StatusInternalServerError, "an internal error occurred; quote the request id when reporting it"
	}
	p.Title = http.StatusText(p.Status)
	log := logger(r.Context())
	if p.Status >= 500 {
		log.Error("request failed", zap.Int("status", p.Status), zap.Error(err))
	} else {
		log.Debug("request refused", zap.Int("status", p.Status), zap.Error(err))
	}
	writeProblem(w, p)
}

func writeProblem(w http.ResponseWriter, p Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// wwwAuthenticate follows RFC 6750: no error code when no credentials came.
func wwwAuthenticate(reason string) string {
	if reason == "missing token" {
		return `Bearer realm="panelx"`
	}
	reason = strings.NewReplacer(`"`, "'", `\`, "/").Replace(reason)
	return `Bearer realm="panelx", error="invalid_token", error_description="` + reason + `"`
}
