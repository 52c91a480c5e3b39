package sqlite

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/store"
)

// table describes one resource table; the same code serves every kind.
type table[T api.Object] struct {
	kind   api.Kind
	name   string
	scoped bool   // has a project column
	cols   string // select list, in scan order (see row.dest)
}

func newTable[T api.Object](kind api.Kind, name string, scoped bool) *table[T] {
	project := "'' AS project"
	if scoped {
		project = "project"
	}
	return &table[T]{kind: kind, name: name, scoped: scoped, cols: "uid, " + project +
		", name, labels, annotations, spec, status, generation, resource_version, created_at, deletion_timestamp"}
}

var (
	projectsTable = newTable[*api.Project](api.KindProject, "projects", false)
	servicesTable = newTable[*api.Service](api.KindService, "services", true)
	volumesTable  = newTable[*api.Volume](api.KindVolume, "volumes", true)
	secretsTable  = newTable[*api.Secret](api.KindSecret, "secrets", true)
)

// keyCond returns the WHERE clause for a key.
func (t *table[T]) keyCond(key api.Key) (string, []any) {
	if t.scoped {
		return "project = ? AND name = ?", []any{key.Project, key.Name}
	}
	return "name = ?", []any{key.Name}
}

// row is a resource row as stored.
type row struct {
	uid, project, name           string
	labels, annots, spec, status []byte
	generation, rv               int64
	created                      int64
	deletion                     sql.NullInt64
}

func (r *row) dest() []any {
	return []any{&r.uid, &r.project, &r.name, &r.labels, &r.annots, &r.spec, &r.status,
		&r.generation, &r.rv, &r.created, &r.deletion}
}

func (r *row) key() api.Key { return api.Key{Project: r.project, Name: r.name} }

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

func scanRow(sc scanner) (*row, error) {
	var r row
	if err := sc.Scan(r.dest()...); err != nil {
		return nil, err
	}
	return &r, nil
}

// decode turns a row into an object.
func (t *table[T]) decode(r *row) (T, error) {
	var zero T
	o, err := api.New(t.kind)
	if err != nil {
		return zero, err
	}
	obj := o.(T)
	m := obj.GetMeta()
	*m = api.ObjectMeta{Name: r.name, Project: r.project, UID: r.uid, Generation: r.generation,
		ResourceVersion: strconv.FormatInt(r.rv, 10), CreationTimestamp: fromMicros(r.created)}
	if r.deletion.Valid {
		d := fromMicros(r.deletion.Int64)
		m.DeletionTimestamp = &d
	}
	// Rows edited by hand may hold anything; say which row is broken.
	for _, f := range []struct {
		data []byte
		into any
		what string
	}{{r.labels, &m.Labels, "labels"}, {r.annots, &m.Annotations, "annotations"}, {r.spec, obj.SpecPtr(), "spec"}, {r.status, obj.StatusPtr(), "status"}} {
		if err := json.Unmarshal(f.data, f.into); err != nil {
			return zero, fmt.Errorf("decode %s of %s %s: %w", f.what, t.kind, r.key(), err)
		}
	}
	if len(m.Labels) == 0 {
		m.Labels = nil
	}
	if len(m.Annotations) == 0 {
		m.Annotations = nil
	}
	return obj, nil
}

// getRow reads the row of a key; sql.ErrNoRows when there is none.
func (t *table[T]) getRow(ctx context.Context, q querier, key api.Key) (*row, error) {
	cond, args := t.keyCond(key)
	return scanRow(q.QueryRowContext(ctx, `SELECT `+t.cols+` FROM `+t.name+` WHERE `+cond, args...))
}

// current reads the row a write applies to, as a typed error when missing.
func (t *table[T]) current(ctx context.Context, q querier, key api.Key, what string) (*row, error) {
	cur, err := t.getRow(ctx, q, key)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return cur, nil
}

// change describes a write of row r.
func (t *table[T]) change(typ store.ChangeType, r *row) store.Change {
	return store.Change{Type: typ, Kind: t.kind, Key: r.key(), UID: r.uid, ResourceVersion: r.rv}
}

// resources implements store.Resources for one table.
type resources[T api.Object] struct {
	t *table[T]
	r repo
}

// jsonText encodes v; encoding/json writes maps with sorted keys, so equal
// values give equal text.
func jsonText(v any) (string, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(data), nil
}

