package edge_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/edge"
	"github.com/panelx/panelx/edge/certstore"
	"github.com/panelx/panelx/internal/testenv"
	"github.com/panelx/panelx/internal/testenv/pebble"
	"github.com/panelx/panelx/store"
	"github.com/panelx/panelx/store/postgres"
)

// TestACME: a certificate from a real ACME CA (Pebble) through each
// challenge type alone, served over HTTPS; a short-lived one is renewed
// automatically, reported (new notAfter) and recorded as an event.
func TestACME(t *testing.T) {
	for _, tc := range []struct {
		challenge string
		validity  time.Duration
	}{
		{edge.ChallengeTLSALPN01, 0},
		{edge.ChallengeHTTP01, 30 * time.Second},
	} {
		t.Run(tc.challenge, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			httpPort, httpsPort := freePort(t), freePort(t)
			ca := pebble.Start(t, pebble.Options{HTTPPort: httpPort, TLSPort: httpsPort, CertValidity: tc.validity})
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			roots, err := ca.IssuerRootPool(ctx)
			if err != nil {
				t.Fatal(err)
			}
			w.replica("127.0.0.2", "web", nil)
			w.service("web", []string{"127.0.0.2"}, api.Domain{Host: "app.test"})
			e := w.edge(t.TempDir(), func(o *edge.Options) {
				o.HTTPAddr = "127.0.0.1:" + strconv.Itoa(httpPort)
				o.HTTPSAddr = "127.0.0.1:" + strconv.Itoa(httpsPort)
				o.ACME = edge.ACMEOptions{Directory: ca.DirectoryURL, TrustedRoots: ca.ServerRoots, Challenges: []string{tc.challenge},
					RetryMin: time.Second, RetryMax: 2 * time.Second, RenewCheckInterval: time.Second}
			})
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("pebble:\n%s", ca.Logs())
				}
			})
			status := func() api.CertificateStatus {
				st, err := w.store.Certificates().Statuses(ctx, []string{"app.test"})
				if err != nil {
					t.Fatal(err)
				}
				return st["app.test"]
			}
			waitFor := func(what string, ok func(api.CertificateStatus) bool) api.CertificateStatus {
				t.Helper()
				for ctx.Err() == nil {
					if s := status(); ok(s) {
						return s
					}
					time.Sleep(100 * time.Millisecond)
				}
				t.Fatalf("certificate never %s: %+v", what, status())
				return api.CertificateStatus{}
			}
			first := waitFor("issued", func(s api.CertificateStatus) bool { return s.State == api.CertificateIssued })

			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
				TLSClientConfig: &tls.Config{RootCAs: roots},
				DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
					return (&net.Dialer{}).DialContext(ctx, network, e.https)
				},
			}}
			resp, err := client.Get(fmt.Sprintf("https://app.test:%d/x", httpsPort))
			if err != nil {
				t.Fatalf("HTTPS with the issued certificate: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != "web /x" {
				t.Errorf("answer %q", body)
			}
			if tc.validity == 0 {
				return
			}
			renewed := waitFor("renewed", func(s api.CertificateStatus) bool {
				return s.State == api.CertificateIssued && s.NotAfter.After(*first.NotAfter)
			})
			t.Logf("renewed: notAfter %v → %v", first.NotAfter, renewed.NotAfter)
			for ctx.Err() == nil {
				evs, _ := w.store.Events().List(ctx, "shop", store.EventFilter{Name: "web"})
				found := false
				for _, ev := range evs {
					found = found || ev.Reason == "CertificateRenewed"
				}
				if found {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
			t.Error("no CertificateRenewed event")
		})
	}
}

// TestEdgesShareCertificates: two edges on one PostgreSQL certificate
// storage order a hostname's certificate once between them and serve the
// same one; the CA validates through one edge's port only, and that edge
// answers the other's challenge from the shared storage.
func TestEdgesShareCertificates(t *testing.T) {
	w := newWorld(t)
	dbURL := testenv.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pg, err := postgres.Open(ctx, dbURL, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	if _, err := pg.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	storage := certstore.New(pg.Pool(), certstore.WithPollInterval(100*time.Millisecond))
	httpPort := freePort(t)
	ca := pebble.Start(t, pebble.Options{HTTPPort: httpPort, TLSPort: freePort(t)})
	w.replica("127.0.0.2", "web", nil)
	w.service("web", []string{"127.0.0.2"}, api.Domain{Host: "app.test"})
	acme := edge.ACMEOptions{Directory: ca.DirectoryURL, TrustedRoots: ca.ServerRoots, Challenges: []string{edge.ChallengeHTTP01},
		RetryMin: time.Second, RetryMax: 2 * time.Second, Storage: storage}
	var edges []*runningEdge
	for i, addr := range []string{"127.0.0.1:" + strconv.Itoa(httpPort), "127.0.0.1:0"} {
		edges = append(edges, w.edge(t.TempDir(), func(o *edge.Options) {
			o.ID, o.HTTPAddr, o.ACME = fmt.Sprintf("edge-%d", i), addr, acme
		}))
	}
	roots, err := ca.IssuerRootPool(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var serials []string
	for _, e := range edges {
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, e.https)
			},
		}}
		for {
			resp, err := client.Get("https://app.test/")
			if err == nil {
				resp.Body.Close()
				serials = append(serials, resp.TLS.PeerCertificates[0].SerialNumber.String())
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("%s never served a valid certificate: %v", e.Table().Version, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if serials[0] != serials[1] {
		t.Errorf("the edges serve different certificates: %v", serials)
	}
	if n := strings.Count(ca.Logs(), "Issued certificate serial"); n != 1 {
		t.Errorf("the CA issued %d certificates for one hostname and two edges", n)
	}
}
