package api

import (
	"strings"
	"testing"
	"time"
)

func TestNormalizeHost(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{in: "app.example.com", want: "app.example.com"},
		{in: "App.Example.COM.", want: "app.example.com"},
		{in: "Bücher.example", want: "xn--bcher-kva.example"},
		{in: "xn--bcher-kva.example", want: "xn--bcher-kva.example"},
		{in: "*.example.com", want: "*.example.com"},
		{in: "app.test", want: "app.test"},
		{in: "", err: "hostname"},
		{in: "localhost", err: "two labels"},
		{in: "127.0.0.1", err: "IP address"},
		{in: "[::1]", err: "IP address"},
		{in: "::1", err: "IP address"},
		{in: "1.2.3.4444", err: "all digits"},
		{in: "under_score.example.com", err: "valid"},
		{in: "a..b.com", err: "valid"},
		{in: "-lead.example.com", err: "valid"},
		{in: "app.example.com/path", err: "valid"},
		{in: "app.example.com:443", err: "valid"},
		{in: "a.*.example.com", err: "valid"},
		{in: strings.Repeat("a", 64) + ".com", err: "valid"},
		{in: strings.Repeat("abcdefghi.", 26) + "com", err: "valid"},
	}
	for _, tt := range tests {
		got, err := NormalizeHost(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("NormalizeHost(%q) = %q, %v; want error containing %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizeHost(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestDomainsDefaultAndValidate(t *testing.T) {
	base := func(domains ...Domain) *Service {
		s := &Service{Metadata: ObjectMeta{Project: "shop", Name: "web"}, Spec: ServiceSpec{
			Image: "127.0.0.1:5000/web:1", Ports: []Port{{ContainerPort: 8080}}, Domains: domains}}
		s.Default()
		return s
	}
	s := base(Domain{Host: "Shop.Example.com"}, Domain{Path: "/api", TLS: TLSOff})
	if errs := s.Validate(); len(errs) > 0 {
		t.Fatalf("valid service refused: %v", errs)
	}
	d0, d1 := s.Spec.Domains[0], s.Spec.Domains[1]
	if d0.Host != "shop.example.com" || d0.Path != "/" || d0.Port != 8080 || d0.TLS != TLSAuto || !*d0.RedirectHTTPS {
		t.Errorf("defaults of domain 0: %+v", d0)
	}
	if d1.Host != "" || *d1.RedirectHTTPS || d1.RedirectsHTTPS() {
		t.Errorf("defaults of domain 1 (tls Off): %+v", d1)
	}
	if got := EffectiveHost(d1, "web", "shop.example.com"); got != "web.shop.example.com" {
		t.Errorf("EffectiveHost = %q", got)
	}
	if got := EffectiveHost(d1, "web", ""); got != "" {
		t.Errorf("EffectiveHost without project domain = %q", got)
	}

	bad := []struct {
		name   string
		mutate func(*Service)
		field  string
	}{
		{"ip literal", func(s *Service) { s.Spec.Domains[0].Host = "10.0.0.1" }, "spec.domains[0].host"},
		{"not canonical", func(s *Service) { s.Spec.Domains[0].Host = "APP.example.com" }, "spec.domains[0].host"},
		{"relative path", func(s *Service) { s.Spec.Domains[0].Path = "api" }, "spec.domains[0].path"},
		{"dot-dot path", func(s *Service) { s.Spec.Domains[0].Path = "/a/../b" }, "spec.domains[0].path"},
		{"query in path", func(s *Service) { s.Spec.Domains[0].Path = "/a?b" }, "spec.domains[0].path"},
		{"encoded path", func(s *Service) { s.Spec.Domains[0].Path = "/a%2fb" }, "spec.domains[0].path"},
		{"no port", func(s *Service) { s.Spec.Domains[0].Port = 0 }, "spec.domains[0].port"},
		{"port range", func(s *Service) { s.Spec.Domains[0].Port = 70000 }, "spec.domains[0].port"},
		{"tls mode", func(s *Service) { s.Spec.Domains[0].TLS = "Maybe" }, "spec.domains[0].tls"},
		{"redirect without tls", func(s *Service) { s.Spec.Domains[0].TLS = TLSOff }, "spec.domains[0].redirectHTTPS"},
		{"timeout", func(s *Service) { s.Spec.Domains[0].Timeout = Duration{48 * time.Hour} }, "spec.domains[0].timeout"},
		{"body size", func(s *Service) { s.Spec.Domains[0].MaxBodySize = "lots" }, "spec.domains[0].maxBodySize"},
		{"duplicate", func(s *Service) { s.Spec.Domains = append(s.Spec.Domains, s.Spec.Domains[0]) }, "spec.domains[1]"},
		{"host network", func(s *Service) { s.Spec.NetworkMode = "host" }, "spec.domains"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			s := base(Domain{Host: "app.example.com"})
			tt.mutate(s)
			errs := s.Validate()
			found := false
			for _, e := range errs {
				found = found || e.Field == tt.field
			}
			if !found {
				t.Errorf("want an error on %s, got %v", tt.field, errs)
			}
		})
	}
	// A service without ports must name the port.
	s = &Service{Metadata: ObjectMeta{Project: "shop", Name: "web"}, Spec: ServiceSpec{Image: "web:1", Domains: []Domain{{Host: "a.example.com"}}}}
	s.Default()
	if errs := s.Validate(); len(errs) != 1 || errs[0].Field != "spec.domains[0].port" {
		t.Errorf("missing port: %v", errs)
	}
}
