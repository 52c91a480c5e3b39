//go:build unix

package volumemove

import (
	"io/fs"
	"syscall"
)

// openFlags keep the source's open of a regular file from blocking on a
// FIFO swapped in since the walk.
const openFlags = syscall.O_NONBLOCK | syscall.O_NOFOLLOW

type sysStat struct {
	uid, gid        int
	dev, ino, nlink uint64
}

func statOf(fi fs.FileInfo) (sysStat, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return sysStat{}, false
	}
	return sysStat{uid: int(st.Uid), gid: int(st.Gid), dev: uint64(st.Dev), ino: uint64(st.Ino), nlink: uint64(st.Nlink)}, true
}
