package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/store"
)

// hostnameTaken turns the claim trigger's refusal (or a racing insert's
// primary-key violation) into a HostnameTakenError; nil for other errors.
func hostnameTaken(err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23505" || pgErr.ConstraintName != "hostnames_pkey" {
		return nil
	}
	m := hostDetailRe.FindStringSubmatch(pgErr.Detail)
	if m == nil {
		return &store.HostnameTakenError{Host: "?"}
	}
	return &store.HostnameTakenError{Host: m[1], Service: pgErr.Hint}
}

var hostDetailRe = regexp.MustCompile(`^Key \(host\)=\((.*)\) already exists\.$`)

type hostnames struct{ q querier }

func (h hostnames) Owner(ctx context.Context, host string) (store.HostnameClaim, error) {
	var c store.HostnameClaim
	err := h.q.QueryRow(ctx, `SELECT host, project, service FROM panelx.hostnames WHERE host = $1`, host).Scan(&c.Host, &c.Project, &c.Service)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, fmt.Errorf("hostname %s: %w", host, store.ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("read claim of %s: %w", host, err)
	}
	return c, nil
}

func (h hostnames) List(ctx context.Context) ([]store.HostnameClaim, error) {
	rows, err := h.q.Query(ctx, `SELECT host, project, service FROM panelx.hostnames ORDER BY host`)
	if err != nil {
		return nil, fmt.Errorf("list hostnames: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.HostnameClaim, error) {
		var c store.HostnameClaim
		return c, row.Scan(&c.Host, &c.Project, &c.Service)
	})
	if err != nil {
		return nil, fmt.Errorf("list hostnames: %w", err)
	}
	return out, nil
}

type edges struct{ q querier }

func (e edges) Report(ctx context.Context, r store.EdgeReport) error {
	r.SeenAt = r.SeenAt.UTC()
	report, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode report of edge %s: %w", r.ID, err)
	}
	_, err = e.q.Exec(ctx, `INSERT INTO panelx.edges (id, name, report, seen_at) VALUES ($1, $2, $3::jsonb, now())
		ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, report = EXCLUDED.report, seen_at = now()`, r.ID, r.Name, string(report))
	if err != nil {
		return mapErr(err, "store report of edge "+r.ID)
	}
	return nil
}

