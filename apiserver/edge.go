package apiserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"go.uber.org/zap"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/api/routing"
	"github.com/panelx/panelx/apiserver/authz"
	"github.com/panelx/panelx/seal"
	"github.com/panelx/panelx/store"
)

// The edge's side of the API: its route feed and its reports. Only edge
// tokens reach these routes (see edgeGate), and edge tokens reach nothing
// else.

const (
	// edgeDebounce gathers a burst of changes (a rollout writes several
	// statuses) into one new table.
	edgeDebounce = 15 * time.Millisecond

	maxEdgeAddresses = 10_000
	maxEdgeCerts     = 10_000
	maxEdgeEvents    = 100
	maxEdgeMessage   = 4 << 10
)

var edgeIDRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// buildRoutes reads everything the table is computed from.
func (s *Server) buildRoutes(ctx context.Context) (routing.Table, error) {
	var (
		projects []*api.Project
		services []*api.Service
	)
	if err := store.Each(ctx, s.store.Projects(), store.ListOptions{Limit: 1000}, func(p *api.Project) { projects = append(projects, p) }); err != nil {
		return routing.Table{}, err
	}
	if err := store.Each(ctx, s.store.Services(), store.ListOptions{Limit: 1000}, func(v *api.Service) { services = append(services, v) }); err != nil {
		return routing.Table{}, err
	}
	claims, err := s.store.Hostnames().List(ctx)
	if err != nil {
		return routing.Table{}, err
	}
	certs, err := s.store.Certificates().ListCustom(ctx, "")
	if err != nil {
		return routing.Table{}, err
	}
	rc := make([]routing.Claim, len(claims))
	for i, c := range claims {
		rc[i] = routing.Claim{Host: c.Host, Project: c.Project, Service: c.Service}
	}
	ru := make([]routing.Upload, 0, len(certs))
	for _, c := range certs {
		key, err := s.keyring.OpenText(seal.CertificateKeyContext(c.Host), c.PrivateKeyPEM)
		if err != nil {
			// The edge orders a certificate for it instead; say why here.
			s.log.Error("an uploaded certificate's key cannot be opened; the edges will not serve it", zap.String("host", c.Host), zap.String("reason", seal.Describe(err)))
			continue
		}
		ru = append(ru, routing.Upload{Host: c.Host, Project: c.Project, CertificatePEM: c.CertificatePEM, PrivateKeyPEM: key})
	}
	return routing.Build(projects, services, rc, ru), nil
}

// edgeRoutes: GET /api/v1/edge/routes — the route table; with watch=true a
// Server-Sent Events stream of tables ("event: routes"), a new one within
// milliseconds of every change of what they are computed from.
func (s *Server) edgeRoutes(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("watch") != "true" {
		t, err := s.buildRoutes(r.Context())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, t)
		return
	}
	st, err := s.openStream(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer st.close()
	ctx := st.ctx
	guard := st.guard("", authz.Read)
	defer guard.stop()
	changes, err := s.store.Watch(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	write := func(format string, args ...any) error {
		_ = rc.SetWriteDeadline(time.Now().Add(watchWriteTimeout))
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return err
		}
		return rc.Flush()
	}
	log := logger(ctx)
	ping := time.NewTicker(watchPing)
	defer ping.Stop()
	var (
		debounce <-chan time.Time
		sent     string
	)
	for {
		select {
		case <-ctx.Done():
			return
		case c, ok := <-changes:
			if !ok {
				return
			}
			if c.Kind == api.KindVolume || c.Kind == api.KindSecret || c.Kind == store.KindMember || c.Kind == store.KindAPIToken {
				continue // nothing the edges route
			}
			if debounce == nil {
				debounce = time.After(edgeDebounce)
			}
		case <-debounce:
			debounce = nil
			t, err := s.buildRoutes(ctx)
			if err != nil {
				log.Warn("build edge routes", zap.Error(err))
				debounce = time.After(time.Second) // the database may be back soon
				continue
			}
			if t.Version == sent {
				continue
			}
			data, err := json.Marshal(t)
			if err != nil {
				log.Error("encode edge routes", zap.Error(err))
				return
			}
			if err := write("event: routes\ndata: %s\n\n", data); err != nil {
				return
			}
			sent = t.Version
		case <-ping.C:
			if err := write(": ping\n\n"); err != nil {
				return
			}
		case <-guard.expired:
			_ = write("event: error\ndata: %q\n\n", errCredentialExpired.Error())
			return
		case <-guard.recheck.C:
			if err := guard.check(ctx); err != nil {
				_ = write("event: error\ndata: %q\n\n", err.Error())
				return
			}
		}
	}
}

