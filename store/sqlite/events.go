package sqlite

import (
	"context"
	"fmt"
	"unicode/utf8"

	"github.com/panelx/panelx/store"
)

// Limits on events: messages are cut, and each project keeps its newest ones.
const (
	maxEventMessage     = 1024
	maxEventsPerProject = 1000
)

type events struct{ r repo }

func (e events) Record(ctx context.Context, ev store.Event) error {
	what := fmt.Sprintf("record event %s on %s %s/%s", ev.Reason, ev.Kind, ev.Project, ev.Name)
	if ev.Type != store.EventNormal && ev.Type != store.EventWarning {
		return fmt.Errorf("%s: type %q: %w", what, ev.Type, store.ErrInvalid)
	}
	msg := cutMessage(ev.Message)
	return e.r.write(ctx, func(w *writer) error {
		at := now().UnixMicro()
		var id int64
		err := w.q.QueryRowContext(ctx, `INSERT INTO events
				(project, kind, name, type, reason, message, count, first_timestamp, last_timestamp)
			VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)
			ON CONFLICT (project, kind, name, type, reason, message)
			DO UPDATE SET count = count + 1, last_timestamp = excluded.last_timestamp
			RETURNING id`, ev.Project, string(ev.Kind), ev.Name, string(ev.Type), ev.Reason, msg, at, at).Scan(&id)
		if err != nil {
			return mapErr(err, what)
		}
		// Trim now and then rather than on every write.
		if id%100 == 0 {
			if _, err := w.q.ExecContext(ctx, `DELETE FROM events WHERE id IN (
				SELECT id FROM events WHERE project = ? ORDER BY last_timestamp DESC, id DESC LIMIT -1 OFFSET ?)`,
				ev.Project, maxEventsPerProject); err != nil {
				return fmt.Errorf("%s: trim: %w", what, err)
			}
		}
		return nil
	})
}

func (e events) List(ctx context.Context, project string, f store.EventFilter) ([]store.Event, error) {
	what := "list events of project " + project
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	rows, err := e.r.reader().QueryContext(ctx, `SELECT id, project, kind, name, type, reason, message, count,
			first_timestamp, last_timestamp
		FROM events
		WHERE project = ? AND (? = '' OR kind = ?) AND (? = '' OR name = ?)
		ORDER BY last_timestamp DESC, id DESC LIMIT ?`,
		project, string(f.Kind), string(f.Kind), f.Name, f.Name, limit)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []store.Event
	for rows.Next() {
		var (
			ev          store.Event
			first, last int64
		)
		if err := rows.Scan(&ev.ID, &ev.Project, &ev.Kind, &ev.Name, &ev.Type, &ev.Reason, &ev.Message, &ev.Count, &first, &last); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		ev.FirstTimestamp, ev.LastTimestamp = fromMicros(first), fromMicros(last)
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// cutMessage shortens a message to maxEventMessage bytes, on a character
// boundary.
func cutMessage(msg string) string {
	if len(msg) <= maxEventMessage {
		return msg
	}
	cut := maxEventMessage - len("...")
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut] + "..."
}
