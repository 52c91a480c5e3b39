package apiserver

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/apiserver/authz"
	"github.com/panelx/panelx/store"
)

// RollbackRequest names the revision to go back to; 0 (or no body) means
// the newest revision before the current one that ran something else.
type RollbackRequest struct {
	Revision int64 `json:"revision,omitempty"`
}

// serviceKey reads and authorizes the service of a revisions route, and
// checks it exists (a service's revisions are as visible as the service).
func (s *Server) serviceKey(r *http.Request, action authz.Action) (api.Key, *api.Service, error) {
	key := api.Key{Project: chi.URLParam(r, "project"), Name: chi.URLParam(r, "service")}
	if _, err := s.authorize(r, key.Project, action); err != nil {
		return key, nil, err
	}
	notFound := httpErr(http.StatusNotFound, "service %q not found in project %q", key.Name, key.Project)
	if len(api.ValidateName("", key.Name)) > 0 {
		return key, nil, notFound
	}
	svc, err := s.store.Services().Get(r.Context(), key)
	if errors.Is(err, store.ErrNotFound) {
		return key, nil, notFound
	}
	return key, svc, err
}

func (s *Server) listRevisions(w http.ResponseWriter, r *http.Request) {
	key, _, err := s.serviceKey(r, authz.Read)
	var revs []api.Revision
	if err == nil {
		revs, err = s.store.Revisions().List(r.Context(), key)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if revs == nil {
		revs = []api.Revision{}
	}
	writeJSON(w, http.StatusOK, listResponse[api.Revision]{APIVersion: api.APIVersion, Kind: "RevisionList", Items: revs})
}

func (s *Server) getRevision(w http.ResponseWriter, r *http.Request) {
	key, _, err := s.serviceKey(r, authz.Read)
	var rev api.Revision
	if err == nil {
		rev, err = s.revision(r, key, chi.URLParam(r, "revision"))
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rev)
}

func (s *Server) revision(r *http.Request, key api.Key, number string) (api.Revision, error) {
	n, err := strconv.ParseInt(number, 10, 64)
	if err != nil || n < 1 {
		return api.Revision{}, httpErr(http.StatusNotFound, "revision %q not found: revisions are numbered from 1", number)
	}
	rev, err := s.store.Revisions().Get(r.Context(), key, n)
	if errors.Is(err, store.ErrNotFound) {
		return rev, httpErr(http.StatusNotFound, "service %q has no revision %d (see its revisions: only the newest are kept)", key.Name, n)
	}
	return rev, err
}

// rollback: POST …/services/{service}/rollback — the service's spec goes
// back to a revision's template, its image pinned to the digest that
// revision ran (so a tag moved since changes nothing). Replicas, domains,
// dependencies and rollout settings stay as they are now, as do the
// secrets' values (a rollback does not resurrect a rotated credential).
func (s *Server) rollback(w http.ResponseWriter, r *http.Request) {
	key, svc, err := s.serviceKey(r, authz.Write)
	var req RollbackRequest
	if err == nil && r.ContentLength != 0 {
		var data []byte
		if data, err = s.readBody(w, r, bodyTypes...); err == nil && len(data) > 0 {
			err = decodeStrict(data, &req)
		}
	}
	if err == nil && svc.Metadata.DeletionTimestamp != nil {
		err = httpErr(http.StatusConflict, "service %q is being deleted", key.Name)
	}
	var target api.Revision
	if err == nil {
		target, err = s.rollbackTarget(r, key, svc, req.Revision)
	}
	if err == nil && target.Spec.Build != nil && target.ImageDigest == "" {
		err = httpErr(http.StatusConflict, "revision %d of service %q recorded no image to go back to", target.Number, key.Name)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	updated, err := s.writeRollback(r, svc, target)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.recordEvent(r.Context(), store.Event{Project: key.Project, Kind: api.KindService, Name: key.Name, Type: store.EventNormal,
		Reason: "RollbackRequested", Message: fmt.Sprintf("rollback to revision %d requested by %s", target.Number, authz.PrincipalFrom(r.Context()).UserID)})
	writeObject(w, http.StatusOK, updated)
}

// writeRollback writes the rolled-back spec with who asked and why, under
// the spec policy, retrying when the service changed meanwhile.
func (s *Server) writeRollback(r *http.Request, svc *api.Service, target api.Revision) (*api.Service, error) {
	ctx := r.Context()
	for range maxUpdateAttempts {
		next := api.Clone(svc)
		next.Spec = target.RollbackSpec(svc.Spec)
		next.Default()
		if err := s.checkPolicy(r, next); err != nil {
			return nil, err
		}
		m := &next.Metadata
		if m.Annotations == nil {
			m.Annotations = map[string]string{}
		}
		m.Annotations[api.AnnotationChangedBy] = authz.PrincipalFrom(ctx).UserID
		m.Annotations[api.AnnotationChangeCause] = fmt.Sprintf("rollback to revision %d", target.Number)
		if next.Spec.Build != nil {
			m.Annotations[api.AnnotationBuildRequest] = target.RollbackBuildRequest() // its image, not a new build
		}
		updated, err := s.store.Services().Update(ctx, next)
		if !errors.Is(err, store.ErrConflict) {
			return updated, err
		}
		if svc, err = s.store.Services().Get(ctx, api.KeyOf(svc)); err != nil {
			return nil, err
		}
		if svc.Metadata.DeletionTimestamp != nil {
			return nil, httpErr(http.StatusConflict, "service %q is being deleted", svc.Metadata.Name)
		}
	}
	return nil, httpErr(http.StatusConflict, "service %q kept changing during the rollback; try again", svc.Metadata.Name)
}

// rollbackTarget finds the revision to go back to.
func (s *Server) rollbackTarget(r *http.Request, key api.Key, svc *api.Service, number int64) (api.Revision, error) {
	if number > 0 {
		rev, err := s.revision(r, key, strconv.FormatInt(number, 10))
		if err != nil {
			return rev, err
		}
		if cur, err := s.store.Revisions().Get(r.Context(), key, svc.Status.Rollout.Revision); err == nil &&
			cur.TemplateHash == rev.TemplateHash && svc.Metadata.Generation == svc.Status.ObservedGeneration {
			return rev, httpErr(http.StatusConflict, "service %q already runs the template of revision %d (revision %d)", key.Name, rev.Number, cur.Number)
		}
		return rev, nil
	}
	revs, err := s.store.Revisions().List(r.Context(), key)
	if err != nil {
		return api.Revision{}, err
	}
	current := svc.Status.Rollout.Revision
	if current == 0 && len(revs) > 0 {
		current = revs[0].Number // not reported yet: the newest is current
	}
	var hash string
	for _, rev := range revs {
		if rev.Number == current {
			hash = rev.TemplateHash
		}
	}
	for _, rev := range revs { // newest first
		if rev.Number < current && rev.TemplateHash != hash {
			return rev, nil
		}
	}
	return api.Revision{}, httpErr(http.StatusConflict, "service %q has no earlier revision to go back to", key.Name)
}
