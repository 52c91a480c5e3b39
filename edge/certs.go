package edge

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/api/routing"
)

// ACMEOptions configure where certificates come from.
type ACMEOptions struct {
	// Directory is the ACME CA's directory URL (default: Let's Encrypt).
	Directory string
	// Staging is the CA a retry first tries before going back to
	// Directory, so failures do not eat the production CA's rate limits
	// (default: Let's Encrypt's staging CA when Directory is Let's
	// Encrypt; none otherwise).
	Staging string
	// Email is the ACME account's contact (optional). Running the edge
	// with ACME means agreeing to the CA's terms of service.
	Email string
	// TrustedRoots verify the CA's own HTTPS endpoint (a private CA,
	// tests); nil: the system's roots.
	TrustedRoots *x509.CertPool
	// Disabled: no ACME at all; only uploaded certificates are served.
	Disabled bool
	// RetryMin and RetryMax bound the backoff after a failed order
	// (defaults 30s and 1h).
	RetryMin, RetryMax time.Duration
	// Challenges are the ACME challenge types the edge answers: "http-01"
	// (on the HTTP port) and "tls-alpn-01" (on the HTTPS port); empty:
	// both.
	Challenges []string
	// RenewCheckInterval is how often certificates are checked for renewal
	// (default certmagic's, 10 minutes).
	RenewCheckInterval time.Duration
	// Storage keeps certificates, keys, the ACME account and locks; edges
	// sharing one (PostgreSQL) share certificates and never order one
	// twice. nil: files in the edge's state directory.
	Storage certmagic.Storage
}

// The ACME challenge types the edge answers.
const (
	ChallengeHTTP01    = "http-01"
	ChallengeTLSALPN01 = "tls-alpn-01"
)

// hostCert is what the edge knows of one hostname's certificate.
type hostCert struct {
	status   api.CertificateStatus
	attempts int
	next     time.Time // the next order attempt
	busy     bool      // an order is under way
	managed  bool      // certmagic has it (and renews it)
}

// certManager gets, keeps and serves the certificates of the table's
// hostnames, and says where each one is.
type certManager struct {
	log      *zap.Logger
	opts     ACMEOptions
	cache    *certmagic.Cache
	cfg      *certmagic.Config
	issuer   *certmagic.ACMEIssuer
	m        *metrics
	onChange func()
	fallback *tls.Certificate

	mu     sync.Mutex
	hosts  map[string]*hostCert        // hostnames that need a certificate
	custom map[string]*tls.Certificate // uploaded, by hostname
	events []EdgeEvent                 // to report
	wake   chan struct{}
}

