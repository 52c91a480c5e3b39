package apiserver

import (
	"errors"
	"net/http"

	"github.com/distribution/reference"
	"github.com/go-chi/chi/v5"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/apiserver/authz"
	"github.com/panelx/panelx/seal"
	"github.com/panelx/panelx/store"
)

// credentialRequest is the body of PUT …/registry-credentials/{registry}.
// The password is write-only: no response ever contains it.
type credentialRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// credentialTarget authorizes the caller and reads the registry, which
// must be spelled as the controller looks it up: the domain of an image
// reference ("docker.io", "ghcr.io", "127.0.0.1:5000").
func (s *Server) credentialTarget(r *http.Request) (project, registry string, err error) {
	project = chi.URLParam(r, "project")
	if _, err = s.authorize(r, project, authz.ManageCredentials); err != nil {
		return
	}
	registry, ok := pathParam(r, "registry")
	if !ok || len(registry) > 255 {
		return project, registry, httpErr(http.StatusNotFound, "not a registry")
	}
	named, perr := reference.ParseNormalizedNamed(registry + "/x")
	if perr != nil || reference.Domain(named) != registry {
		detail := "must be a registry host[:port] as in image references, such as ghcr.io or 127.0.0.1:5000"
		if perr == nil {
			detail = "write it as image references resolve it: " + reference.Domain(named)
		}
		err = invalid(api.ErrorList{api.Invalid("registry", registry, detail)})
	}
	return
}

func (s *Server) listCredentials(w http.ResponseWriter, r *http.Request) {
	project := chi.URLParam(r, "project")
	if _, err := s.authorize(r, project, authz.ManageCredentials); err != nil {
		s.fail(w, r, err)
		return
	}
	list, err := s.store.RegistryCredentials().List(r.Context(), project)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, items(list))
}

func (s *Server) getCredential(w http.ResponseWriter, r *http.Request) {
	project, registry, err := s.credentialTarget(r)
	var c store.RegistryCredential
	if err == nil {
		c, err = s.store.RegistryCredentials().Get(r.Context(), project, registry)
	}
	if errors.Is(err, store.ErrNotFound) {
		err = httpErr(http.StatusNotFound, "no credential for %q in project %q", registry, project)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	c.Password = "" // excluded from JSON anyway; never let it travel further
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) putCredential(w http.ResponseWriter, r *http.Request) {
	project, registry, err := s.credentialTarget(r)
	var data []byte
	if err == nil {
		data, err = s.readBody(w, r, bodyTypes...)
	}
	var req credentialRequest
	if err == nil {
		err = decodeStrict(data, &req)
	}
	if err == nil {
		var errs api.ErrorList
		if req.Username == "" || len(req.Username) > 1024 {
			errs = append(errs, api.Invalid("username", req.Username, "must be 1 to 1024 characters"))
		}
		if req.Password == "" || len(req.Password) > 64<<10 {
			errs = append(errs, &api.FieldError{Field: "password", Type: api.ErrInvalid, Detail: "must be 1 byte to 64 KiB"})
		}
		if len(errs) > 0 {
			err = invalid(errs)
		}
	}
	created := false
	if err == nil {
		_, gerr := s.store.RegistryCredentials().Get(r.Context(), project, registry)
		created = errors.Is(gerr, store.ErrNotFound)
	}
	// The password is sealed before it reaches the store (seal package).
	var sealed string
	if err == nil && s.keyring == nil {
		err = httpErr(http.StatusServiceUnavailable, "registry credentials are unavailable: the server has no master key to seal passwords with (set PANELX_SECRET_KEY_FILE)")
	}
	if err == nil {
		if sealed, err = s.keyring.SealText(seal.RegistryPasswordContext(project, registry), req.Password); err != nil {
			err = sealFailed("the password", err)
		}
	}
	var c store.RegistryCredential
	if err == nil {
		c, err = s.store.RegistryCredentials().Put(r.Context(), store.RegistryCredential{
			Project: project, Registry: registry, Username: req.Username, Password: sealed})
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	c.Password = ""
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, c)
}

func (s *Server) deleteCredential(w http.ResponseWriter, r *http.Request) {
	project, registry, err := s.credentialTarget(r)
	if err == nil {
		err = s.store.RegistryCredentials().Delete(r.Context(), project, registry)
	}
	if errors.Is(err, store.ErrNotFound) {
		err = httpErr(http.StatusNotFound, "no credential for %q in project %q", registry, project)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
