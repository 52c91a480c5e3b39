package apiserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/apiserver/authz"
	"github.com/panelx/panelx/apiserver/policy"
	"github.com/panelx/panelx/store"
)

// Pagination limits of list routes.
const (
	defaultPageSize = 500
	maxPageSize     = 1000
)

// kindAPI serves one kind of resource. Projects differ from services and
// volumes in their URL (the project is the object), their actions, list
// tenancy and creation (the creator becomes owner); those differences are
// the project* fields and methods.
type kindAPI[T api.Object] struct {
	s     *Server
	kind  api.Kind
	param string // URL parameter naming the object
	repo  func(store.Repo) store.Resources[T]
	// writeAction and deleteAction are the permissions to change and delete.
	writeAction, deleteAction authz.Action

	// prepare, when set, turns a decoded, validated and policy-checked
	// object into what is stored (secrets: sealed; services: stamped with
	// who changed them). current is nil on create.
	prepare func(r *http.Request, next, current T) (T, error)
	// patchBase, when set, gives the document a merge patch applies to
	// (secrets: with their values, so a patch can change one key).
	patchBase func(ctx context.Context, current T) (T, error)
}

// presentObject is an object as clients see it: a secret without its data.
// Every answer that carries objects goes through it.
func presentObject[T api.Object](obj T) T {
	if s, ok := any(obj).(*api.Secret); ok {
		return any(s.Redacted()).(T)
	}
	return obj
}

// write answers with one object.
func (k *kindAPI[T]) write(w http.ResponseWriter, status int, obj T) {
	writeObject(w, status, presentObject(obj))
}

func (k *kindAPI[T]) isProject() bool { return k.kind == api.KindProject }

func (k *kindAPI[T]) lower() string { return strings.ToLower(string(k.kind)) }

// key reads the object's key from the URL; a name that cannot exist is a
// 404 without touching the store.
func (k *kindAPI[T]) key(r *http.Request) (api.Key, error) {
	name := chi.URLParam(r, k.param)
	if k.isProject() {
		return api.Key{Name: name}, nil // authz refuses impossible project names
	}
	key := api.Key{Project: chi.URLParam(r, "project"), Name: name}
	if len(api.ValidateName("", name)) > 0 {
		return key, k.notFound(key)
	}
	return key, nil
}

func (k *kindAPI[T]) project(key api.Key) string {
	if k.isProject() {
		return key.Name
	}
	return key.Project
}

func (k *kindAPI[T]) notFound(key api.Key) error {
	if k.isProject() {
		return &authz.ProjectNotFoundError{Project: key.Name}
	}
	return httpErr(http.StatusNotFound, "%s %q not found in project %q", k.lower(), key.Name, key.Project)
}

// location is the URL of an object.
func (k *kindAPI[T]) location(key api.Key) string {
	if k.isProject() {
		return "/api/v1/projects/" + url.PathEscape(key.Name)
	}
	return "/api/v1/projects/" + url.PathEscape(key.Project) + "/" + k.lower() + "s/" + url.PathEscape(key.Name)
}

func writeObject(w http.ResponseWriter, status int, obj api.Object) {
	w.Header().Set("ETag", etag(obj.GetMeta().ResourceVersion))
	writeJSON(w, status, obj)
}

// get: GET one object.
func (k *kindAPI[T]) get(w http.ResponseWriter, r *http.Request) {
	key, err := k.key(r)
	if err == nil {
		_, err = k.s.authorize(r, k.project(key), authz.Read)
	}
	if err != nil {
		k.s.fail(w, r, err)
		return
	}
	rk := renderKey{kind: k.kind, key: key}
	var uid, rv string
	held := k.s.renders.get(rk)
	if held != nil {
		uid, rv = held.uid, held.rv
	}
	obj, changed, err := k.repo(k.s.store).GetIfChanged(r.Context(), key, uid, rv)
	if errors.Is(err, store.ErrNotFound) {
		k.s.renders.forget(rk)
		err = k.notFound(key)
	}
	if err != nil {
		k.s.fail(w, r, err)
		return
	}
	var body []byte
	if changed {
		if body, err = k.s.renders.render(rk, presentObject(obj)); err != nil {
			k.s.fail(w, r, fmt.Errorf("encode %s %s: %w", k.kind, key, err))
			return
		}
		rv = obj.GetMeta().ResourceVersion
	} else {
		body = held.body
	}
	h := w.Header()
	h.Set("ETag", etag(rv))
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// listResponse is a page of objects, Kubernetes-style.
type listResponse[T any] struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   listMeta `json:"metadata"`
	Items      []T      `json:"items"`
}

