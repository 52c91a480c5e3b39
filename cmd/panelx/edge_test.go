package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/internal/testenv"
	"github.com/panelx/panelx/internal/testenv/pebble"
	"github.com/panelx/panelx/internal/testimage"
	"github.com/panelx/panelx/reconcile"
	"github.com/panelx/panelx/seal"
	"github.com/panelx/panelx/store/postgres"
)

// edgeProc is a running `panelx edge`.
type edgeProc struct {
	cmd   *exec.Cmd
	logs  *syncLog
	admin string
}

// startEdge runs `panelx edge` with args and waits until it serves.
func startEdge(t testing.TB, bin string, env []string, args ...string) *edgeProc {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"edge"}, args...)...)
	cmd.Env = append(os.Environ(), append([]string{"PANELX_LOG_FORMAT=json"}, env...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &edgeProc{cmd: cmd, logs: &syncLog{}}
	t.Cleanup(func() { p.kill() })
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.logs.WriteString(sc.Text() + "\n")
			var line struct{ Msg string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "edge serving" {
				ready <- true
			}
		}
		close(ready)
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("edge exited before serving:\n%s", p.logs)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("edge did not start:\n%s", p.logs)
	}
	return p
}

func (p *edgeProc) kill() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	}
}

// stop ends the edge with SIGTERM, as systemd does.
func (p *edgeProc) stop(t testing.TB) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("edge exited with %v:\n%s", err, p.logs)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("edge did not stop on SIGTERM")
	}
}

// apiClient calls the server's API with a token.
type apiClient struct {
	t     testing.TB
	base  string
	token string
}

