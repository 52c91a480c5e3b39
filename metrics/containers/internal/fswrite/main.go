// Command fswrite writes a file of a given size and fsyncs it. The
// collector's Docker tests bind-mount it into a FROM-scratch test container
// (which has no shell or dd) and run it with docker exec, so that the write
// happens in the container's cgroup and reaches the disk before the test
// reads the block I/O counters, instead of waiting in the page cache.
//
//	fswrite -mib 8 /data/blob
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	mib := flag.Int("mib", 8, "size of the file in MiB")
	flag.Parse()
	if flag.NArg() != 1 || *mib <= 0 {
		fmt.Fprintln(os.Stderr, "usage: fswrite [-mib N] FILE")
		os.Exit(2)
	}
	if err := write(flag.Arg(0), *mib); err != nil {
		fmt.Fprintln(os.Stderr, "fswrite:", err)
		os.Exit(1)
	}
}

func write(name string, mib int) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i * 31) // not all zeros, in case the file system compresses
	}
	for range mib {
		if _, err := f.Write(chunk); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("fsync %s: %w", name, err)
	}
	return f.Close()
}