type listMeta struct {
	Continue        string `json:"continue,omitempty"`
	ResourceVersion string `json:"resourceVersion,omitempty"`
}

// listOptions reads limit, continue and labelSelector.
func listOptions(r *http.Request) (store.ListOptions, error) {
	q := r.URL.Query()
	opts := store.ListOptions{Limit: defaultPageSize, Continue: q.Get("continue")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			return opts, badQuery("limit", fmt.Sprintf("must be a whole number from 1 to %d", maxPageSize))
		}
		opts.Limit = n
	}
	if len(opts.Continue) > 1024 || badText(opts.Continue) || !continueTokenSafe(opts.Continue) {
		return opts, badQuery("continue", "not a continue token of this API")
	}
	if v := q.Get("labelSelector"); v != "" {
		sel, err := api.ParseSelector(v)
		if err != nil || len(v) > 4096 {
			detail := "too long"
			if err != nil {
				detail = err.Error()
			}
			return opts, badQuery("labelSelector", detail)
		}
		opts.Selector = sel
	}
	return opts, nil
}

// continueTokenSafe refuses a crafted continue token carrying a NUL byte,
// which the stores would pass to PostgreSQL (a 500). Both stores encode the
// token as base64url JSON; anything else is left to the store to refuse.
// (The store should reject such tokens itself; see the issue note.)
func continueTokenSafe(token string) bool {
	if token == "" {
		return true
	}
	data, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return true
	}
	var v any
	if json.Unmarshal(data, &v) != nil {
		return true
	}
	return len(checkText(v)) == 0
}

// list: GET the collection, one page.
func (k *kindAPI[T]) list(w http.ResponseWriter, r *http.Request) {
	opts, err := listOptions(r)
	if err != nil {
		k.s.fail(w, r, err)
		return
	}
	if k.isProject() {
		opts.Projects, err = k.s.authz.Projects(r.Context(), authz.PrincipalFrom(r.Context()))
	} else {
		opts.Project = chi.URLParam(r, "project")
		_, err = k.s.authorize(r, opts.Project, authz.Read)
	}
	if err != nil {
		k.s.fail(w, r, err)
		return
	}
	page, err := k.repo(k.s.store).List(r.Context(), opts)
	if errors.Is(err, store.ErrInvalid) {
		err = badQuery("continue", "not a continue token of this API")
	}
	if err != nil {
		k.s.fail(w, r, err)
		return
	}
	items := make([]T, len(page.Items))
	for i, o := range page.Items {
		items[i] = presentObject(o)
	}
	writeJSON(w, http.StatusOK, listResponse[T]{
		APIVersion: api.APIVersion,
		Kind:       string(k.kind) + "List",
		Metadata:   listMeta{Continue: page.Continue, ResourceVersion: page.ResourceVersion},
		Items:      items,
	})
}

