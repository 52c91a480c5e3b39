package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/panelx/panelx/store"
)

// pooled is the pool as the repository uses it, with two things added:
//
//   - errors that say the database cannot be reached are marked
//     store.ErrUnavailable, so the API answers 503 instead of 500;
//   - a statement that failed on a connection the database had already
//     ended (a restart kills every session: SQLSTATE 57P01) or that was
//     never sent (pgconn.SafeToRetry) did not run, so it is tried once
//     more, after the pool's idle connections — as dead — are dropped.
//     Requests arriving after a restart therefore do not fail on the
//     connections the restart killed.
type pooled struct{ p *pgxpool.Pool }

// retryable reports whether err proves the statement did not run.
func retryable(err error) bool {
	if err == nil {
		return false
	}
	if pgconn.SafeToRetry(err) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "57P01", "57P02", "57P03": // admin_shutdown, crash_shutdown, cannot_connect_now
			return true
		}
	}
	return false
}

// unreachable reports whether err says the database cannot be reached,
// as opposed to refusing the statement.
func unreachable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var (
		pgErr   *pgconn.PgError
		connErr *pgconn.ConnectError
		netErr  *net.OpError
	)
	switch {
	case errors.As(err, &pgErr):
		// Connection exceptions, shutdowns, too many connections.
		return pgErr.Code[:2] == "08" || pgErr.Code[:3] == "57P" || pgErr.Code == "53300"
	case errors.As(err, &connErr), errors.As(err, &netErr),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true
	}
	return pgconn.SafeToRetry(err) || pgconn.Timeout(err)
}

// unavailableError keeps the driver's error and adds store.ErrUnavailable.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string   { return e.err.Error() }
func (e *unavailableError) Unwrap() []error { return []error{e.err, store.ErrUnavailable} }

// classify marks an unreachable database.
func classify(err error) error {
	if unreachable(err) && !errors.Is(err, store.ErrUnavailable) {
		return &unavailableError{err: err}
	}
	return err
}

func (q pooled) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	tag, err := q.p.Exec(ctx, sql, args...)
	if retryable(err) && ctx.Err() == nil {
		q.p.Reset()
		tag, err = q.p.Exec(ctx, sql, args...)
	}
	return tag, classify(err)
}

func (q pooled) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	rows, err := q.p.Query(ctx, sql, args...)
	if retryable(err) && ctx.Err() == nil {
		q.p.Reset()
		rows, err = q.p.Query(ctx, sql, args...)
	}
	if err != nil {
		return rows, classify(err)
	}
	return classifiedRows{rows}, nil
}

func (q pooled) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return &retryRow{q: q, ctx: ctx, sql: sql, args: args, row: q.p.QueryRow(ctx, sql, args...)}
}

func (q pooled) Begin(ctx context.Context) (pgx.Tx, error) {
	tx, err := q.p.Begin(ctx)
	if retryable(err) && ctx.Err() == nil {
		q.p.Reset()
		tx, err = q.p.Begin(ctx)
	}
	return tx, classify(err)
}

// retryRow is QueryRow's result: its error shows only at Scan.
type retryRow struct {
	q    pooled
	ctx  context.Context
	sql  string
	args []any
	row  pgx.Row
}

func (r *retryRow) Scan(dest ...any) error {
	err := r.row.Scan(dest...)
	if retryable(err) && r.ctx.Err() == nil {
		r.q.p.Reset()
		err = r.q.p.QueryRow(r.ctx, r.sql, r.args...).Scan(dest...)
	}
	return classify(err)
}

// classifiedRows marks an unreachable database in errors met while
// reading rows.
type classifiedRows struct{ pgx.Rows }

func (r classifiedRows) Err() error { return classify(r.Rows.Err()) }
