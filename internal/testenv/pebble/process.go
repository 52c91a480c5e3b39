package pebble

import (
	"bytes"
	"context"
	"os/exec"
	"sync"
	"time"
)

// process is one child process (pebble or pebble-challtestsrv) whose
// combined stdout and stderr are kept in memory.
type process struct {
	name   string
	cmd    *exec.Cmd
	cancel context.CancelFunc
	out    *logBuffer
	done   chan struct{}
	err    error // the result of Wait; read only after done is closed
}

func startProcess(name, path string, args, env []string, dir string) (*process, error) {
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, path, args...) // cancel kills the process
	cmd.Env = env
	cmd.Dir = dir
	out := &logBuffer{}
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, err
	}
	p := &process{name: name, cmd: cmd, cancel: cancel, out: out, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitErr returns the result of Wait; call it only once exited is true.
func (p *process) exitErr() error {
	<-p.done
	return p.err
}

// stop kills the process and waits for it (and its output) to end.
func (p *process) stop() {
	if p == nil {
		return
	}
	p.cancel()
	<-p.done
}

// logBuffer is a bytes.Buffer safe for the concurrent writes of exec.Cmd's
// copying goroutines and the reads of the test.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
