package apiserver

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/go-chi/chi/v5"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/apiserver/auth"
	"github.com/panelx/panelx/apiserver/authz"
	"github.com/panelx/panelx/store"
)

// maxTokensPerUser bounds what one user can make the store hold.
const maxTokensPerUser = 200

// tokenRequest is the body of POST /api/v1/tokens.
type tokenRequest struct {
	Name string `json:"name"`
	// ExpiresIn is a Go duration ("720h"); ExpiresAt a time. At most one.
	ExpiresIn string     `json:"expiresIn,omitempty"`
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
	// Project limits the token to one project the caller is a member of.
	Project string `json:"project,omitempty"`
	// Edge makes a token for `panelx edge` (server administrators only): it
	// reads every project's routes and nothing else.
	Edge bool `json:"edge,omitempty"`
}

// tokenCreated is the one response that carries the token's secret.
type tokenCreated struct {
	// Token is the secret: shown now, never again.
	Token string `json:"token"`
	store.APIToken
}

var tokenIDRe = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)

// tokenManager refuses project-scoped tokens: a token limited to one
// project must not see the user's other tokens nor mint broader ones. It
// returns whose tokens the request manages: the caller's, or with
// ?edge=true (administrators only) the edges'.
func tokenManager(r *http.Request) (*authz.Principal, string, error) {
	p := authz.PrincipalFrom(r.Context())
	if p.Scoped() {
		return nil, "", authz.Forbidden("a project-scoped API token cannot manage API tokens")
	}
	if r.URL.Query().Get("edge") == "true" {
		if !p.Admin {
			return nil, "", authz.Forbidden("only server administrators manage edge tokens")
		}
		return p, authz.EdgeUserID, nil
	}
	return p, p.UserID, nil
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	_, owner, err := tokenManager(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	list, err := s.store.Tokens().List(r.Context(), owner)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, items(list))
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	p, owner, err := tokenManager(r)
	var data []byte
	if err == nil {
		data, err = s.readBody(w, r, bodyTypes...)
	}
	var req tokenRequest
	if err == nil {
		err = decodeStrict(data, &req)
	}
	if err == nil && req.Edge {
		switch {
		case !p.Admin:
			err = authz.Forbidden("only server administrators make edge tokens")
		case req.Project != "":
			err = invalid(api.ErrorList{api.Invalid("project", req.Project, "an edge token serves every project; leave project out")})
		default:
			owner = authz.EdgeUserID
		}
	}
	var expires *time.Time
	if err == nil {
		expires, err = s.tokenExpiry(p, &req)
	}
	if err == nil && req.Project != "" {
		_, err = s.authz.Authorize(r.Context(), p, req.Project, authz.Read)
	}
	var existing []store.APIToken
	if err == nil {
		existing, err = s.store.Tokens().List(r.Context(), owner)
	}
	if err == nil && len(existing) >= maxTokensPerUser {
		err = httpErr(http.StatusConflict, "you have %d API tokens, the most allowed; revoke some first", len(existing))
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	plain, hash, err := auth.GenerateAPIToken()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	tok, err := s.store.Tokens().Create(r.Context(), store.APIToken{
		UserID: owner, Name: req.Name, Prefix: auth.TokenPrefix(plain), Hash: hash, Project: req.Project, ExpiresAt: expires,
	})
	if errors.Is(err, store.ErrNotFound) {
		err = &authz.ProjectNotFoundError{Project: req.Project}
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, tokenCreated{Token: plain, APIToken: tok})
}

// tokenExpiry checks a token request and returns its expiry. A token made
// with another API token never outlives it.
func (s *Server) tokenExpiry(p *authz.Principal, req *tokenRequest) (*time.Time, error) {
	var errs api.ErrorList
	name := strings.TrimSpace(req.Name)
	switch {
	case name == "":
		errs = append(errs, api.Required("name", "give the token a name, such as \"ci\""))
	case len(req.Name) > 200 || strings.IndexFunc(req.Name, unicode.IsControl) >= 0:
		errs = append(errs, api.Invalid("name", req.Name, "must be at most 200 characters without control characters"))
	}
	now := s.now()
	var expires *time.Time
	switch {
	case req.ExpiresIn != "" && req.ExpiresAt != nil:
		errs = append(errs, api.Invalid("expiresIn", req.ExpiresIn, "give expiresIn or expiresAt, not both"))
	case req.ExpiresIn != "":
		d, err := time.ParseDuration(req.ExpiresIn)
		if err != nil || d <= 0 {
			errs = append(errs, api.Invalid("expiresIn", req.ExpiresIn, "must be a positive duration such as \"720h\""))
		} else {
			t := now.Add(d).UTC()
			expires = &t
		}
	case req.ExpiresAt != nil:
		if !req.ExpiresAt.After(now) {
			errs = append(errs, api.Invalid("expiresAt", req.ExpiresAt.Format(time.RFC3339), "must be in the future"))
		} else {
			t := req.ExpiresAt.UTC()
			expires = &t
		}
	}
	if p.Method == authz.MethodAPIToken && !p.ExpiresAt.IsZero() {
		switch {
		case expires == nil:
			t := p.ExpiresAt
			expires = &t
		case expires.After(p.ExpiresAt):
			errs = append(errs, api.Invalid("expiresAt", expires.Format(time.RFC3339),
				fmt.Sprintf("must not be later than the expiry of the token making it (%s)", p.ExpiresAt.Format(time.RFC3339))))
		}
	}
	if len(errs) > 0 {
		return nil, invalid(errs)
	}
	return expires, nil
}

func (s *Server) deleteToken(w http.ResponseWriter, r *http.Request) {
	_, owner, err := tokenManager(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	id := chi.URLParam(r, "id")
	err = store.ErrNotFound
	if tokenIDRe.MatchString(id) {
		err = s.store.Tokens().Delete(r.Context(), owner, id)
		s.authCache.ForgetTokens() // after the commit: this server's next request sees it
	}
	if errors.Is(err, store.ErrNotFound) {
		err = httpErr(http.StatusNotFound, "no API token %q of yours", id)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// me answers who the credential authenticates.
func (s *Server) me(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, authz.PrincipalFrom(r.Context()))
}
