package volumemove

import (
	"os"
	"runtime"
	"syscall"
)

// sysSyncfs is syncfs(2)'s number (package syscall lacks it on amd64).
var sysSyncfs = map[string]uintptr{
	"386": 344, "amd64": 306, "arm": 373, "arm64": 267, "loong64": 267,
	"ppc64le": 348, "riscv64": 267, "s390x": 338,
}[runtime.GOARCH]

// syncFS flushes the filesystem that holds f (the volume): data and names
// of every file extracted, with one call instead of one fsync a file.
func syncFS(f *os.File) error {
	if sysSyncfs == 0 {
		syscall.Sync()
		return nil
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(sysSyncfs, fd, 0, 0)
	}); err != nil {
		return err
	}
	if errno != 0 {
		return os.NewSyscallError("syncfs", errno)
	}
	return nil
}
