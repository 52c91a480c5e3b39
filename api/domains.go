package api

import (
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"strings"
	"time"

	"golang.org/x/net/idna"
)

// Limits of spec.domains.
const (
	MaxDomains    = 100
	MaxPathLength = 1024
	MaxHostLength = 253
	// MaxProjectDomain leaves room for "<service>." before it.
	MaxProjectDomain = MaxHostLength - MaxNameLength - 1
	MaxDomainRoute   = 24 * time.Hour
)

// hostProfile maps what people type (upper case, full-width dots, Unicode)
// to the ASCII form DNS and TLS use, and checks IDNA2008's rules.
var hostProfile = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.ValidateLabels(true),
	idna.StrictDomainName(true), idna.VerifyDNSLength(true), idna.Transitional(false))

// pathPrefixRe: RFC 3986 path characters, without percent-encoding (a
// prefix is compared with the decoded path).
var pathPrefixRe = regexp.MustCompile(`^/[A-Za-z0-9\-._~!$&'()*+,;=:@/]*$`)

// NormalizeHost returns the canonical form of a hostname: lower-case ASCII
// (an internationalized name in its xn-- form), without a trailing dot. It
// refuses IP literals, single-label names and anything that is not a DNS
// name; a leading "*." (a wildcard) is kept.
func NormalizeHost(host string) (string, error) {
	h := strings.TrimSuffix(strings.TrimSpace(host), ".")
	if h == "" {
		return "", fmt.Errorf("must be a hostname such as app.example.com")
	}
	if _, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
		return "", fmt.Errorf("must be a hostname, not an IP address")
	}
	wildcard := ""
	if rest, ok := strings.CutPrefix(h, "*."); ok {
		wildcard, h = "*.", rest
	}
	ascii, err := hostProfile.ToASCII(h)
	if err != nil {
		return "", fmt.Errorf("not a valid internationalized hostname: %v", err)
	}
	ascii = strings.ToLower(ascii)
	labels := strings.Split(ascii, ".")
	if len(labels) < 2 {
		return "", fmt.Errorf("must have at least two labels (app.example.com), not a single name")
	}
	for _, l := range labels {
		if l == "" || len(l) > MaxNameLength || !dns1123LabelRe.MatchString(l) {
			return "", fmt.Errorf("must be a DNS name of letters, digits and '-' (%q is not a valid label)", l)
		}
	}
	if tld := labels[len(labels)-1]; strings.Trim(tld, "0123456789") == "" {
		return "", fmt.Errorf("the last label %q must not be all digits", tld)
	}
	out := wildcard + ascii
	if len(out) > MaxHostLength {
		return "", fmt.Errorf("must be at most %d characters", MaxHostLength)
	}
	return out, nil
}

// IsWildcard reports whether a host is a wildcard (*.example.com).
func IsWildcard(host string) bool { return strings.HasPrefix(host, "*.") }

// EffectiveHost is the hostname a domain entry serves: its host, or
// <service>.<project domain> when it leaves the host out ("" when the
// project has no domain).
func EffectiveHost(d Domain, service, projectDomain string) string {
	if d.Host != "" {
		return d.Host
	}
	if projectDomain == "" {
		return ""
	}
	return service + "." + projectDomain
}

// RedirectsHTTPS reports whether plain HTTP is redirected (the default,
// unless TLS is off).
func (d Domain) RedirectsHTTPS() bool {
	if d.RedirectHTTPS != nil {
		return *d.RedirectHTTPS
	}
	return d.TLS != TLSOff
}

func defaultDomains(sp *ServiceSpec) {
	for i := range sp.Domains {
		d := &sp.Domains[i]
		if d.Host != "" {
			if h, err := NormalizeHost(d.Host); err == nil {
				d.Host = h
			}
		}
		if d.Path == "" {
			d.Path = "/"
		}
		if d.Port == 0 && len(sp.Ports) > 0 {
			d.Port = sp.Ports[0].ContainerPort
		}
		if d.TLS == "" {
			d.TLS = TLSAuto
		}
		if d.RedirectHTTPS == nil {
			v := d.TLS != TLSOff
			d.RedirectHTTPS = &v
		}
	}
}

func validateDomains(p Path, sp *ServiceSpec) ErrorList {
	var errs ErrorList
	if len(sp.Domains) > MaxDomains {
		return ErrorList{fieldErr(p, ErrTooLong, "at most %d domains", MaxDomains)}
	}
	if len(sp.Domains) > 0 && sp.NetworkMode != "" {
		errs = append(errs, Invalid(p, sp.NetworkMode, "domains route to the project network; remove networkMode "+sp.NetworkMode))
	}
	seen := map[string]bool{}
	for i, d := range sp.Domains {
		dp := p.Index(i)
		if d.Host != "" {
			h, err := NormalizeHost(d.Host)
			switch {
			case err != nil:
				errs = append(errs, Invalid(dp.Child("host"), d.Host, err.Error()))
			case h != d.Host:
				errs = append(errs, Invalid(dp.Child("host"), d.Host, "must be written in its canonical form "+h))
			}
		}
		if d.Path != "" {
			switch {
			case len(d.Path) > MaxPathLength:
				errs = append(errs, fieldErr(dp.Child("path"), ErrTooLong, "must be at most %d characters", MaxPathLength))
			case !pathPrefixRe.MatchString(d.Path):
				errs = append(errs, Invalid(dp.Child("path"), d.Path, "must be a path prefix starting with '/', without '%', '?', '#' or spaces"))
			case d.Path != "/" && path.Clean(d.Path) != d.Path:
				errs = append(errs, Invalid(dp.Child("path"), d.Path, "must be a clean path ("+path.Clean(d.Path)+") without '.', '..', '//' or a trailing '/'"))
			}
		}
		switch {
		case d.Port == 0:
			errs = append(errs, Required(dp.Child("port"), "set the container port, or declare spec.ports (the first one is the default)"))
		case d.Port < 0 || d.Port > 65535:
			errs = append(errs, Invalid(dp.Child("port"), d.Port, "must be between 1 and 65535"))
		}
		switch d.TLS {
		case "", TLSAuto, TLSOff:
		default:
			errs = append(errs, NotSupported(dp.Child("tls"), d.TLS, TLSAuto, TLSOff))
		}
		if d.TLS == TLSOff && d.RedirectHTTPS != nil && *d.RedirectHTTPS {
			errs = append(errs, Invalid(dp.Child("redirectHTTPS"), true, "cannot redirect to HTTPS when tls is Off"))
		}
		if d.Timeout.Duration < 0 || d.Timeout.Duration > MaxDomainRoute {
			errs = append(errs, Invalid(dp.Child("timeout"), d.Timeout.String(), "must be between 0 (the edge's default) and 24h"))
		}
		if d.MaxBodySize != "" {
			if n, err := d.MaxBodySize.Bytes(); err != nil || n < 1 {
				errs = append(errs, Invalid(dp.Child("maxBodySize"), string(d.MaxBodySize), "must be a byte size such as 10Mi"))
			}
		}
		key := d.Host + " " + d.Path
		if seen[key] {
			errs = append(errs, Duplicate(dp, strings.TrimSpace(d.Host+d.Path)))
		}
		seen[key] = true
	}
	return errs
}
