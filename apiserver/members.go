package apiserver

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/go-chi/chi/v5"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/apiserver/authz"
	"github.com/panelx/panelx/store"
)

// memberRequest is the body of PUT …/members/{userId}.
type memberRequest struct {
	Role store.Role `json:"role"`
}

// itemsResponse wraps a list that is not of resources.
type itemsResponse[T any] struct {
	Items []T `json:"items"`
}

func items[T any](list []T) itemsResponse[T] {
	if list == nil {
		list = []T{}
	}
	return itemsResponse[T]{Items: list}
}

// errLastOwner: a project always keeps an owner.
var errLastOwner = httpErr(http.StatusConflict, "a project keeps at least one owner: make someone else owner first")

// pathParam returns a URL parameter unescaped (user ids and registries may
// carry escaped characters).
func pathParam(r *http.Request, name string) (string, bool) {
	v, err := url.PathUnescape(chi.URLParam(r, name))
	return v, err == nil
}

func (s *Server) listMembers(w http.ResponseWriter, r *http.Request) {
	project := chi.URLParam(r, "project")
	if _, err := s.authorize(r, project, authz.Read); err != nil {
		s.fail(w, r, err)
		return
	}
	list, err := s.store.Members().List(r.Context(), project)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, items(list))
}

// memberTarget authorizes the caller in the project (any role: what they
// may do to whom is decided per change) and reads the target user id.
func (s *Server) memberTarget(r *http.Request) (project, userID string, actor store.Role, err error) {
	project = chi.URLParam(r, "project")
	if actor, err = s.authorize(r, project, authz.Read); err != nil {
		return
	}
	userID, ok := pathParam(r, "userId")
	if !ok || !authz.ValidUserID(userID) {
		err = httpErr(http.StatusNotFound, "member not found: not a valid user id")
	}
	return
}

func (s *Server) putMember(w http.ResponseWriter, r *http.Request) {
	project, userID, actor, err := s.memberTarget(r)
	var data []byte
	if err == nil {
		data, err = s.readBody(w, r, bodyTypes...)
	}
	var req memberRequest
	if err == nil {
		err = decodeStrict(data, &req)
	}
	if err == nil && !req.Role.Valid() {
		err = invalid(api.ErrorList{api.NotSupported("role", req.Role, store.Roles...)})
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx := r.Context()
	var out store.Member
	created := false
	err = s.store.InTx(ctx, func(repo store.Repo) error {
		var current store.Role
		m, err := repo.Members().Get(ctx, project, userID)
		switch {
		case err == nil:
			current = m.Role
		case errors.Is(err, store.ErrNotFound):
			created = true
		default:
			return err
		}
		if err := authz.CheckMemberPut(actor, current, req.Role); err != nil {
			return err
		}
		if out, err = repo.Members().Put(ctx, store.Member{Project: project, UserID: userID, Role: req.Role}); err != nil {
			return err
		}
		if current == store.RoleOwner && req.Role != store.RoleOwner {
			return ensureOwner(r, repo, project)
		}
		return nil
	})
	s.authCache.ForgetMember(project, userID) // after the commit, whatever it did
	if err != nil {
		s.fail(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, out)
}

func (s *Server) deleteMember(w http.ResponseWriter, r *http.Request) {
	project, userID, actor, err := s.memberTarget(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx := r.Context()
	self := userID == authz.PrincipalFrom(ctx).UserID
	err = s.store.InTx(ctx, func(repo store.Repo) error {
		m, err := repo.Members().Get(ctx, project, userID)
		if errors.Is(err, store.ErrNotFound) {
			return httpErr(http.StatusNotFound, "%q is not a member of project %q", userID, project)
		}
		if err != nil {
			return err
		}
		if err := authz.CheckMemberDelete(actor, m.Role, self); err != nil {
			return err
		}
		if err := repo.Members().Delete(ctx, project, userID); err != nil {
			return err
		}
		if m.Role == store.RoleOwner {
			return ensureOwner(r, repo, project)
		}
		return nil
	})
	s.authCache.ForgetMember(project, userID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ensureOwner fails (rolling the transaction back) when the project has no
// owner left. Two transactions demoting the last two owners at the same
// instant could both pass this check under READ COMMITTED; PostgreSQL's
// deferred keep_an_owner trigger (migrations/postgres/00004) fails the
// second at commit, and the embedded store serialises all writes.
func ensureOwner(r *http.Request, repo store.Repo, project string) error {
	list, err := repo.Members().List(r.Context(), project)
	if err != nil {
		return err
	}
	for _, m := range list {
		if m.Role == store.RoleOwner {
			return nil
		}
	}
	return errLastOwner
}

// decodeStrict decodes a non-resource body with the manifest decoder's
// strictness (unknown fields are 422s) and checks its text.
func decodeStrict(data []byte, v any) error {
	if err := api.DecodeStrict(data, v); err != nil {
		var errs api.ErrorList
		if errors.As(err, &errs) {
			return invalid(errs)
		}
		return err
	}
	if errs := checkText(v); len(errs) > 0 {
		return invalid(errs)
	}
	return nil
}
