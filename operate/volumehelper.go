package operate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"syscall"
)

// HelperCommand is the first argument that makes a binary act as the volume
// helper: `panelx volume-helper` must call VolumeHelperMain (see the
// package documentation for the wiring).
const HelperCommand = "volume-helper"

// helperEnv carries the helper's request as JSON. Not in argv: no path ever
// meets a command-line parser ("--help" is a valid file name).
const helperEnv = "PANELX_VOLUME_HELPER_REQUEST"

// helperMount is where every helper container mounts the volume.
const helperMount = "/.panelx-volume"

// Default and maximum number of entries a listing returns.
const (
	DefaultMaxListEntries = 1000
	MaxListEntries        = 10000
)

// helperRequest is one operation of the helper process.
type helperRequest struct {
	Op   string `json:"op"` // "rm", "mv", "ls" or "swap"
	Path string `json:"path"`
	To   string `json:"to,omitempty"`
	// Replace lets mv replace an existing regular file (an upload's
	// final rename); otherwise an existing target is an error.
	Replace bool `json:"replace,omitempty"`
	Limit   int  `json:"limit,omitempty"`
	// Root is the owner and mode a restore's swap gives the volume root.
	Root *RootAttrs `json:"root,omitempty"`
}

// helperResponse is the helper's single line of output.
type helperResponse struct {
	Error     string     `json:"error,omitempty"`
	Kind      string     `json:"kind,omitempty"`
	Entries   []FileInfo `json:"entries,omitempty"`
	Truncated bool       `json:"truncated,omitempty"`
}

// Kinds of helper errors, mapped back to this package's errors.
const (
	kindInvalid  = "invalid"
	kindNotFound = "not_found"
	kindExist    = "exists"
	kindNotDir   = "not_dir"
	kindIsDir    = "is_dir"
	kindOther    = "error"
)

// VolumeHelperMain runs one helper operation and returns the process exit
// code. It is the whole of `panelx volume-helper`, which PanelX runs inside
// a helper container whose only mount is the volume (at /.panelx-volume),
// with the request in the environment. It prints one JSON line on stdout.
func VolumeHelperMain() int {
	return runVolumeHelper(helperMount, os.Getenv(helperEnv), os.Stdout)
}

func runVolumeHelper(dir, rawRequest string, w io.Writer) int {
	resp := handleHelper(dir, rawRequest)
	if err := json.NewEncoder(w).Encode(resp); err != nil {
		return 2
	}
	if resp.Error != "" {
		return 1
	}
	return 0
}

