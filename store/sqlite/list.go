package sqlite

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/store"
)

// sqlBuilder collects a WHERE clause and its arguments.
type sqlBuilder struct {
	conds []string
	args  []any
}

func (b *sqlBuilder) where(cond string, args ...any) {
	b.conds = append(b.conds, cond)
	b.args = append(b.args, args...)
}

// in returns "(?, ?, …)" for vals and adds them as arguments.
func (b *sqlBuilder) in(vals []string) string {
	marks := make([]string, len(vals))
	for i, v := range vals {
		marks[i] = "?"
		b.args = append(b.args, v)
	}
	return "(" + strings.Join(marks, ", ") + ")"
}

// hasLabel is true when labels has the key (with a value in the list that
// follows, when one is appended). json_each spares us quoting the key into a
// JSON path.
const hasLabel = `EXISTS (SELECT 1 FROM json_each(labels) WHERE key = ?`

func (b *sqlBuilder) selector(sel api.Selector) {
	for _, req := range sel {
		switch req.Op {
		case api.OpEquals:
			b.where(hasLabel+` AND value = ?)`, req.Key, req.Values[0])
		case api.OpNotEquals:
			b.where(`NOT `+hasLabel+` AND value = ?)`, req.Key, req.Values[0])
		case api.OpIn:
			b.args = append(b.args, req.Key)
			b.conds = append(b.conds, hasLabel+` AND value IN `+b.in(req.Values)+`)`)
		case api.OpNotIn:
			b.args = append(b.args, req.Key)
			b.conds = append(b.conds, `NOT `+hasLabel+` AND value IN `+b.in(req.Values)+`)`)
		case api.OpExists:
			b.where(hasLabel+`)`, req.Key)
		case api.OpNotExists:
			b.where(`NOT `+hasLabel+`)`, req.Key)
		default:
			// Never match on what we do not understand.
			b.where(`0`)
		}
	}
}

// listQuery builds the query of one page; it asks for one item more than
// the limit to tell whether there is a next page.
func (t *table[T]) listQuery(opts store.ListOptions) (string, []any, error) {
	projectCol := "name"
	if t.scoped {
		projectCol = "project"
	}
	var b sqlBuilder
	if opts.Project != "" && t.scoped {
		b.where("project = ?", opts.Project)
	}
	if opts.Projects != nil {
		if len(opts.Projects) == 0 {
			b.where("0") // restricted to no project at all
		} else {
			b.conds = append(b.conds, projectCol+" IN "+b.in(opts.Projects))
		}
	}
	b.selector(opts.Selector)
	if opts.Continue != "" {
		c, err := store.DecodeContinue(opts.Continue)
		if err != nil {
			return "", nil, err
		}
		if t.scoped {
			b.where("(project, name) > (?, ?)", c.Project, c.Name)
		} else {
			b.where("name > ?", c.Name)
		}
	}
	query := `SELECT ` + t.cols + ` FROM ` + t.name
	if len(b.conds) > 0 {
		query += ` WHERE ` + strings.Join(b.conds, " AND ")
	}
	query += ` ORDER BY ` + projectCol + `, name`
	if opts.Limit > 0 {
		query += ` LIMIT ?`
		b.args = append(b.args, opts.Limit+1)
	}
	return query, b.args, nil
}

func (r *resources[T]) List(ctx context.Context, opts store.ListOptions) (store.List[T], error) {
	var out store.List[T]
	what := fmt.Sprintf("list %s", r.t.kind)
	query, args, err := r.t.listQuery(opts)
	if err != nil {
		return out, fmt.Errorf("%s: %w", what, err)
	}
	// One snapshot: the resource version says exactly what the page saw.
	err = r.r.read(ctx, func(q querier) error {
		var rv int64
		if err := q.QueryRowContext(ctx, `SELECT last_value FROM resource_version_seq WHERE id = 1`).Scan(&rv); err != nil {
			return err
		}
		out.ResourceVersion = strconv.FormatInt(rv, 10)
		rows, err := q.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		stored, err := collectRows(rows)
		if err != nil {
			return err
		}
		for _, s := range stored {
			obj, err := r.t.decode(s)
			if err != nil {
				return err
			}
			out.Items = append(out.Items, obj)
		}
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("%s: %w", what, err)
	}
	if opts.Limit > 0 && len(out.Items) > opts.Limit {
		out.Items = out.Items[:opts.Limit]
		last := out.Items[len(out.Items)-1].GetMeta()
		out.Continue = store.EncodeContinue(api.Key{Project: last.Project, Name: last.Name})
	}
	return out, nil
}
