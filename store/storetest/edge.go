package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/store"
)

// withDomains returns a defaulted service serving the hosts ("" for the
// project's default hostname).
func withDomains(project, name string, hosts ...string) *api.Service {
	s := Service(project, name, "web:1")
	s.Spec.Ports = []api.Port{{ContainerPort: 8080}}
	for _, h := range hosts {
		s.Spec.Domains = append(s.Spec.Domains, api.Domain{Host: h})
	}
	s.Default()
	return s
}

func claims(t *testing.T, s store.Store) []string {
	t.Helper()
	list := must(s.Hostnames().List(ctxFor(t)))(t)
	var out []string
	for _, c := range list {
		out = append(out, c.Host+"="+c.Project+"/"+c.Service)
	}
	return out
}

func wantClaims(t *testing.T, s store.Store, want ...string) {
	t.Helper()
	if got := claims(t, s); !slices.Equal(got, want) {
		t.Errorf("claims = %q, want %q", got, want)
	}
}

func wantTaken(t *testing.T, err error, host, service string) {
	t.Helper()
	var taken *store.HostnameTakenError
	if !errors.As(err, &taken) || !errors.Is(err, store.ErrAlreadyExists) {
		t.Fatalf("got %v, want a HostnameTakenError", err)
	}
	if taken.Host != host || taken.Service != service {
		t.Errorf("taken = %+v, want host %s service %q", taken, host, service)
	}
}