// jsonEqual compares two JSON documents by value, as PostgreSQL compares
// jsonb: key order and spacing do not matter.
func jsonEqual(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func mapOrEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// writeArgs encodes what a user may write: labels, annotations and spec.
// A secret's values must already be sealed.
func writeArgs(obj api.Object) (labels, annots, spec string, err error) {
	if err = store.CheckSealed(obj); err != nil {
		return
	}
	m := obj.GetMeta()
	if labels, err = jsonText(mapOrEmpty(m.Labels)); err != nil {
		return
	}
	if annots, err = jsonText(mapOrEmpty(m.Annotations)); err != nil {
		return
	}
	spec, err = jsonText(obj.SpecPtr())
	return
}

// newUID returns a random (version 4) UUID.
func newUID() string {
	var b [16]byte
	rand.Read(b[:]) //nolint:errcheck // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// liveProject checks that a project exists and is not being deleted.
func liveProject(ctx context.Context, q querier, name string) error {
	var deleting bool
	err := q.QueryRowContext(ctx, `SELECT deletion_timestamp IS NOT NULL FROM projects WHERE name = ?`, name).Scan(&deleting)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("project %q: %w", name, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("read project %q: %w", name, err)
	case deleting:
		return fmt.Errorf("project %q is being deleted: %w", name, store.ErrConflict)
	}
	return nil
}

func (r *resources[T]) Create(ctx context.Context, obj T) (T, error) {
	var zero, out T
	key := api.KeyOf(obj)
	if !r.t.scoped {
		key.Project = ""
	}
	what := fmt.Sprintf("create %s %s", r.t.kind, key)
	labels, annots, spec, err := writeArgs(obj)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", what, err)
	}
	err = r.r.write(ctx, func(w *writer) error {
		// A deleting project takes no new objects.
		if r.t.scoped {
			if err := liveProject(ctx, w.q, key.Project); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		}
		rv, err := w.nextRV(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		uid := newUID()
		cols, marks, args := "uid, name", "?, ?", []any{uid, key.Name}
		if r.t.scoped {
			cols, marks, args = "uid, project, name", "?, ?, ?", []any{uid, key.Project, key.Name}
		}
		args = append(args, labels, annots, spec, rv, now().UnixMicro())
		stored, err := scanRow(w.q.QueryRowContext(ctx, `INSERT INTO `+r.t.name+` (`+cols+`,
			labels, annotations, spec, status, generation, resource_version, created_at)
			VALUES (`+marks+`, ?, ?, ?, '{}', 1, ?, ?) RETURNING `+r.t.cols, args...))
		if err != nil {
			return mapErr(err, what)
		}
		if out, err = r.t.decode(stored); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if r.t.kind == api.KindService {
			if err := claimHostnames(ctx, w, key.Project, key.Name, stored.spec); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		}
		c := r.t.change(store.ChangeUpsert, stored)
		c.SpecChanged = true
		w.emit(c)
		return nil
	})
	if err != nil {
		return zero, err
	}
	return out, nil
}

func (r *resources[T]) Get(ctx context.Context, key api.Key) (T, error) {
	obj, _, err := r.GetIfChanged(ctx, key, "", "")
	return obj, err
}

func (r *resources[T]) GetIfChanged(ctx context.Context, key api.Key, uid, rv string) (T, bool, error) {
	var zero T
	cur, err := r.t.current(ctx, r.r.reader(), key, "get "+string(r.t.kind)+" "+key.String())
	if err != nil {
		return zero, false, err
	}
	if uid != "" && cur.uid == uid && strconv.FormatInt(cur.rv, 10) == rv {
		return zero, false, nil
	}
	out, err := r.t.decode(cur)
	if err != nil {
		return zero, false, fmt.Errorf("get %s %s: %w", r.t.kind, key, err)
	}
	return out, true, nil
}

// precondition is the optimistic-concurrency check of a write: the
// resourceVersion and uid the caller read, each only when set.
type precondition struct {
	rv  int64
	uid string
}

func parsePrecondition(rvText, uid string) (precondition, error) {
	p := precondition{uid: uid}
	if rvText != "" {
		rv, err := strconv.ParseInt(rvText, 10, 64)
		if err != nil || rv <= 0 {
			return p, fmt.Errorf("resourceVersion %q is not current: %w", rvText, store.ErrConflict)
		}
		p.rv = rv
	}
	return p, nil
}

func (p precondition) check(cur *row) error {
	if (p.rv != 0 && p.rv != cur.rv) || (p.uid != "" && p.uid != cur.uid) {
		return fmt.Errorf("the object changed since it was read (stale resourceVersion or uid): %w", store.ErrConflict)
	}
	return nil
}

// modify is the common path of Update, UpdateStatus and Delete: read the
// current row, check the preconditions, let change compute the write (nil:
// nothing to write), run it and record the change.
func (r *resources[T]) modify(ctx context.Context, key api.Key, pre precondition, what string,
	change func(w *writer, cur *row) (*rowUpdate, error)) (T, error) {
	var zero, out T
	err := r.r.write(ctx, func(w *writer) error {
		cur, err := r.t.current(ctx, w.q, key, what)
		if err != nil {
			return err
		}
		if err := pre.check(cur); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		u, err := change(w, cur)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		stored := cur
		if u != nil {
			if stored, err = r.apply(ctx, w, cur, u); err != nil {
				return mapErr(err, what)
			}
			if u.then != nil {
				if err := u.then(); err != nil {
					return fmt.Errorf("%s: %w", what, err)
				}
			}
		}
		if out, err = r.t.decode(stored); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
	if err != nil {
		return zero, err
	}
	return out, nil
}

// rowUpdate is a write to one row: the columns to set and what the change
// feed says about it.
type rowUpdate struct {
	set                    []string // "col = ?"
	args                   []any
	spec, status, deleting bool
	// then runs after the row is written, in the same transaction.
	then func() error
}

func (u *rowUpdate) add(col string, v any) {
	u.set = append(u.set, col+" = ?")
	u.args = append(u.args, v)
}

// apply writes u to the row with a new resource version.
func (r *resources[T]) apply(ctx context.Context, w *writer, cur *row, u *rowUpdate) (*row, error) {
	rv, err := w.nextRV(ctx)
	if err != nil {
		return nil, err
	}
	u.add("resource_version", rv)
	query := `UPDATE ` + r.t.name + ` SET ` + strings.Join(u.set, ", ") + ` WHERE uid = ? RETURNING ` + r.t.cols
	stored, err := scanRow(w.q.QueryRowContext(ctx, query, append(u.args, cur.uid)...))
	if err != nil {
		return nil, err
	}
	c := r.t.change(store.ChangeUpsert, stored)
	c.SpecChanged, c.StatusChanged, c.Deleting = u.spec, u.status, u.deleting
	w.emit(c)
	return stored, nil
}

func (r *resources[T]) Update(ctx context.Context, obj T) (T, error) {
	var zero T
	key := api.KeyOf(obj)
	what := fmt.Sprintf("update %s %s", r.t.kind, key)
	labels, annots, spec, err := writeArgs(obj)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", what, err)
	}
	pre, err := parsePrecondition(obj.GetMeta().ResourceVersion, obj.GetMeta().UID)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", what, err)
	}
	return r.modify(ctx, key, pre, what, func(w *writer, cur *row) (*rowUpdate, error) {
		u := &rowUpdate{spec: !jsonEqual(cur.spec, []byte(spec))}
		u.add("labels", labels)
		u.add("annotations", annots)
		u.add("spec", spec)
		gen := cur.generation
		if u.spec {
			gen++
		}
		u.add("generation", gen)
		// Hostname claims follow the spec, as PostgreSQL's triggers do.
		switch {
		case u.spec && r.t.kind == api.KindService:
			u.then = func() error { return claimHostnames(ctx, w, cur.project, cur.name, []byte(spec)) }
		case r.t.kind == api.KindProject && projectDomain(cur.spec) != projectDomain([]byte(spec)):
			u.then = func() error { return reclaimProject(ctx, w, cur.name) }
		}
		return u, nil
	})
}

func (r *resources[T]) UpdateStatus(ctx context.Context, obj T) (T, error) {
	var zero T
	key := api.KeyOf(obj)
	what := fmt.Sprintf("update status of %s %s", r.t.kind, key)
	status, err := jsonText(obj.StatusPtr())
	if err != nil {
		return zero, fmt.Errorf("%s: %w", what, err)
	}
	pre, err := parsePrecondition(obj.GetMeta().ResourceVersion, obj.GetMeta().UID)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", what, err)
	}
	return r.modify(ctx, key, pre, what, func(_ *writer, cur *row) (*rowUpdate, error) {
		u := &rowUpdate{status: !jsonEqual(cur.status, []byte(status))}
		u.add("status", status)
		return u, nil
	})
}

func (r *resources[T]) Delete(ctx context.Context, key api.Key, opts store.DeleteOptions) (T, error) {
	var zero T
	what := fmt.Sprintf("delete %s %s", r.t.kind, key)
	pre, err := parsePrecondition(opts.ResourceVersion, opts.UID)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", what, err)
	}
	purge := opts.PurgeVolumes && r.t.kind == api.KindProject
	return r.modify(ctx, key, pre, what, func(w *writer, cur *row) (*rowUpdate, error) {
		annots, addPurge, err := withPurge(cur.annots, purge)
		if err != nil {
			return nil, err
		}
		// Mark once; marking again only adds a purge request.
		if cur.deletion.Valid && !addPurge {
			return nil, nil
		}
		at := now().UnixMicro()
		u := &rowUpdate{deleting: !cur.deletion.Valid}
		if u.deleting {
			u.add("deletion_timestamp", at)
		}
		if addPurge {
			u.add("annotations", annots)
		}
		if r.t.kind == api.KindProject {
			u.then = func() error { return markServices(ctx, w, cur.name, at) }
		}
		return u, nil
	})
}

