//go:build !unix

package volumemove

import "io/fs"

// The mover runs in Linux containers; elsewhere it only compiles (the CLI
// is the same binary).
const openFlags = 0

type sysStat struct {
	uid, gid        int
	dev, ino, nlink uint64
}

func statOf(fs.FileInfo) (sysStat, bool) { return sysStat{}, false }
