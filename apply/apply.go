// Package apply is server-side apply: a set of manifests is compared with
// the stored objects and written in one transaction — all or nothing —
// with a result and a readable diff per object. Re-applying the same set
// changes nothing. It knows nothing of HTTP; the API checks who may do what
// through the Check hook.
package apply

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/store"
)

// Action and Result are the wire types of apply (see api/wire.go).
type (
	Action = api.ApplyAction
	Result = api.ApplyResult
)

const (
	Created    = api.ApplyCreated
	Configured = api.ApplyConfigured
	Unchanged  = api.ApplyUnchanged
	Pruned     = api.ApplyPruned
)

// Options of an apply.
type Options struct {
	// DryRun computes the results without writing anything.
	DryRun bool
	// Prune deletes the services of the applied projects that the set does
	// not contain; with PruneVolumes, their volumes too.
	Prune        bool
	PruneVolumes bool
	// Check is called for every object before anything is written, with
	// the stored object (nil when new); an error refuses the whole apply.
	// The API authorises the caller and applies its spec policy here.
	Check func(ctx context.Context, obj, existing api.Object) error
	// CheckPrune is called for every object prune would delete.
	CheckPrune func(ctx context.Context, obj api.Object) error
	// OnCreateProject runs in the transaction after a project is created
	// (the API makes the caller its owner).
	OnCreateProject func(ctx context.Context, r store.Repo, p *api.Project) error
	// Prepare, when set, turns the object about to be written (the
	// manifest over the stored object) into what is stored, given the
	// stored object (nil when new): the API seals secrets' values and notes
	// who changed a service. It runs before the diff, so a secret applied
	// again with the same values is Unchanged.
	Prepare func(ctx context.Context, obj, existing api.Object) (api.Object, error)
}

// Error carries the index of the document it concerns.
type Error struct {
	Index int
	Kind  api.Kind
	Key   api.Key
	Err   error
}

