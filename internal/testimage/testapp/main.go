// Command testapp is the program inside the images of package testimage: a
// small HTTP server whose behaviour tests steer through environment variables
// and requests. It uses only the standard library so that it builds as a
// static binary (CGO_ENABLED=0) and runs in a FROM-scratch image, which has no
// shell: every helper a test needs (health check, sleep, echo) is a mode of
// this one binary.
//
// Modes:
//
//	testapp            serve HTTP on $PORT (default 8080)
//	testapp -check     GET http://127.0.0.1:$PORT/healthz, exit 0 if 200, else 1
//	testapp -sleep     block until SIGTERM/SIGINT, serve nothing
//	testapp -stubborn  block, ignoring SIGTERM/SIGINT (a stop waits out its grace)
//	testapp -echo a b  print "a b" and exit 0
//	testapp -copy a b  copy file a to file b (a stand-in for pg_dump in backup hooks)
//
// Environment of the server:
//
//	PORT            listen port (default 8080)
//	APP_VERSION     reported by GET / and printed at start
//	UNHEALTHY_FILE  while this file exists, /healthz answers 500
//	DATA_DIR        root of /files/ (default /data)
//	LOG_EVERY       a duration; print "tick N" to stdout that often
//
// Endpoints:
//
//	GET  /                   {"env": {...}, "hostname": ..., "version": ...}
//	GET  /env/{NAME}         the value of NAME as text (404 if unset)
//	GET  /healthz            200 "ok", or 500 while $UNHEALTHY_FILE exists
//	PUT  /files/{path}       write the body to $DATA_DIR/path
//	GET  /files/{path}       read $DATA_DIR/path
//	POST /burn?seconds=N     burn one CPU for N seconds (in the background)
//	POST /exit?code=N        exit the process with code N
//	POST /log?stream=stdout|stderr&line=...  print line on that stream
//	GET  /fetch?url=http://...  GET the URL from inside and relay the answer
//
// SIGTERM and SIGINT make the process exit promptly with code 0. That needs
// an explicit handler: as PID 1 of a container, the default action of
// SIGTERM does not apply and the process would only die on SIGKILL.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	check := flag.Bool("check", false, "GET /healthz of the local server and exit 0 if healthy, 1 otherwise")
	sleep := flag.Bool("sleep", false, "block until SIGTERM or SIGINT, serving nothing")
	echo := flag.Bool("echo", false, "print the arguments and exit")
	stubborn := flag.Bool("stubborn", false, "block, ignoring SIGTERM and SIGINT: only SIGKILL ends it")
	copyFile := flag.Bool("copy", false, "copy the file named by the first argument to the second, and exit")
	flag.Parse()

	switch {
	case *copyFile:
		os.Exit(runCopy(flag.Args()))
	case *check:
		os.Exit(runCheck())
	case *echo:
		fmt.Println(strings.Join(flag.Args(), " "))
	case *stubborn:
		signal.Ignore(syscall.SIGTERM, syscall.SIGINT)
		for { // (an empty select would be a deadlock to the runtime)
			time.Sleep(time.Hour)
		}
	case *sleep:
		ctx, stop := signalContext()
		defer stop()
		<-ctx.Done()
	default:
		os.Exit(serve())
	}
}

// signalContext is canceled by SIGTERM or SIGINT.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func port() string { return envOr("PORT", "8080") }

// runCheck is the health check command: images built FROM scratch have no
// curl or shell, so the binary checks itself.
func runCheck() int {
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get("http://" + net.JoinHostPort("127.0.0.1", port()) + "/healthz")
	if err != nil {
		fmt.Fprintf(os.Stderr, "check: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(os.Stderr, "check: /healthz answered %s\n", resp.Status)
		return 1
	}
	return 0
}

// serve runs the HTTP server until a signal arrives and returns the exit code.
func serve() int {
	ctx, stop := signalContext()
	defer stop()

	every, err := logInterval()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Fprintf(os.Stdout, "started version=%s\n", os.Getenv("APP_VERSION"))
	fmt.Fprintln(os.Stderr, "stderr-line")
	if every > 0 {
		go tick(ctx, every)
	}

	// LISTEN_DELAY: a workload that takes a while before it serves (the
	// readiness tests).
	if d, err := time.ParseDuration(os.Getenv("LISTEN_DELAY")); err == nil && d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return 0
		}
	}
	ln, err := net.Listen("tcp", ":"+port())
	if err != nil {
		fmt.Fprintf(os.Stderr, "listen: %v\n", err)
		return 1
	}
	srv := &http.Server{Handler: newHandler(envOr("DATA_DIR", "/data")), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	select {
	case err := <-errc:
		fmt.Fprintf(os.Stderr, "serve: %v\n", err)
		return 1
	case <-ctx.Done():
	}
	// Give in-flight requests a moment, but never hold up a stop for long.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	fmt.Fprintln(os.Stdout, "stopped")
	return 0
}

func logInterval() (time.Duration, error) {
	v := os.Getenv("LOG_EVERY")
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("LOG_EVERY=%q: want a positive duration such as 200ms", v)
	}
	return d, nil
}

func tick(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fmt.Fprintf(os.Stdout, "tick %d\n", n)
		}
	}
}