// EdgeReportRequest is what an edge reports: the replica addresses it
// routes to and drains, the state of its certificates, and the events
// worth recording (certificates issued, renewed, failed).
type EdgeReportRequest struct {
	Name         string                  `json:"name"`
	Routes       string                  `json:"routes,omitempty"`
	Active       []string                `json:"active"`
	Draining     []string                `json:"draining"`
	Certificates []EdgeCertificateReport `json:"certificates,omitempty"`
	Events       []EdgeEvent             `json:"events,omitempty"`
}

// EdgeCertificateReport is one hostname's certificate as an edge has it.
type EdgeCertificateReport struct {
	Host   string                `json:"host"`
	Status api.CertificateStatus `json:"status"`
}

// EdgeEvent is recorded on the service that claims Host.
type EdgeEvent struct {
	Host    string `json:"host"`
	Type    string `json:"type"` // Normal or Warning
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

var eventReasonRe = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]{0,63}$`)

func (q *EdgeReportRequest) validate() api.ErrorList {
	var errs api.ErrorList
	if len(q.Name) > 253 || !utf8.ValidString(q.Name) || strings.ContainsRune(q.Name, 0) {
		errs = append(errs, api.Invalid("name", q.Name, "must be at most 253 characters of text"))
	}
	if len(q.Routes) > 64 {
		errs = append(errs, api.Invalid("routes", q.Routes, "must be a route table version"))
	}
	for _, list := range []struct {
		field string
		ips   []string
	}{{"active", q.Active}, {"draining", q.Draining}} {
		if len(list.ips) > maxEdgeAddresses {
			errs = append(errs, api.Invalid(api.Path(list.field), len(list.ips), fmt.Sprintf("at most %d addresses", maxEdgeAddresses)))
			continue
		}
		for i, ip := range list.ips {
			if _, err := netip.ParseAddr(ip); err != nil {
				errs = append(errs, api.Invalid(api.Path(list.field).Index(i), ip, "must be an IP address"))
			}
		}
	}
	if len(q.Certificates) > maxEdgeCerts {
		errs = append(errs, api.Invalid("certificates", len(q.Certificates), fmt.Sprintf("at most %d", maxEdgeCerts)))
	}
	for i, c := range q.Certificates {
		p := api.Path("certificates").Index(i)
		if h, err := api.NormalizeHost(c.Host); err != nil || h != c.Host {
			errs = append(errs, api.Invalid(p.Child("host"), c.Host, "must be a hostname in canonical form"))
		}
		switch c.Status.State {
		case api.CertificatePending, api.CertificateIssued, api.CertificateFailed:
		default:
			errs = append(errs, api.NotSupported(p.Child("status.state"), c.Status.State, api.CertificatePending, api.CertificateIssued, api.CertificateFailed))
		}
		for _, f := range []struct{ field, v string }{{"message", c.Status.Message}, {"issuer", c.Status.Issuer}, {"source", c.Status.Source}} {
			if len(f.v) > maxEdgeMessage || !validText(f.v) {
				errs = append(errs, api.Invalid(p.Child("status."+f.field), "…", "must be at most 4 KiB of text"))
			}
		}
	}
	if len(q.Events) > maxEdgeEvents {
		errs = append(errs, api.Invalid("events", len(q.Events), fmt.Sprintf("at most %d per report", maxEdgeEvents)))
	}
	for i, e := range q.Events {
		p := api.Path("events").Index(i)
		if h, err := api.NormalizeHost(e.Host); err != nil || h != e.Host {
			errs = append(errs, api.Invalid(p.Child("host"), e.Host, "must be a hostname in canonical form"))
		}
		if e.Type != string(store.EventNormal) && e.Type != string(store.EventWarning) {
			errs = append(errs, api.NotSupported(p.Child("type"), e.Type, string(store.EventNormal), string(store.EventWarning)))
		}
		if !eventReasonRe.MatchString(e.Reason) {
			errs = append(errs, api.Invalid(p.Child("reason"), e.Reason, "must be a CamelCase word"))
		}
		if len(e.Message) > maxEdgeMessage || !validText(e.Message) {
			errs = append(errs, api.Invalid(p.Child("message"), "…", "must be at most 4 KiB of text"))
		}
	}
	return errs
}

func validText(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// edgeReport: PUT /api/v1/edge/reports/{edge} — an edge's report.
func (s *Server) edgeReport(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "edge")
	if !edgeIDRe.MatchString(id) {
		s.fail(w, r, badQuery("id", "an edge id is 1–64 letters, digits, '.', '_' or '-'"))
		return
	}
	data, err := s.readBody(w, r, "application/json")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var q EdgeReportRequest
	if err := decodeStrictJSON(data, &q); err != nil {
		s.fail(w, r, err)
		return
	}
	if errs := q.validate(); len(errs) > 0 {
		s.fail(w, r, invalid(errs))
		return
	}
	ctx := r.Context()
	if q.Active == nil {
		q.Active = []string{}
	}
	if q.Draining == nil {
		q.Draining = []string{}
	}
	if err := s.store.Edges().Report(ctx, store.EdgeReport{ID: id, Name: q.Name, Routes: q.Routes, Active: q.Active, Draining: q.Draining}); err != nil {
		s.fail(w, r, err)
		return
	}
	for _, c := range q.Certificates {
		if _, err := s.store.Certificates().SetStatus(ctx, c.Host, c.Status); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	for _, e := range q.Events {
		claim, err := s.store.Hostnames().Owner(ctx, e.Host)
		if errors.Is(err, store.ErrNotFound) {
			continue // no service serves it any more
		}
		if err == nil {
			err = s.store.Events().Record(ctx, store.Event{Project: claim.Project, Kind: api.KindService, Name: claim.Service,
				Type: store.EventType(e.Type), Reason: e.Reason, Message: e.Host + ": " + e.Message})
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.fail(w, r, err)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// ---- uploaded certificates (project routes) ----

// certificateRequest is the body of PUT …/certificates/{host}: PEM text.
// The private key is write-only.
type certificateRequest struct {
	Certificate string `json:"certificate"`
	PrivateKey  string `json:"privateKey"`
}

// certificateHost authorizes the caller and reads the hostname of the URL.
func (s *Server) certificateHost(r *http.Request, action authz.Action) (project, host string, err error) {
	project = chi.URLParam(r, "project")
	if _, err = s.authorize(r, project, action); err != nil {
		return
	}
	raw, ok := pathParam(r, "host")
	if !ok {
		return project, "", httpErr(http.StatusNotFound, "not a hostname")
	}
	host, herr := api.NormalizeHost(raw)
	if herr != nil {
		return project, raw, invalid(api.ErrorList{api.Invalid("host", raw, herr.Error())})
	}
	return project, host, nil
}

func (s *Server) listCertificates(w http.ResponseWriter, r *http.Request) {
	project := chi.URLParam(r, "project")
	if _, err := s.authorize(r, project, authz.Read); err != nil {
		s.fail(w, r, err)
		return
	}
	list, err := s.store.Certificates().ListCustom(r.Context(), project)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, items(list))
}

func (s *Server) getCertificate(w http.ResponseWriter, r *http.Request) {
	project, host, err := s.certificateHost(r, authz.Read)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	c, err := s.store.Certificates().GetCustom(r.Context(), project, host)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) putCertificate(w http.ResponseWriter, r *http.Request) {
	project, host, err := s.certificateHost(r, authz.ManageCredentials)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	data, err := s.readBody(w, r, bodyTypes...)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var q certificateRequest
	if err := decodeStrict(data, &q); err != nil {
		s.fail(w, r, err)
		return
	}
	ctx := r.Context()
	// Only for a hostname a service of this project serves; another
	// project's hostname answers the same, so nothing leaks.
	claim, err := s.store.Hostnames().Owner(ctx, host)
	if errors.Is(err, store.ErrNotFound) || (err == nil && claim.Project != project) {
		err = invalid(api.ErrorList{api.Invalid("host", host, "no service of this project serves this hostname (add it to a service's spec.domains first)")})
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	cert, errs := ParseCertificate(host, q.Certificate, q.PrivateKey, s.now())
	if len(errs) > 0 {
		s.fail(w, r, invalid(errs))
		return
	}
	cert.Project = project
	// The key is sealed before it reaches the store, like a secret.
	if s.keyring == nil {
		s.fail(w, r, httpErr(http.StatusServiceUnavailable, "uploaded certificates are unavailable: the server has no master key to seal their keys with (set PANELX_SECRET_KEY_FILE)"))
		return
	}
	if cert.PrivateKeyPEM, err = s.keyring.SealText(seal.CertificateKeyContext(host), cert.PrivateKeyPEM); err != nil {
		s.fail(w, r, sealFailed("the private key", err))
		return
	}
	out, err := s.store.Certificates().PutCustom(ctx, cert)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) deleteCertificate(w http.ResponseWriter, r *http.Request) {
	project, host, err := s.certificateHost(r, authz.ManageCredentials)
	if err == nil {
		err = s.store.Certificates().DeleteCustom(r.Context(), project, host)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ParseCertificate checks an uploaded chain and key for host: both parse,
// the key is the leaf's, the leaf covers host and is valid now.
func ParseCertificate(host, certPEM, keyPEM string, now time.Time) (store.CustomCertificate, api.ErrorList) {
	out := store.CustomCertificate{Host: host, CertificatePEM: strings.TrimSpace(certPEM) + "\n", PrivateKeyPEM: strings.TrimSpace(keyPEM) + "\n"}
	var errs api.ErrorList
	if strings.TrimSpace(certPEM) == "" {
		errs = append(errs, api.Required("certificate", "the certificate chain in PEM, leaf first"))
	}
	if strings.TrimSpace(keyPEM) == "" {
		errs = append(errs, api.Required("privateKey", "the leaf's private key in PEM"))
	}
	if len(errs) > 0 {
		return out, errs
	}
	pair, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
	if err != nil {
		return out, api.ErrorList{api.Invalid("certificate", "…", "the certificate and key do not form a pair: "+err.Error())}
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return out, api.ErrorList{api.Invalid("certificate", "…", "the leaf certificate does not parse: "+err.Error())}
	}
	if err := leaf.VerifyHostname(host); err != nil {
		errs = append(errs, api.Invalid("certificate", "…", "the certificate does not cover "+host+": "+err.Error()))
	}
	if now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		errs = append(errs, api.Invalid("certificate", "…", fmt.Sprintf("the certificate is valid from %s to %s, not now",
			leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))))
	}
	out.NotAfter = leaf.NotAfter.UTC()
	out.Issuer = leaf.Issuer.String()
	out.DNSNames = leaf.DNSNames
	if out.DNSNames == nil {
		out.DNSNames = []string{}
	}
	return out, errs
}