func (e edges) List(ctx context.Context) ([]store.EdgeReport, error) {
	rows, err := e.q.Query(ctx, `SELECT id, name, report, seen_at FROM panelx.edges ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list edges: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.EdgeReport, error) {
		var (
			r      store.EdgeReport
			id     string
			name   string
			report []byte
		)
		if err := row.Scan(&id, &name, &report, &r.SeenAt); err != nil {
			return r, err
		}
		seen := r.SeenAt
		if err := json.Unmarshal(report, &r); err != nil {
			return r, fmt.Errorf("decode report of edge %s: %w", id, err)
		}
		r.ID, r.Name, r.SeenAt = id, name, seen.UTC()
		return r, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list edges: %w", err)
	}
	return out, nil
}

type certificates struct{ q querier }

func (c certificates) SetStatus(ctx context.Context, host string, st api.CertificateStatus) (bool, error) {
	data, err := json.Marshal(st)
	if err != nil {
		return false, fmt.Errorf("encode certificate status of %s: %w", host, err)
	}
	// Only a real change is written: every write tells the service to look again.
	tag, err := c.q.Exec(ctx, `INSERT INTO panelx.certificate_status (host, status) VALUES ($1, $2::jsonb)
		ON CONFLICT (host) DO UPDATE SET status = EXCLUDED.status, updated_at = now()
		WHERE panelx.certificate_status.status IS DISTINCT FROM EXCLUDED.status`, host, string(data))
	if err != nil {
		return false, mapErr(err, "store certificate status of "+host)
	}
	return tag.RowsAffected() > 0, nil
}

func (c certificates) Statuses(ctx context.Context, hosts []string) (map[string]api.CertificateStatus, error) {
	out := map[string]api.CertificateStatus{}
	if len(hosts) == 0 {
		return out, nil
	}
	rows, err := c.q.Query(ctx, `SELECT host, status FROM panelx.certificate_status WHERE host = ANY($1)`, hosts)
	if err != nil {
		return nil, fmt.Errorf("read certificate status: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			host string
			data []byte
			st   api.CertificateStatus
		)
		if err := rows.Scan(&host, &data); err != nil {
			return nil, fmt.Errorf("read certificate status: %w", err)
		}
		if err := json.Unmarshal(data, &st); err != nil {
			return nil, fmt.Errorf("decode certificate status of %s: %w", host, err)
		}
		out[host] = st
	}
	return out, rows.Err()
}

const customCols = `host, project, certificate, private_key, not_after, issuer, dns_names, created_at, updated_at`

func scanCustom(row pgx.Row) (store.CustomCertificate, error) {
	var (
		c     store.CustomCertificate
		names []byte
	)
	if err := row.Scan(&c.Host, &c.Project, &c.CertificatePEM, &c.PrivateKeyPEM, &c.NotAfter, &c.Issuer, &names, &c.CreatedAt, &c.UpdatedAt); err != nil {
		return c, err
	}
	c.NotAfter, c.CreatedAt, c.UpdatedAt = c.NotAfter.UTC(), c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	return c, json.Unmarshal(names, &c.DNSNames)
}

func (c certificates) PutCustom(ctx context.Context, in store.CustomCertificate) (store.CustomCertificate, error) {
	what := "store certificate for " + in.Host
	names, err := json.Marshal(in.DNSNames)
	if err != nil {
		return in, fmt.Errorf("%s: %w", what, err)
	}
	// A hostname's certificate belongs to the project that claims it: one
	// left by a project that no longer claims the hostname is replaced, a
	// current holder's never.
	out, err := scanCustom(c.q.QueryRow(ctx, `INSERT INTO panelx.tls_certificates (host, project, certificate, private_key, not_after, issuer, dns_names)
		VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)
		ON CONFLICT (host) DO UPDATE SET project = EXCLUDED.project, certificate = EXCLUDED.certificate, private_key = EXCLUDED.private_key,
			not_after = EXCLUDED.not_after, issuer = EXCLUDED.issuer, dns_names = EXCLUDED.dns_names, updated_at = now()
		WHERE panelx.tls_certificates.project = EXCLUDED.project OR NOT EXISTS (SELECT 1 FROM panelx.hostnames h
			WHERE h.host = EXCLUDED.host AND h.project = panelx.tls_certificates.project)
		RETURNING `+customCols, in.Host, in.Project, in.CertificatePEM, in.PrivateKeyPEM, in.NotAfter, in.Issuer, string(names)))
	if errors.Is(err, pgx.ErrNoRows) {
		return out, fmt.Errorf("%s: held by another project: %w", what, store.ErrAlreadyExists)
	}
	if err != nil {
		return out, mapErr(err, what)
	}
	return out, nil
}

func (c certificates) GetCustom(ctx context.Context, project, host string) (store.CustomCertificate, error) {
	out, err := scanCustom(c.q.QueryRow(ctx, `SELECT `+customCols+` FROM panelx.tls_certificates WHERE project = $1 AND host = $2`, project, host))
	if errors.Is(err, pgx.ErrNoRows) {
		return out, fmt.Errorf("certificate for %s: %w", host, store.ErrNotFound)
	}
	if err != nil {
		return out, fmt.Errorf("read certificate for %s: %w", host, err)
	}
	return out, nil
}

func (c certificates) ListCustom(ctx context.Context, project string) ([]store.CustomCertificate, error) {
	rows, err := c.q.Query(ctx, `SELECT `+customCols+` FROM panelx.tls_certificates WHERE $1 = '' OR project = $1 ORDER BY host`, project)
	if err != nil {
		return nil, fmt.Errorf("list certificates: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.CustomCertificate, error) { return scanCustom(row) })
	if err != nil {
		return nil, fmt.Errorf("list certificates: %w", err)
	}
	return out, nil
}

func (c certificates) DeleteCustom(ctx context.Context, project, host string) error {
	tag, err := c.q.Exec(ctx, `DELETE FROM panelx.tls_certificates WHERE project = $1 AND host = $2`, project, host)
	if err != nil {
		return fmt.Errorf("delete certificate for %s: %w", host, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete certificate for %s: %w", host, store.ErrNotFound)
	}
	return nil
}