// withPurge adds the purge-volumes annotation when asked and missing.
func withPurge(annots []byte, purge bool) (string, bool, error) {
	if !purge {
		return "", false, nil
	}
	m := map[string]string{}
	if err := json.Unmarshal(annots, &m); err != nil {
		return "", false, fmt.Errorf("decode annotations: %w", err)
	}
	if _, ok := m[api.AnnotationPurgeVolumes]; ok {
		return "", false, nil
	}
	m[api.AnnotationPurgeVolumes] = "true"
	text, err := jsonText(m)
	return text, true, err
}

// markServices marks the live services of a deleting project, each with a
// resource version and a change of its own.
func markServices(ctx context.Context, w *writer, project string, at int64) error {
	rows, err := w.q.QueryContext(ctx, `SELECT `+servicesTable.cols+` FROM services
		WHERE project = ? AND deletion_timestamp IS NULL ORDER BY name`, project)
	if err != nil {
		return fmt.Errorf("mark services: %w", err)
	}
	live, err := collectRows(rows)
	if err != nil {
		return fmt.Errorf("mark services: %w", err)
	}
	svcs := &resources[*api.Service]{t: servicesTable}
	for _, cur := range live {
		u := &rowUpdate{deleting: true}
		u.add("deletion_timestamp", at)
		if _, err := svcs.apply(ctx, w, cur, u); err != nil {
			return fmt.Errorf("mark service %s: %w", cur.key(), err)
		}
	}
	return nil
}