// newHandler returns the routes of the server; dataDir is the root of /files/.
func newHandler(dataDir string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", handleInfo)
	mux.HandleFunc("GET /env/{name}", handleEnv)
	mux.HandleFunc("GET /healthz", handleHealth)
	files := fileHandler{dir: dataDir}
	mux.HandleFunc("PUT /files/{path...}", files.put)
	mux.HandleFunc("GET /files/{path...}", files.get)
	mux.HandleFunc("POST /burn", handleBurn)
	mux.HandleFunc("POST /exit", handleExit)
	mux.HandleFunc("POST /log", handleLog)
	mux.HandleFunc("GET /fetch", handleFetch)
	return mux
}

// info is the answer of GET /.
type info struct {
	Env      map[string]string `json:"env"`
	Hostname string            `json:"hostname"`
	Version  string            `json:"version"`
}

func handleInfo(w http.ResponseWriter, _ *http.Request) {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	host, _ := os.Hostname()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(info{Env: env, Hostname: host, Version: os.Getenv("APP_VERSION")})
}

func handleEnv(w http.ResponseWriter, r *http.Request) {
	v, ok := os.LookupEnv(r.PathValue("name"))
	if !ok {
		http.Error(w, "not set", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, v)
}

// handleFetch GETs ?url=http://… from inside the container and relays the
// answer, so tests can show services reaching each other by name.
func handleFetch(w http.ResponseWriter, r *http.Request) {
	target := r.URL.Query().Get("url")
	if !strings.HasPrefix(target, "http://") {
		http.Error(w, "url must be http://…", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, io.LimitReader(resp.Body, 1<<20))
}

func handleHealth(w http.ResponseWriter, _ *http.Request) {
	if f := os.Getenv("UNHEALTHY_FILE"); f != "" {
		if _, err := os.Stat(f); err == nil {
			http.Error(w, "unhealthy", http.StatusInternalServerError)
			return
		}
	}
	_, _ = io.WriteString(w, "ok\n")
}

// fileHandler reads and writes files under dir. os.Root confines the paths,
// symlinks included, so a request cannot reach outside dir.
type fileHandler struct{ dir string }

func (h fileHandler) root() (*os.Root, error) {
	if err := os.MkdirAll(h.dir, 0o755); err != nil {
		return nil, err
	}
	return os.OpenRoot(h.dir)
}

func (h fileHandler) put(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("path")
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	root, err := h.root()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer root.Close()
	if dir := parentDir(name); dir != "" {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			http.Error(w, err.Error(), fileErrorStatus(err))
			return
		}
	}
	if err := root.WriteFile(name, body, 0o644); err != nil {
		http.Error(w, err.Error(), fileErrorStatus(err))
		return
	}
	w.WriteHeader(http.StatusCreated)
}

func (h fileHandler) get(w http.ResponseWriter, r *http.Request) {
	root, err := h.root()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer root.Close()
	b, err := root.ReadFile(r.PathValue("path"))
	if err != nil {
		http.Error(w, err.Error(), fileErrorStatus(err))
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(b)
}

func parentDir(name string) string {
	i := strings.LastIndex(name, "/")
	if i < 0 {
		return ""
	}
	return name[:i]
}

// fileErrorStatus maps a file error to an HTTP status. Anything else, such
// as a path escaping DATA_DIR or a read-only volume, is a 500 whose body
// names the cause.
func fileErrorStatus(err error) int {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return http.StatusNotFound
	case errors.Is(err, fs.ErrPermission):
		return http.StatusForbidden
	default:
		return http.StatusInternalServerError
	}
}

// handleBurn answers at once and burns in the background, so a test can
// watch CPU usage (docker stats, cgroup limits) while the burn runs.
func handleBurn(w http.ResponseWriter, r *http.Request) {
	secs, err := strconv.ParseFloat(r.URL.Query().Get("seconds"), 64)
	if err != nil || secs < 0 {
		http.Error(w, "seconds: want a non-negative number", http.StatusBadRequest)
		return
	}
	go burn(time.Duration(secs * float64(time.Second)))
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprintf(w, "burning for %gs\n", secs)
}

func burn(d time.Duration) {
	deadline := time.Now().Add(d)
	x := uint64(1)
	for time.Now().Before(deadline) {
		for range 10000 {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	_ = x
}

// handleExit sends a complete response before exiting, so the client sees
// success rather than a reset connection.
func handleExit(w http.ResponseWriter, r *http.Request) {
	code, err := strconv.Atoi(r.URL.Query().Get("code"))
	if err != nil || code < 0 || code > 255 {
		http.Error(w, "code: want an integer 0..255", http.StatusBadRequest)
		return
	}
	msg := fmt.Sprintf("exiting with code %d\n", code)
	w.Header().Set("Content-Length", strconv.Itoa(len(msg)))
	w.Header().Set("Connection", "close")
	_, _ = io.WriteString(w, msg)
	_ = http.NewResponseController(w).Flush()
	fmt.Fprintf(os.Stdout, "exit code=%d\n", code)
	os.Exit(code)
}

func handleLog(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var out io.Writer
	switch q.Get("stream") {
	case "", "stdout":
		out = os.Stdout
	case "stderr":
		out = os.Stderr
	default:
		http.Error(w, "stream: want stdout or stderr", http.StatusBadRequest)
		return
	}
	fmt.Fprintln(out, q.Get("line"))
	w.WriteHeader(http.StatusNoContent)
}

// runCopy copies a file, as a dump tool writes a consistent copy of its
// database into the volume before a backup.
func runCopy(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: testapp -copy SRC DST")
		return 2
	}
	data, err := os.ReadFile(args[0])
	if err == nil {
		err = os.WriteFile(args[1], data, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("copied %d bytes\n", len(data))
	return 0
}
