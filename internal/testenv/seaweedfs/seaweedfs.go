// Package seaweedfs runs a real S3-compatible server for tests: SeaweedFS
// (Apache-2.0; the MinIO server is AGPL), built from the Go module proxy
// into os.UserCacheDir()/panelx-test-bin and reused by later runs. The
// first build takes several minutes; it is done once per machine.
package seaweedfs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/panelx/panelx/internal/testenv"
)

// Version is the one version of SeaweedFS the module proxy serves here.
const Version = "v0.0.0-20261109003541-7506e5f91cd6"

const module = "github.com/seaweedfs/seaweedfs"

// Credentials of the server's one identity.
const (
	AccessKey = "panelx-test"
	SecretKey = "panelx-test-secret-key"
)

// Server is a running SeaweedFS with its S3 gateway on 127.0.0.1.
type Server struct {
	// Endpoint is host:port of the S3 API (plain HTTP).
	Endpoint string
	Dir      string
	cmd      *exec.Cmd
	done     chan struct{}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds (once per machine) and returns the weed binary.
func Binary() (string, error) {
	buildOnce.Do(func() { binPath, buildErr = build() })
	return binPath, buildErr
}

func build() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "panelx-test-bin", "seaweedfs-"+Version)
	bin := filepath.Join(dir, "weed")
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
		return bin, nil
	}
	// Test binaries of several packages may get here at once: one builds,
	// the others wait for it and take its result.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
		return bin, nil
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("the go command is needed to build SeaweedFS: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	// Its go.mod has replace directives, so `go install pkg@version` is
	// refused: download the module and build inside a copy of it.
	out, err := exec.CommandContext(ctx, goBin, "mod", "download", "-json", module+"@"+Version).Output()
	if err != nil {
		return "", fmt.Errorf("download %s: %w", module, err)
	}
	src := jsonField(string(out), "Dir")
	if src == "" {
		return "", fmt.Errorf("download %s: no directory in %s", module, out)
	}
	work, err := os.MkdirTemp("", "seaweedfs-build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	if out, err := exec.CommandContext(ctx, "cp", "-r", src+"/.", work).CombinedOutput(); err != nil {
		return "", fmt.Errorf("copy %s: %v: %s", src, err, out)
	}
	_ = exec.Command("chmod", "-R", "u+w", work).Run()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp := fmt.Sprintf("%s.tmp-%d", bin, os.Getpid())
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", tmp, "./weed")
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build SeaweedFS: %v: %s", err, tail(string(out)))
	}
	return bin, os.Rename(tmp, bin)
}

func jsonField(s, field string) string {
	i := strings.Index(s, `"`+field+`": "`)
	if i < 0 {
		return ""
	}
	rest := s[i+len(field)+5:]
	j := strings.Index(rest, `"`)
	if j < 0 {
		return ""
	}
	return rest[:j]
}

func tail(s string) string {
	if len(s) > 2000 {
		return "…" + s[len(s)-2000:]
	}
	return s
}

// freePort returns a free port whose +10000 (weed's gRPC port) exists.
func freePort(tb testing.TB) int {
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if p < 55000 {
			return p
		}
	}
}

// Start runs a SeaweedFS ("weed mini": master, volume, filer and S3 in one
// process) with the buckets, on loopback only, stopped at the end of the
// test. A build that fails is testenv.Missing (fatal in CI).
func Start(tb testing.TB, buckets ...string) *Server {
	tb.Helper()
	bin, err := Binary()
	if err != nil {
		testenv.Missing(tb, "SeaweedFS (the S3 server of the backup tests): %v", err)
		return nil
	}
	dir := tb.TempDir()
	cfg := filepath.Join(dir, "s3.json")
	ident := fmt.Sprintf(`{"identities":[{"name":"panelx","credentials":[{"accessKey":%q,"secretKey":%q}],"actions":["Admin","Read","Write","List","Tagging"]}]}`, AccessKey, SecretKey)
	if err := os.WriteFile(cfg, []byte(ident), 0o600); err != nil {
		tb.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		tb.Fatal(err)
	}
	// weed mini derives the gRPC ports from the HTTP ones (+10000): pick
	// HTTP ports whose gRPC ports are free too, and try again on a clash.
	var s *Server
	for attempt := 0; attempt < 5 && s == nil; attempt++ {
		ports := map[string]int{}
		for _, k := range []string{"master", "volume", "filer", "s3"} {
			ports[k] = freePort(tb)
		}
		args := []string{"mini", "-dir=" + data, "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
			"-master.port=" + strconv.Itoa(ports["master"]), "-volume.port=" + strconv.Itoa(ports["volume"]),
			"-filer.port=" + strconv.Itoa(ports["filer"]), "-s3.port=" + strconv.Itoa(ports["s3"]),
			"-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false", "-admin.ui=false", "-admin.port.legacy=0",
			"-admin.port=" + strconv.Itoa(freePort(tb)), "-metricsPort=0",
			"-s3.config=" + cfg, "-bucket=" + strings.Join(buckets, ",")}
		cmd := exec.Command(bin, args...)
		logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("weed-%d.log", attempt)))
		if err != nil {
			tb.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr, cmd.Dir = logf, logf, dir
		if err := cmd.Start(); err != nil {
			tb.Fatal(err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
		srv := &Server{Endpoint: "127.0.0.1:" + strconv.Itoa(ports["s3"]), Dir: dir, cmd: cmd, done: done}
		if err := srv.waitReady(buckets, 60*time.Second); err != nil {
			srv.stop()
			log, _ := os.ReadFile(logf.Name())
			tb.Logf("SeaweedFS did not start (attempt %d): %v\n%s", attempt+1, err, tail(string(log)))
			continue
		}
		s = srv
	}
	if s == nil {
		tb.Fatal("SeaweedFS did not start")
	}
	tb.Cleanup(s.stop)
	return s
}

func (s *Server) stop() {
	if s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
	}
	<-s.done
}

// waitReady waits until the S3 API answers and the buckets exist.
func (s *Server) waitReady(buckets []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-s.done:
			return errors.New("weed exited")
		default:
		}
		err := s.probe(buckets)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(300 * time.Millisecond)
	}
}
