package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/store"
)

// table describes one resource table; the same code serves every kind.
type table[T api.Object] struct {
	kind   api.Kind
	name   string
	scoped bool   // has a project column
	cols   string // select list, in scan order
}

func newTable[T api.Object](kind api.Kind, name string, scoped bool) *table[T] {
	project := "''::text"
	if scoped {
		project = "project"
	}
	return &table[T]{kind: kind, name: name, scoped: scoped, cols: "uid::text, " + project +
		", name, labels, annotations, spec, status, generation, resource_version, created_at, deletion_timestamp"}
}

// keyCond returns the WHERE clause for a key, numbering parameters from n.
func (t *table[T]) keyCond(key api.Key, n int) (string, []any) {
	if t.scoped {
		return fmt.Sprintf("project = $%d AND name = $%d", n, n+1), []any{key.Project, key.Name}
	}
	return fmt.Sprintf("name = $%d", n), []any{key.Name}
}

// rawRow is a resource row as read, before its JSON columns are decoded.
type rawRow struct {
	uid, project, name           string
	labels, annots, spec, status []byte
	generation, rv               int64
	created                      time.Time
	deletion                     *time.Time
}

func scanRaw(row pgx.Row) (*rawRow, error) {
	var r rawRow
	if err := row.Scan(&r.uid, &r.project, &r.name, &r.labels, &r.annots, &r.spec, &r.status, &r.generation, &r.rv, &r.created, &r.deletion); err != nil {
		return nil, err
	}
	return &r, nil
}

// current tells whether the row is still the version a reader holds.
func (r *rawRow) current(uid, rv string) bool {
	return uid != "" && r.uid == uid && strconv.FormatInt(r.rv, 10) == rv
}

func (t *table[T]) scan(row pgx.Row) (T, error) {
	r, err := scanRaw(row)
	if err != nil {
		var zero T
		return zero, err
	}
	return t.decode(r)
}

