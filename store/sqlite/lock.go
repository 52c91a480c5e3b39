//go:build unix

package sqlite

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// LockFile is the name of the lock file LockDataDir holds in the data
// directory.
const LockFile = "panelx.lock"

// LockDataDir takes an exclusive lock on dir (creating dir if needed) for
// as long as the process lives or until release is called, so that a second
// PanelX server on the same data directory refuses to start instead of
// writing to the same database. The lock is flock(2) on <dir>/panelx.lock:
// the kernel drops it when the process dies, even by kill -9, so a stale
// lock file never blocks a restart. The file holds the owner's PID, for
// people.
func LockDataDir(dir string) (release func() error, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("lock data directory %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("lock data directory %s: %w", abs, err)
	}
	path := filepath.Join(abs, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data directory %s: %w", abs, err)
	}
	if err := flock(f); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data directory %s is in use: another PanelX server is using it (lock %s is held%s)",
				abs, path, holder(path))
		}
		return nil, fmt.Errorf("lock data directory %s: %w", abs, err)
	}
	// Best effort: the PID only helps whoever reads the error above.
	if err := f.Truncate(0); err == nil {
		fmt.Fprintf(f, "%d\n", os.Getpid())
	}
	return func() error {
		// Closing the descriptor drops the lock.
		if err := f.Close(); err != nil {
			return fmt.Errorf("unlock data directory %s: %w", abs, err)
		}
		return nil
	}, nil
}

func flock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// holder describes the process named in the lock file, if any.
func holder(path string) string {
	data, err := os.ReadFile(path)
	if err != nil || len(data) == 0 {
		return ""
	}
	var pid int
	if _, err := fmt.Sscanf(string(data), "%d", &pid); err != nil || pid <= 0 {
		return ""
	}
	return fmt.Sprintf(" by PID %d", pid)
}

// freeBytes is the space left for unprivileged writes under dir.
func freeBytes(dir string) (uint64, bool) {
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		return 0, false
	}
	return fs.Bavail * uint64(fs.Bsize), true
}