func handleHelper(dir, rawRequest string) helperResponse {
	var req helperRequest
	dec := json.NewDecoder(strings.NewReader(rawRequest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return helperError(fmt.Errorf("%w: bad request: %v", ErrInvalidPath, err))
	}
	// os.Root confines every operation to the volume, symbolic links and
	// concurrent renames included; the checks below add the policy that
	// links are not followed at all.
	root, err := os.OpenRoot(dir)
	if err != nil {
		return helperError(err)
	}
	defer root.Close()
	var resp helperResponse
	switch req.Op {
	case "rm":
		err = helperRemove(root, req.Path)
	case "mv":
		err = helperRename(root, req.Path, req.To, req.Replace)
	case "ls":
		resp.Entries, resp.Truncated, err = helperList(root, req.Path, req.Limit)
	case "swap":
		err = helperSwap(root, req.Path, req.Root)
	default:
		err = fmt.Errorf("unknown operation %q", req.Op)
	}
	if err != nil {
		return helperError(err)
	}
	return resp
}

func helperError(err error) helperResponse {
	kind := kindOther
	switch {
	case errors.Is(err, ErrInvalidPath):
		kind = kindInvalid
	case errors.Is(err, fs.ErrNotExist):
		kind = kindNotFound
	case errors.Is(err, fs.ErrExist):
		kind = kindExist
	case errors.Is(err, ErrNotDir), errors.Is(err, syscall.ENOTDIR):
		kind = kindNotDir
	case errors.Is(err, ErrIsDir):
		kind = kindIsDir
	}
	return helperResponse{Error: err.Error(), Kind: kind}
}

// walkRoot checks every component of p: it must exist, all but the last
// must be directories, and none may be a symbolic link — except the last
// when lastMayLink (removing or renaming a link acts on the link itself).
// It returns the last component's information (nil for the root).
func walkRoot(root *os.Root, p string, lastMayLink bool) (fs.FileInfo, error) {
	var fi fs.FileInfo
	pre := prefixes(p)
	for i, q := range pre {
		var err error
		if fi, err = root.Lstat(q); err != nil {
			return nil, err
		}
		last := i == len(pre)-1
		if fi.Mode()&fs.ModeSymlink != 0 && !(last && lastMayLink) {
			return nil, symlinkError(p, q)
		}
		if !last && !fi.IsDir() {
			return nil, fmt.Errorf("%s: %w", q, ErrNotDir)
		}
	}
	return fi, nil
}

func symlinkError(p, link string) error {
	return refuse(p, "%q is a symbolic link; file operations do not follow links", link)
}

func helperRemove(root *os.Root, p string) error {
	p, err := cleanNonRoot(p)
	if err != nil {
		return err
	}
	if _, err := walkRoot(root, p, true); err != nil {
		return err
	}
	return root.RemoveAll(p)
}

func helperRename(root *os.Root, from, to string, replace bool) error {
	from, err := cleanNonRoot(from)
	if err != nil {
		return err
	}
	if to, err = cleanNonRoot(to); err != nil {
		return err
	}
	if _, err := walkRoot(root, from, true); err != nil {
		return err
	}
	dir, _ := splitPath(to)
	if fi, err := walkRoot(root, dir, false); err != nil {
		return err
	} else if fi != nil && !fi.IsDir() {
		return fmt.Errorf("%s: %w", dir, ErrNotDir)
	}
	switch fi, err := root.Lstat(to); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	case !replace:
		return fmt.Errorf("%s: %w", to, fs.ErrExist)
	case fi.IsDir():
		return fmt.Errorf("%s: %w", to, ErrIsDir)
	case !fi.Mode().IsRegular():
		return refuse(to, "not a regular file")
	}
	return root.Rename(from, to)
}

// helperList returns the lexically first limit entries of a directory, the
// order the archive API lists them in, without holding more than limit+1
// names however large the directory.
func helperList(root *os.Root, dir string, limit int) ([]FileInfo, bool, error) {
	dir, err := CleanPath(dir)
	if err != nil {
		return nil, false, err
	}
	if limit <= 0 || limit > MaxListEntries {
		limit = DefaultMaxListEntries
	}
	if fi, err := walkRoot(root, dir, false); err != nil {
		return nil, false, err
	} else if fi != nil && !fi.IsDir() {
		return nil, false, fmt.Errorf("%s: %w", dir, ErrNotDir)
	}
	names, truncated, err := firstNames(root, dir, limit)
	if err != nil {
		return nil, false, err
	}
	out := make([]FileInfo, 0, len(names))
	for _, name := range names {
		p := joinPath(dir, name)
		fi, err := root.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, false, err
		}
		info := infoFromFS(fi)
		if info.Type == TypeSymlink {
			info.LinkTarget, _ = root.Readlink(p)
		}
		out = append(out, info)
	}
	return out, truncated, nil
}

func firstNames(root *os.Root, dir string, limit int) ([]string, bool, error) {
	name := dir
	if name == "" {
		name = "."
	}
	f, err := root.Open(name)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	var names []string
	truncated := false
	for {
		batch, err := f.ReadDir(256)
		for _, e := range batch {
			i, _ := slices.BinarySearch(names, e.Name())
			if i >= limit {
				truncated = true
				continue
			}
			names = slices.Insert(names, i, e.Name())
			if len(names) > limit {
				names, truncated = names[:limit], true
			}
		}
		if errors.Is(err, io.EOF) || (err == nil && len(batch) == 0) {
			return names, truncated, nil
		}
		if err != nil {
			return nil, false, err
		}
	}
}
