package apiserver_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/apiserver"
	"github.com/panelx/panelx/apiserver/auth"
	"github.com/panelx/panelx/apiserver/policy"
	"github.com/panelx/panelx/internal/testenv"
	"github.com/panelx/panelx/seal"
	"github.com/panelx/panelx/store"
	"github.com/panelx/panelx/store/postgres"
)

const (
	jwtSecret = "test-jwt-secret-with-at-least-32-bytes!!"
	adminUser = "admin-0000"
	audience  = "authenticated"
	issuer    = "https://test.supabase.co/auth/v1"
	kidEC     = "ec-test"
)

var (
	ecOnce sync.Once
	ecKey  *ecdsa.PrivateKey
)

func ecdsaKey(t testing.TB) *ecdsa.PrivateKey {
	ecOnce.Do(func() {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		ecKey = k
	})
	return ecKey
}

// env is a PanelX API on 127.0.0.1 backed by a fresh PostgreSQL database,
// accepting HS256 JWTs (the secret above) and ES256 JWTs from a JWKS
// endpoint on 127.0.0.1.
type env struct {
	t     testing.TB
	URL   string
	Store store.Store
	API   *apiserver.Server
	Logs  *observer.ObservedLogs
	// Keyring seals secrets and registry passwords (nil with
	// withoutKeyring).
	Keyring *seal.Keyring
	dbURL   string
	opts    apiserver.Options
}

// withoutKeyring: a server with no master key.
func withoutKeyring(o *apiserver.Options) { o.Keyring = nil }

type envOption func(*apiserver.Options)

func withPolicy(p policy.Config) envOption { return func(o *apiserver.Options) { o.Policy = &p } }

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	st, dbURL := openStore(t)
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pub, _ := ecdsaKey(t).PublicKey.Bytes()
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]any{{
			"kty": "EC", "crv": "P-256", "kid": kidEC, "alg": "ES256", "use": "sig",
			"x": base64.RawURLEncoding.EncodeToString(pub[1:33]), "y": base64.RawURLEncoding.EncodeToString(pub[33:]),
		}}})
	}))
	t.Cleanup(jwks.Close)
	v, err := auth.NewVerifier(auth.Config{
		HS256Secret: []byte(jwtSecret), JWKSURL: jwks.URL + "/jwks.json", Audience: audience, Issuer: issuer, HTTPClient: jwks.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.DebugLevel)
	key, err := seal.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	o := apiserver.Options{Store: st, Logger: zap.New(core), Verifier: v, AdminUsers: []string{adminUser}, Keyring: seal.NewKeyring(key)}
	for _, opt := range opts {
		opt(&o)
	}
	h := apiserver.New(o)
	followCtx, stopFollowing := context.WithCancel(context.Background())
	go h.FollowChanges(followCtx)
	t.Cleanup(stopFollowing)
	srv := httptest.NewServer(h.Handler())
	t.Cleanup(srv.Close)
	return &env{t: t, URL: srv.URL, Store: st, API: h, Logs: logs, Keyring: o.Keyring, dbURL: dbURL, opts: o}
}

// otherServer starts a second API server on the same database, with its
// own connections and change feed: another host of a shared installation.
func (e *env) otherServer(t testing.TB) string {
	t.Helper()
	st, err := postgres.Open(context.Background(), e.dbURL, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	o := e.opts
	o.Store = st
	h := apiserver.New(o)
	ctx, cancel := context.WithCancel(context.Background())
	go h.FollowChanges(ctx)
	t.Cleanup(cancel)
	srv := httptest.NewServer(h.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

func openStore(t testing.TB) (store.Store, string) {
	t.Helper()
	url := testenv.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return st, url
}

func claimsFor(user string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"sub": user, "aud": audience, "iss": issuer, "role": "authenticated",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "email": user + "@example.com"}
}

func signHS(t testing.TB, key []byte, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// jwtFor is a valid Supabase access token of user (HS256).
func (e *env) jwtFor(user string) string { return signHS(e.t, []byte(jwtSecret), claimsFor(user)) }

// es256For is a valid Supabase access token of user signed with the JWKS key.
func (e *env) es256For(user string) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, claimsFor(user))
	tok.Header["kid"] = kidEC
	s, err := tok.SignedString(ecdsaKey(e.t))
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// response is what a test looks at.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r *response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v\n%s", err, r.Body)
	}
	return m
}

// problem decodes a problem document, checking its content type and id.
func (r *response) problem(t testing.TB) apiserver.Problem {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q, want application/problem+json; body %s", ct, r.Body)
	}
	var p apiserver.Problem
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("problem: %v\n%s", err, r.Body)
	}
	if p.Status != r.Status || p.RequestID == "" || p.RequestID != r.Header.Get("X-Request-Id") || p.Title == "" {
		t.Errorf("problem %+v does not match status %d / request id %q", p, r.Status, r.Header.Get("X-Request-Id"))
	}
	return p
}