// EdgeEvent is a certificate event the edge reports (recorded on the
// service that claims the hostname).
type EdgeEvent struct {
	Host    string `json:"host"`
	Type    string `json:"type"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

const maxPendingEvents = 1000

func newCertManager(log *zap.Logger, opts ACMEOptions, storage, localCache certmagic.Storage, listenHost string, httpPort, httpsPort int, m *metrics, onChange func()) (*certManager, error) {
	if opts.RetryMin <= 0 {
		opts.RetryMin = 30 * time.Second
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = time.Hour
	}
	if opts.Directory == "" {
		opts.Directory = certmagic.LetsEncryptProductionCA
		if opts.Staging == "" {
			opts.Staging = certmagic.LetsEncryptStagingCA
		}
	}
	for _, c := range opts.Challenges {
		if c != ChallengeHTTP01 && c != ChallengeTLSALPN01 {
			return nil, fmt.Errorf("edge: ACME challenge %q: want %s or %s", c, ChallengeHTTP01, ChallengeTLSALPN01)
		}
	}
	fallback, err := fallbackCertificate()
	if err != nil {
		return nil, err
	}
	cm := &certManager{log: log, opts: opts, m: m, onChange: onChange, fallback: fallback,
		hosts: map[string]*hostCert{}, custom: map[string]*tls.Certificate{}, wake: make(chan struct{}, 1)}
	var cfg *certmagic.Config
	cm.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return cfg, nil },
		RenewCheckInterval: opts.RenewCheckInterval,
		Logger:             log,
	})
	cfg = certmagic.New(cm.cache, certmagic.Config{
		Storage: storage,
		// With shared storage, a local copy serves handshakes even while
		// the database is unreachable.
		LocalCache: localCache,
		Logger:     log,
		OnEvent:    cm.onEvent,
		// Let's Encrypt no longer staples; no OCSP request leaves the edge.
		OCSP: certmagic.OCSPConfig{DisableStapling: true},
	})
	cm.issuer = certmagic.NewACMEIssuer(cfg, certmagic.ACMEIssuer{
		CA:           opts.Directory,
		TestCA:       opts.Staging,
		Email:        opts.Email,
		Agreed:       true,
		TrustedRoots: opts.TrustedRoots,
		// The edge's own listeners answer the challenges: certmagic finds
		// these ports taken and relies on HandleHTTPChallenge and the TLS
		// config (or, with shared storage, any edge answers).
		ListenHost:              listenHost,
		AltHTTPPort:             httpPort,
		AltTLSALPNPort:          httpsPort,
		DisableHTTPChallenge:    len(opts.Challenges) > 0 && !slices.Contains(opts.Challenges, ChallengeHTTP01),
		DisableTLSALPNChallenge: len(opts.Challenges) > 0 && !slices.Contains(opts.Challenges, ChallengeTLSALPN01),
	})
	cfg.Issuers = []certmagic.Issuer{cm.issuer}
	cm.cfg = cfg
	return cm, nil
}

func (cm *certManager) stop() { cm.cache.Stop() }

// sync takes the hostnames of a new table: those needing a certificate,
// and the uploaded certificates (which replace ACME for their hostname).
func (cm *certManager) sync(t routing.Table) {
	_, tlsHosts := t.Hosts()
	custom := map[string]*tls.Certificate{}
	customStatus := map[string]api.CertificateStatus{}
	for _, c := range t.Certificates {
		pair, err := tls.X509KeyPair([]byte(c.CertificatePEM), []byte(c.PrivateKeyPEM))
		if err != nil {
			cm.log.Warn("an uploaded certificate does not load; ignoring it", zap.String("host", c.Host), zap.Error(err))
			continue
		}
		leaf, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			continue
		}
		pair.Leaf = leaf
		custom[c.Host] = &pair
		na := leaf.NotAfter.UTC()
		customStatus[c.Host] = api.CertificateStatus{State: api.CertificateIssued, Source: "custom", Issuer: leaf.Issuer.String(), NotAfter: &na}
	}
	// A certificate already in storage serves at once (after a restart,
	// before the first handshake): loading it orders nothing.
	cm.mu.Lock()
	var fresh []string
	for _, h := range tlsHosts {
		if cm.hosts[h] == nil && customStatus[h].State == "" && !api.IsWildcard(h) {
			fresh = append(fresh, h)
		}
	}
	cm.mu.Unlock()
	loaded := map[string]bool{}
	lctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	for _, h := range fresh {
		if _, err := cm.cfg.CacheManagedCertificate(lctx, h); err == nil {
			loaded[h] = true
		}
	}
	cancel()

	cm.mu.Lock()
	defer cm.mu.Unlock()
	cm.custom = custom
	want := map[string]bool{}
	for _, h := range tlsHosts {
		want[h] = true
		hc := cm.hosts[h]
		if hc == nil {
			hc = &hostCert{status: api.CertificateStatus{State: api.CertificatePending, Message: "waiting for its first order"}}
			cm.hosts[h] = hc
			if loaded[h] {
				hc.managed = true
				cm.setLocked(h, cm.issuedStatus(h))
			}
		}
		switch st, ok := customStatus[h]; {
		case ok:
			hc.status = st
			if hc.managed {
				cm.cache.RemoveManaged([]certmagic.SubjectIssuer{{Subject: h}})
				hc.managed = false
			}
		case hc.status.Source == "custom":
			// The upload was deleted: order one.
			hc.status = api.CertificateStatus{State: api.CertificatePending, Message: "the uploaded certificate was removed; ordering one"}
			hc.attempts, hc.next = 0, time.Time{}
		}
	}
	for h, hc := range cm.hosts {
		if !want[h] {
			if hc.managed {
				cm.cache.RemoveManaged([]certmagic.SubjectIssuer{{Subject: h}})
			}
			delete(cm.hosts, h)
		}
	}
	cm.kick()
}

func (cm *certManager) kick() {
	select {
	case cm.wake <- struct{}{}:
	default:
	}
}

// run orders certificates for hostnames that have none, each with its own
// backoff, until ctx ends. certmagic renews the ones it manages.
func (cm *certManager) run(ctx context.Context) {
	sem := make(chan struct{}, 2) // orders at once
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-cm.wake:
		case <-tick.C:
		}
		now := time.Now()
		var due []string
		cm.mu.Lock()
		for h, hc := range cm.hosts {
			if hc.managed || hc.busy || cm.custom[h] != nil || now.Before(hc.next) {
				continue
			}
			if api.IsWildcard(h) {
				cm.setLocked(h, api.CertificateStatus{State: api.CertificateFailed,
					Message: "a wildcard certificate needs the DNS-01 challenge, which the edge does not do; upload a certificate for " + h})
				hc.next = now.Add(24 * time.Hour)
				continue
			}
			if cm.opts.Disabled {
				cm.setLocked(h, api.CertificateStatus{State: api.CertificatePending, Message: "ACME is disabled on this edge; upload a certificate"})
				hc.next = now.Add(24 * time.Hour)
				continue
			}
			hc.busy = true
			due = append(due, h)
		}
		cm.mu.Unlock()
		slices.Sort(due)
		for _, h := range due {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			go func() {
				defer func() { <-sem }()
				cm.obtain(ctx, h)
			}()
		}
		cm.refreshIssued()
	}
}

// obtain makes one attempt: load a stored certificate or order a new one.
// Retries go through the staging CA first (certmagic does that when the
// attempt count says retry).
func (cm *certManager) obtain(ctx context.Context, host string) {
	cm.mu.Lock()
	hc := cm.hosts[host]
	if hc == nil {
		cm.mu.Unlock()
		return
	}
	attempts := hc.attempts
	cm.mu.Unlock()

	octx, cancel := context.WithTimeout(context.WithValue(ctx, certmagic.AttemptsCtxKey, &attempts), 10*time.Minute)
	err := cm.cfg.ManageSync(octx, []string{host})
	cancel()

	cm.mu.Lock()
	defer cm.mu.Unlock()
	hc = cm.hosts[host]
	if hc == nil { // removed meanwhile
		if err == nil {
			cm.cache.RemoveManaged([]certmagic.SubjectIssuer{{Subject: host}})
		}
		return
	}
	hc.busy = false
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		hc.attempts++
		wait := cm.backoff(hc.attempts)
		hc.next = time.Now().Add(wait)
		msg := caError(err)
		cm.log.Warn("certificate order failed", zap.String("host", host), zap.Int("attempt", hc.attempts), zap.Duration("retryIn", wait), zap.String("error", msg))
		cm.setLocked(host, api.CertificateStatus{State: api.CertificateFailed, Source: "acme", Message: msg})
		return
	}
	hc.managed, hc.attempts = true, 0
	cm.setLocked(host, cm.issuedStatus(host))
}

func (cm *certManager) backoff(attempts int) time.Duration {
	d := cm.opts.RetryMin
	for i := 1; i < attempts && d < cm.opts.RetryMax; i++ {
		d *= 2
	}
	return min(d, cm.opts.RetryMax)
}

// caError is the CA's own words: certmagic wraps them in its context.
func caError(err error) string {
	msg := err.Error()
	if len(msg) > 2000 {
		msg = msg[:2000] + "…"
	}
	return msg
}

// issuedStatus describes the certificate certmagic serves for host.
func (cm *certManager) issuedStatus(host string) api.CertificateStatus {
	var best *certmagic.Certificate
	for _, c := range cm.cache.AllMatchingCertificates(host) {
		if c.Leaf != nil && (best == nil || c.Leaf.NotAfter.After(best.Leaf.NotAfter)) {
			cc := c
			best = &cc
		}
	}
	if best == nil {
		return api.CertificateStatus{State: api.CertificatePending, Source: "acme", Message: "obtained, not loaded yet"}
	}
	leaf := best.Leaf
	na := leaf.NotAfter.UTC()
	lifetime := leaf.NotAfter.Sub(leaf.NotBefore)
	ratio := cm.cfg.RenewalWindowRatio
	if ratio == 0 {
		ratio = certmagic.DefaultRenewalWindowRatio
	}
	renew := leaf.NotAfter.Add(-time.Duration(float64(lifetime) * ratio)).UTC()
	issuer := leaf.Issuer.CommonName
	if issuer == "" {
		issuer = leaf.Issuer.String()
	}
	return api.CertificateStatus{State: api.CertificateIssued, Source: "acme", Issuer: issuer, NotAfter: &na, RenewAfter: &renew}
}

// refreshIssued notices renewals (a new notAfter) of managed certificates.
func (cm *certManager) refreshIssued() {
	cm.mu.Lock()
	defer cm.mu.Unlock()
	for h, hc := range cm.hosts {
		if hc.managed && cm.custom[h] == nil {
			st := cm.issuedStatus(h)
			if st.State == api.CertificateIssued && (hc.status.NotAfter == nil || !hc.status.NotAfter.Equal(*st.NotAfter)) {
				cm.setLocked(h, st)
			}
		}
	}
}

// setLocked records a host's new status (when it changed) and wakes the
// reporter.
func (cm *certManager) setLocked(host string, st api.CertificateStatus) {
	hc := cm.hosts[host]
	if hc == nil {
		return
	}
	same := hc.status.State == st.State && hc.status.Message == st.Message && hc.status.Source == st.Source &&
		hc.status.Issuer == st.Issuer && timesEqual(hc.status.NotAfter, st.NotAfter)
	if same {
		return
	}
	st.UpdatedAt = time.Now().UTC().Truncate(time.Second)
	hc.status = st
	if st.NotAfter != nil {
		cm.m.certExpiry.WithLabelValues(host).Set(float64(st.NotAfter.Unix()))
	}
	if cm.onChange != nil {
		cm.onChange()
	}
}

func timesEqual(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// onEvent turns certmagic's events into reported events: issued, renewed,
// failed.
func (cm *certManager) onEvent(_ context.Context, event string, data map[string]any) error {
	host, _ := data["identifier"].(string)
	renewal, _ := data["renewal"].(bool)
	var ev EdgeEvent
	switch event {
	case "cert_obtained":
		ev = EdgeEvent{Host: host, Type: "Normal", Reason: "CertificateIssued", Message: "certificate issued by " + fmt.Sprint(data["issuer"])}
		if renewal {
			ev.Reason, ev.Message = "CertificateRenewed", "certificate renewed by "+fmt.Sprint(data["issuer"])
		}
	case "cert_failed":
		msg := "certificate order failed"
		if err, ok := data["error"].(error); ok {
			msg += ": " + caError(err)
		}
		ev = EdgeEvent{Host: host, Type: "Warning", Reason: "CertificateFailed", Message: msg}
		if renewal {
			ev.Reason = "CertificateRenewalFailed"
		}
	default:
		return nil
	}
	if host == "" {
		return nil
	}
	cm.mu.Lock()
	if len(cm.events) < maxPendingEvents {
		cm.events = append(cm.events, ev)
	}
	if renewal && event == "cert_obtained" {
		if hc := cm.hosts[host]; hc != nil && hc.managed {
			// The cache swaps the renewed certificate in after this event.
			defer func() { go func() { time.Sleep(time.Second); cm.refreshIssued() }() }()
		}
	}
	if renewal && event == "cert_failed" {
		if hc := cm.hosts[host]; hc != nil {
			st := hc.status
			st.Message = ev.Message // still Issued: the current one serves until it expires
			cm.setLocked(host, st)
		}
	}
	cm.mu.Unlock()
	if cm.onChange != nil {
		cm.onChange()
	}
	return nil
}

// takeEvents hands the pending events to the reporter.
func (cm *certManager) takeEvents() []EdgeEvent {
	cm.mu.Lock()
	defer cm.mu.Unlock()
	out := cm.events
	cm.events = nil
	return out
}

// giveBack requeues events a report failed to deliver.
func (cm *certManager) giveBack(evs []EdgeEvent) {
	cm.mu.Lock()
	defer cm.mu.Unlock()
	cm.events = append(evs, cm.events...)
	if len(cm.events) > maxPendingEvents {
		cm.events = cm.events[len(cm.events)-maxPendingEvents:]
	}
}

// statuses returns every hostname's certificate status.
func (cm *certManager) statuses() map[string]api.CertificateStatus {
	cm.mu.Lock()
	defer cm.mu.Unlock()
	out := make(map[string]api.CertificateStatus, len(cm.hosts))
	for h, hc := range cm.hosts {
		out[h] = hc.status
	}
	return out
}

// ready says whether host has a certificate to serve, and if not why.
func (cm *certManager) ready(host string) (bool, string) {
	cm.mu.Lock()
	defer cm.mu.Unlock()
	if cm.custom[host] != nil {
		return true, ""
	}
	hc := cm.hosts[host]
	switch {
	case hc == nil:
		return false, "the edge has no route that needs it"
	case hc.managed:
		return true, ""
	case hc.status.State == api.CertificateFailed:
		return false, "the last order failed: " + hc.status.Message
	default:
		return false, hc.status.Message
	}
}

// getCertificate picks the certificate of a TLS handshake: an ACME
// challenge goes to certmagic; then an uploaded certificate; then the
// managed one; else a self-signed stand-in whose page says why (a
// handshake failure would explain nothing).
func (cm *certManager) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if slices.Contains(hello.SupportedProtos, "acme-tls/1") {
		return cm.cfg.GetCertificate(hello)
	}
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	cm.mu.Lock()
	custom, hc := cm.custom[name], cm.hosts[name]
	managed := hc != nil && hc.managed
	cm.mu.Unlock()
	if custom != nil {
		return custom, nil
	}
	if managed {
		if c, err := cm.cfg.GetCertificate(hello); err == nil {
			return c, nil
		}
	}
	return cm.fallback, nil
}

// handleHTTPChallenge answers ACME HTTP-01 challenges (those of other
// edges too, through the shared storage).
func (cm *certManager) handleHTTPChallenge(w http.ResponseWriter, r *http.Request) bool {
	return cm.issuer.HandleHTTPChallenge(w, r)
}

// fallbackCertificate is served when a hostname has no certificate yet.
func fallbackCertificate() (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("fallback certificate: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, fmt.Errorf("fallback certificate: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "PanelX edge: no certificate for this name yet", Organization: []string{"PanelX edge"}},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("fallback certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, errors.New("fallback certificate does not parse")
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}
