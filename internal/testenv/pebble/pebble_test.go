package pebble_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/panelx/panelx/internal/testenv/pebble"
)

func TestPebble(t *testing.T) {
	ports := freePorts(t, 2)
	started := time.Now()
	ca := pebble.Start(t, pebble.Options{HTTPPort: ports[0], TLSPort: ports[1]})
	t.Logf("pebble and challtestsrv ready in %s: directory %s, challtestsrv %s, DNS %s",
		time.Since(started).Round(time.Millisecond), ca.DirectoryURL, ca.ChallSrvURL, ca.DNSAddr)

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	var issuerRoots *x509.CertPool

	t.Run("directory", func(t *testing.T) {
		// Only ServerRoots: proves it is what an ACME client needs.
		client := &http.Client{Transport: &http.Transport{
			Proxy:           nil,
			TLSClientConfig: &tls.Config{RootCAs: ca.ServerRoots},
		}}
		defer client.CloseIdleConnections()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, ca.DirectoryURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", ca.DirectoryURL, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s: %s", ca.DirectoryURL, resp.Status, body)
		}
		var dir map[string]any
		if err := json.Unmarshal(body, &dir); err != nil {
			t.Fatalf("directory is not JSON: %v: %s", err, body)
		}
		newOrder, _ := dir["newOrder"].(string)
		if !strings.HasPrefix(newOrder, "https://127.0.0.1:") {
			t.Fatalf("directory newOrder = %q, want an https://127.0.0.1 URL; directory: %s", newOrder, body)
		}
	})

	t.Run("issuer roots", func(t *testing.T) {
		pemBytes, err := ca.IssuerRoots(ctx)
		if err != nil {
			t.Fatal(err)
		}
		block, rest := pem.Decode(pemBytes)
		if block == nil || block.Type != "CERTIFICATE" || len(strings.TrimSpace(string(rest))) != 0 {
			t.Fatalf("IssuerRoots: want one PEM certificate, got %q", pemBytes)
		}
		root, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if !root.IsCA {
			t.Fatalf("issuer root %q is not a CA", root.Subject)
		}
		issuerRoots = x509.NewCertPool()
		issuerRoots.AddCert(root)
		t.Logf("issuer root: %s", root.Subject)
	})

	t.Run("dns", func(t *testing.T) {
		lookup := func(name string) []netip.Addr {
			t.Helper()
			addrs, err := ca.Resolver().LookupNetIP(ctx, "ip4", name)
			if err != nil {
				t.Fatalf("resolve %s: %v", name, err)
			}
			return addrs
		}
		want := func(name string, ip string) {
			t.Helper()
			if got := lookup(name); len(got) != 1 || got[0].String() != ip {
				t.Fatalf("%s resolves to %v, want %s", name, got, ip)
			}
		}
		want("anything.test.", "127.0.0.1")
		if err := ca.AddARecord(ctx, "other.test", "127.0.0.2"); err != nil {
			t.Fatal(err)
		}
		want("other.test.", "127.0.0.2")
		want("anything.test.", "127.0.0.1")
		if err := ca.ClearARecords(ctx, "other.test"); err != nil {
			t.Fatal(err)
		}
		want("other.test.", "127.0.0.1")
		if err := ca.SetDefaultIPv4(ctx, "127.0.0.3"); err != nil {
			t.Fatal(err)
		}
		want("anything.test.", "127.0.0.3")
		if err := ca.SetDefaultIPv4(ctx, "127.0.0.1"); err != nil {
			t.Fatal(err)
		}
		want("anything.test.", "127.0.0.1")
	})

	issue := func(t *testing.T, name string, tmpl certmagic.ACMEIssuer) {
		if issuerRoots == nil {
			t.Skip("issuer roots subtest failed")
		}
		cfg := newCertmagic(t, ca, tmpl)
		started := time.Now()
		if err := cfg.ObtainCertSync(ctx, name); err != nil {
			t.Fatalf("ObtainCertSync(%s): %v", name, err)
		}
		t.Logf("certmagic obtained a certificate for %s in %s", name, time.Since(started).Round(time.Millisecond))

		cert, err := cfg.CacheManagedCertificate(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		verify(t, cert.Leaf, cert.Certificate.Certificate[1:], name, issuerRoots)

		// Served: a TLS client trusting only the issuer root accepts it.
		ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg.TLSConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				_ = conn.(*tls.Conn).Handshake()
				conn.Close()
			}
		}()
		dialer := &tls.Dialer{Config: &tls.Config{ServerName: name, RootCAs: issuerRoots}}
		conn, err := dialer.DialContext(ctx, "tcp", ln.Addr().String())
		if err != nil {
			t.Fatalf("TLS handshake with the certificate for %s: %v", name, err)
		}
		served := conn.(*tls.Conn).ConnectionState().PeerCertificates[0]
		conn.Close()
		if !served.Equal(cert.Leaf) {
			t.Fatalf("served certificate %s is not the obtained one %s", served.SerialNumber, cert.Leaf.SerialNumber)
		}
	}

	t.Run("certmagic http-01", func(t *testing.T) {
		issue(t, "app.test", certmagic.ACMEIssuer{
			DisableTLSALPNChallenge: true,
			AltHTTPPort:             ca.HTTPPort,
		})
	})

	t.Run("certmagic tls-alpn-01", func(t *testing.T) {
		issue(t, "alpn.test", certmagic.ACMEIssuer{
			DisableHTTPChallenge: true,
			AltTLSALPNPort:       ca.TLSPort,
		})
	})
}

