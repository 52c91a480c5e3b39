// Package pebble starts a real ACME test CA for tests: Pebble, Let's
// Encrypt's test ACME server, with pebble-challtestsrv as its DNS server,
// both on 127.0.0.1. Every name resolves to 127.0.0.1 (unless a test says
// otherwise), so an ACME client such as certmagic can obtain a certificate
// for a name like app.test by answering HTTP-01 or TLS-ALPN-01 challenges on
// loopback:
//
//	ca := pebble.Start(t, pebble.Options{HTTPPort: port})
//	issuer := certmagic.NewACMEIssuer(cfg, certmagic.ACMEIssuer{
//		CA: ca.DirectoryURL, TestCA: ca.DirectoryURL, TrustedRoots: ca.ServerRoots,
//		AltHTTPPort: port, ListenHost: "127.0.0.1", DisableTLSALPNChallenge: true, ...})
//
// The two binaries are built from the module's tool dependencies (go.mod's
// tool block) with the go command, once per test process, and cached across
// runs under os.UserCacheDir()/panelx-test-bin. Without a go command the
// tests are skipped locally and fail in CI (see testenv.Missing).
package pebble

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/panelx/panelx/internal/testenv"
)

// Default validation ports, as in Pebble's own test configuration.
const (
	DefaultHTTPPort = 5002
	DefaultTLSPort  = 5001
)

const (
	startTimeout  = 30 * time.Second
	startAttempts = 3
)

// Options configures Start.
type Options struct {
	// HTTPPort is the port on 127.0.0.1 Pebble's validator connects to for
	// HTTP-01 challenges (default 5002); give the same port to the ACME
	// client (certmagic: ACMEIssuer.AltHTTPPort).
	HTTPPort int
	// TLSPort is the port on 127.0.0.1 Pebble's validator connects to for
	// TLS-ALPN-01 challenges (default 5001; certmagic: AltTLSALPNPort).
	TLSPort int
	// CertValidity is how long issued certificates are valid (default:
	// Pebble's 90 days); short ones let tests see renewals.
	CertValidity time.Duration
}

// CA is a running Pebble and pebble-challtestsrv pair. Both are stopped when
// the test that started them ends.
type CA struct {
	// DirectoryURL is the ACME directory: https://127.0.0.1:<port>/dir.
	DirectoryURL string
	// ServerRoots trusts Pebble's own HTTPS listeners (the ACME API and the
	// management API); give it to the ACME client. It does NOT trust the
	// certificates Pebble issues: see IssuerRoots.
	ServerRoots *x509.CertPool
	// ServerRootPEM is ServerRoots' only certificate, PEM-encoded.
	ServerRootPEM []byte
	// ManagementURL is Pebble's management API: https://127.0.0.1:<port>.
	ManagementURL string
	// ChallSrvURL is pebble-challtestsrv's management API:
	// http://127.0.0.1:<port>.
	ChallSrvURL string
	// DNSAddr is the challtestsrv DNS server (TCP and UDP) Pebble resolves
	// names with: 127.0.0.1:<port>.
	DNSAddr string
	// HTTPPort and TLSPort are the validation ports (Options with defaults).
	HTTPPort, TLSPort int

	client   *http.Client
	pebble   *process
	challSrv *process
}

// Start builds (once) and starts Pebble and pebble-challtestsrv on free
// loopback ports, waits until both answer, and stops them when tb ends. It
// fails the test if they do not come up within 30 seconds; if the go
// command needed to build them is missing it calls testenv.Missing.
func Start(tb testing.TB, opts Options) *CA {
	tb.Helper()
	if opts.HTTPPort == 0 {
		opts.HTTPPort = DefaultHTTPPort
	}
	if opts.TLSPort == 0 {
		opts.TLSPort = DefaultTLSPort
	}

	bins := getBinaries()
	if bins.missing != "" {
		testenv.Missing(tb, "%s", bins.missing)
	}
	if bins.err != nil {
		tb.Fatalf("pebble: build test ACME CA: %v", bins.err)
	}

	dir := tb.TempDir()
	lc, err := writeListenerCert(dir)
	if err != nil {
		tb.Fatalf("pebble: generate listener certificate: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(lc.rootPEM) {
		tb.Fatalf("pebble: cannot parse the generated listener root")
	}

	var errs []error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		ca, err := launch(bins.bins, dir, attempt, opts, lc, roots)
		if err == nil {
			tb.Cleanup(func() {
				ca.stop()
				if tb.Failed() {
					tb.Logf("pebble: output of the test ACME CA:\n%s", ca.Logs())
				}
			})
			return ca
		}
		errs = append(errs, fmt.Errorf("attempt %d: %w", attempt, err))
		if !errors.Is(err, errAddrInUse) {
			break
		}
	}
	tb.Fatalf("pebble: start test ACME CA: %v", errors.Join(errs...))
	return nil
}