// decode reads an object of the kind from a body (JSON or YAML, strictly:
// every unknown field is reported), fills the project and name the URL
// gives when the body leaves them out, refuses a body that names another
// object, and defaults and validates it. Server-set metadata and status
// are dropped, except resourceVersion, which is returned (it acts as
// If-Match on PUT).
func (k *kindAPI[T]) decode(data []byte, want api.Key) (T, string, error) {
	var zero T
	o, err := api.New(k.kind)
	if err != nil {
		return zero, "", err
	}
	obj := o.(T)
	// Decoding problems do not stop here: what decoded is validated too, so
	// the client hears of every problem at once.
	var decodeErrs api.ErrorList
	if err := api.DecodeStrict(data, obj); err != nil {
		if !errors.As(err, &decodeErrs) {
			return zero, "", err
		}
		if len(decodeErrs) == 1 && decodeErrs[0].Field == "" {
			return zero, "", invalid(decodeErrs) // not a document at all
		}
	}
	m := obj.GetMeta()
	rv := m.ResourceVersion
	*m = api.ObjectMeta{Name: m.Name, Project: m.Project, Labels: m.Labels, Annotations: m.Annotations}
	errs := decodeErrs
	if m.Name == "" {
		m.Name = want.Name
	} else if want.Name != "" && m.Name != want.Name {
		errs = append(errs, api.Invalid("metadata.name", m.Name, fmt.Sprintf("must match the URL (%q)", want.Name)))
	}
	if !k.isProject() {
		if m.Project == "" {
			m.Project = want.Project
		} else if m.Project != want.Project {
			errs = append(errs, api.Invalid("metadata.project", m.Project, fmt.Sprintf("must match the URL (%q)", want.Project)))
		}
	}
	obj.Default()
	textErrs := checkText(obj)
	errs = append(errs, textErrs...)
	if len(textErrs) == 0 { // validation of text that is not text would only repeat it
		named := map[string]bool{}
		for _, e := range decodeErrs {
			named[e.Field] = true
		}
		for _, e := range obj.Validate() {
			if !named[e.Field] { // a mistyped field is not also "required"
				errs = append(errs, e)
			}
		}
	}
	if len(errs) > 0 {
		return zero, "", invalid(errs)
	}
	return obj, rv, nil
}

// reservedAnnotation: annotations under panelx.dev/ (or a subdomain of it)
// belong to the system; users can neither set nor remove them.
func reservedAnnotation(k string) bool {
	prefix, _, ok := strings.Cut(strings.ToLower(k), "/")
	return ok && (prefix == "panelx.dev" || strings.HasSuffix(prefix, ".panelx.dev"))
}

// keepReservedAnnotations copies the stored system annotations onto obj and
// refuses a body that tries to change one (sending them back unchanged, as
// `get | edit | put` does, is fine). current is nil on create.
func keepReservedAnnotations(obj, current api.Object) api.ErrorList {
	var stored map[string]string
	if current != nil {
		stored = current.GetMeta().Annotations
	}
	m := obj.GetMeta()
	var errs api.ErrorList
	for k, v := range m.Annotations {
		if reservedAnnotation(k) {
			if old, ok := stored[k]; !ok || old != v {
				errs = append(errs, api.Forbidden(api.Path("metadata.annotations").Key(k), "annotations under panelx.dev/ are set by PanelX only"))
			}
		}
	}
	for k, v := range stored {
		if reservedAnnotation(k) {
			if m.Annotations == nil {
				m.Annotations = map[string]string{}
			}
			m.Annotations[k] = v
		}
	}
	return errs
}

// checkPolicy applies the spec policy for the caller.
func (s *Server) checkPolicy(r *http.Request, obj api.Object) error {
	if errs := policy.Check(obj, authz.PrincipalFrom(r.Context()).Admin, s.policy); len(errs) > 0 {
		return invalid(errs)
	}
	return nil
}

