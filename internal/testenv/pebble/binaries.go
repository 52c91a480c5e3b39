package pebble

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"
)

// The packages built from the module's tool dependencies (see the tool block
// in go.mod).
const (
	pebblePkg   = "github.com/letsencrypt/pebble/v2/cmd/pebble"
	challSrvPkg = "github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv"
)

const buildTimeout = 5 * time.Minute

type binaries struct {
	pebble   string
	challSrv string
}

type buildResult struct {
	bins binaries
	// missing is set when a prerequisite (the go command, the module root) is
	// not available: the caller reports it through testenv.Missing.
	missing string
	err     error
}

var (
	buildOnce sync.Once
	built     buildResult
)

// getBinaries builds pebble and pebble-challtestsrv once per test process.
// The binaries are kept under os.UserCacheDir()/panelx-test-bin/<key>, keyed
// by the module versions of pebble and challtestsrv and the platform, so a
// later test run (or another package's test binary) reuses them.
func getBinaries() buildResult {
	buildOnce.Do(func() { built = buildBinaries() })
	return built
}

func buildBinaries() buildResult {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return buildResult{missing: fmt.Sprintf("the go command is needed to build pebble: %v", err)}
	}
	root, err := moduleRoot()
	if err != nil {
		return buildResult{missing: err.Error()}
	}

	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()

	// The cache key: the exact module versions (and any replacement).
	var stdout, stderr bytes.Buffer
	list := exec.CommandContext(ctx, goBin, "list", "-m",
		"-f", "{{.Path}}@{{.Version}}{{with .Replace}}=>{{.Path}}@{{.Version}}{{end}}",
		"github.com/letsencrypt/pebble/v2", "github.com/letsencrypt/challtestsrv")
	list.Dir = root
	list.Stdout, list.Stderr = &stdout, &stderr
	if err := list.Run(); err != nil {
		return buildResult{err: fmt.Errorf("go list -m pebble (in %s): %v\n%s", root, err, stderr.String())}
	}
	versions := strings.TrimSpace(stdout.String())
	sum := sha256.Sum256([]byte(versions + "\n" + runtime.GOOS + "/" + runtime.GOARCH))
	key := "pebble-" + runtime.GOOS + "-" + runtime.GOARCH + "-" + hex.EncodeToString(sum[:8])
	// A replacement by a local directory has no version: its contents may
	// change at any time, so rebuild (the go build cache keeps that cheap).
	reuse := !strings.Contains(versions, "@\n") && !strings.HasSuffix(versions, "@")

	base, err := os.UserCacheDir()
	if err != nil || base == "" {
		base = os.TempDir()
	}
	dir := filepath.Join(base, "panelx-test-bin", key)
	bins := binaries{
		pebble:   filepath.Join(dir, exeName("pebble")),
		challSrv: filepath.Join(dir, exeName("pebble-challtestsrv")),
	}
	if reuse && isExecutable(bins.pebble) && isExecutable(bins.challSrv) {
		return buildResult{bins: bins}
	}

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return buildResult{err: fmt.Errorf("create binary cache directory: %v", err)}
	}
	// Build into a private directory and rename into place, so that
	// concurrent test processes never see a half-written binary.
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return buildResult{err: fmt.Errorf("create build directory: %v", err)}
	}
	defer os.RemoveAll(tmp)

	stderr.Reset()
	build := exec.CommandContext(ctx, goBin, "build", "-o", tmp+string(filepath.Separator), pebblePkg, challSrvPkg)
	build.Dir = root
	build.Env = append(os.Environ(), "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH)
	build.Stdout, build.Stderr = &stderr, &stderr
	if err := build.Run(); err != nil {
		return buildResult{err: fmt.Errorf("go build %s %s (in %s): %v\n%s", pebblePkg, challSrvPkg, root, err, stderr.String())}
	}
	for _, name := range []string{"pebble", "pebble-challtestsrv"} {
		from := filepath.Join(tmp, exeName(name))
		to := filepath.Join(dir, exeName(name))
		if err := os.Rename(from, to); err != nil && !isExecutable(to) {
			return buildResult{err: fmt.Errorf("install %s: %v", name, err)}
		}
	}
	return buildResult{bins: bins}
}

// moduleRoot walks up from the working directory (a test runs in its
// package's directory) to the directory holding go.mod.
func moduleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find module root: %v", err)
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("find module root: %v", err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above %s, cannot build pebble", wd)
		}
		dir = parent
	}
}

func exeName(name string) string {
	if runtime.GOOS == "windows" {
		return name + ".exe"
	}
	return name
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	return runtime.GOOS == "windows" || fi.Mode().Perm()&0o111 != 0
}