func (r *response) fields() []string {
	var p apiserver.Problem
	_ = json.Unmarshal(r.Body, &p)
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Field)
	}
	return out
}

// req is one request; body is sent as is when []byte or string, else as JSON.
type req struct {
	method, path, token string
	body                any
	header              map[string]string
}

func (e *env) do(t testing.TB, rq req) *response {
	t.Helper()
	var body io.Reader
	ct := ""
	switch b := rq.body.(type) {
	case nil:
	case []byte:
		body = bytes.NewReader(b)
	case string:
		body = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		body, ct = bytes.NewReader(data), "application/json"
	}
	hr, err := http.NewRequest(rq.method, e.URL+rq.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		hr.Header.Set("Content-Type", ct)
	}
	if rq.method == http.MethodPatch && rq.header["Content-Type"] == "" {
		hr.Header.Set("Content-Type", "application/merge-patch+json")
	}
	if rq.token != "" {
		hr.Header.Set("Authorization", "Bearer "+rq.token)
	}
	for k, v := range rq.header {
		hr.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

// must sends rq and fails unless the status is want.
func (e *env) must(t testing.TB, want int, rq req) *response {
	t.Helper()
	r := e.do(t, rq)
	if r.Status != want {
		t.Fatalf("%s %s: status %d, want %d\n%s", rq.method, rq.path, r.Status, want, r.Body)
	}
	return r
}

// project creates a project owned by the token's user.
func (e *env) project(t testing.TB, token, name string) {
	t.Helper()
	e.must(t, http.StatusCreated, req{method: "POST", path: "/api/v1/projects", token: token,
		body: map[string]any{"metadata": map[string]any{"name": name}}})
}

func (e *env) service(t testing.TB, token, project, name string) *response {
	t.Helper()
	return e.must(t, http.StatusCreated, req{method: "POST", path: "/api/v1/projects/" + project + "/services", token: token,
		body: map[string]any{"metadata": map[string]any{"name": name}, "spec": map[string]any{"image": "nginx:1.27"}}})
}

// secret creates a secret with one key.
func (e *env) secret(t testing.TB, token, project, name string) {
	t.Helper()
	e.must(t, http.StatusCreated, req{method: "POST", path: "/api/v1/projects/" + project + "/secrets", token: token,
		body: map[string]any{"metadata": map[string]any{"name": name}, "spec": map[string]any{"data": map[string]any{"password": "hunter2"}}}})
}

// revisions records two revisions of a service, as the controller would.
func (e *env) revisions(t testing.TB, project, service string) {
	t.Helper()
	svc, err := e.Store.Services().Get(context.Background(), api.Key{Project: project, Name: service})
	if err != nil {
		t.Fatal(err)
	}
	for i, hash := range []string{"hash-1", "hash-2"} {
		spec := svc.Spec
		spec.Env = []api.EnvVar{{Name: "N", Value: fmt.Sprint(i)}}
		if _, _, err := e.Store.Revisions().Record(context.Background(), svc.Metadata.UID, api.Revision{TemplateHash: hash, Spec: spec,
			ImageID: "sha256:img", ImageDigest: "docker.io/library/nginx@sha256:" + strings.Repeat("ab", 32)}, 10); err != nil {
			t.Fatal(err)
		}
	}
}

func (e *env) volume(t testing.TB, token, project, name string) {
	t.Helper()
	e.must(t, http.StatusCreated, req{method: "POST", path: "/api/v1/projects/" + project + "/volumes", token: token,
		body: map[string]any{"metadata": map[string]any{"name": name}}})
}

// member adds user to project with role, as the token (an owner or admin).
func (e *env) member(t testing.TB, token, project, user, role string) {
	t.Helper()
	r := e.do(t, req{method: "PUT", path: "/api/v1/projects/" + project + "/members/" + user, token: token, body: map[string]any{"role": role}})
	if r.Status != http.StatusOK && r.Status != http.StatusCreated {
		t.Fatalf("add member %s: %d %s", user, r.Status, r.Body)
	}
}

// apiToken creates an API token for the JWT's user; body may narrow it.
func (e *env) apiToken(t testing.TB, jwtToken string, body map[string]any) (plain, id string) {
	t.Helper()
	if body == nil {
		body = map[string]any{}
	}
	if body["name"] == nil {
		body["name"] = "test"
	}
	m := e.must(t, http.StatusCreated, req{method: "POST", path: "/api/v1/tokens", token: jwtToken, body: body}).JSON(t)
	return m["token"].(string), m["id"].(string)
}

// selfSigned returns a PEM certificate for host, valid now, and its key.
func selfSigned(t testing.TB, host string) (certPEM, keyPEM string) {
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

func fmtAny(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(data)
}
