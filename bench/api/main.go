// Command api benchmarks PanelX's REST API end to end against its own
// stack: it creates a fresh PostgreSQL database, starts `panelx server`
// (API only) on it and another on its embedded SQLite, each with a project,
// a service and an API token, and bench/peer — chi + pgx serving one row by
// primary key from the same database — and measures with wrk (a Debian
// package: apt-get install -y wrk), in interleaved rounds, an authenticated
// GET of the service (API token, HS256 JWT) against the peer's GET, at each
// connection count; then a POST of a new service per request. It prints
// medians and the ratio to the peer. Everything runs on this machine.
//
//	make build && go run ./bench/api -duration 10s -connections 16,64 -rounds 3
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
	"sort"
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
		connections = flag.String("connections", "16,64", "wrk connections, comma-separated: each is a run")
		rounds      = flag.Int("rounds", 3, "interleaved rounds (medians are reported)")
		threads     = flag.Int("threads", runtime.NumCPU(), "wrk threads")
		script      = flag.String("post-script", "bench/api/post.lua", "wrk script for the POST run")
		params      = flag.String("database-params", "", "appended to the server's database URL, e.g. &pool_max_conns=16")
	)
	flag.Parse()
	var conns []int
	for _, c := range strings.Split(*connections, ",") {
		var n int
		if _, err := fmt.Sscanf(strings.TrimSpace(c), "%d", &n); err != nil || n < 1 {
			fmt.Fprintln(os.Stderr, "bench/api: -connections: want numbers such as 16,64")
			os.Exit(2)
		}
		conns = append(conns, n)
	}
	if err := run(*bin, *adminURL, *script, *params, *duration, conns, *threads, *rounds); err != nil {
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

func run(bin, adminURL, script, dbParams string, duration time.Duration, connections []int, threads, rounds int) error {
	ctx := context.Background()
	if _, err := exec.LookPath("wrk"); err != nil {
		return errors.New("wrk not found: apt-get install -y wrk")
	}
	dbURL, drop, err := createDatabase(ctx, adminURL)
	if err != nil {
		return err
	}
	defer drop()

	// PanelX on PostgreSQL, PanelX on its embedded SQLite, and the peer on
	// the same PostgreSQL database as the first.
	pg, err := startPanelx(bin, []string{"PANELX_DATABASE_URL=" + dbURL + dbParams}, []string{"--database-url", dbURL})
	if err != nil {
		return err
	}
	defer pg.stop()
	lite, err := startPanelx(bin, []string{"PANELX_DATABASE_URL=", "PANELX_DATA_DIR=" + pg.tmp + "/lite"},
		[]string{"--database-url", "", "--data-dir", pg.tmp + "/lite"})
	if err != nil {
		return err
	}
	defer lite.stop()
	peer, err := startPeer(dbURL)
	if err != nil {
		return err
	}
	defer peer.stop()
	var uid string
	if err := withConn(ctx, dbURL, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT uid::text FROM panelx.services WHERE project = 'bench' AND name = 'web'`).Scan(&uid)
	}); err != nil {
		return fmt.Errorf("find the service's row: %w", err)
	}
	jwtToken, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "bench", "aud": "authenticated", "role": "authenticated", "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(),
	}).SignedString([]byte(jwtSecret))
	if err != nil {
		return err
	}

	fmt.Printf("PanelX API benchmark: %d CPUs, wrk -t%d -d%s, %d interleaved round(s); servers and load generator on this machine\n\n",
		runtime.NumCPU(), threads, duration, rounds)
	getPath := "/api/v1/projects/bench/services/web"
	type target struct {
		name string
		args []string
	}
	targets := []target{
		{"chi+pgx peer: GET one row by primary key", []string{peer.base + "/rows/" + uid}},
		{"PanelX PostgreSQL: GET one service (API token)", []string{"-H", "Authorization: Bearer " + pg.token, pg.base + getPath}},
		{"PanelX PostgreSQL: GET one service (JWT HS256)", []string{"-H", "Authorization: Bearer " + jwtToken, pg.base + getPath}},
		{"PanelX SQLite: GET one service (API token)", []string{"-H", "Authorization: Bearer " + lite.token, lite.base + getPath}},
	}
	type result struct{ rps, p50, p99 []float64 }
	results := map[string]*result{}
	for round := 1; round <= rounds; round++ {
		for _, c := range connections {
			for _, t := range targets {
				res, err := runWrk(threads, c, duration, t.args)
				if err != nil {
					return err
				}
				if res["errors"] != "0" {
					return fmt.Errorf("%s: errors: %s", t.name, res["errors"])
				}
				k := fmt.Sprintf("%s|%d", t.name, c)
				if results[k] == nil {
					results[k] = &result{}
				}
				r := results[k]
				r.rps = append(r.rps, atof(res["rps"]))
				r.p50 = append(r.p50, ms(res["p50"]))
				r.p99 = append(r.p99, ms(res["p99"]))
			}
		}
	}
	fmt.Printf("%-50s %4s %12s %9s %9s %10s\n", "run (medians of the rounds)", "-c", "requests/s", "p50 ms", "p99 ms", "vs peer")
	for _, c := range connections {
		peerRPS := median(results[fmt.Sprintf("%s|%d", targets[0].name, c)].rps)
		for _, t := range targets {
			r := results[fmt.Sprintf("%s|%d", t.name, c)]
			fmt.Printf("%-50s %4d %12.0f %9.2f %9.2f %10.2f\n", t.name, c, median(r.rps), median(r.p50), median(r.p99), median(r.rps)/peerRPS)
		}
	}
	// Writes (PostgreSQL only): a POST of a new service per request.
	for _, c := range connections[:1] {
		res, err := runWrk(threads, c, duration, []string{"-H", "Authorization: Bearer " + pg.token, "-s", script, pg.base + "/api/v1/projects/bench/services"})
		if err != nil {
			return err
		}
		fmt.Printf("%-50s %4d %12s %9s %9s\n", "PanelX PostgreSQL: POST one service (API token)", c, res["rps"], res["p50"], res["p99"])
	}
	return nil
}

// panelx is a running `panelx server` (API only) with a project "bench",
// a service "web" and an API token.
type panelx struct {
	base, token, tmp string
	cmd              *exec.Cmd
}

func (p *panelx) stop() { _ = p.cmd.Process.Signal(os.Interrupt); _ = p.cmd.Wait() }

func startPanelx(bin string, env, dbArgs []string) (*panelx, error) {
	tmp, err := os.MkdirTemp("", "panelx-bench-*")
	if err != nil {
		return nil, err
	}
	fixed := func(args ...string) []string {
		var out []string
		for i := 0; i < len(dbArgs); i += 2 {
			if dbArgs[i+1] != "" {
				out = append(out, dbArgs[i], dbArgs[i+1])
			}
		}
		return append(args, out...)
	}
	if out, err := exec.Command(bin, fixed("migrate")...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("migrate: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, fixed("token", "create", "--user", "bench", "--name", "bench")...).Output()
	if err != nil {
		return nil, fmt.Errorf("token create: %w", err)
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	srv := exec.Command(bin, "server")
	srv.Env = append(os.Environ(), append(env, "PANELX_LISTEN="+addr, "PANELX_CONTROLLER=false", "PANELX_CONTAINER_METRICS=false",
		"PANELX_LOG_FORMAT=json", "PANELX_JWT_SECRET="+jwtSecret, "PANELX_BOOTSTRAP_USER=", "PANELX_BOOTSTRAP_EDGE_TOKEN=false")...)
	srv.Stdout, srv.Stderr = io.Discard, io.Discard // the access log is written (and thrown away), as in production
	if err := srv.Start(); err != nil {
		return nil, err
	}
	p := &panelx{base: "http://" + addr, token: strings.TrimSpace(string(out)), tmp: tmp, cmd: srv}
	if err := waitReady(p.base); err != nil {
		p.stop()
		return nil, err
	}
	for _, c := range []struct{ path, body string }{
		{"/api/v1/projects", `{"metadata":{"name":"bench"}}`},
		{"/api/v1/projects/bench/services", `{"metadata":{"name":"web"},"spec":{"image":"nginx:1.27","ports":[{"containerPort":80}]}}`},
	} {
		if err := post(p.base+c.path, p.token, c.body); err != nil {
			p.stop()
			return nil, err
		}
	}
	return p, nil
}

type peerProc struct {
	base string
	cmd  *exec.Cmd
	dir  string
}

func (p *peerProc) stop() { _ = p.cmd.Process.Kill(); _ = p.cmd.Wait(); _ = os.RemoveAll(p.dir) }

// startPeer builds and starts bench/peer on the same database.
func startPeer(dbURL string) (*peerProc, error) {
	dir, err := os.MkdirTemp("", "panelx-peer-*")
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(dir, "peer")
	if out, err := exec.Command("go", "build", "-o", bin, "./bench/peer").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build bench/peer: %v\n%s", err, out)
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-database-url", dbURL, "-listen", addr)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &peerProc{base: "http://" + addr, cmd: cmd, dir: dir}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return p, nil
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, errors.New("the peer did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func runWrk(threads, connections int, d time.Duration, target []string) (map[string]string, error) {
	args := append([]string{"-t", fmt.Sprint(threads), "-c", fmt.Sprint(connections), "-d", d.String(), "--latency"}, target...)
	out, err := exec.Command("wrk", args...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	if os.Getenv("BENCH_VERBOSE") != "" {
		fmt.Println(string(out))
	}
	return parseWrk(string(out)), nil
}

func withConn(ctx context.Context, dbURL string, fn func(*pgx.Conn) error) error {
	c, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	return fn(c)
}

func atof(s string) float64 {
	var f float64
	_, _ = fmt.Sscanf(s, "%g", &f)
	return f
}

// ms converts wrk's latency ("850.00us", "1.23ms", "1.02s") to milliseconds.
func ms(s string) float64 {
	for _, u := range []struct {
		suffix string
		f      float64
	}{{"us", 0.001}, {"ms", 1}, {"s", 1000}} {
		if strings.HasSuffix(s, u.suffix) {
			return atof(strings.TrimSuffix(s, u.suffix)) * u.f
		}
	}
	return atof(s)
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
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
