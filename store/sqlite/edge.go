package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/store"
)

// claimHostnames replaces a service's hostname claims with those of its
// spec (see panelx.claim_hostnames in migrations/postgres/00005_edge.sql,
// which this mirrors).
func claimHostnames(ctx context.Context, w *writer, project, service string, specJSON []byte) error {
	var spec api.ServiceSpec
	if err := json.Unmarshal(specJSON, &spec); err != nil {
		return fmt.Errorf("claim hostnames: decode spec: %w", err)
	}
	var projectSpec api.ProjectSpec
	var pspec []byte
	if err := w.q.QueryRowContext(ctx, `SELECT spec FROM projects WHERE name = ?`, project).Scan(&pspec); err != nil {
		return fmt.Errorf("claim hostnames: read project %s: %w", project, err)
	}
	if err := json.Unmarshal(pspec, &projectSpec); err != nil {
		return fmt.Errorf("claim hostnames: decode project %s: %w", project, err)
	}
	if _, err := w.q.ExecContext(ctx, `DELETE FROM hostnames WHERE project = ? AND service = ?`, project, service); err != nil {
		return fmt.Errorf("claim hostnames: %w", err)
	}
	var hosts []string
	for _, d := range spec.Domains {
		if h := strings.ToLower(api.EffectiveHost(d, service, projectSpec.Domain)); h != "" && !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	for _, h := range hosts {
		var holderProject, holderService string
		err := w.q.QueryRowContext(ctx, `SELECT project, service FROM hostnames WHERE host = ?`, h).Scan(&holderProject, &holderService)
		switch {
		case err == nil:
			taken := &store.HostnameTakenError{Host: h}
			if holderProject == project {
				taken.Service = holderService
			}
			return taken
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("claim hostname %s: %w", h, err)
		}
		if _, err := w.q.ExecContext(ctx, `INSERT INTO hostnames (host, project, service) VALUES (?, ?, ?)`, h, project, service); err != nil {
			return fmt.Errorf("claim hostname %s: %w", h, err)
		}
	}
	return nil
}

// reclaimProject re-claims the hostnames of a project's services after its
// domain changed (the defaults <service>.<domain> move with it).
func reclaimProject(ctx context.Context, w *writer, project string) error {
	rows, err := w.q.QueryContext(ctx, `SELECT name, spec FROM services WHERE project = ? ORDER BY name`, project)
	if err != nil {
		return fmt.Errorf("reclaim hostnames of project %s: %w", project, err)
	}
	type svc struct {
		name string
		spec []byte
	}
	var svcs []svc
	for rows.Next() {
		var s svc
		if err := rows.Scan(&s.name, &s.spec); err != nil {
			rows.Close()
			return fmt.Errorf("reclaim hostnames of project %s: %w", project, err)
		}
		svcs = append(svcs, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reclaim hostnames of project %s: %w", project, err)
	}
	for _, s := range svcs {
		if err := claimHostnames(ctx, w, project, s.name, s.spec); err != nil {
			return err
		}
	}
	return nil
}

// projectDomain reads the domain out of a project's spec JSON.
func projectDomain(spec []byte) string {
	var ps api.ProjectSpec
	_ = json.Unmarshal(spec, &ps) // a broken spec has no domain
	return ps.Domain
}

// touchHostService tells the service claiming host to look again: a change
// on the feed with neither spec nor status flag.
func touchHostService(ctx context.Context, w *writer, host string) error {
	var (
		c  store.Change
		rv int64
	)
	err := w.q.QueryRowContext(ctx, `SELECT s.project, s.name, s.uid, s.resource_version FROM hostnames h
		JOIN services s ON s.project = h.project AND s.name = h.service WHERE h.host = ?`, host).
		Scan(&c.Key.Project, &c.Key.Name, &c.UID, &rv)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("find the service of %s: %w", host, err)
	}
	c.Type, c.Kind, c.ResourceVersion = store.ChangeUpsert, api.KindService, rv
	w.emit(c)
	return nil
}

type hostnames struct{ r repo }

func (h hostnames) Owner(ctx context.Context, host string) (store.HostnameClaim, error) {
	var c store.HostnameClaim
	err := h.r.reader().QueryRowContext(ctx, `SELECT host, project, service FROM hostnames WHERE host = ?`, host).Scan(&c.Host, &c.Project, &c.Service)
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("hostname %s: %w", host, store.ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("read claim of %s: %w", host, err)
	}
	return c, nil
}

func (h hostnames) List(ctx context.Context) ([]store.HostnameClaim, error) {
	rows, err := h.r.reader().QueryContext(ctx, `SELECT host, project, service FROM hostnames ORDER BY host`)
	if err != nil {
		return nil, fmt.Errorf("list hostnames: %w", err)
	}
	defer rows.Close()
	var out []store.HostnameClaim
	for rows.Next() {
		var c store.HostnameClaim
		if err := rows.Scan(&c.Host, &c.Project, &c.Service); err != nil {
			return nil, fmt.Errorf("list hostnames: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

type edges struct{ r repo }

func (e edges) Report(ctx context.Context, r store.EdgeReport) error {
	return e.r.write(ctx, func(w *writer) error {
		ts := now()
		r.SeenAt = ts
		report, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encode report of edge %s: %w", r.ID, err)
		}
		_, err = w.q.ExecContext(ctx, `INSERT INTO edges (id, name, report, seen_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET name = excluded.name, report = excluded.report, seen_at = excluded.seen_at`,
			r.ID, r.Name, string(report), ts.UnixMicro())
		if err != nil {
			return mapErr(err, "store report of edge "+r.ID)
		}
		return nil
	})
}

func (e edges) List(ctx context.Context) ([]store.EdgeReport, error) {
	rows, err := e.r.reader().QueryContext(ctx, `SELECT id, name, report, seen_at FROM edges ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list edges: %w", err)
	}
	defer rows.Close()
	var out []store.EdgeReport
	for rows.Next() {
		var (
			r        store.EdgeReport
			id, name string
			report   []byte
			seen     int64
		)
		if err := rows.Scan(&id, &name, &report, &seen); err != nil {
			return nil, fmt.Errorf("list edges: %w", err)
		}
		if err := json.Unmarshal(report, &r); err != nil {
			return nil, fmt.Errorf("decode report of edge %s: %w", id, err)
		}
		r.ID, r.Name, r.SeenAt = id, name, fromMicros(seen)
		out = append(out, r)
	}
	return out, rows.Err()
}

type certificates struct{ r repo }

func (c certificates) SetStatus(ctx context.Context, host string, st api.CertificateStatus) (bool, error) {
	data, err := json.Marshal(st)
	if err != nil {
		return false, fmt.Errorf("encode certificate status of %s: %w", host, err)
	}
	changed := false
	err = c.r.write(ctx, func(w *writer) error {
		var cur []byte
		err := w.q.QueryRowContext(ctx, `SELECT status FROM certificate_status WHERE host = ?`, host).Scan(&cur)
		if err == nil && jsonEqual(cur, data) {
			return nil
		}
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("read certificate status of %s: %w", host, err)
		}
		if _, err := w.q.ExecContext(ctx, `INSERT INTO certificate_status (host, status, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (host) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at`,
			host, string(data), now().UnixMicro()); err != nil {
			return mapErr(err, "store certificate status of "+host)
		}
		changed = true
		return touchHostService(ctx, w, host)
	})
	return changed, err
}

func (c certificates) Statuses(ctx context.Context, hosts []string) (map[string]api.CertificateStatus, error) {
	out := map[string]api.CertificateStatus{}
	for _, h := range hosts {
		var data []byte
		err := c.r.reader().QueryRowContext(ctx, `SELECT status FROM certificate_status WHERE host = ?`, h).Scan(&data)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read certificate status of %s: %w", h, err)
		}
		var st api.CertificateStatus
		if err := json.Unmarshal(data, &st); err != nil {
			return nil, fmt.Errorf("decode certificate status of %s: %w", h, err)
		}
		out[h] = st
	}
	return out, nil
}

const customCols = `host, project, certificate, private_key, not_after, issuer, dns_names, created_at, updated_at`

func scanCustom(sc scanner) (store.CustomCertificate, error) {
	var (
		c                          store.CustomCertificate
		names                      []byte
		notAfter, created, updated int64
	)
	if err := sc.Scan(&c.Host, &c.Project, &c.CertificatePEM, &c.PrivateKeyPEM, &notAfter, &c.Issuer, &names, &created, &updated); err != nil {
		return c, err
	}
	c.NotAfter, c.CreatedAt, c.UpdatedAt = fromMicros(notAfter), fromMicros(created), fromMicros(updated)
	return c, json.Unmarshal(names, &c.DNSNames)
}

func (c certificates) PutCustom(ctx context.Context, in store.CustomCertificate) (store.CustomCertificate, error) {
	var out store.CustomCertificate
	what := "store certificate for " + in.Host
	names, err := json.Marshal(in.DNSNames)
	if err != nil {
		return out, fmt.Errorf("%s: %w", what, err)
	}
	err = c.r.write(ctx, func(w *writer) error {
		// As in PostgreSQL: a current holder's certificate is never replaced
		// by another project's.
		var holder string
		err := w.q.QueryRowContext(ctx, `SELECT t.project FROM tls_certificates t JOIN hostnames h
			ON h.host = t.host AND h.project = t.project WHERE t.host = ?`, in.Host).Scan(&holder)
		switch {
		case err == nil && holder != in.Project:
			return fmt.Errorf("%s: held by another project: %w", what, store.ErrAlreadyExists)
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("%s: %w", what, err)
		}
		ts := now().UnixMicro()
		out, err = scanCustom(w.q.QueryRowContext(ctx, `INSERT INTO tls_certificates (host, project, certificate, private_key,
				not_after, issuer, dns_names, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (host) DO UPDATE SET project = excluded.project, certificate = excluded.certificate,
				private_key = excluded.private_key, not_after = excluded.not_after, issuer = excluded.issuer,
				dns_names = excluded.dns_names, updated_at = excluded.updated_at
			RETURNING `+customCols, in.Host, in.Project, in.CertificatePEM, in.PrivateKeyPEM, in.NotAfter.UnixMicro(),
			in.Issuer, string(names), ts, ts))
		if err != nil {
			return mapErr(err, what)
		}
		return touchHostService(ctx, w, in.Host)
	})
	return out, err
}

func (c certificates) GetCustom(ctx context.Context, project, host string) (store.CustomCertificate, error) {
	out, err := scanCustom(c.r.reader().QueryRowContext(ctx, `SELECT `+customCols+` FROM tls_certificates WHERE project = ? AND host = ?`, project, host))
	if errors.Is(err, sql.ErrNoRows) {
		return out, fmt.Errorf("certificate for %s: %w", host, store.ErrNotFound)
	}
	if err != nil {
		return out, fmt.Errorf("read certificate for %s: %w", host, err)
	}
	return out, nil
}

func (c certificates) ListCustom(ctx context.Context, project string) ([]store.CustomCertificate, error) {
	rows, err := c.r.reader().QueryContext(ctx, `SELECT `+customCols+` FROM tls_certificates WHERE ? = '' OR project = ? ORDER BY host`, project, project)
	if err != nil {
		return nil, fmt.Errorf("list certificates: %w", err)
	}
	defer rows.Close()
	var out []store.CustomCertificate
	for rows.Next() {
		cc, err := scanCustom(rows)
		if err != nil {
			return nil, fmt.Errorf("list certificates: %w", err)
		}
		out = append(out, cc)
	}
	return out, rows.Err()
}

func (c certificates) DeleteCustom(ctx context.Context, project, host string) error {
	return c.r.write(ctx, func(w *writer) error {
		res, err := w.q.ExecContext(ctx, `DELETE FROM tls_certificates WHERE project = ? AND host = ?`, project, host)
		if err != nil {
			return fmt.Errorf("delete certificate for %s: %w", host, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("delete certificate for %s: %w", host, store.ErrNotFound)
		}
		return touchHostService(ctx, w, host)
	})
}