var errAddrInUse = errors.New("a port was taken before the server could bind it")

type pebbleConfig struct {
	Pebble struct {
		ListenAddress                  string             `json:"listenAddress"`
		ManagementListenAddress        string             `json:"managementListenAddress"`
		Certificate                    string             `json:"certificate"`
		PrivateKey                     string             `json:"privateKey"`
		HTTPPort                       int                `json:"httpPort"`
		TLSPort                        int                `json:"tlsPort"`
		OCSPResponderURL               string             `json:"ocspResponderURL"`
		ExternalAccountBindingRequired bool               `json:"externalAccountBindingRequired"`
		Profiles                       map[string]profile `json:"profiles,omitempty"`
	} `json:"pebble"`
}

type profile struct {
	Description    string `json:"description"`
	ValidityPeriod uint64 `json:"validityPeriod"` // seconds
}

// launch starts both processes once and waits for them. On failure it stops
// them and returns an error that includes their output.
func launch(bins binaries, dir string, attempt int, opts Options, lc listenerCert, roots *x509.CertPool) (*CA, error) {
	ports, err := reservePorts(4, opts.HTTPPort, opts.TLSPort)
	if err != nil {
		return nil, err
	}
	dnsPort, challMgmtPort, acmePort, mgmtPort := ports[0], ports[1], ports[2], ports[3]
	hostPort := func(p int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)) }

	var cfg pebbleConfig
	cfg.Pebble.ListenAddress = hostPort(acmePort)
	cfg.Pebble.ManagementListenAddress = hostPort(mgmtPort)
	cfg.Pebble.Certificate = lc.certFile
	cfg.Pebble.PrivateKey = lc.keyFile
	cfg.Pebble.HTTPPort = opts.HTTPPort
	cfg.Pebble.TLSPort = opts.TLSPort
	if opts.CertValidity > 0 {
		cfg.Pebble.Profiles = map[string]profile{"default": {Description: "short-lived, for tests", ValidityPeriod: uint64(opts.CertValidity.Seconds())}}
	}
	cfgJSON, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, err
	}
	cfgFile := filepath.Join(dir, fmt.Sprintf("pebble-config-%d.json", attempt))
	if err := os.WriteFile(cfgFile, cfgJSON, 0o600); err != nil {
		return nil, err
	}

	ca := &CA{
		DirectoryURL:  "https://" + hostPort(acmePort) + "/dir",
		ServerRoots:   roots,
		ServerRootPEM: lc.rootPEM,
		ManagementURL: "https://" + hostPort(mgmtPort),
		ChallSrvURL:   "http://" + hostPort(challMgmtPort),
		DNSAddr:       hostPort(dnsPort),
		HTTPPort:      opts.HTTPPort,
		TLSPort:       opts.TLSPort,
		client: &http.Client{
			Transport: &http.Transport{
				Proxy:           nil, // everything is on loopback
				TLSClientConfig: &tls.Config{RootCAs: roots},
			},
			Timeout: 10 * time.Second,
		},
	}

	// Only the DNS server (and the management API): the test's ACME client
	// answers the challenges itself.
	ca.challSrv, err = startProcess("pebble-challtestsrv", bins.challSrv, []string{
		"-dnsserver", ca.DNSAddr,
		"-management", hostPort(challMgmtPort),
		"-http01=",
		"-https01=",
		"-tlsalpn01=",
		"-doh=",
		"-defaultIPv4", "127.0.0.1",
		// No AAAA answers: Pebble's validator dials the first address it
		// resolves and asks for AAAA first.
		"-defaultIPv6=",
	}, childEnv(), dir)
	if err != nil {
		return nil, fmt.Errorf("start pebble-challtestsrv: %w", err)
	}
	ca.pebble, err = startProcess("pebble", bins.pebble, []string{
		"-config", cfgFile,
		"-dnsserver", ca.DNSAddr,
		"-strict",
	}, pebbleEnv(), dir)
	if err != nil {
		ca.stop()
		return nil, fmt.Errorf("start pebble: %w", err)
	}

	if err := ca.waitReady(); err != nil {
		ca.stop()
		return nil, fmt.Errorf("%w\n%s", err, ca.Logs())
	}
	return ca, nil
}