func collectRows(rows *sql.Rows) ([]*row, error) {
	defer rows.Close()
	var out []*row
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (r *resources[T]) Remove(ctx context.Context, key api.Key, uid string) error {
	what := fmt.Sprintf("remove %s %s", r.t.kind, key)
	return r.r.write(ctx, func(w *writer) error {
		cur, err := r.t.current(ctx, w.q, key, what)
		if err != nil {
			return err
		}
		if cur.uid != uid {
			return fmt.Errorf("%s: uid %s is gone (now %s): %w", what, uid, cur.uid, store.ErrNotFound)
		}
		if !cur.deletion.Valid {
			return fmt.Errorf("%s: not marked for deletion: %w", what, store.ErrConflict)
		}
		// The foreign keys remove a project's rows silently; say so first.
		if r.t.kind == api.KindProject {
			if err := emitCascade(ctx, w, cur.name); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		}
		if _, err := w.q.ExecContext(ctx, `DELETE FROM `+r.t.name+` WHERE uid = ?`, cur.uid); err != nil {
			return mapErr(err, what)
		}
		w.emit(r.t.change(store.ChangeRemoved, cur))
		return nil
	})
}

// emitCascade records the removal of a project's services, volumes and
// secrets, which its row's removal takes along.
func emitCascade(ctx context.Context, w *writer, project string) error {
	for _, t := range []interface {
		children(ctx context.Context, w *writer, project string) error
	}{servicesTable, volumesTable, secretsTable} {
		if err := t.children(ctx, w, project); err != nil {
			return err
		}
	}
	// Its members and project-scoped tokens go too (the API's caches).
	for _, q := range []struct {
		kind api.Kind
		sql  string
	}{
		{store.KindMember, `SELECT user_id FROM project_members WHERE project = ?`},
		{store.KindAPIToken, `SELECT id FROM api_tokens WHERE project = ?`},
	} {
		rows, err := w.q.QueryContext(ctx, q.sql, project)
		if err != nil {
			return fmt.Errorf("read %s rows of project %s: %w", q.kind, project, err)
		}
		var names []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return fmt.Errorf("read %s rows of project %s: %w", q.kind, project, err)
			}
			names = append(names, n)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read %s rows of project %s: %w", q.kind, project, err)
		}
		for _, n := range names {
			p := project
			if q.kind == store.KindAPIToken {
				p = ""
			}
			w.emit(authChange(store.ChangeRemoved, q.kind, p, n))
		}
	}
	return nil
}

func (t *table[T]) children(ctx context.Context, w *writer, project string) error {
	rows, err := w.q.QueryContext(ctx, `SELECT `+t.cols+` FROM `+t.name+` WHERE project = ? ORDER BY name`, project)
	if err != nil {
		return fmt.Errorf("read %s rows of project %s: %w", t.name, project, err)
	}
	gone, err := collectRows(rows)
	if err != nil {
		return fmt.Errorf("read %s rows of project %s: %w", t.name, project, err)
	}
	for _, g := range gone {
		w.emit(t.change(store.ChangeRemoved, g))
	}
	return nil
}
