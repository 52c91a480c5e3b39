// Command api benchmarks PanelX's REST API end to end: it creates a fresh
// PostgreSQL database, runs `panelx migrate`, mints an API token with
// `panelx token create`, starts `panelx server` (API only) on 127.0.0.1,
// creates a project and a service, and measures with wrk (a Debian
// package: apt-get install -y wrk) an authenticated GET of the service and
// a POST of a new service per request, printing requests per second and
// the 99th percentile latency. The load generator runs on the same machine.
//
//	make build && go run ./bench/api -duration 30s -connections 32
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"
)

func main() {
	var (
		bin         = flag.String("panelx", "bin/panelx", "the panelx binary (make build)")
		adminURL    = flag.String("database-url", envOr("PANELX_TEST_DATABASE_URL", "postgres://panelx:panelx@127.0.0.1:5432/postgres?sslmode=disable"), "a PostgreSQL role that may CREATE DATABASE")
		duration    = flag.Duration("duration", 30*time.Second, "length of each wrk run")
		connections = flag.Int("connections", 32, "wrk connections")
		threads     = flag.Int("threads", runtime.NumCPU(), "wrk threads")
		script      = flag.String("post-script", "bench/api/post.lua", "wrk script for the POST run")
		params      = flag.String("database-params", "", "appended to the server's database URL, e.g. &pool_max_conns=16")
	)
	flag.Parse()
	if err := run(*bin, *adminURL, *script, *params, *duration, *connections, *threads); err != nil {
		fmt.Fprintln(os.Stderr, "bench/api:", err)
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

const jwtSecret = "bench-jwt-secret-of-at-least-thirty-two-bytes"

func run(bin, adminURL, script, dbParams string, duration time.Duration, connections, threads int) error {
	ctx := context.Background()
	if _, err := exec.LookPath("wrk"); err != nil {
		return errors.New("wrk not found: apt-get install -y wrk")
	}
	dbURL, drop, err := createDatabase(ctx, adminURL)
	if err != nil {
		return err
	}
	defer drop()
	if out, err := exec.Command(bin, "migrate", "--database-url", dbURL).CombinedOutput(); err != nil {
		return fmt.Errorf("migrate: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "token", "create", "--user", "bench", "--name", "bench", "--database-url", dbURL).Output()
	if err != nil {
		return fmt.Errorf("token create: %w", err)
	}
	token := strings.TrimSpace(string(out))

	addr, err := freeAddr()
	if err != nil {
		return err
	}
	srv := exec.Command(bin, "server")
	srv.Env = append(os.Environ(), "PANELX_DATABASE_URL="+dbURL+dbParams, "PANELX_LISTEN="+addr, "PANELX_CONTROLLER=false",
		"PANELX_LOG_FORMAT=json", "PANELX_JWT_SECRET="+jwtSecret)
	srv.Stdout, srv.Stderr = io.Discard, io.Discard // the access log is written (and thrown away), as in production
	if err := srv.Start(); err != nil {
		return err
	}
	defer func() { _ = srv.Process.Signal(os.Interrupt); _ = srv.Wait() }()
	base := "http://" + addr
	if err := waitReady(base); err != nil {
		return err
	}
	for _, c := range []struct{ path, body string }{
		{"/api/v1/projects", `{"metadata":{"name":"bench"}}`},
		{"/api/v1/projects/bench/services", `{"metadata":{"name":"web"},"spec":{"image":"nginx:1.27","ports":[{"containerPort":80}]}}`},
	} {
		if err := post(base+c.path, token, c.body); err != nil {
			return err
		}
	}
	jwtToken, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "bench", "aud": "authenticated", "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(),
	}).SignedString([]byte(jwtSecret))
	if err != nil {
		return err
	}

	fmt.Printf("PanelX API benchmark: %d CPUs, wrk -t%d -c%d -d%s, server and load generator on this machine\n\n", runtime.NumCPU(), threads, connections, duration)
	fmt.Printf("%-44s %12s %10s %10s %8s\n", "run", "requests/s", "p50", "p99", "errors")
	getURL := base + "/api/v1/projects/bench/services/web"
	runs := []struct {
		name string
		args []string
	}{
		{"GET one service (API token)", []string{"-H", "Authorization: Bearer " + token, getURL}},
		{"GET one service (Supabase JWT, HS256)", []string{"-H", "Authorization: Bearer " + jwtToken, getURL}},
		{"POST one service (API token)", []string{"-H", "Authorization: Bearer " + token, "-s", script, base + "/api/v1/projects/bench/services"}},
	}
	for _, r := range runs {
		args := append([]string{"-t", fmt.Sprint(threads), "-c", fmt.Sprint(connections), "-d", duration.String(), "--latency"}, r.args...)
		out, err := exec.Command("wrk", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("wrk: %v\n%s", err, out)
		}
		res := parseWrk(string(out))
		fmt.Printf("%-44s %12s %10s %10s %8s\n", r.name, res["rps"], res["p50"], res["p99"], res["errors"])
		if os.Getenv("BENCH_VERBOSE") != "" {
			fmt.Println(string(out))
		}
	}
	return nil
}

var (
	rpsRe    = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	p50Re    = regexp.MustCompile(`\s50%\s+([0-9.]+\w+)`)
	p99Re    = regexp.MustCompile(`\s99%\s+([0-9.]+\w+)`)
	non2xxRe = regexp.MustCompile(`Non-2xx or 3xx responses:\s+(\d+)`)
	sockRe   = regexp.MustCompile(`Socket errors:.*`)
)

func parseWrk(out string) map[string]string {
	res := map[string]string{"errors": "0"}
	for k, re := range map[string]*regexp.Regexp{"rps": rpsRe, "p50": p50Re, "p99": p99Re, "errors": non2xxRe} {
		if m := re.FindStringSubmatch(out); m != nil {
			res[k] = m[1]
		}
	}
	if m := sockRe.FindString(out); m != "" {
		res["errors"] += " (" + m + ")"
	}
	return res
}

func createDatabase(ctx context.Context, adminURL string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", nil, fmt.Errorf("connect to %s: %w", redact(adminURL), err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "panelx_bench_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, err
	}
	u, err := url.Parse(adminURL)
	if err != nil {
		return "", nil, err
	}
	u.Path = "/" + name
	drop := func() {
		c, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	}
	return u.String(), drop, nil
}

func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return "the database"
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func waitReady(base string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("the server did not become ready")
}

func post(u, token, body string) error {
	rq, _ := http.NewRequest(http.MethodPost, u, bytes.NewBufferString(body))
	rq.Header.Set("Authorization", "Bearer "+token)
	rq.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(rq)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("POST %s: %d %s", filepath.Base(u), resp.StatusCode, b)
	}
	return nil
}
