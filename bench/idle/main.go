// Command idle measures what `panelx server` costs while nothing happens:
// it starts the server (embedded store, a temporary data directory) with
// -n idle services of internal/testimage's app, waits until every one is
// Ready, and then measures the server process's CPU (/proc/<pid>/stat)
// over -duration, with container metrics off and on (1 s resolution), in
// interleaved rounds: the server is restarted between them on the same
// data, the containers keep running. It also counts the server's
// established Unix-socket connections (the Docker Engine's: the embedded
// store has none). Everything is removed at the end.
//
//	make build && go run ./bench/idle -n 200 -duration 60s -rounds 2
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/panelx/panelx/internal/programtb"
	"github.com/panelx/panelx/internal/testimage"
)

func main() {
	var (
		bin      = flag.String("panelx", "bin/panelx", "the panelx binary (make build)")
		n        = flag.Int("n", 200, "idle services")
		duration = flag.Duration("duration", 60*time.Second, "measurement window")
		rounds   = flag.Int("rounds", 2, "interleaved rounds of metrics off and on")
	)
	flag.Parse()
	tb := &programtb.TB{}
	err := run(tb, *bin, *n, *duration, *rounds)
	tb.RunCleanups()
	if err != nil {
		log.Fatalf("bench/idle: %v", err)
	}
}

func run(tb *programtb.TB, bin string, n int, window time.Duration, rounds int) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	reg := testimage.StartRegistry(tb, testimage.RegistryOptions{})
	ref := reg.Push(tb, "bench/idle:1", testimage.Image(tb, testimage.ImageOptions{Cmd: []string{"-sleep"}}))
	dir, err := os.MkdirTemp("", "panelx-idle-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	srv, err := start(bin, dir, false)
	if err != nil {
		return err
	}
	project := fmt.Sprintf("idle-%d", os.Getpid())
	defer func() { // delete the project, containers and network with it
		if srv == nil { // a restart between rounds failed
			var serr error
			if srv, serr = start(bin, dir, false); serr != nil {
				log.Printf("cleanup: %v", serr)
				return
			}
		}
		defer srv.stop()
		_ = srv.do("DELETE", "/api/v1/projects/"+project, "", nil)
		for i := 0; i < 600 && srv.do("GET", "/api/v1/projects/"+project, "", nil) == nil; i++ {
			time.Sleep(500 * time.Millisecond)
		}
	}()
	if err := srv.do("POST", "/api/v1/projects", fmt.Sprintf(`{"metadata":{"name":%q}}`, project), nil); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		body := fmt.Sprintf(`{"metadata":{"name":"svc-%d"},"spec":{"image":%q}}`, i, ref)
		if err := srv.do("POST", "/api/v1/projects/"+project+"/services", body, nil); err != nil {
			return err
		}
	}
	began := time.Now()
	for {
		var list struct {
			Items []struct {
				Status struct {
					ReadyReplicas int `json:"readyReplicas"`
				} `json:"status"`
			} `json:"items"`
		}
		if err := srv.do("GET", "/api/v1/projects/"+project+"/services?limit=1000", "", &list); err != nil {
			return err
		}
		ready := 0
		for _, s := range list.Items {
			if s.Status.ReadyReplicas > 0 {
				ready++
			}
		}
		if ready == n {
			break
		}
		if time.Since(began) > 10*time.Minute {
			return fmt.Errorf("%d of %d services ready after 10 minutes", ready, n)
		}
		time.Sleep(time.Second)
	}
	log.Printf("%d services ready after %v", n, time.Since(began).Round(time.Second))

	fmt.Printf("PanelX idle: %d Ready services, windows of %v, 2 CPUs\n\n", n, window)
	fmt.Printf("%-30s %6s %14s %22s\n", "container metrics", "round", "CPU % of core", "Unix connections")
	for r := 0; r < rounds; r++ {
		for _, metrics := range []bool{false, true} {
			srv.stop()
			if srv, err = start(bin, dir, metrics); err != nil {
				return err
			}
			time.Sleep(15 * time.Second) // the start's resync and status writes settle
			before, err := procCPU(srv.cmd.Process.Pid)
			if err != nil {
				return err
			}
			t0 := time.Now()
			time.Sleep(window)
			after, err := procCPU(srv.cmd.Process.Pid)
			if err != nil {
				return err
			}
			pct := 100 * (after - before).Seconds() / time.Since(t0).Seconds()
			label := "off"
			if metrics {
				label = "on (1 s resolution)"
			}
			fmt.Printf("%-30s %6d %14.3f %22d\n", label, r+1, pct, unixConns(srv.cmd.Process.Pid))
		}
	}
	return nil
}

type server struct {
	cmd   *exec.Cmd
	base  string
	token string
}

func start(bin, dir string, metrics bool) (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "server")
	cmd.Env = append(os.Environ(), "PANELX_DATABASE_URL=", "PANELX_DATA_DIR="+dir, "PANELX_LISTEN="+addr,
		"PANELX_LOG_LEVEL=warn", "PANELX_CONTAINER_METRICS="+strconv.FormatBool(metrics), "PANELX_METRICS_LISTEN=")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s := &server{cmd: cmd, base: "http://" + addr}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(s.base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				tok, err := os.ReadFile(filepath.Join(dir, "admin-token"))
				if err != nil {
					s.stop()
					return nil, err
				}
				s.token = strings.TrimSpace(string(tok))
				return s, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.stop()
	return nil, errors.New("the server did not become ready")
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	_ = s.cmd.Wait()
}

func (s *server) do(method, path, body string, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rq, _ := http.NewRequestWithContext(ctx, method, s.base+path, bytes.NewBufferString(body))
	rq.Header.Set("Authorization", "Bearer "+s.token)
	rq.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(rq)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// procCPU is utime+stime of a process (all threads).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(fields) < 13 {
		return 0, errors.New("short /proc/<pid>/stat")
	}
	u, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(u+st) * time.Second / 100, nil // USER_HZ
}

// unixConns counts the process's connected Unix stream sockets: its
// socket inodes that /proc/net/unix lists as connected (state 03).
func unixConns(pid int) int {
	fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	mine := map[string]bool{}
	for _, fd := range fds {
		if l, err := os.Readlink(fd); err == nil && strings.HasPrefix(l, "socket:[") {
			mine[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	data, _ := os.ReadFile("/proc/net/unix")
	n := 0
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) >= 7 && f[4] == "0001" && f[5] == "03" && mine[f[6]] {
			n++
		}
	}
	return n
}
