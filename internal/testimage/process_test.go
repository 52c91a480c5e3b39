package testimage

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests run the test program as a local process: they check the
// behaviour that containers rely on without needing Docker.

func TestBinaryEcho(t *testing.T) {
	out, err := exec.Command(Binary(t), "-echo", "a", "b", "c").Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "a b c\n" {
		t.Errorf("-echo printed %q", out)
	}
}

func TestBinaryServeCheckAndSIGTERM(t *testing.T) {
	p := startApp(t, "LOG_EVERY=50ms", "APP_VERSION=9")
	p.waitFor(t, "stdout", "started version=9")
	p.waitFor(t, "stderr", "stderr-line")
	p.waitFor(t, "stdout", "tick 2")

	if err := p.check(); err != nil {
		t.Errorf("-check against a healthy server: %v", err)
	}
	p.post(t, "/log?stream=stderr&line=hello+there")
	p.waitFor(t, "stderr", "hello there")

	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(t, 5*time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v, want code 0", err)
	}
	t.Logf("exited %v after SIGTERM", time.Since(start).Round(time.Millisecond))

	if err := p.check(); err == nil {
		t.Error("-check succeeded with no server running")
	}
}

func TestBinaryExitCode(t *testing.T) {
	p := startApp(t)
	p.waitFor(t, "stdout", "started")
	p.post(t, "/exit?code=3")
	err := p.wait(t, 5*time.Second)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("exit = %v, want code 3", err)
	}
}

func TestBinarySleepStopsOnSIGTERM(t *testing.T) {
	cmd := exec.Command(Binary(t), "-sleep")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	time.Sleep(200 * time.Millisecond) // let it install the signal handler
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("-sleep after SIGTERM: %v, want code 0", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("-sleep did not exit after SIGTERM")
	}
}

// app is a running test program with its output captured line by line.
type app struct {
	cmd  *exec.Cmd
	port string
	done chan error

	mu    sync.Mutex
	lines map[string][]string // by stream
}

func startApp(t *testing.T, env ...string) *app {
	t.Helper()
	p := &app{port: freePort(t), done: make(chan error, 1), lines: map[string][]string{}}
	p.cmd = exec.Command(Binary(t))
	p.cmd.Env = append([]string{"PORT=" + p.port, "DATA_DIR=" + t.TempDir()}, env...)
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var readers sync.WaitGroup
	readers.Add(2)
	go p.collect(&readers, "stdout", stdout)
	go p.collect(&readers, "stderr", stderr)
	// Wait must follow the last read of the pipes.
	go func() { readers.Wait(); p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

func (p *app) collect(wg *sync.WaitGroup, stream string, r io.Reader) {
	defer wg.Done()
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		p.mu.Lock()
		p.lines[stream] = append(p.lines[stream], sc.Text())
		p.mu.Unlock()
	}
}

func (p *app) waitFor(t *testing.T, stream, prefix string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		lines := p.output(stream)
		for _, l := range lines {
			if strings.HasPrefix(l, prefix) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s line starting with %q; got %q", stream, prefix, lines)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *app) output(stream string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines[stream]...)
}

func (p *app) post(t *testing.T, path string) {
	t.Helper()
	resp, err := http.Post("http://127.0.0.1:"+p.port+path, "text/plain", nil)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("POST %s: %s", path, resp.Status)
	}
}

// check runs "testapp -check" against the app's port.
func (p *app) check() error {
	cmd := exec.Command(p.cmd.Path, "-check")
	cmd.Env = []string{"PORT=" + p.port}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: %s", err, stderr.String())
	}
	return nil
}

func (p *app) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		return err
	case <-time.After(timeout):
		t.Fatalf("process still running after %v", timeout)
		return nil
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}
