//go:build unix

package sqlite

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/store"
	"github.com/panelx/panelx/store/storetest"
)

// crashChildEnv, when set to a database path, turns this test binary into
// the writer that TestCrashKeepsAcknowledgedWrites kills.
const crashChildEnv = "PANELX_SQLITE_CRASH_CHILD"

const (
	crashAcks    = 400 // acknowledged writes to wait for before the kill
	crashWriters = 4
)

// TestCrashKeepsAcknowledgedWrites runs a child process that writes as fast
// as it can and prints "ack <kind> <name>" only after each write returned,
// kills it with SIGKILL in mid-stream, and checks that the file opens
// cleanly and holds every acknowledged write.
func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		return
	}
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := filepath.Join(t.TempDir(), "panelx.db")
	s := openMigrated(t, path)
	s.Close()

	acked, err := runAndKill(t, path)
	if err != nil {
		t.Fatal(err)
	}
	if len(acked) < crashAcks {
		t.Fatalf("only %d acknowledged writes before the child ended", len(acked))
	}
	t.Logf("%d writes acknowledged before SIGKILL", len(acked))

	s = openMigrated(t, path)
	defer s.Close()
	ctx := ctxFor(t)
	var check string
	if err := s.rdb.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check = %q, %v", check, err)
	}
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("Ready after the crash: %v", err)
	}
	for _, a := range acked {
		kind, name, _ := strings.Cut(a, " ")
		key := api.Key{Project: "crash", Name: name}
		switch api.Kind(kind) {
		case api.KindService:
			_, err = s.Services().Get(ctx, key)
		case api.KindVolume:
			_, err = s.Volumes().Get(ctx, key)
		default:
			t.Fatalf("bad ack %q", a)
		}
		if err != nil {
			t.Errorf("acknowledged write lost: %s %s: %v", kind, name, err)
		}
	}
}

// runAndKill starts the child, reads its acknowledgements, kills it once
// crashAcks have come, and returns every acknowledgement it printed.
func runAndKill(t *testing.T, path string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrashKeepsAcknowledgedWrites$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	cmd.Stderr = &prefixWriter{t: t}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start child: %w", err)
	}
	var acked []string
	killed := false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		ack, ok := strings.CutPrefix(sc.Text(), "ack ")
		if !ok {
			continue
		}
		acked = append(acked, ack)
		if len(acked) == crashAcks && !killed {
			// Lines already in the pipe were acknowledged too: keep reading.
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				return nil, fmt.Errorf("kill child: %w", err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		return acked, fmt.Errorf("child ended by itself after %d acks: %v", len(acked), err)
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		return acked, fmt.Errorf("child did not die of SIGKILL: %v", err)
	}
	return acked, nil
}

// crashChild writes until it is killed: crashWriters goroutines create
// services one by one, and every tenth write is a transaction creating a
// volume and a service together.
func crashChild(path string) {
	ctx := context.Background()
	s, err := Open(ctx, path, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	if _, err := s.Projects().Create(ctx, storetest.Project("crash")); err != nil {
		fmt.Fprintln(os.Stderr, "create project:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	ack := func(lines ...string) {
		mu.Lock()
		defer mu.Unlock()
		for _, l := range lines {
			fmt.Fprintln(os.Stdout, "ack "+l)
		}
	}
	deadline := time.Now().Add(time.Minute) // in case nobody kills us
	var wg sync.WaitGroup
	for w := 0; w < crashWriters; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				name := fmt.Sprintf("w%d-%06d", w, i)
				if err := crashWrite(ctx, s, name, i%10 == 0); err != nil {
					fmt.Fprintln(os.Stderr, "write:", err)
					os.Exit(2)
				}
				if i%10 == 0 {
					ack("Volume "+name, "Service "+name)
				} else {
					ack("Service " + name)
				}
			}
		}()
	}
	wg.Wait()
	os.Exit(3)
}

func crashWrite(ctx context.Context, s *Store, name string, inTx bool) error {
	if !inTx {
		_, err := s.Services().Create(ctx, storetest.Service("crash", name, "nginx"))
		return err
	}
	return s.InTx(ctx, func(r store.Repo) error {
		if _, err := r.Volumes().Create(ctx, storetest.Volume("crash", name)); err != nil {
			return err
		}
		_, err := r.Services().Create(ctx, storetest.Service("crash", name, "nginx"))
		return err
	})
}

// prefixWriter passes the child's stderr to the test log.
type prefixWriter struct{ t *testing.T }

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.t.Logf("child: %s", strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
