//go:build !linux

package volumemove

import "os"

// syncFS syncs f only: the mover runs on Linux.
func syncFS(f *os.File) error { return f.Sync() }
