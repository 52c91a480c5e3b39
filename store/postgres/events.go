package postgres

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/panelx/panelx/store"
)

// Limits on events: messages are cut, and each project keeps its newest ones.
const (
	maxEventMessage     = 1024
	maxEventsPerProject = 1000
)

type events struct{ q querier }

func (e events) Record(ctx context.Context, ev store.Event) error {
	what := fmt.Sprintf("record event %s on %s %s/%s", ev.Reason, ev.Kind, ev.Project, ev.Name)
	if ev.Type != store.EventNormal && ev.Type != store.EventWarning {
		return fmt.Errorf("%s: type %q: %w", what, ev.Type, store.ErrInvalid)
	}
	msg := truncateUTF8(ev.Message, maxEventMessage)
	var id int64
	err := e.q.QueryRow(ctx, `INSERT INTO panelx.events (project, kind, name, type, reason, message)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (project, kind, name, type, reason, md5(message))
		DO UPDATE SET count = panelx.events.count + 1, last_timestamp = now()
		RETURNING id`, ev.Project, string(ev.Kind), ev.Name, string(ev.Type), ev.Reason, msg).Scan(&id)
	if err != nil {
		return mapErr(err, what)
	}
	// Trim now and then rather than on every write.
	if id%100 == 0 {
		if _, err := e.q.Exec(ctx, `DELETE FROM panelx.events WHERE id IN (
			SELECT id FROM panelx.events WHERE project = $1 ORDER BY last_timestamp DESC OFFSET $2)`,
			ev.Project, maxEventsPerProject); err != nil {
			return fmt.Errorf("%s: trim: %w", what, err)
		}
	}
	return nil
}

func (e events) List(ctx context.Context, project string, f store.EventFilter) ([]store.Event, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	rows, err := e.q.Query(ctx, `SELECT id, project, kind, name, type, reason, message, count, first_timestamp, last_timestamp
		FROM panelx.events
		WHERE project = $1 AND ($2 = '' OR kind = $2) AND ($3 = '' OR name = $3)
		ORDER BY last_timestamp DESC, id DESC LIMIT $4`, project, string(f.Kind), f.Name, limit)
	if err != nil {
		return nil, fmt.Errorf("list events of project %s: %w", project, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Event, error) {
		var ev store.Event
		err := row.Scan(&ev.ID, &ev.Project, &ev.Kind, &ev.Name, &ev.Type, &ev.Reason, &ev.Message, &ev.Count, &ev.FirstTimestamp, &ev.LastTimestamp)
		return ev, err
	})
	if err != nil {
		return nil, fmt.Errorf("list events of project %s: %w", project, err)
	}
	return out, nil
}

// truncateUTF8 cuts s to at most n bytes on a character boundary, marking
// the cut; PostgreSQL refuses invalid UTF-8.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	cut := n - 3
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strings.ToValidUTF8(s[:cut], "\uFFFD") + "..."
}