func (c apiClient) do(method, path string, body any) (int, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

func (c apiClient) must(want int, method, path string, body any) []byte {
	c.t.Helper()
	status, data := c.do(method, path, body)
	if status != want {
		c.t.Fatalf("%s %s: %d, want %d: %s", method, path, status, want, data)
	}
	return data
}

// service reads a service.
func (c apiClient) service(project, name string) api.Service {
	c.t.Helper()
	var s api.Service
	if err := json.Unmarshal(c.must(200, "GET", "/api/v1/projects/"+project+"/services/"+name, nil), &s); err != nil {
		c.t.Fatal(err)
	}
	return s
}

// waitDomain waits until the service's status for host satisfies ok.
func (c apiClient) waitDomain(project, name, host string, timeout time.Duration, what string, ok func(api.DomainStatus) bool) api.DomainStatus {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var last api.DomainStatus
	for time.Now().Before(deadline) {
		for _, d := range c.service(project, name).Status.Domains {
			if d.Host == host {
				last = d
				if ok(d) {
					return d
				}
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	c.t.Fatalf("%s never %s; last status %+v (certificate %+v)", host, what, last, last.Certificate)
	return last
}

// httpsTo returns a client that reaches every hostname at addr, trusting roots.
func httpsTo(addr string, roots *x509.CertPool) *http.Client {
	return &http.Client{
		Timeout: 20 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: roots},
			ForceAttemptHTTP2: true,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			},
			DisableKeepAlives: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func serviceBody(image string, replicas int, domains ...map[string]any) map[string]any {
	d := make([]any, len(domains))
	for i, x := range domains {
		d[i] = x
	}
	return map[string]any{"metadata": map[string]any{}, "spec": map[string]any{
		"image": image, "replicas": replicas, "ports": []any{map[string]any{"containerPort": 8080}},
		"healthcheck": map[string]any{"command": []string{"/testapp", "-check"}, "interval": "1s"},
		"domains":     d}}
}

// TestEdgeEndToEnd: the real server, the real Docker Engine, a real ACME CA
// (Pebble) and `panelx edge` as its own process. A service with app.test
// gets a Pebble-issued certificate and answers through the edge over HTTPS
// (HTTP redirects); a hostname whose challenge cannot be reached turns
// Failed with the CA's message and recovers once it can; an uploaded
// certificate is served as uploaded; another tenant cannot claim the
// hostname; an update of the service drops no request; the edge keeps
// serving while the server is killed with kill -9 and restarted, and after
// its own restart reuses the stored certificate.
func TestEdgeEndToEnd(t *testing.T) {
	docker := testenv.Docker(t)
	dbURL := testenv.NewDatabase(t)
	bin := buildPanelx(t)
	httpPort, httpsPort, adminPort := freeTCPPort(t), freeTCPPort(t), freeTCPPort(t)
	ca := pebble.Start(t, pebble.Options{HTTPPort: httpPort, TLSPort: httpsPort})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	issuerRoots, err := ca.IssuerRootPool(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	rootsFile := filepath.Join(dataDir, "pebble-roots.pem")
	if err := os.WriteFile(rootsFile, ca.ServerRootPEM, 0o600); err != nil {
		t.Fatal(err)
	}

	var instance string
	t.Cleanup(func() {
		if instance != "" {
			testenv.RemoveLabelled(docker, reconcile.LabelInstance+"="+instance)
		}
	})
	// A fixed port: the restarted server is where the edge looks for it.
	// A master key seals the uploaded certificate's key.
	keyFile := filepath.Join(t.TempDir(), "master.key")
	if _, _, err := seal.EnsureKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	serverEnv := []string{"PANELX_DATABASE_URL=" + dbURL, "PANELX_DATA_DIR=" + dataDir, "PANELX_EDGE_DRAIN_TIMEOUT=20s",
		"PANELX_LISTEN=127.0.0.1:" + strconv.Itoa(freeTCPPort(t)), "PANELX_SECRET_KEY_FILE=" + keyFile}
	server, base, slogs := startServer(t, bin, serverEnv...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", slogs)
		}
	})
	st, err := postgres.Open(ctx, dbURL, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if instance, err = st.InstallationID(ctx); err != nil {
		t.Fatal(err)
	}
	token := func(user string) string {
		out, err := exec.Command(bin, "token", "create", "--user", user, "--database-url", dbURL).Output()
		if err != nil {
			t.Fatalf("token create: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	alice := apiClient{t: t, base: base, token: token("alice")}
	bob := apiClient{t: t, base: base, token: token("bob")}

	edgeArgs := []string{"--server", base, "--data-dir", dataDir, "--database-url", dbURL,
		"--http", "127.0.0.1:" + strconv.Itoa(httpPort), "--https", "127.0.0.1:" + strconv.Itoa(httpsPort),
		"--admin-listen", "127.0.0.1:" + strconv.Itoa(adminPort),
		"--acme-ca", ca.DirectoryURL, "--acme-ca-roots", rootsFile, "--acme-email", "ops@example.test", "--acme-retry-min", "1s", "--acme-retry-max", "2s"}
	// The token comes from the file the server wrote on its first start.
	edgeProcess := startEdge(t, bin, nil, edgeArgs...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("edge log:\n%s\npebble:\n%s", edgeProcess.logs, ca.Logs())
		}
	})

	reg := testimage.StartRegistry(t, testimage.RegistryOptions{})
	img1 := reg.Push(t, "shop/web:1", testimage.Image(t, testimage.ImageOptions{Version: "1"}))
	project := uniqueName("shop")
	alice.must(201, "POST", "/api/v1/projects", map[string]any{"metadata": map[string]any{"name": project}})
	web := serviceBody(img1, 2, map[string]any{"host": "app.test"})
	web["metadata"] = map[string]any{"name": "web"}
	alice.must(201, "POST", "/api/v1/projects/"+project+"/services", web)

	// A Pebble-issued certificate, and the workload's answer over HTTPS.
	issued := alice.waitDomain(project, "web", "app.test", 3*time.Minute, "issued and routed", func(d api.DomainStatus) bool {
		return d.Routed && d.Certificate != nil && d.Certificate.State == api.CertificateIssued
	})
	if !strings.Contains(issued.Certificate.Issuer, "Pebble") || issued.Certificate.NotAfter == nil || issued.Certificate.RenewAfter == nil {
		t.Errorf("issued certificate status %+v", issued.Certificate)
	}
	https := httpsTo("127.0.0.1:"+strconv.Itoa(httpsPort), issuerRoots)
	appURL := "https://app.test:" + strconv.Itoa(httpsPort)
	resp, err := https.Get(appURL + "/")
	if err != nil {
		t.Fatalf("HTTPS through the edge: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"version":"1"`) || resp.ProtoMajor != 2 {
		t.Fatalf("HTTPS answer: %s %d %s", resp.Proto, resp.StatusCode, body)
	}
	serial := resp.TLS.PeerCertificates[0].SerialNumber.String()
	plain := httpsTo("127.0.0.1:"+strconv.Itoa(httpPort), nil)
	resp, err = plain.Get("http://app.test/x?y=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != appURL+"/x?y=1" {
		t.Errorf("plain HTTP: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	// panelx get domains shows it.
	get := exec.Command(bin, "get", "domains", "-p", project)
	get.Env = append(os.Environ(), "PANELX_SERVER="+base, "PANELX_TOKEN="+alice.token, "PANELX_CONFIG="+filepath.Join(t.TempDir(), "c.json"))
	if out, err := get.CombinedOutput(); err != nil || !regexpMatch(`app\.test\s+/\s+`+project+`\s+web\s+yes\s+Issued\s+20`, string(out)) {
		t.Errorf("panelx get domains: %v\n%s", err, out)
	}

	// The edge's control surface (metrics) is not reachable from a managed
	// container: through the project network's gateway, the app finds
	// nothing on the admin port.
	netInfo, err := docker.NetworkInspect(ctx, reconcile.NetworkName(project), networkInspectOptions())
	if err != nil || len(netInfo.IPAM.Config) == 0 {
		t.Fatalf("inspect the project network: %v", err)
	}
	gw := netInfo.IPAM.Config[0].Gateway
	resp, err = https.Get(appURL + "/fetch?url=http://" + net.JoinHostPort(gw, strconv.Itoa(adminPort)) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == 200 || strings.Contains(string(body), "panelx_edge") {
		t.Errorf("a container reached the edge's metrics at %s: %d %s", gw, resp.StatusCode, body)
	}

	// Another tenant cannot claim the hostname.
	rival := uniqueName("rival")
	bob.must(201, "POST", "/api/v1/projects", map[string]any{"metadata": map[string]any{"name": rival}})
	steal := serviceBody(img1, 1, map[string]any{"host": "app.test"})
	steal["metadata"] = map[string]any{"name": "web"}
	if status, data := bob.do("POST", "/api/v1/projects/"+rival+"/services", steal); status != http.StatusConflict || strings.Contains(string(data), project) {
		t.Errorf("another tenant's claim of app.test: %d %s", status, data)
	}

	// An unreachable challenge: bad.test resolves to an address nothing
	// listens on; Failed with the CA's words, then Issued once fixed.
	if err := ca.AddARecord(ctx, "bad.test", "127.0.0.2"); err != nil {
		t.Fatal(err)
	}
	other := serviceBody(img1, 1, map[string]any{"host": "bad.test"}, map[string]any{"host": "own.test"})
	other["metadata"] = map[string]any{"name": "other"}
	alice.must(201, "POST", "/api/v1/projects/"+project+"/services", other)
	failed := alice.waitDomain(project, "other", "bad.test", 2*time.Minute, "failed", func(d api.DomainStatus) bool {
		return d.Certificate != nil && d.Certificate.State == api.CertificateFailed
	})
	if !strings.Contains(failed.Certificate.Message, "127.0.0.2") {
		t.Errorf("the failure does not carry the CA's message: %q", failed.Certificate.Message)
	}
	if err := ca.ClearARecords(ctx, "bad.test"); err != nil {
		t.Fatal(err)
	}
	alice.waitDomain(project, "other", "bad.test", 2*time.Minute, "recovered", func(d api.DomainStatus) bool {
		return d.Certificate != nil && d.Certificate.State == api.CertificateIssued
	})
	var events struct {
		Items []struct{ Reason, Message string }
	}
	_ = json.Unmarshal(alice.must(200, "GET", "/api/v1/projects/"+project+"/events?kind=Service&name=other", nil), &events)
	reasons := map[string]bool{}
	for _, e := range events.Items {
		reasons[e.Reason] = true
	}
	if !reasons["CertificateFailed"] || !reasons["CertificateIssued"] {
		t.Errorf("events of other: %+v", events.Items)
	}

	// An uploaded certificate is served as uploaded.
	certPEM, keyPEM := selfSignedFor(t, "own.test")
	alice.must(200, "PUT", "/api/v1/projects/"+project+"/certificates/own.test", map[string]any{"certificate": certPEM, "privateKey": keyPEM})
	own := x509.NewCertPool()
	own.AppendCertsFromPEM([]byte(certPEM))
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := httpsTo("127.0.0.1:"+strconv.Itoa(httpsPort), own).Get("https://own.test:" + strconv.Itoa(httpsPort) + "/healthz")
		if err == nil {
			resp.Body.Close()
			block, _ := pem.Decode([]byte(certPEM))
			if !bytes.Equal(resp.TLS.PeerCertificates[0].Raw, block.Bytes) {
				t.Error("the served certificate is not the uploaded one")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the uploaded certificate was never served: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Continuous load through the edge from here on: nothing may fail.
	var ok, failedReqs atomic.Int64
	var lastErr atomic.Value
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := httpsTo("127.0.0.1:"+strconv.Itoa(httpsPort), issuerRoots)
			client.Transport.(*http.Transport).DisableKeepAlives = false
			for loadCtx.Err() == nil {
				req, _ := http.NewRequestWithContext(loadCtx, "GET", appURL+"/", nil)
				resp, err := client.Do(req)
				if loadCtx.Err() != nil {
					return
				}
				if err != nil {
					failedReqs.Add(1)
					lastErr.Store(err.Error())
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failedReqs.Add(1)
					lastErr.Store(resp.Status)
				} else {
					ok.Add(1)
				}
			}
		}()
	}

	// An update (start-first, drained) under load.
	img2 := reg.Push(t, "shop/web:2", testimage.Image(t, testimage.ImageOptions{Version: "2"}))
	web2 := serviceBody(img2, 2, map[string]any{"host": "app.test"})
	web2["metadata"] = map[string]any{"name": "web"}
	alice.must(200, "PUT", "/api/v1/projects/"+project+"/services/web", web2)
	waitVersion := func(v string) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for time.Now().Before(deadline) {
			s := alice.service(project, "web")
			if reconcile.ServiceReady(&s) && len(s.Status.Endpoints) == 2 {
				resp, err := https.Get(appURL + "/")
				if err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if strings.Contains(string(b), `"version":"`+v+`"`) {
						return
					}
				}
			}
			time.Sleep(250 * time.Millisecond)
		}
		t.Fatalf("version %s never served", v)
	}
	waitVersion("2")
	time.Sleep(2 * time.Second) // the old replicas are stopped after their drain

	// kill -9 of the server: the edge keeps serving; the restarted server
	// takes over and the edge follows it again.
	if err := server.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_, _ = server.Process.Wait()
	before := ok.Load()
	time.Sleep(3 * time.Second)
	if ok.Load()-before < 10 {
		t.Errorf("the edge served %d requests in 3 s without the server", ok.Load()-before)
	}
	_, _, slogs2 := startServer(t, bin, serverEnv...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("restarted server log:\n%s", slogs2)
		}
	})
	time.Sleep(2 * time.Second)
	stopLoad()
	wg.Wait()
	t.Logf("requests through the edge during the update and the server's kill -9: %d ok, %d failed", ok.Load(), failedReqs.Load())
	if failedReqs.Load() != 0 {
		t.Errorf("%d requests failed (last: %v)", failedReqs.Load(), lastErr.Load())
	}

	// The edge follows the restarted server: a change reaches it.
	web1 := serviceBody(img2, 1, map[string]any{"host": "app.test"})
	web1["metadata"] = map[string]any{"name": "web"}
	alice.must(200, "PUT", "/api/v1/projects/"+project+"/services/web", web1)
	deadline = time.Now().Add(time.Minute)
	for {
		var tbl struct {
			Routes []struct {
				Host      string
				Endpoints []string
			}
		}
		data, err := os.ReadFile(filepath.Join(dataDir, "edge", "routes.json"))
		if err == nil && json.Unmarshal(data, &tbl) == nil {
			n := -1
			for _, r := range tbl.Routes {
				if r.Host == "app.test" {
					n = len(r.Endpoints)
				}
			}
			if n == 1 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the edge never got the scale-down from the restarted server:\n%s", data)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// The edge restarts and reuses the stored certificate: same serial, no
	// new order.
	edgeProcess.stop(t)
	edgeProcess = startEdge(t, bin, nil, edgeArgs...)
	resp, err = https.Get(appURL + "/")
	if err != nil {
		t.Fatalf("after the edge's restart: %v", err)
	}
	resp.Body.Close()
	if got := resp.TLS.PeerCertificates[0].SerialNumber.String(); got != serial {
		t.Errorf("certificate after restart: serial %s, want the stored %s", got, serial)
	}
	time.Sleep(time.Second)
	if n := strings.Count(edgeProcess.logs.String(), "certificate obtained successfully"); n != 0 {
		t.Errorf("the restarted edge ordered %d certificate(s)", n)
	}
}

// selfSignedFor returns a PEM certificate for host, valid now, and its key.
func selfSignedFor(t *testing.T, host string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: host},
		DNSNames: []string{host}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
}

func regexpMatch(pattern, s string) bool { return regexp.MustCompile(pattern).MatchString(s) }

func networkInspectOptions() network.InspectOptions { return network.InspectOptions{} }
