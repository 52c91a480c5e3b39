package operate

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// helperSwap replaces the volume's contents with those of the staging
// directory a restore extracted: every other top-level entry moves into a
// new directory (renames, no copying), the staged entries move up, and
// only then is the replaced data removed. A helper killed midway leaves
// the old data and the new, never neither.
func helperSwap(root *os.Root, staging string, attrs *RootAttrs) error {
	if !strings.HasPrefix(staging, restorePrefix) || strings.ContainsAny(staging, "/\\") {
		return refuse(staging, "not a restore's staging directory")
	}
	if fi, err := root.Lstat(staging); err != nil {
		return err
	} else if !fi.IsDir() {
		return fmt.Errorf("%s: %w", staging, ErrNotDir)
	}
	old := restoreOldPrefix + strings.TrimPrefix(staging, restorePrefix)
	if err := root.Mkdir(old, 0o700); err != nil {
		return fmt.Errorf("swap: %w", err)
	}
	names, err := readNames(root, ".")
	if err != nil {
		return err
	}
	for _, n := range names {
		if n == staging || n == old {
			continue
		}
		if err := root.Rename(n, old+"/"+n); err != nil {
			return fmt.Errorf("swap: move %s aside: %w", n, err)
		}
	}
	staged, err := readNames(root, staging)
	if err != nil {
		return err
	}
	for _, n := range staged {
		if err := root.Rename(staging+"/"+n, n); err != nil {
			return fmt.Errorf("swap: move %s in: %w", n, err)
		}
	}
	if err := root.Remove(staging); err != nil {
		return fmt.Errorf("swap: %w", err)
	}
	if attrs != nil {
		// Owner first: chown clears set-id bits the mode may set.
		if err := root.Lchown(".", attrs.UID, attrs.GID); err != nil {
			return fmt.Errorf("swap: owner of the volume root: %w", err)
		}
		if err := root.Chmod(".", fs.FileMode(attrs.Mode&0o777)|modeBits(attrs.Mode)); err != nil {
			return fmt.Errorf("swap: mode of the volume root: %w", err)
		}
	}
	if err := root.RemoveAll(old); err != nil {
		return fmt.Errorf("swap: remove the replaced data: %w", err)
	}
	return nil
}

// modeBits turns the set-id and sticky bits of a tar mode into Go's.
func modeBits(m int64) fs.FileMode {
	var out fs.FileMode
	if m&0o4000 != 0 {
		out |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		out |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		out |= fs.ModeSticky
	}
	return out
}

func readNames(root *os.Root, dir string) ([]string, error) {
	f, err := root.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var names []string
	for {
		batch, err := f.ReadDir(256)
		for _, e := range batch {
			names = append(names, e.Name())
		}
		if errors.Is(err, io.EOF) || (err == nil && len(batch) == 0) {
			return names, nil
		}
		if err != nil {
			return nil, err
		}
	}
}
