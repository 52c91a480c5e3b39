//go:build !unix

package sqlite

import "fmt"

// LockFile is the name of the lock file LockDataDir holds in the data
// directory.
const LockFile = "panelx.lock"

// LockDataDir is only implemented on Unix, where it uses flock(2).
func LockDataDir(dir string) (release func() error, err error) {
	return nil, fmt.Errorf("lock data directory %s: not supported on this platform", dir)
}

// freeBytes is not known here.
func freeBytes(string) (uint64, bool) { return 0, false }
