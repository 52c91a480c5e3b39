package routing

import (
	"testing"
	"time"

	"github.com/panelx/panelx/api"
)

func project(name, domain string) *api.Project {
	p := &api.Project{Metadata: api.ObjectMeta{Name: name}, Spec: api.ProjectSpec{Domain: domain}}
	p.Default()
	return p
}

func service(project, name string, eps []string, domains ...api.Domain) *api.Service {
	s := &api.Service{Metadata: api.ObjectMeta{Project: project, Name: name},
		Spec: api.ServiceSpec{Image: "web:1", Ports: []api.Port{{ContainerPort: 8080}}, Domains: domains}}
	s.Default()
	for i, ip := range eps {
		s.Status.Endpoints = append(s.Status.Endpoints, api.Endpoint{Replica: int32(i), ContainerID: "c" + ip, IP: ip})
	}
	return s
}

func TestBuild(t *testing.T) {
	now := time.Now()
	deleting := service("shop", "old", []string{"10.0.0.9"}, api.Domain{Host: "old.example.com"})
	deleting.Metadata.DeletionTimestamp = &now
	off := false
	tbl := Build(
		[]*api.Project{project("shop", "shop.test"), project("blog", "")},
		[]*api.Service{
			service("shop", "web", []string{"10.0.0.2", "10.0.0.3"}, api.Domain{Host: "www.example.com"}, api.Domain{}, api.Domain{Host: "www.example.com", Path: "/api", Port: 9090, Timeout: api.Duration{Duration: 5 * time.Second}, MaxBodySize: "1Mi"}),
			service("blog", "site", nil, api.Domain{}, api.Domain{Host: "blog.example.com", TLS: api.TLSOff}),
			service("blog", "thief", []string{"10.0.0.5"}, api.Domain{Host: "www.example.com", Path: "/steal"}),
			service("shop", "plain", []string{"10.0.0.6"}, api.Domain{Host: "plain.example.com", RedirectHTTPS: &off}),
			deleting,
		},
		[]Claim{{Host: "www.example.com", Project: "shop", Service: "web"}, {Host: "web.shop.test", Project: "shop", Service: "web"},
			{Host: "blog.example.com", Project: "blog", Service: "site"}, {Host: "plain.example.com", Project: "shop", Service: "plain"},
			{Host: "old.example.com", Project: "shop", Service: "old"}},
		[]Upload{{Host: "www.example.com", Project: "shop", CertificatePEM: "C", PrivateKeyPEM: "K"},
			{Host: "blog.example.com", Project: "shop", CertificatePEM: "stale", PrivateKeyPEM: "stale"}},
	)
	type row struct {
		host, path, svc string
		port            int32
		tls, redirect   bool
		eps             int
	}
	want := []row{
		{"blog.example.com", "/", "site", 8080, false, false, 0},
		{"plain.example.com", "/", "plain", 8080, true, false, 1},
		{"web.shop.test", "/", "web", 8080, true, true, 2},
		{"www.example.com", "/", "web", 8080, true, true, 2},
		{"www.example.com", "/api", "web", 9090, true, true, 2},
	}
	if len(tbl.Routes) != len(want) {
		t.Fatalf("routes = %+v", tbl.Routes)
	}
	for i, w := range want {
		r := tbl.Routes[i]
		got := row{r.Host, r.Path, r.Service, r.Port, r.TLS, r.RedirectHTTPS, len(r.Endpoints)}
		if got != w {
			t.Errorf("route %d = %+v, want %+v", i, got, w)
		}
	}
	if api := tbl.Routes[4]; api.Timeout != 5*time.Second || api.MaxBodyBytes != 1<<20 {
		t.Errorf("api route limits = %+v", api)
	}
	if len(tbl.Certificates) != 1 || tbl.Certificates[0].Host != "www.example.com" {
		t.Errorf("certificates = %+v (a project's certificate for a host it does not claim is not served)", tbl.Certificates)
	}
	if !tbl.Valid() || tbl.Version == "" {
		t.Error("version does not match content")
	}
	again := Build([]*api.Project{project("shop", "shop.test")}, nil, nil, nil)
	if again.Version == tbl.Version {
		t.Error("different tables, same version")
	}
	tbl.Routes[0].Port = 1
	if tbl.Valid() {
		t.Error("a changed table still validates")
	}
	all, tls := tbl.Hosts()
	if len(all) != 4 || len(tls) != 3 {
		t.Errorf("hosts %v, tls %v", all, tls)
	}
}

func TestIndexMatch(t *testing.T) {
	tbl := Table{Routes: []Route{
		{Host: "www.example.com", Path: "/", Service: "root"},
		{Host: "www.example.com", Path: "/api", Service: "api"},
		{Host: "www.example.com", Path: "/api/v2", Service: "v2"},
		{Host: "*.example.com", Path: "/", Service: "wild"},
		{Host: "only.example.com", Path: "/app", Service: "app"},
	}}
	ix := NewIndex(tbl)
	tests := []struct{ host, path, want string }{
		{"www.example.com", "/", "root"},
		{"www.example.com", "/apix", "root"},
		{"www.example.com", "/api", "api"},
		{"www.example.com", "/api/", "api"},
		{"www.example.com", "/api/v2/x", "v2"},
		{"www.example.com", "/api/v20", "api"},
		{"other.example.com", "/x", "wild"},
		{"a.b.example.com", "/", ""},
		{"example.com", "/", ""},
		{"only.example.com", "/", ""},
		{"only.example.com", "/app/z", "app"},
	}
	for _, tt := range tests {
		got := ""
		if r := ix.Match(tt.host, tt.path); r != nil {
			got = r.Service
		}
		if got != tt.want {
			t.Errorf("Match(%s, %s) = %q, want %q", tt.host, tt.path, got, tt.want)
		}
	}
	if !ix.HasHost("only.example.com") || ix.HasHost("nope.test") {
		t.Error("HasHost")
	}
}