// childEnv is the environment without any PEBBLE_* setting of the caller.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PEBBLE_") {
			env = append(env, kv)
		}
	}
	return env
}

// pebbleEnv turns off everything Pebble randomises to exercise clients,
// which would make tests slow or flaky.
func pebbleEnv() []string {
	return append(childEnv(),
		"PEBBLE_VA_NOSLEEP=1",      // no random 0-5 s sleep before each validation
		"PEBBLE_WFE_NONCEREJECT=0", // no random badNonce rejections (default 5%)
		"PEBBLE_AUTHZREUSE=0",      // always new authorizations, never reuse a valid one (default 50%)
		"PEBBLE_VA_ALWAYS_VALID=0", // really validate the challenges
		"PEBBLE_CHAIN_LENGTH=1",    // root -> one intermediate -> leaf
		"PEBBLE_ALTERNATE_ROOTS=0", // a single root: IssuerRoots is /roots/0
	)
}

// reservePorts finds n free TCP ports on 127.0.0.1, the first of them free
// for UDP too (the DNS server binds both), none of them in exclude. The
// ports are released before returning, so a server may lose one to another
// process: launch then fails with errAddrInUse and Start tries again.
func reservePorts(n int, exclude ...int) ([]int, error) {
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 100 {
			return nil, errors.New("cannot find free loopback ports")
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		closers = append(closers, l)
		port := l.Addr().(*net.TCPAddr).Port
		excluded := false
		for _, e := range exclude {
			excluded = excluded || e == port
		}
		if excluded {
			continue
		}
		if len(ports) == 0 {
			pc, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			if err != nil {
				continue
			}
			closers = append(closers, pc)
		}
		ports = append(ports, port)
	}
	return ports, nil
}

