package apiserver

import (
	"net/http"
	"slices"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/apiserver/authz"
	"github.com/panelx/panelx/store"
)

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	project := chi.URLParam(r, "project")
	if _, err := s.authorize(r, project, authz.Read); err != nil {
		s.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	f := store.EventFilter{Kind: api.Kind(q.Get("kind")), Name: q.Get("name"), Limit: 100}
	var err error
	switch {
	case f.Kind != "" && !slices.Contains(api.Kinds, f.Kind):
		err = badQuery("kind", "must be Project, Secret, Service or Volume")
	case f.Name != "" && len(api.ValidateName("", f.Name)) > 0:
		err = badQuery("name", "must be a resource name")
	case q.Get("limit") != "":
		n, perr := strconv.Atoi(q.Get("limit"))
		if perr != nil || n < 1 || n > maxPageSize {
			err = badQuery("limit", "must be a whole number from 1 to 1000")
		}
		f.Limit = n
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	list, err := s.store.Events().List(r.Context(), project, f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, items(list))
}