func (e *Error) Error() string {
	return fmt.Sprintf("document %d (%s %s): %v", e.Index, e.Kind, e.Key, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// errDryRun rolls back a dry run's transaction.
var errDryRun = errors.New("dry run")

// Apply writes objs (defaulted and validated, as api.ParseManifests
// returns them) in one transaction.
func Apply(ctx context.Context, st store.Store, objs []api.Object, opts Options) ([]Result, error) {
	if err := checkSet(objs); err != nil {
		return nil, err
	}
	ordered := order(objs)
	var results []Result
	err := st.InTx(ctx, func(r store.Repo) error {
		results = results[:0]
		for _, d := range ordered {
			res, err := applyOne(ctx, r, d.obj, opts)
			if err != nil {
				return &Error{Index: d.index, Kind: d.obj.GetKind(), Key: api.KeyOf(d.obj), Err: err}
			}
			results = append(results, res)
		}
		if opts.Prune {
			pruned, err := prune(ctx, r, objs, opts)
			if err != nil {
				return err
			}
			results = append(results, pruned...)
		}
		if opts.DryRun {
			return errDryRun
		}
		return nil
	})
	if err != nil && !errors.Is(err, errDryRun) {
		return nil, err
	}
	return results, nil
}

type doc struct {
	index int
	obj   api.Object
}

// order writes projects first, then volumes, then services, keeping the
// documents' order within a kind.
func order(objs []api.Object) []doc {
	rank := map[api.Kind]int{}
	for i, k := range api.Kinds {
		rank[k] = i
	}
	docs := make([]doc, len(objs))
	for i, o := range objs {
		docs[i] = doc{i, o}
	}
	slices.SortStableFunc(docs, func(a, b doc) int { return rank[a.obj.GetKind()] - rank[b.obj.GetKind()] })
	return docs
}

// checkSet refuses a set that names one object twice.
func checkSet(objs []api.Object) error {
	seen := map[string]int{}
	for i, o := range objs {
		id := string(o.GetKind()) + " " + api.KeyOf(o).String()
		if j, dup := seen[id]; dup {
			return &Error{Index: i, Kind: o.GetKind(), Key: api.KeyOf(o), Err: fmt.Errorf("%w: also document %d", store.ErrInvalid, j)}
		}
		seen[id] = i
	}
	return nil
}

func applyOne(ctx context.Context, r store.Repo, obj api.Object, opts Options) (Result, error) {
	key := api.KeyOf(obj)
	res := Result{Kind: obj.GetKind(), Project: key.Project, Name: key.Name}
	existing, err := get(ctx, r, obj.GetKind(), key)
	if err != nil {
		return res, err
	}
	if opts.Check != nil {
		if err := opts.Check(ctx, obj, existing); err != nil {
			return res, err
		}
	}
	if existing == nil {
		obj = writable(obj)
		if opts.Prepare != nil {
			var err error
			if obj, err = opts.Prepare(ctx, obj, nil); err != nil {
				return res, err
			}
		}
		created, err := create(ctx, r, obj)
		if err != nil {
			return res, err
		}
		if p, ok := created.(*api.Project); ok && opts.OnCreateProject != nil {
			if err := opts.OnCreateProject(ctx, r, p); err != nil {
				return res, err
			}
		}
		res.Action = Created
		res.Diff = Diff(nil, obj)
		res.Generation, res.ResourceVersion = created.GetMeta().Generation, created.GetMeta().ResourceVersion
		return res, nil
	}
	if existing.GetMeta().DeletionTimestamp != nil {
		return res, fmt.Errorf("%s %s is being deleted; apply again once it is gone: %w", obj.GetKind(), key, store.ErrConflict)
	}
	desired := merge(existing, obj)
	if opts.Prepare != nil {
		var err error
		if desired, err = opts.Prepare(ctx, desired, existing); err != nil {
			return res, err
		}
	}
	res.Generation, res.ResourceVersion = existing.GetMeta().Generation, existing.GetMeta().ResourceVersion
	diff := Diff(existing, desired)
	if diff == "" {
		res.Action = Unchanged
		return res, nil
	}
	updated, err := update(ctx, r, desired)
	if err != nil {
		return res, err
	}
	res.Action, res.Diff = Configured, diff
	res.Generation, res.ResourceVersion = updated.GetMeta().Generation, updated.GetMeta().ResourceVersion
	return res, nil
}

// SystemAnnotationPrefix marks annotations PanelX owns; apply keeps the
// stored ones and ignores those in manifests.
const SystemAnnotationPrefix = "panelx.dev/"

// merge returns the object to write: the manifest's labels, user
// annotations and spec over the stored object's identity and system
// annotations, guarded by the stored resourceVersion.
func merge(existing, manifest api.Object) api.Object {
	out := api.Clone(existing)
	m, em := out.GetMeta(), manifest.GetMeta()
	m.Labels = maps.Clone(em.Labels)
	annots := map[string]string{}
	for k, v := range existing.GetMeta().Annotations {
		if strings.HasPrefix(k, SystemAnnotationPrefix) {
			annots[k] = v
		}
	}
	for k, v := range em.Annotations {
		if !strings.HasPrefix(k, SystemAnnotationPrefix) {
			annots[k] = v
		}
	}
	m.Annotations = annots
	if len(annots) == 0 {
		m.Annotations = nil
	}
	copySpec(out, manifest)
	return out
}

func copySpec(dst, src api.Object) {
	switch d := dst.(type) {
	case *api.Project:
		d.Spec = src.(*api.Project).Spec
	case *api.Service:
		d.Spec = src.(*api.Service).Spec
	case *api.Volume:
		d.Spec = src.(*api.Volume).Spec
	case *api.Secret:
		d.Spec = src.(*api.Secret).Spec
	}
}

// writable strips what a manifest may not set before a create.
func writable(obj api.Object) api.Object {
	out := api.Clone(obj)
	m := out.GetMeta()
	*m = api.ObjectMeta{Name: m.Name, Project: m.Project, Labels: m.Labels}
	for k, v := range obj.GetMeta().Annotations {
		if !strings.HasPrefix(k, SystemAnnotationPrefix) {
			if m.Annotations == nil {
				m.Annotations = map[string]string{}
			}
			m.Annotations[k] = v
		}
	}
	return out
}

func get(ctx context.Context, r store.Repo, kind api.Kind, key api.Key) (api.Object, error) {
	var (
		obj api.Object
		err error
	)
	switch kind {
	case api.KindProject:
		obj, err = unwrap(r.Projects().Get(ctx, key))
	case api.KindService:
		obj, err = unwrap(r.Services().Get(ctx, key))
	case api.KindVolume:
		obj, err = unwrap(r.Volumes().Get(ctx, key))
	case api.KindSecret:
		obj, err = unwrap(r.Secrets().Get(ctx, key))
	default:
		return nil, fmt.Errorf("kind %q: %w", kind, store.ErrInvalid)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return obj, err
}

// unwrap returns a typed result as an api.Object, nil on error (a nil
// pointer in an interface would not compare to nil).
func unwrap[T api.Object](obj T, err error) (api.Object, error) {
	if err != nil {
		return nil, err
	}
	return obj, nil
}

// create stores obj, which writable has stripped.
func create(ctx context.Context, r store.Repo, obj api.Object) (api.Object, error) {
	switch o := obj.(type) {
	case *api.Project:
		return unwrap(r.Projects().Create(ctx, o))
	case *api.Service:
		return unwrap(r.Services().Create(ctx, o))
	case *api.Volume:
		return unwrap(r.Volumes().Create(ctx, o))
	case *api.Secret:
		return unwrap(r.Secrets().Create(ctx, o))
	}
	return nil, fmt.Errorf("kind %q: %w", obj.GetKind(), store.ErrInvalid)
}

func update(ctx context.Context, r store.Repo, obj api.Object) (api.Object, error) {
	switch o := obj.(type) {
	case *api.Project:
		return unwrap(r.Projects().Update(ctx, o))
	case *api.Service:
		return unwrap(r.Services().Update(ctx, o))
	case *api.Volume:
		return unwrap(r.Volumes().Update(ctx, o))
	case *api.Secret:
		return unwrap(r.Secrets().Update(ctx, o))
	}
	return nil, fmt.Errorf("kind %q: %w", obj.GetKind(), store.ErrInvalid)
}

// prune deletes what the applied projects hold beyond the set. Secrets are
// never pruned: they are often kept out of the manifests on purpose.
func prune(ctx context.Context, r store.Repo, objs []api.Object, opts Options) ([]Result, error) {
	projects := map[string]bool{}
	keep := map[string]bool{}
	for _, o := range objs {
		k := api.KeyOf(o)
		if o.GetKind() == api.KindProject {
			projects[k.Name] = true
		} else {
			projects[k.Project] = true
		}
		keep[string(o.GetKind())+" "+k.String()] = true
	}
	var results []Result
	for _, p := range slices.Sorted(maps.Keys(projects)) {
		var candidates []api.Object
		svcs, err := r.Services().List(ctx, store.ListOptions{Project: p})
		if err != nil {
			return nil, err
		}
		for _, s := range svcs.Items {
			candidates = append(candidates, s)
		}
		if opts.PruneVolumes {
			vols, err := r.Volumes().List(ctx, store.ListOptions{Project: p})
			if err != nil {
				return nil, err
			}
			for _, v := range vols.Items {
				candidates = append(candidates, v)
			}
		}
		for _, c := range candidates {
			k := api.KeyOf(c)
			if keep[string(c.GetKind())+" "+k.String()] || c.GetMeta().DeletionTimestamp != nil {
				continue
			}
			if opts.CheckPrune != nil {
				if err := opts.CheckPrune(ctx, c); err != nil {
					return nil, err
				}
			}
			if err := del(ctx, r, c); err != nil {
				return nil, err
			}
			results = append(results, Result{Kind: c.GetKind(), Project: k.Project, Name: k.Name, Action: Pruned,
				Generation: c.GetMeta().Generation, ResourceVersion: c.GetMeta().ResourceVersion})
		}
	}
	return results, nil
}

func del(ctx context.Context, r store.Repo, obj api.Object) error {
	opts := store.DeleteOptions{ResourceVersion: obj.GetMeta().ResourceVersion}
	var err error
	switch obj.GetKind() {
	case api.KindService:
		_, err = r.Services().Delete(ctx, api.KeyOf(obj), opts)
	case api.KindVolume:
		_, err = r.Volumes().Delete(ctx, api.KeyOf(obj), opts)
	}
	return err
}