// newCertmagic returns a certmagic config with its own cache and storage
// whose only issuer is ca, solving challenges on 127.0.0.1 as tmpl says.
func newCertmagic(t *testing.T, ca *pebble.CA, tmpl certmagic.ACMEIssuer) *certmagic.Config {
	t.Helper()
	logs := &lockedBuffer{}
	logger := zap.New(zapcore.NewCore(
		zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()),
		zapcore.AddSync(logs), zapcore.DebugLevel))
	// Not t.Logf: certmagic may log from goroutines after the test ends.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("certmagic log:\n%s", logs.String())
		}
	})

	var cfg *certmagic.Config
	cache := certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return cfg, nil },
		Logger:           logger,
	})
	t.Cleanup(cache.Stop)
	cfg = certmagic.New(cache, certmagic.Config{
		Storage: &certmagic.FileStorage{Path: t.TempDir()},
		// Pebble's certificates carry no OCSP URL; never fetch anything.
		OCSP: certmagic.OCSPConfig{DisableStapling: true},
		// ARI would only ask Pebble, but a TLS handshake refreshes it in
		// a goroutine that outlives the test (and Pebble).
		DisableARI: true,
		Logger:     logger,
	})

	tmpl.CA = ca.DirectoryURL
	tmpl.TestCA = ca.DirectoryURL
	tmpl.Email = "test@example.test"
	tmpl.Agreed = true
	tmpl.TrustedRoots = ca.ServerRoots
	tmpl.ListenHost = "127.0.0.1"
	tmpl.HTTPProxy = func(*http.Request) (*url.URL, error) { return nil, nil }
	tmpl.Logger = logger
	cfg.Issuers = []certmagic.Issuer{certmagic.NewACMEIssuer(cfg, tmpl)}
	return cfg
}

func verify(t *testing.T, leaf *x509.Certificate, chain [][]byte, name string, roots *x509.CertPool) {
	t.Helper()
	if leaf == nil {
		t.Fatal("no leaf certificate")
	}
	intermediates := x509.NewCertPool()
	for _, der := range chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		intermediates.AddCert(c)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		DNSName:       name,
		Roots:         roots,
		Intermediates: intermediates,
	})
	if err != nil {
		t.Fatalf("certificate for %s does not chain to the issuer root: %v", name, err)
	}
	var path []string
	for _, c := range chains[0] {
		subject := c.Subject.CommonName
		if subject == "" && len(c.DNSNames) > 0 {
			subject = c.DNSNames[0]
		}
		path = append(path, subject)
	}
	t.Logf("certificate valid until %s, chain: %s",
		leaf.NotAfter.Format(time.DateOnly), strings.Join(path, " <- "))
}

// freePorts returns n distinct free TCP ports on 127.0.0.1.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
