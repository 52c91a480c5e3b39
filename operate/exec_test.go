package operate

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// term collects a session's output in the background.
type term struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	done chan struct{}
}

func startTerm(s *Session) *term {
	tm := &term{done: make(chan struct{})}
	go func() {
		defer close(tm.done)
		b := make([]byte, 4096)
		for {
			n, err := s.Output().Read(b)
			tm.mu.Lock()
			tm.buf.Write(b[:n])
			tm.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return tm
}

func (tm *term) String() string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.buf.String()
}

// waitOutput waits until the output contains want.
func (tm *term) waitOutput(t *testing.T, want string) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(tm.String(), want) {
			return
		}
	}
	t.Fatalf("output %q does not contain %q", tm.String(), want)
}

// run executes cmd, feeding input once ready appears, and returns the
// output and exit code.
func runExec(t *testing.T, e *dockerEnv, target ExecTarget, opts ExecOptions, ready, input string) (string, int, *Session) {
	t.Helper()
	s, err := Exec(t.Context(), e.cli, target, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tm := startTerm(s)
	if ready != "" {
		tm.waitOutput(t, ready)
	}
	if input != "" {
		if _, err := io.WriteString(s.Stdin(), input); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	code, err := s.Wait(ctx)
	if err != nil {
		t.Fatalf("wait: %v (output %q)", err, tm.String())
	}
	select {
	case <-tm.done:
	case <-time.After(5 * time.Second):
		t.Fatal("output did not end after the exit")
	}
	return tm.String(), code, s
}

func TestExec(t *testing.T) {
	e := newDockerEnv(t)
	tool := e.toolImage("marker", "-sleep")
	bare := e.image([]string{"-sleep"})
	_, shellName := e.replica("shell", 0, tool, replicaOpts{})
	e.replica("bare", 0, bare, replicaOpts{})
	e.replica("stopped", 0, bare, replicaOpts{noStart: true})
	shell := ExecTarget{Instance: e.instance, Project: e.project, Service: "shell"}

	t.Run("echo: output and exit code", func(t *testing.T) {
		out, code, s := runExec(t, e, shell, ExecOptions{Cmd: []string{"/testapp", "-echo", "hello", "world"}}, "", "")
		if code != 0 || !strings.Contains(out, "hello world\r\n") {
			t.Fatalf("exit %d, output %q", code, out)
		}
		r := s.Record()
		if r.Container != shellName || r.ExecID == "" || r.ContainerID == "" || r.ExitCode != 0 ||
			r.Ended.Before(r.Started) || r.Duration() <= 0 || !slices.Equal(r.Cmd, []string{"/testapp", "-echo", "hello", "world"}) {
			t.Errorf("record = %+v", r)
		}
	})

	t.Run("a failing command's exit code", func(t *testing.T) {
		if _, code, s := runExec(t, e, shell, ExecOptions{Cmd: []string{"/tool", "exit", "3"}}, "", ""); code != 3 || s.Record().ExitCode != 3 {
			t.Fatalf("exit %d, record %+v", code, s.Record())
		}
	})

	t.Run("stdin reaches the process", func(t *testing.T) {
		// The terminal echoes the input, then the program answers.
		out, code, _ := runExec(t, e, shell, ExecOptions{Cmd: []string{"/tool", "cat1"}}, "", "ping\n")
		if code != 0 || !strings.Contains(out, "got: ping") {
			t.Fatalf("exit %d, output %q", code, out)
		}
	})

	t.Run("sizing a command that has already exited", func(t *testing.T) {
		// The page sizes its terminal right after the start; a quick
		// command is gone by then, which is no error.
		out, code, s := runExec(t, e, shell, ExecOptions{Cmd: []string{"/testapp", "-echo", "quick"}}, "", "")
		if code != 0 || !strings.Contains(out, "quick") {
			t.Fatalf("exit %d, output %q", code, out)
		}
		if err := s.Resize(t.Context(), 24, 80); err != nil {
			t.Errorf("resize after the exit: %v", err)
		}
	})

	t.Run("initial size and resize", func(t *testing.T) {
		out, _, _ := runExec(t, e, shell, ExecOptions{Cmd: []string{"/tool", "winsize"}, Rows: 20, Cols: 70}, "", "\n")
		if !strings.Contains(out, "size 20 70") {
			t.Fatalf("initial size: output %q", out)
		}
		s, err := Exec(t.Context(), e.cli, shell, ExecOptions{Cmd: []string{"/tool", "winsize"}})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		tm := startTerm(s)
		if err := s.Resize(t.Context(), 33, 101); err != nil {
			t.Fatal(err)
		}
		io.WriteString(s.Stdin(), "\n")
		tm.waitOutput(t, "size 33 101")
		for _, bad := range [][2]uint{{0, 80}, {24, 0}, {MaxTermSize + 1, 80}} {
			if err := s.Resize(t.Context(), bad[0], bad[1]); !errors.Is(err, ErrInvalidSize) {
				t.Errorf("resize %v: %v, want ErrInvalidSize", bad, err)
			}
		}
	})

	t.Run("default shell", func(t *testing.T) {
		out, code, s := runExec(t, e, shell, ExecOptions{}, "tool-sh ready", "exit 7\n")
		if code != 7 || !slices.Equal(s.Record().Cmd, []string{"/bin/sh"}) {
			t.Fatalf("exit %d, cmd %q, output %q", code, s.Record().Cmd, out)
		}
	})

	t.Run("closing the session ends the process", func(t *testing.T) {
		for _, cmd := range [][]string{
			{"/testapp", "-sleep"}, // a foreground program: ctrl-C
			nil,                    // the default shell at its prompt: ctrl-D
		} {
			s, err := Exec(t.Context(), e.cli, shell, ExecOptions{Cmd: cmd})
			if err != nil {
				t.Fatal(err)
			}
			startTerm(s)
			time.Sleep(300 * time.Millisecond)
			s.Close()
			waitExecEnds(t, e, s.Record().ExecID)
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			target ExecTarget
			opts   ExecOptions
			want   error
		}{
			{"no shell in a FROM-scratch image", ExecTarget{Instance: e.instance, Project: e.project, Service: "bare"}, ExecOptions{}, ErrNoShell},
			{"container not running", ExecTarget{Instance: e.instance, Project: e.project, Service: "stopped"}, ExecOptions{Cmd: []string{"/testapp", "-echo"}}, ErrNotRunning},
			{"no such replica", ExecTarget{Instance: e.instance, Project: e.project, Service: "shell", Replica: 5}, ExecOptions{Cmd: []string{"x"}}, ErrNoContainer},
			{"another instance's container", ExecTarget{Instance: "someone-else", Project: e.project, Service: "shell"}, ExecOptions{Cmd: []string{"x"}}, ErrNoContainer},
			{"empty argument", shell, ExecOptions{Cmd: []string{"/bin/sh", ""}}, ErrInvalidCommand},
			{"bad size", shell, ExecOptions{Cmd: []string{"/bin/sh"}, Rows: 5000, Cols: 80}, ErrInvalidSize},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s, err := Exec(t.Context(), e.cli, tc.target, tc.opts)
				if err == nil {
					s.Close()
				}
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
			})
		}
	})
}

func waitExecEnds(t *testing.T, e *dockerEnv, execID string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		in, err := e.cli.ContainerExecInspect(t.Context(), execID)
		if err != nil {
			t.Fatal(err)
		}
		if !in.Running {
			return
		}
	}
	t.Fatal("the process still runs 10s after the session closed")
}

func TestValidateCommand(t *testing.T) {
	many := make([]string, MaxExecArgs+1)
	for i := range many {
		many[i] = "a"
	}
	for _, tc := range []struct {
		cmd []string
		ok  bool
	}{
		{[]string{"/bin/sh"}, true},
		{[]string{"ls", "-la", "/tmp; rm -rf /"}, true}, // one argument, never a shell string
		{many[:MaxExecArgs], true},
		{nil, false},
		{[]string{}, false},
		{many, false},
		{[]string{"sh", ""}, false},
		{[]string{"sh\x00", "-c"}, false},
		{[]string{"echo", strings.Repeat("x", MaxExecArgBytes+1)}, false},
		{[]string{"echo", "\xff"}, false},
	} {
		err := ValidateCommand(tc.cmd)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalidCommand)) {
			t.Errorf("ValidateCommand(%q) = %v, want ok=%v", tc.cmd, err, tc.ok)
		}
	}
}
