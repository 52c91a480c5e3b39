package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// The local Docker Engine is shared by every test process of a run (go test
// runs packages side by side). A test that changes the engine's mode —
// `docker swarm init` and `leave`, which rewire its networks — must not run
// while other tests use it: a leave cut a published port of another
// package's container mid-test. So every process that uses the engine
// (Docker) holds this lock shared for its whole life, and one that changes
// the mode takes it exclusively (LockEngine) and waits for the others.
var (
	engineLockOnce sync.Once
	engineLockFile *os.File // held until the process exits
	engineLocked   bool     // this process holds it exclusively
	engineMu       sync.Mutex
)

func engineLockPath() string { return filepath.Join(os.TempDir(), "panelx-docker-engine.lock") }

// holdEngineShared takes the engine lock shared, once per process.
func holdEngineShared() {
	engineMu.Lock()
	exclusive := engineLocked
	engineMu.Unlock()
	if exclusive {
		return // a second lock on another descriptor would wait for ourselves
	}
	engineLockOnce.Do(func() {
		f, err := os.OpenFile(engineLockPath(), os.O_CREATE|os.O_RDWR, 0o666)
		if err != nil {
			return // no lock: tests still run, as before
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_SH) != nil {
			f.Close()
			return
		}
		engineLockFile = f
	})
}

// LockEngine takes the engine lock exclusively for this process (call it
// from TestMain, before any Docker call): it waits until no other test
// process uses the engine. unlock releases it.
func LockEngine() (unlock func(), err error) {
	f, err := os.OpenFile(engineLockPath(), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, fmt.Errorf("engine lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("engine lock: %w", err)
	}
	engineMu.Lock()
	engineLocked = true
	engineMu.Unlock()
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
