package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/apiserver/authz"
	"github.com/panelx/panelx/apply"
	"github.com/panelx/panelx/store"
)

// applyResponse lists the result per object.
type applyResponse struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	DryRun     bool           `json:"dryRun"`
	Items      []apply.Result `json:"items"`
}

// applyManifests: POST /api/v1/apply — validate every document first
// (reporting all errors with their document index), then write them all
// in one transaction, checking the caller's role and the spec policy on
// each object.
func (s *Server) applyManifests(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	opts, err := applyOptions(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	data, err := s.readBody(w, r, bodyTypes...)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	objs, err := api.ParseManifests(data)
	var merr *api.ManifestError
	if errors.As(err, &merr) {
		s.fail(w, r, invalidDocuments(merr))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var textErrs api.ErrorList
	for i, o := range objs {
		for _, fe := range checkText(o) {
			c := *fe
			c.Field = fmt.Sprintf("[%d].%s", i, c.Field)
			textErrs = append(textErrs, &c)
		}
	}
	if len(textErrs) > 0 {
		s.fail(w, r, invalid(textErrs))
		return
	}

	p := authz.PrincipalFrom(ctx)
	// Projects this apply creates: the caller owns them, so the objects in
	// them need no membership lookup (the project is not committed yet).
	var mu sync.Mutex
	created := map[string]bool{}
	opts.OnCreateProject = func(ctx context.Context, repo store.Repo, proj *api.Project) error {
		mu.Lock()
		created[proj.Metadata.Name] = true
		mu.Unlock()
		_, err := repo.Members().Put(ctx, store.Member{Project: proj.Metadata.Name, UserID: p.UserID, Role: store.RoleOwner})
		return err
	}
	authorize := func(ctx context.Context, project string, action authz.Action) error {
		mu.Lock()
		mine := created[project]
		mu.Unlock()
		if mine {
			return nil
		}
		_, err := s.authz.Authorize(ctx, p, project, action)
		return err
	}
	opts.Check = func(ctx context.Context, obj, existing api.Object) error {
		key := api.KeyOf(obj)
		switch {
		case obj.GetKind() == api.KindProject && existing == nil:
			if p.Scoped() {
				return authz.Forbidden("a project-scoped API token cannot create projects")
			}
		case obj.GetKind() == api.KindProject:
			if err := authorize(ctx, key.Name, authz.UpdateProject); err != nil {
				return err
			}
		default:
			if err := authorize(ctx, key.Project, authz.Write); err != nil {
				return err
			}
		}
		if errs := keepReservedAnnotations(obj, existing); len(errs) > 0 {
			return invalid(errs)
		}
		return s.checkPolicy(r, obj)
	}
	claims := portClaims{} // host ports of the services earlier in the stream
	opts.Prepare = func(ctx context.Context, obj, existing api.Object) (api.Object, error) {
		switch o := obj.(type) {
		case *api.Secret:
			cur, _ := existing.(*api.Secret)
			return s.sealSecret(r, o, cur)
		case *api.Service:
			cur, _ := existing.(*api.Service)
			if err := s.checkHostPorts(ctx, o, cur, claims); err != nil {
				return nil, err
			}
			return s.stampService(r, o, cur)
		}
		return obj, nil
	}
	opts.CheckPrune = func(ctx context.Context, obj api.Object) error {
		return authorize(ctx, api.KeyOf(obj).Project, authz.Write)
	}
	results, err := apply.Apply(ctx, s.store, objs, opts)
	for project := range created {
		s.authCache.ForgetMember(project, p.UserID) // committed or not: read it again
	}
	if err != nil {
		s.fail(w, r, applyError(err))
		return
	}
	if results == nil {
		results = []apply.Result{}
	}
	writeJSON(w, http.StatusOK, applyResponse{APIVersion: api.APIVersion, Kind: "ApplyResult", DryRun: opts.DryRun, Items: results})
}

func applyOptions(r *http.Request) (apply.Options, error) {
	var opts apply.Options
	q := r.URL.Query()
	for _, f := range []struct {
		name string
		into *bool
	}{{"dryRun", &opts.DryRun}, {"prune", &opts.Prune}, {"pruneVolumes", &opts.PruneVolumes}} {
		v := q.Get(f.name)
		if v == "" {
			continue
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return opts, badQuery(f.name, "must be true or false")
		}
		*f.into = b
	}
	if opts.PruneVolumes {
		opts.Prune = true
	}
	return opts, nil
}

// invalidDocuments is a 422 listing every problem of every document, each
// path prefixed with its document index: "[2].spec.image".
func invalidDocuments(merr *api.ManifestError) error {
	return invalid(merr.FieldErrors(true))
}

// applyError keeps the document index in the answer: an object refused for
// its role, its policy or its state says which document it was.
func applyError(err error) error {
	var aerr *apply.Error
	if !errors.As(err, &aerr) {
		return err
	}
	prefix := fmt.Sprintf("[%d]", aerr.Index)
	var ae *apiError
	if errors.As(aerr.Err, &ae) {
		out := *ae
		out.detail = "document " + strconv.Itoa(aerr.Index) + ": " + ae.detail
		out.errs = nil
		for _, fe := range ae.errs {
			c := *fe
			c.Field = prefix + "." + c.Field
			out.errs = append(out.errs, &c)
		}
		return &out
	}
	var (
		nf    *authz.ProjectNotFoundError
		taken *store.HostnameTakenError
	)
	switch {
	case errors.As(aerr.Err, &taken):
		return &apiError{status: http.StatusConflict, detail: fmt.Sprintf("document %d (%s %s): %s", aerr.Index, aerr.Kind, aerr.Key, taken.Error()),
			errs: api.ErrorList{{Field: prefix + ".spec.domains", Type: api.ErrDuplicate, Detail: taken.Error()}}}
	case errors.As(aerr.Err, &nf), errors.Is(aerr.Err, store.ErrNotFound):
		project := aerr.Key.Project
		if nf != nil {
			project = nf.Project
		}
		return httpErr(http.StatusNotFound, "document %d (%s %s): project %q not found", aerr.Index, aerr.Kind, aerr.Key, project)
	case errors.Is(aerr.Err, authz.ErrForbidden):
		return &apiError{status: http.StatusForbidden, detail: fmt.Sprintf("document %d (%s %s): %v", aerr.Index, aerr.Kind, aerr.Key, aerr.Err)}
	case errors.Is(aerr.Err, store.ErrConflict):
		return httpErr(http.StatusConflict, "document %d (%s %s): %s", aerr.Index, aerr.Kind, aerr.Key, conflictDetail(aerr.Err))
	case errors.Is(aerr.Err, store.ErrAlreadyExists):
		return httpErr(http.StatusConflict, "document %d (%s %s): the name is taken (project names are unique in the installation)", aerr.Index, aerr.Kind, aerr.Key)
	case errors.Is(aerr.Err, store.ErrInvalid):
		return httpErr(http.StatusUnprocessableEntity, "document %d (%s %s): the same object appears twice, or a value was refused", aerr.Index, aerr.Kind, aerr.Key)
	}
	return err
}

func conflictDetail(err error) string {
	msg := err.Error()
	if len(msg) > 300 {
		msg = msg[:300]
	}
	return msg
}
