// Package routing is the edge's route table: what the server computes from
// desired state and status (projects, services with their domains and
// published endpoints, hostname claims, uploaded certificates) and what
// every edge serves. It is pure: Build and Index do no I/O, so the server
// and the edge agree by construction and both are table-tested.
package routing

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/panelx/panelx/api"
)

// Table is a complete route table. Version changes exactly when the
// content does.
type Table struct {
	Version      string        `json:"version"`
	Routes       []Route       `json:"routes"`
	Certificates []Certificate `json:"certificates,omitempty"`
}

// Route sends requests for Host (and a Path prefix) to the ready replicas
// of one service.
type Route struct {
	Host    string `json:"host"`
	Path    string `json:"path"`
	Project string `json:"project"`
	Service string `json:"service"`
	// Port is the container port on each endpoint.
	Port int32 `json:"port"`
	// TLS: served over HTTPS with a certificate; RedirectHTTPS: plain HTTP
	// answers with a redirect.
	TLS           bool `json:"tls"`
	RedirectHTTPS bool `json:"redirectHTTPS"`
	// Timeout bounds the wait for the response headers (0: the edge's
	// default); MaxBodyBytes caps request bodies (0: no limit).
	Timeout      time.Duration `json:"timeout,omitempty"`
	MaxBodyBytes int64         `json:"maxBodyBytes,omitempty"`
	// Endpoints are the replica IPs, in the order the controller published
	// them; empty when no replica is ready.
	Endpoints []string `json:"endpoints"`
}

// Certificate is an uploaded certificate the edge serves for Host.
type Certificate struct {
	Host           string `json:"host"`
	Project        string `json:"project"`
	CertificatePEM string `json:"certificate"`
	PrivateKeyPEM  string `json:"privateKey"`
}

// Claim says which service holds a hostname (the store's claims).
type Claim struct {
	Host, Project, Service string
}

// Upload is a certificate a project uploaded for a hostname.
type Upload struct {
	Host, Project                 string
	CertificatePEM, PrivateKeyPEM string
}

// Build computes the table. A route exists for every domain of every live
// service whose hostname resolves and is claimed by that service (the
// claim is the store's guarantee that a hostname has one owner); an
// uploaded certificate is served only for the project claiming its host.
func Build(projects []*api.Project, services []*api.Service, claims []Claim, certs []Upload) Table {
	domains := map[string]string{}
	for _, p := range projects {
		if p.Metadata.DeletionTimestamp == nil {
			domains[p.Metadata.Name] = p.Spec.Domain
		}
	}
	owner := map[string]Claim{}
	for _, c := range claims {
		owner[c.Host] = c
	}
	t := Table{Routes: []Route{}}
	for _, s := range services {
		pdomain, live := domains[s.Metadata.Project]
		if !live || s.Metadata.DeletionTimestamp != nil {
			continue
		}
		var eps []string
		for _, e := range s.Status.Endpoints {
			eps = append(eps, e.IP)
		}
		for _, d := range s.Spec.Domains {
			host := api.EffectiveHost(d, s.Metadata.Name, pdomain)
			c, ok := owner[host]
			if host == "" || !ok || c.Project != s.Metadata.Project || c.Service != s.Metadata.Name {
				continue
			}
			r := Route{Host: host, Path: d.Path, Project: s.Metadata.Project, Service: s.Metadata.Name, Port: d.Port,
				TLS: d.TLS != api.TLSOff, RedirectHTTPS: d.RedirectsHTTPS(), Timeout: d.Timeout.Duration, Endpoints: slices.Clone(eps)}
			if r.Path == "" {
				r.Path = "/"
			}
			if r.Endpoints == nil {
				r.Endpoints = []string{}
			}
			if d.MaxBodySize != "" {
				r.MaxBodyBytes, _ = d.MaxBodySize.Bytes() // validated on write
			}
			t.Routes = append(t.Routes, r)
		}
	}
	slices.SortFunc(t.Routes, func(a, b Route) int {
		if c := strings.Compare(a.Host, b.Host); c != 0 {
			return c
		}
		return strings.Compare(a.Path, b.Path)
	})
	for _, c := range certs {
		if o, ok := owner[c.Host]; ok && o.Project == c.Project {
			t.Certificates = append(t.Certificates, Certificate{Host: c.Host, Project: c.Project,
				CertificatePEM: c.CertificatePEM, PrivateKeyPEM: c.PrivateKeyPEM})
		}
	}
	slices.SortFunc(t.Certificates, func(a, b Certificate) int { return strings.Compare(a.Host, b.Host) })
	t.Version = t.hash()
	return t
}

func (t Table) hash() string {
	data, _ := json.Marshal(struct {
		R []Route
		C []Certificate
	}{t.Routes, t.Certificates})
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8])
}

// Valid reports whether a table read from elsewhere (a file, the network)
// is intact: its version matches its content.
func (t Table) Valid() bool { return t.Version == t.hash() }

// Hosts returns every hostname that has a route, sorted, and those that
// need a certificate.
func (t Table) Hosts() (all, tls []string) {
	seen := map[string]bool{}
	seenTLS := map[string]bool{}
	for _, r := range t.Routes {
		if !seen[r.Host] {
			seen[r.Host] = true
			all = append(all, r.Host)
		}
		if r.TLS && !seenTLS[r.Host] {
			seenTLS[r.Host] = true
			tls = append(tls, r.Host)
		}
	}
	return all, tls
}

// Index finds the route of a request.
type Index struct {
	exact    map[string][]*Route // by host, longest path first
	wildcard map[string][]*Route // by the domain after "*."
}

// NewIndex indexes a table's routes.
func NewIndex(t Table) *Index {
	ix := &Index{exact: map[string][]*Route{}, wildcard: map[string][]*Route{}}
	for i := range t.Routes {
		r := &t.Routes[i]
		if rest, ok := strings.CutPrefix(r.Host, "*."); ok {
			ix.wildcard[rest] = append(ix.wildcard[rest], r)
		} else {
			ix.exact[r.Host] = append(ix.exact[r.Host], r)
		}
	}
	for _, m := range []map[string][]*Route{ix.exact, ix.wildcard} {
		for _, rs := range m {
			slices.SortStableFunc(rs, func(a, b *Route) int { return len(b.Path) - len(a.Path) })
		}
	}
	return ix
}

// HasHost reports whether any route serves host (exactly or through a
// wildcard), whatever the path.
func (ix *Index) HasHost(host string) bool {
	return len(ix.candidates(host)) > 0
}

func (ix *Index) candidates(host string) []*Route {
	if rs := ix.exact[host]; len(rs) > 0 {
		return rs
	}
	// A wildcard covers exactly one label, as in TLS.
	if _, rest, ok := strings.Cut(host, "."); ok {
		return ix.wildcard[rest]
	}
	return nil
}

// Match returns the route for a request's host (lower case, without port)
// and path: an exact hostname before a wildcard, then the longest path
// prefix that ends at a segment boundary (/api serves /api and /api/x, not
// /apix).
func (ix *Index) Match(host, path string) *Route {
	for _, r := range ix.candidates(host) {
		if PathMatches(r.Path, path) {
			return r
		}
	}
	return nil
}

// PathMatches reports whether prefix serves path.
func PathMatches(prefix, path string) bool {
	if prefix == "/" || prefix == "" || path == prefix {
		return true
	}
	return strings.HasPrefix(path, prefix) && (strings.HasSuffix(prefix, "/") || path[len(prefix)] == '/')
}