// decode turns a row into an object.
func (t *table[T]) decode(r *rawRow) (T, error) {
	var zero T
	o, err := api.New(t.kind)
	if err != nil {
		return zero, err
	}
	obj := o.(T)
	m := obj.GetMeta()
	*m = api.ObjectMeta{Name: r.name, Project: r.project, UID: r.uid, Generation: r.generation,
		ResourceVersion: strconv.FormatInt(r.rv, 10), CreationTimestamp: r.created.UTC()}
	if r.deletion != nil {
		d := r.deletion.UTC()
		m.DeletionTimestamp = &d
	}
	// Rows written straight in SQL may hold anything; decode leniently but
	// say which row is broken.
	for _, f := range []struct {
		data []byte
		into any
		what string
	}{{r.labels, &m.Labels, "labels"}, {r.annots, &m.Annotations, "annotations"}, {r.spec, obj.SpecPtr(), "spec"}, {r.status, obj.StatusPtr(), "status"}} {
		if err := json.Unmarshal(f.data, f.into); err != nil {
			return zero, fmt.Errorf("decode %s of %s %s: %w", f.what, t.kind, api.KeyOf(obj), err)
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

// resources implements store.Resources for one table.
type resources[T api.Object] struct {
	t *table[T]
	q querier
}

func jsonArg(v any) (string, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(data), nil
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
	if labels, err = jsonArg(mapOrEmpty(m.Labels)); err != nil {
		return
	}
	if annots, err = jsonArg(mapOrEmpty(m.Annotations)); err != nil {
		return
	}
	spec, err = jsonArg(obj.SpecPtr())
	return
}

func (r *resources[T]) Create(ctx context.Context, obj T) (T, error) {
	var zero T
	key := api.KeyOf(obj)
	what := fmt.Sprintf("create %s %s", r.t.kind, key)
	labels, annots, spec, err := writeArgs(obj)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", what, err)
	}
	if !r.t.scoped {
		row := r.q.QueryRow(ctx, `INSERT INTO `+r.t.name+` (name, labels, annotations, spec)
			VALUES ($1, $2::jsonb, $3::jsonb, $4::jsonb) RETURNING `+r.t.cols, key.Name, labels, annots, spec)
		out, err := r.t.scan(row)
		if err != nil {
			return zero, mapErr(err, what)
		}
		return out, nil
	}
	// Insert only into a live project: a deleting project takes no new objects.
	row := r.q.QueryRow(ctx, `INSERT INTO `+r.t.name+` (project, name, labels, annotations, spec)
		SELECT p.name, $2::text, $3::jsonb, $4::jsonb, $5::jsonb FROM panelx.projects p
		WHERE p.name = $1 AND p.deletion_timestamp IS NULL
		RETURNING `+r.t.cols, key.Project, key.Name, labels, annots, spec)
	out, err := r.t.scan(row)
	if errors.Is(err, pgx.ErrNoRows) {
		var deleting bool
		err := r.q.QueryRow(ctx, `SELECT deletion_timestamp IS NOT NULL FROM panelx.projects WHERE name = $1`, key.Project).Scan(&deleting)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return zero, fmt.Errorf("%s: project %q: %w", what, key.Project, store.ErrNotFound)
		case err != nil:
			return zero, fmt.Errorf("%s: %w", what, err)
		default:
			return zero, fmt.Errorf("%s: project %q is being deleted: %w", what, key.Project, store.ErrConflict)
		}
	}
	if err != nil {
		return zero, mapErr(err, what)
	}
	return out, nil
}

func (r *resources[T]) Get(ctx context.Context, key api.Key) (T, error) {
	obj, _, err := r.GetIfChanged(ctx, key, "", "")
	return obj, err
}

func (r *resources[T]) GetIfChanged(ctx context.Context, key api.Key, uid, rv string) (T, bool, error) {
	var zero T
	cond, args := r.t.keyCond(key, 1)
	raw, err := scanRaw(r.q.QueryRow(ctx, `SELECT `+r.t.cols+` FROM `+r.t.name+` WHERE `+cond, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return zero, false, fmt.Errorf("get %s %s: %w", r.t.kind, key, store.ErrNotFound)
	}
	if err != nil {
		return zero, false, fmt.Errorf("get %s %s: %w", r.t.kind, key, err)
	}
	if raw.current(uid, rv) {
		return zero, false, nil
	}
	out, err := r.t.decode(raw)
	if err != nil {
		return zero, false, fmt.Errorf("get %s %s: %w", r.t.kind, key, err)
	}
	return out, true, nil
}

// preconditions returns the optimistic-concurrency clause for the object's
// resourceVersion and uid (each only when set), numbering from n.
func preconditions(rvText, uid string, n int) (string, []any, error) {
	var rv int64
	if rvText != "" {
		var err error
		if rv, err = strconv.ParseInt(rvText, 10, 64); err != nil || rv <= 0 {
			return "", nil, fmt.Errorf("resourceVersion %q is not current: %w", rvText, store.ErrConflict)
		}
	}
	return fmt.Sprintf(" AND ($%d::bigint = 0 OR resource_version = $%d::bigint) AND ($%d::text = '' OR uid::text = $%d::text)", n, n, n+1, n+1),
		[]any{rv, uid}, nil
}

// explainMiss tells why a conditional write matched no row.
func (r *resources[T]) explainMiss(ctx context.Context, key api.Key, what string) error {
	if _, err := r.Get(ctx, key); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: the object changed since it was read (stale resourceVersion or uid): %w", what, store.ErrConflict)
}

func (r *resources[T]) Update(ctx context.Context, obj T) (T, error) {
	var zero T
	key := api.KeyOf(obj)
	what := fmt.Sprintf("update %s %s", r.t.kind, key)
	labels, annots, spec, err := writeArgs(obj)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", what, err)
	}
	cond, args := r.t.keyCond(key, 4)
	pre, preArgs, err := preconditions(obj.GetMeta().ResourceVersion, obj.GetMeta().UID, 4+len(args))
	if err != nil {
		return zero, fmt.Errorf("%s: %w", what, err)
	}
	out, err := r.t.scan(r.q.QueryRow(ctx, `UPDATE `+r.t.name+` SET labels = $1::jsonb, annotations = $2::jsonb, spec = $3::jsonb
		WHERE `+cond+pre+` RETURNING `+r.t.cols, append(append([]any{labels, annots, spec}, args...), preArgs...)...))
	if errors.Is(err, pgx.ErrNoRows) {
		return zero, r.explainMiss(ctx, key, what)
	}
	if err != nil {
		return zero, mapErr(err, what)
	}
	return out, nil
}

func (r *resources[T]) UpdateStatus(ctx context.Context, obj T) (T, error) {
	var zero T
	key := api.KeyOf(obj)
	what := fmt.Sprintf("update status of %s %s", r.t.kind, key)
	status, err := jsonArg(obj.StatusPtr())
	if err != nil {
		return zero, fmt.Errorf("%s: %w", what, err)
	}
	cond, args := r.t.keyCond(key, 2)
	pre, preArgs, err := preconditions(obj.GetMeta().ResourceVersion, obj.GetMeta().UID, 2+len(args))
	if err != nil {
		return zero, fmt.Errorf("%s: %w", what, err)
	}
	out, err := r.t.scan(r.q.QueryRow(ctx, `UPDATE `+r.t.name+` SET status = $1::jsonb WHERE `+cond+pre+` RETURNING `+r.t.cols,
		append(append([]any{status}, args...), preArgs...)...))
	if errors.Is(err, pgx.ErrNoRows) {
		return zero, r.explainMiss(ctx, key, what)
	}
	if err != nil {
		return zero, mapErr(err, what)
	}
	return out, nil
}

func (r *resources[T]) Delete(ctx context.Context, key api.Key, opts store.DeleteOptions) (T, error) {
	var zero, out T
	what := fmt.Sprintf("delete %s %s", r.t.kind, key)
	cond, args := r.t.keyCond(key, 2)
	pre, preArgs, err := preconditions(opts.ResourceVersion, opts.UID, 2+len(args))
	if err != nil {
		return zero, fmt.Errorf("%s: %w", what, err)
	}
	purge := opts.PurgeVolumes && r.t.kind == api.KindProject
	err = withTx(ctx, r.q, func(q querier) error {
		// Mark once; marking again only adds a purge request.
		row := q.QueryRow(ctx, `UPDATE `+r.t.name+` SET
				deletion_timestamp = COALESCE(deletion_timestamp, now()),
				annotations = CASE WHEN $1::boolean THEN annotations || '{"`+api.AnnotationPurgeVolumes+`": "true"}' ELSE annotations END
			WHERE `+cond+pre+` AND (deletion_timestamp IS NULL OR ($1::boolean AND NOT jsonb_exists(annotations, '`+api.AnnotationPurgeVolumes+`')))
			RETURNING `+r.t.cols, append(append([]any{purge}, args...), preArgs...)...)
		var err error
		out, err = r.t.scan(row)
		if errors.Is(err, pgx.ErrNoRows) {
			cur, gerr := (&resources[T]{t: r.t, q: q}).Get(ctx, key)
			if gerr != nil {
				return fmt.Errorf("%s: %w", what, gerr)
			}
			m := cur.GetMeta()
			if (opts.ResourceVersion != "" && opts.ResourceVersion != m.ResourceVersion) || (opts.UID != "" && opts.UID != m.UID) {
				return fmt.Errorf("%s: the object changed since it was read: %w", what, store.ErrConflict)
			}
			out = cur // already being deleted
			return nil
		}
		if err != nil {
			return mapErr(err, what)
		}
		if r.t.kind == api.KindProject {
			if _, err := q.Exec(ctx, `UPDATE panelx.services SET deletion_timestamp = now()
				WHERE project = $1 AND deletion_timestamp IS NULL`, key.Name); err != nil {
				return fmt.Errorf("%s: mark services: %w", what, err)
			}
		}
		return nil
	})
	if err != nil {
		return zero, err
	}
	return out, nil
}

func (r *resources[T]) Remove(ctx context.Context, key api.Key, uid string) error {
	what := fmt.Sprintf("remove %s %s", r.t.kind, key)
	cond, args := r.t.keyCond(key, 2)
	tag, err := r.q.Exec(ctx, `DELETE FROM `+r.t.name+` WHERE `+cond+` AND uid::text = $1 AND deletion_timestamp IS NOT NULL`,
		append([]any{uid}, args...)...)
	if err != nil {
		return mapErr(err, what)
	}
	if tag.RowsAffected() == 0 {
		cur, err := r.Get(ctx, key)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if cur.GetMeta().UID != uid {
			return fmt.Errorf("%s: uid %s is gone (now %s): %w", what, uid, cur.GetMeta().UID, store.ErrNotFound)
		}
		return fmt.Errorf("%s: not marked for deletion: %w", what, store.ErrConflict)
	}
	return nil
}

// sqlBuilder collects a WHERE clause and its numbered arguments.
type sqlBuilder struct {
	conds []string
	args  []any
}

func (b *sqlBuilder) arg(v any) string {
	b.args = append(b.args, v)
	return "$" + strconv.Itoa(len(b.args))
}

func (b *sqlBuilder) where(format string, vals ...any) {
	ph := make([]any, len(vals))
	for i, v := range vals {
		ph[i] = b.arg(v)
	}
	b.conds = append(b.conds, fmt.Sprintf(format, ph...))
}

func (b *sqlBuilder) selector(sel api.Selector) {
	for _, req := range sel {
		switch req.Op {
		case api.OpEquals:
			b.where("labels ->> %s = %s", req.Key, req.Values[0])
		case api.OpNotEquals:
			b.where("(labels ->> %s) IS DISTINCT FROM %s", req.Key, req.Values[0])
		case api.OpIn:
			b.where("labels ->> %s = ANY(%s)", req.Key, req.Values)
		case api.OpNotIn:
			b.where("NOT COALESCE(labels ->> %s = ANY(%s), false)", req.Key, req.Values)
		case api.OpExists:
			b.where("jsonb_exists(labels, %s)", req.Key)
		case api.OpNotExists:
			b.where("NOT jsonb_exists(labels, %s)", req.Key)
		}
	}
}

func (r *resources[T]) List(ctx context.Context, opts store.ListOptions) (store.List[T], error) {
	var out store.List[T]
	what := fmt.Sprintf("list %s", r.t.kind)
	projectCol := "name"
	if r.t.scoped {
		projectCol = "project"
	}
	var b sqlBuilder
	if opts.Project != "" && r.t.scoped {
		b.where("project = %s", opts.Project)
	}
	if opts.Projects != nil {
		b.where(projectCol+" = ANY(%s)", opts.Projects)
	}
	b.selector(opts.Selector)
	if opts.Continue != "" {
		c, err := store.DecodeContinue(opts.Continue)
		if err != nil {
			return out, fmt.Errorf("%s: %w", what, err)
		}
		if r.t.scoped {
			b.where("(project, name) > (%s, %s)", c.Project, c.Name)
		} else {
			b.where("name > %s", c.Name)
		}
	}
	query := `SELECT ` + r.t.cols + ` FROM ` + r.t.name
	if len(b.conds) > 0 {
		query += ` WHERE ` + strings.Join(b.conds, " AND ")
	}
	query += ` ORDER BY ` + projectCol + `, name`
	if opts.Limit > 0 {
		query += ` LIMIT ` + b.arg(opts.Limit+1)
	}
	var rv int64
	if err := r.q.QueryRow(ctx, `SELECT last_value FROM panelx.resource_version_seq`).Scan(&rv); err != nil {
		return out, fmt.Errorf("%s: %w", what, err)
	}
	out.ResourceVersion = strconv.FormatInt(rv, 10)
	rows, err := r.q.Query(ctx, query, b.args...)
	if err != nil {
		return out, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		obj, err := r.t.scan(rows)
		if err != nil {
			return out, fmt.Errorf("%s: %w", what, err)
		}
		out.Items = append(out.Items, obj)
	}
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("%s: %w", what, err)
	}
	if opts.Limit > 0 && len(out.Items) > opts.Limit {
		out.Items = out.Items[:opts.Limit]
		last := out.Items[len(out.Items)-1].GetMeta()
		out.Continue = store.EncodeContinue(api.Key{Project: last.Project, Name: last.Name})
	}
	return out, nil
}