// create: POST to the collection.
func (k *kindAPI[T]) create(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	want := api.Key{Project: chi.URLParam(r, "project")}
	var err error
	if k.isProject() {
		if authz.PrincipalFrom(ctx).Scoped() {
			err = authz.Forbidden("a project-scoped API token cannot create projects")
		}
	} else {
		_, err = k.s.authorize(r, want.Project, k.writeAction)
	}
	var data []byte
	if err == nil {
		data, err = k.s.readBody(w, r, bodyTypes...)
	}
	var obj T
	if err == nil {
		obj, _, err = k.decode(data, want)
	}
	if err == nil {
		if errs := keepReservedAnnotations(obj, nil); len(errs) > 0 {
			err = invalid(errs)
		}
	}
	if err == nil {
		err = k.s.checkPolicy(r, obj)
	}
	if err == nil && k.prepare != nil {
		var none T
		obj, err = k.prepare(r, obj, none)
	}
	if err != nil {
		k.s.fail(w, r, err)
		return
	}
	key := api.KeyOf(obj)
	var created T
	if k.isProject() {
		created, err = k.createProject(ctx, obj)
	} else {
		created, err = k.repo(k.s.store).Create(ctx, obj)
	}
	var taken *store.HostnameTakenError
	switch {
	case errors.As(err, &taken):
		// fail answers it, naming the hostname only.
	case errors.Is(err, store.ErrAlreadyExists) && k.isProject():
		err = httpErr(http.StatusConflict, "the project name %q is taken (project names are unique in the installation)", key.Name)
	case errors.Is(err, store.ErrAlreadyExists):
		err = httpErr(http.StatusConflict, "%s %q already exists in project %q", k.lower(), key.Name, key.Project)
	case errors.Is(err, store.ErrNotFound):
		err = &authz.ProjectNotFoundError{Project: key.Project}
	case errors.Is(err, store.ErrConflict):
		err = httpErr(http.StatusConflict, "project %q is being deleted", key.Project)
	}
	if err != nil {
		k.s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", k.location(key))
	k.write(w, http.StatusCreated, created)
}

// createProject stores the project and makes the caller its owner, in one
// transaction.
func (k *kindAPI[T]) createProject(ctx context.Context, obj T) (T, error) {
	var created T
	err := k.s.store.InTx(ctx, func(repo store.Repo) error {
		var err error
		if created, err = k.repo(repo).Create(ctx, obj); err != nil {
			return err
		}
		_, err = repo.Members().Put(ctx, store.Member{Project: api.KeyOf(obj).Name, UserID: authz.PrincipalFrom(ctx).UserID, Role: store.RoleOwner})
		return err
	})
	if err == nil {
		k.s.authCache.ForgetMember(api.KeyOf(obj).Name, authz.PrincipalFrom(ctx).UserID)
	}
	return created, err
}

// maxUpdateAttempts bounds the read-modify-write retries of an update the
// client did not make conditional.
const maxUpdateAttempts = 5

// update reads the stored object, lets mutate build the new one from it,
// and writes it conditionally on the version read. A conflict is the
// client's (412) when they named a version (If-Match or
// metadata.resourceVersion); otherwise the cycle is retried.
func (k *kindAPI[T]) update(r *http.Request, key api.Key, clientRV string, mutate func(current T) (T, error)) (T, error) {
	var zero T
	ctx := r.Context()
	repo := k.repo(k.s.store)
	for range maxUpdateAttempts {
		current, err := repo.Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			return zero, k.notFound(key)
		}
		if err != nil {
			return zero, err
		}
		cm := current.GetMeta()
		if clientRV != "" && clientRV != cm.ResourceVersion {
			return zero, preconditionFailed(clientRV, cm.ResourceVersion)
		}
		if cm.DeletionTimestamp != nil {
			return zero, httpErr(http.StatusConflict, "%s %q is being deleted", k.lower(), key.Name)
		}
		next, err := mutate(current)
		if err != nil {
			return zero, err
		}
		if errs := keepReservedAnnotations(next, current); len(errs) > 0 {
			return zero, invalid(errs)
		}
		if err := k.s.checkPolicy(r, next); err != nil {
			return zero, err
		}
		if k.prepare != nil {
			if next, err = k.prepare(r, next, current); err != nil {
				return zero, err
			}
		}
		nm := next.GetMeta()
		nm.UID, nm.ResourceVersion = cm.UID, cm.ResourceVersion
		updated, err := repo.Update(ctx, next)
		if errors.Is(err, store.ErrConflict) {
			if clientRV != "" {
				return zero, preconditionFailed(clientRV, "")
			}
			continue
		}
		if errors.Is(err, store.ErrNotFound) {
			return zero, k.notFound(key)
		}
		return updated, err
	}
	return zero, httpErr(http.StatusConflict, "%s %q kept changing while it was updated; try again", k.lower(), key.Name)
}

func preconditionFailed(want, current string) error {
	if current != "" {
		return httpErr(http.StatusPreconditionFailed, "the object is at resourceVersion %s, not %s: read it again", current, want)
	}
	return httpErr(http.StatusPreconditionFailed, "the object changed since resourceVersion %s: read it again", want)
}