// waitReady polls until the ACME directory, Pebble's management API,
// challtestsrv's management API and its DNS server all answer.
func (ca *CA) waitReady() error {
	type check struct {
		name    string
		probe   func(context.Context) error
		ok      bool
		lastErr error
	}
	checks := []*check{
		{name: "pebble ACME directory " + ca.DirectoryURL, probe: func(ctx context.Context) error {
			_, err := ca.get(ctx, ca.DirectoryURL)
			return err
		}},
		{name: "pebble management API " + ca.ManagementURL, probe: func(ctx context.Context) error {
			_, err := ca.IssuerRoots(ctx)
			return err
		}},
		{name: "pebble-challtestsrv management API " + ca.ChallSrvURL, probe: func(ctx context.Context) error {
			return ca.challSrvPost(ctx, "/dns-request-history", map[string]string{"host": "ready.test"})
		}},
		{name: "pebble-challtestsrv DNS server " + ca.DNSAddr, probe: func(ctx context.Context) error {
			addrs, err := ca.Resolver().LookupNetIP(ctx, "ip4", "ready.test.")
			if err != nil {
				return err
			}
			if len(addrs) != 1 || addrs[0] != netip.MustParseAddr("127.0.0.1") {
				return fmt.Errorf("ready.test resolved to %v, want 127.0.0.1", addrs)
			}
			return nil
		}},
	}

	// A process that dies or cannot bind a port ends the wait at once, even
	// while a probe hangs on whatever holds that port.
	failed, fail := context.WithCancelCause(context.Background())
	defer fail(nil)
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-failed.Done():
				return
			case <-tick.C:
				if err := ca.startupFailure(); err != nil {
					fail(err)
					return
				}
			}
		}
	}()

	deadline := time.Now().Add(startTimeout)
	for {
		if failed.Err() != nil {
			return context.Cause(failed)
		}
		pending := 0
		for _, c := range checks {
			if c.ok {
				continue
			}
			ctx, cancel := context.WithTimeout(failed, 2*time.Second)
			c.lastErr = c.probe(ctx)
			cancel()
			c.ok = c.lastErr == nil
			if !c.ok {
				pending++
			}
		}
		if pending == 0 {
			return ca.startupFailure()
		}

		if time.Now().After(deadline) {
			var msgs []string
			for _, c := range checks {
				if !c.ok {
					msgs = append(msgs, fmt.Sprintf("%s: %v", c.name, c.lastErr))
				}
			}
			return fmt.Errorf("not ready after %s: %s", startTimeout, strings.Join(msgs, "; "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startupFailure reports a process that exited or could not bind a port.
func (ca *CA) startupFailure() error {
	for _, p := range []*process{ca.challSrv, ca.pebble} {
		inUse := strings.Contains(p.out.String(), syscall.EADDRINUSE.Error())
		if p.exited() {
			err := fmt.Errorf("%s exited during startup: %v", p.name, p.exitErr())
			if inUse {
				err = fmt.Errorf("%w: %w", errAddrInUse, err)
			}
			return err
		}
		if inUse { // challtestsrv logs bind errors and keeps running
			return fmt.Errorf("%w: %s could not bind a port", errAddrInUse, p.name)
		}
	}
	return nil
}

func (ca *CA) stop() {
	ca.pebble.stop()
	ca.challSrv.stop()
	ca.client.CloseIdleConnections()
}

// Logs returns everything Pebble and pebble-challtestsrv have written so far.
func (ca *CA) Logs() string {
	var b strings.Builder
	for _, p := range []*process{ca.pebble, ca.challSrv} {
		if p == nil {
			continue
		}
		fmt.Fprintf(&b, "----- %s -----\n%s", p.name, p.out.String())
		if !strings.HasSuffix(b.String(), "\n") {
			b.WriteString("\n")
		}
	}
	return b.String()
}

// HTTPClient returns a client that trusts Pebble's HTTPS listeners and uses
// no proxy.
func (ca *CA) HTTPClient() *http.Client { return ca.client }

// Resolver returns a resolver that asks challtestsrv, as Pebble's validator
// does. (Like every Go resolver it still consults /etc/hosts first.)
func (ca *CA) Resolver() *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", ca.DNSAddr)
		},
	}
}

// IssuerRoots returns the PEM-encoded root that signs the certificates this
// Pebble issues (GET <ManagementURL>/roots/0). Each Pebble run generates a
// new one.
func (ca *CA) IssuerRoots(ctx context.Context) ([]byte, error) {
	body, err := ca.get(ctx, ca.ManagementURL+"/roots/0")
	if err != nil {
		return nil, err
	}
	if block, _ := pem.Decode(body); block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("pebble /roots/0: no PEM certificate in %q", body)
	}
	return body, nil
}

// IssuerRootPool is IssuerRoots as a certificate pool, for verifying a
// certificate Pebble issued.
func (ca *CA) IssuerRootPool(ctx context.Context) (*x509.CertPool, error) {
	pemBytes, err := ca.IssuerRoots(ctx)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, errors.New("pebble /roots/0: cannot parse the root certificate")
	}
	return pool, nil
}

// SetDefaultIPv4 changes the address challtestsrv answers A queries with
// for names without a record of their own (initially 127.0.0.1). An empty ip
// turns the default off.
func (ca *CA) SetDefaultIPv4(ctx context.Context, ip string) error {
	return ca.challSrvPost(ctx, "/set-default-ipv4", map[string]string{"ip": ip})
}

// AddARecord adds ip to the A records challtestsrv answers for host
// (records accumulate; see ClearARecords).
func (ca *CA) AddARecord(ctx context.Context, host, ip string) error {
	return ca.challSrvPost(ctx, "/add-a", map[string]any{"host": host, "addresses": []string{ip}})
}

// ClearARecords removes the A records added for host, so that it gets the
// default address again.
func (ca *CA) ClearARecords(ctx context.Context, host string) error {
	return ca.challSrvPost(ctx, "/clear-a", map[string]string{"host": host})
}

func (ca *CA) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := ca.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, bytes.TrimSpace(body))
	}
	return body, nil
}

func (ca *CA) challSrvPost(ctx context.Context, path string, body any) error {
	payload, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ca.ChallSrvURL+path, bytes.NewReader(payload))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := ca.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	respBody, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s%s: %s: %s", ca.ChallSrvURL, path, resp.Status, bytes.TrimSpace(respBody))
	}
	return nil
}
