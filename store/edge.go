package store

import (
	"context"
	"fmt"
	"time"

	"github.com/panelx/panelx/api"
)

// HostnameClaim says which service serves a hostname. Every hostname of a
// service's spec.domains is claimed when the service is written; a claim
// ends with the service's row.
type HostnameClaim struct {
	Host    string `json:"host"`
	Project string `json:"project"`
	Service string `json:"service"`
}

// HostnameTakenError: a service write named a hostname another service
// already claims. It names the other service only when it is in the same
// project (the caller may see it); otherwise nothing about its holder.
type HostnameTakenError struct {
	Host string
	// Service is the holder within the writer's own project, or "".
	Service string
}

func (e *HostnameTakenError) Error() string {
	if e.Service != "" {
		return fmt.Sprintf("hostname %s is already used by service %s of this project", e.Host, e.Service)
	}
	return fmt.Sprintf("hostname %s is already in use on this server", e.Host)
}

// Unwrap makes errors.Is(err, ErrAlreadyExists) hold.
func (e *HostnameTakenError) Unwrap() error { return ErrAlreadyExists }

// Hostnames reads the claims. They are written by the stores themselves,
// with every service write (and with a change of a project's domain).
type Hostnames interface {
	// Owner returns the claim of a hostname (ErrNotFound when unclaimed).
	Owner(ctx context.Context, host string) (HostnameClaim, error)
	// List returns every claim, by host.
	List(ctx context.Context) ([]HostnameClaim, error)
}

// EdgeReport is what one edge process last said about itself. The
// controller stops a replica only once no live edge routes to it or has
// requests in flight to it.
type EdgeReport struct {
	// ID is chosen by the edge and stable across its restarts.
	ID   string `json:"id"`
	Name string `json:"name"`
	// Routes is the version of the route table it serves.
	Routes string `json:"routes,omitempty"`
	// Active are the replica IPs its routes send to; Draining those no
	// longer routed that still have requests in flight.
	Active   []string `json:"active"`
	Draining []string `json:"draining"`
	// SeenAt is set by the store when the report is written.
	SeenAt time.Time `json:"seenAt"`
}

// Edges keeps the edges' reports.
type Edges interface {
	// Report stores an edge's report (replacing its previous one).
	Report(ctx context.Context, r EdgeReport) error
	List(ctx context.Context) ([]EdgeReport, error)
}

// CustomCertificate is a certificate a user uploaded for a hostname of
// their project; the edge serves it instead of ordering one.
type CustomCertificate struct {
	Host    string `json:"host"`
	Project string `json:"project"`
	// CertificatePEM is the chain, leaf first.
	CertificatePEM string `json:"certificate"`
	// PrivateKeyPEM never leaves the server but to the edges.
	PrivateKeyPEM string    `json:"-"`
	NotAfter      time.Time `json:"notAfter"`
	Issuer        string    `json:"issuer"`
	DNSNames      []string  `json:"dnsNames"`
	CreatedAt     time.Time `json:"createdAt"`
	UpdatedAt     time.Time `json:"updatedAt"`
}

// Certificates keeps certificate state per hostname (reported by edges)
// and uploaded certificates. A change of either makes the service that
// claims the hostname look again (a change on the feed with no spec or
// status flag).
type Certificates interface {
	// SetStatus records an edge's report of a hostname's certificate;
	// changed is false when it equals what is stored (nothing written).
	SetStatus(ctx context.Context, host string, st api.CertificateStatus) (changed bool, err error)
	// Statuses returns the stored states of the hostnames (missing ones
	// are absent from the map).
	Statuses(ctx context.Context, hosts []string) (map[string]api.CertificateStatus, error)

	// PutCustom stores (or replaces) an uploaded certificate.
	PutCustom(ctx context.Context, c CustomCertificate) (CustomCertificate, error)
	// GetCustom returns it with its key (ErrNotFound when absent or of
	// another project).
	GetCustom(ctx context.Context, project, host string) (CustomCertificate, error)
	// ListCustom lists a project's certificates, or every project's when
	// project is "" (the edges' feed), keys included.
	ListCustom(ctx context.Context, project string) ([]CustomCertificate, error)
	DeleteCustom(ctx context.Context, project, host string) error
}