// replace: PUT an object.
func (k *kindAPI[T]) replace(w http.ResponseWriter, r *http.Request) {
	key, err := k.key(r)
	if err == nil {
		_, err = k.s.authorize(r, k.project(key), k.writeAction)
	}
	var data []byte
	if err == nil {
		data, err = k.s.readBody(w, r, bodyTypes...)
	}
	rv, hasIfMatch := "", false
	if err == nil {
		rv, hasIfMatch, err = ifMatch(r)
	}
	var obj T
	var bodyRV string
	if err == nil {
		obj, bodyRV, err = k.decode(data, key)
	}
	if err != nil {
		k.s.fail(w, r, err)
		return
	}
	if !hasIfMatch {
		rv = bodyRV
	}
	updated, err := k.update(r, key, rv, func(T) (T, error) { return api.Clone(obj), nil })
	if err != nil {
		k.s.fail(w, r, err)
		return
	}
	k.write(w, http.StatusOK, updated)
}

// patch: PATCH an object with a JSON merge patch (RFC 7396) applied to its
// stored manifest; the result is decoded, defaulted, validated and
// policy-checked like a PUT body.
func (k *kindAPI[T]) patch(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Accept-Patch", mergePatchType)
	key, err := k.key(r)
	if err == nil {
		_, err = k.s.authorize(r, k.project(key), k.writeAction)
	}
	var data []byte
	if err == nil {
		data, err = k.s.readBody(w, r, mergePatchType)
	}
	rv, hasIfMatch := "", false
	if err == nil {
		rv, hasIfMatch, err = ifMatch(r)
	}
	var patch map[string]any
	if err == nil {
		if patch, err = decodeJSONObject(data); err != nil {
			err = invalid(api.ErrorList{{Field: "", Type: api.ErrInvalid, Detail: err.Error()}})
		}
	}
	if err != nil {
		k.s.fail(w, r, err)
		return
	}
	if !hasIfMatch {
		if meta, ok := patch["metadata"].(map[string]any); ok {
			rv, _ = meta["resourceVersion"].(string)
		}
	}
	updated, err := k.update(r, key, rv, func(current T) (T, error) {
		var zero T
		base := current
		if k.patchBase != nil {
			var err error
			if base, err = k.patchBase(r.Context(), current); err != nil {
				return zero, err
			}
		}
		doc, err := json.Marshal(base)
		if err != nil {
			return zero, err
		}
		target, err := decodeJSONObject(doc)
		if err != nil {
			return zero, err
		}
		merged, err := json.Marshal(mergePatch(target, patch))
		if err != nil {
			return zero, invalid(api.ErrorList{{Type: api.ErrInvalid, Detail: "the patched object is not JSON"}})
		}
		obj, _, err := k.decode(merged, key)
		return obj, err
	})
	if err != nil {
		k.s.fail(w, r, err)
		return
	}
	k.write(w, http.StatusOK, updated)
}

// remove: DELETE an object. Deletion is two-phase: the object is marked
// (deletionTimestamp) and answered with 202; the controller removes what it
// owns, then the row.
func (k *kindAPI[T]) remove(w http.ResponseWriter, r *http.Request) {
	key, err := k.key(r)
	if err == nil {
		_, err = k.s.authorize(r, k.project(key), k.deleteAction)
	}
	rv := ""
	if err == nil {
		rv, _, err = ifMatch(r)
	}
	opts := store.DeleteOptions{ResourceVersion: rv}
	if err == nil && k.isProject() {
		switch v := r.URL.Query().Get("purgeVolumes"); v {
		case "", "false":
		case "true":
			opts.PurgeVolumes = true
		default:
			err = badQuery("purgeVolumes", "must be true or false")
		}
	}
	if err != nil {
		k.s.fail(w, r, err)
		return
	}
	obj, err := k.repo(k.s.store).Delete(r.Context(), key, opts)
	switch {
	case errors.Is(err, store.ErrNotFound):
		err = k.notFound(key)
	case errors.Is(err, store.ErrConflict) && rv != "":
		err = preconditionFailed(rv, "")
	}
	if err != nil {
		k.s.fail(w, r, err)
		return
	}
	k.write(w, http.StatusAccepted, obj)
}