// testHostnameClaims: a hostname belongs to one service on the whole
// server, whatever the project; claims follow the spec, the project's
// domain and the row's life.
func testHostnameClaims(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	shop := Project("shop")
	shop.Spec.Domain = "shop.example.com"
	must(s.Projects().Create(ctx, shop))(t)
	must(s.Projects().Create(ctx, Project("rival")))(t)

	web := must(s.Services().Create(ctx, withDomains("shop", "web", "app.example.com", "app.example.com", "")))(t)
	wantClaims(t, s, "app.example.com=shop/web", "web.shop.example.com=shop/web")

	// Another project: refused, without naming the holder.
	_, err := s.Services().Create(ctx, withDomains("rival", "web", "www.rival.test", "app.example.com"))
	wantTaken(t, err, "app.example.com", "")
	if _, err := s.Services().Get(ctx, api.Key{Project: "rival", Name: "web"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a refused create left the service: %v", err)
	}
	// The same project: refused, naming the holder.
	_, err = s.Services().Create(ctx, withDomains("shop", "api", "app.example.com"))
	wantTaken(t, err, "app.example.com", "web")
	// In a transaction the refusal rolls back everything.
	err = s.InTx(ctx, func(r store.Repo) error {
		if _, err := r.Services().Create(ctx, withDomains("rival", "one", "one.rival.test")); err != nil {
			return err
		}
		_, err := r.Services().Create(ctx, withDomains("rival", "two", "web.shop.example.com"))
		return err
	})
	wantTaken(t, err, "web.shop.example.com", "")
	wantClaims(t, s, "app.example.com=shop/web", "web.shop.example.com=shop/web")

	// An update moves the claims; a refused update changes nothing.
	web.Spec.Domains = web.Spec.Domains[:1]
	web = must(s.Services().Update(ctx, web))(t)
	wantClaims(t, s, "app.example.com=shop/web")
	api1 := must(s.Services().Create(ctx, withDomains("rival", "api", "api.rival.test")))(t)
	api1.Spec.Domains = append(api1.Spec.Domains, api.Domain{Host: "app.example.com", Path: "/", Port: 8080})
	_, err = s.Services().Update(ctx, api1)
	wantTaken(t, err, "app.example.com", "")
	wantClaims(t, s, "api.rival.test=rival/api", "app.example.com=shop/web")
	if got := must(s.Hostnames().Owner(ctx, "api.rival.test"))(t); got.Project != "rival" || got.Service != "api" {
		t.Errorf("Owner = %+v", got)
	}
	if _, err := s.Hostnames().Owner(ctx, "nobody.test"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Owner of an unclaimed host: %v", err)
	}

	// The project's domain moves default hostnames; a clash refuses the change.
	must(s.Services().Create(ctx, withDomains("shop", "admin", "")))(t)
	wantClaims(t, s, "admin.shop.example.com=shop/admin", "api.rival.test=rival/api", "app.example.com=shop/web")
	shop = must(s.Projects().Get(ctx, api.Key{Name: "shop"}))(t)
	shop.Spec.Domain = "shop.test"
	shop = must(s.Projects().Update(ctx, shop))(t)
	wantClaims(t, s, "admin.shop.test=shop/admin", "api.rival.test=rival/api", "app.example.com=shop/web")
	must(s.Services().Create(ctx, withDomains("rival", "taker", "admin.other.test")))(t)
	shop.Spec.Domain = "other.test"
	_, err = s.Projects().Update(ctx, shop)
	wantTaken(t, err, "admin.other.test", "")
	if got := must(s.Projects().Get(ctx, api.Key{Name: "shop"}))(t); got.Spec.Domain != "shop.test" {
		t.Errorf("a refused domain change was written: %q", got.Spec.Domain)
	}

	// Claims live as long as the row: a deleting service keeps them, its
	// removal frees them.
	del := must(s.Services().Delete(ctx, api.Key{Project: "shop", Name: "web"}, store.DeleteOptions{}))(t)
	_, err = s.Services().Create(ctx, withDomains("rival", "late", "app.example.com"))
	wantTaken(t, err, "app.example.com", "")
	if err := s.Services().Remove(ctx, api.Key{Project: "shop", Name: "web"}, del.Metadata.UID); err != nil {
		t.Fatal(err)
	}
	must(s.Services().Create(ctx, withDomains("rival", "late", "app.example.com")))(t)
	wantClaims(t, s, "admin.other.test=rival/taker", "admin.shop.test=shop/admin", "api.rival.test=rival/api", "app.example.com=rival/late")
}

func testEdgeReports(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	before := time.Now().Add(-time.Minute)
	if err := s.Edges().Report(ctx, store.EdgeReport{ID: "edge-a", Name: "host-a", Routes: "7", Active: []string{"10.0.0.2"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Edges().Report(ctx, store.EdgeReport{ID: "edge-b", Name: "host-b", Active: []string{}, Draining: []string{"10.0.0.3"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Edges().Report(ctx, store.EdgeReport{ID: "edge-a", Name: "host-a", Routes: "8", Active: []string{"10.0.0.4"}}); err != nil {
		t.Fatal(err)
	}
	list := must(s.Edges().List(ctx))(t)
	if len(list) != 2 || list[0].ID != "edge-a" || list[0].Routes != "8" || !slices.Equal(list[0].Active, []string{"10.0.0.4"}) ||
		list[1].ID != "edge-b" || !slices.Equal(list[1].Draining, []string{"10.0.0.3"}) {
		t.Fatalf("edges = %+v", list)
	}
	for _, e := range list {
		if e.SeenAt.Before(before) || e.SeenAt.After(time.Now().Add(time.Minute)) {
			t.Errorf("%s seen at %v: set by the store to now", e.ID, e.SeenAt)
		}
	}
}

func testCertificates(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	must(s.Projects().Create(ctx, Project("shop")))(t)
	must(s.Projects().Create(ctx, Project("rival")))(t)
	must(s.Services().Create(ctx, withDomains("shop", "web", "app.example.com")))(t)
	ch, err := s.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := Next(t, ch, 10*time.Second); c.Type != store.ChangeResync {
		t.Fatalf("first change %+v, want a resync marker", c)
	}

	// Status: written only when it changes; each write touches the service.
	na := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	st := api.CertificateStatus{State: api.CertificateIssued, Source: "acme", Issuer: "Pebble", NotAfter: &na}
	if changed := must(s.Certificates().SetStatus(ctx, "app.example.com", st))(t); !changed {
		t.Error("first status: changed = false")
	}
	c := Next(t, ch, 10*time.Second)
	if c.Kind != api.KindService || c.Key != (api.Key{Project: "shop", Name: "web"}) || c.SpecChanged || c.StatusChanged || c.Type != store.ChangeUpsert {
		t.Errorf("touch = %+v, want an unflagged change of shop/web", c)
	}
	if changed := must(s.Certificates().SetStatus(ctx, "app.example.com", st))(t); changed {
		t.Error("same status again: changed = true")
	}
	// Statuses of hosts nobody claims are kept too (the claim may come later).
	must(s.Certificates().SetStatus(ctx, "orphan.test", api.CertificateStatus{State: api.CertificateFailed, Message: "no"}))(t)
	got := must(s.Certificates().Statuses(ctx, []string{"app.example.com", "orphan.test", "none.test"}))(t)
	if len(got) != 2 || got["app.example.com"].Issuer != "Pebble" || !got["app.example.com"].NotAfter.Equal(na) || got["orphan.test"].State != api.CertificateFailed {
		t.Errorf("Statuses = %+v", got)
	}

	// Uploaded certificates.
	cert := store.CustomCertificate{Host: "app.example.com", Project: "shop", CertificatePEM: "CERT", PrivateKeyPEM: "KEY",
		NotAfter: na, Issuer: "Own CA", DNSNames: []string{"app.example.com"}}
	out := must(s.Certificates().PutCustom(ctx, cert))(t)
	if out.PrivateKeyPEM != "KEY" || out.CreatedAt.IsZero() || !out.NotAfter.Equal(na) {
		t.Errorf("PutCustom = %+v", out)
	}
	if c := Next(t, ch, 10*time.Second); c.Key != (api.Key{Project: "shop", Name: "web"}) {
		t.Errorf("upload touched %+v", c)
	}
	// Another project cannot take a current holder's certificate.
	_, err = s.Certificates().PutCustom(ctx, store.CustomCertificate{Host: "app.example.com", Project: "rival", CertificatePEM: "X", PrivateKeyPEM: "Y", NotAfter: na})
	wantErr(t, err, store.ErrAlreadyExists, "another project's upload")
	if _, err := s.Certificates().GetCustom(ctx, "rival", "app.example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetCustom of another project: %v", err)
	}
	if got := must(s.Certificates().GetCustom(ctx, "shop", "app.example.com"))(t); got.CertificatePEM != "CERT" || got.DNSNames[0] != "app.example.com" {
		t.Errorf("GetCustom = %+v", got)
	}
	if all := must(s.Certificates().ListCustom(ctx, ""))(t); len(all) != 1 {
		t.Errorf("ListCustom all = %+v", all)
	}
	if none := must(s.Certificates().ListCustom(ctx, "rival"))(t); len(none) != 0 {
		t.Errorf("ListCustom rival = %+v", none)
	}
	wantErr(t, s.Certificates().DeleteCustom(ctx, "rival", "app.example.com"), store.ErrNotFound, "delete of another project's certificate")
	if err := s.Certificates().DeleteCustom(ctx, "shop", "app.example.com"); err != nil {
		t.Fatal(err)
	}
	if all := must(s.Certificates().ListCustom(ctx, ""))(t); len(all) != 0 {
		t.Errorf("after delete: %+v", all)
	}
}
