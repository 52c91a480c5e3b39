// Package buildctx makes build contexts and keeps the ones users upload.
// It holds no Docker client: the CLI packs a context with it and the API
// server stores uploads with it (the API server must not reach Docker).
package buildctx

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	archive "github.com/moby/go-archive"
	"github.com/moby/patternmatcher/ignorefile"
)

// PackOptions say what Pack leaves out.
type PackOptions struct {
	// SkipGit leaves the context's .git out whatever .dockerignore says: a
	// clone's .git is PanelX's, not the build's (sending it would double
	// the upload and hand the repository's history to the build).
	SkipGit bool
}

// Pack streams the build context dir under root as a tar, leaving out what
// its .dockerignore excludes (but never the Dockerfile or .dockerignore,
// as the docker CLI does). Entries are owned by 0:0 and carry no access or
// change times, so an unchanged directory packs to the same bytes (and
// digest) every time. Nothing is held in memory.
func Pack(root, dir, dockerfile string, o PackOptions) (io.ReadCloser, error) {
	ctxDir, err := within(root, dir)
	if err != nil {
		return nil, err
	}
	if info, err := os.Stat(ctxDir); err != nil || !info.IsDir() {
		return nil, fmt.Errorf("build context %q is not a directory", dirOrRoot(dir))
	}
	df, err := within(ctxDir, dockerfile)
	if err != nil {
		return nil, err
	}
	if info, err := os.Lstat(df); err != nil || !info.Mode().IsRegular() {
		return nil, fmt.Errorf("no Dockerfile %q in the build context %q", dockerfile, dirOrRoot(dir))
	}
	var excludes []string
	if f, err := os.Open(filepath.Join(ctxDir, ".dockerignore")); err == nil {
		excludes, err = ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read .dockerignore: %w", err)
		}
	}
	if o.SkipGit {
		excludes = append(excludes, ".git")
	}
	// The builder needs these two even when the patterns leave them out.
	excludes = append(excludes, "!"+filepath.ToSlash(dockerfile), "!.dockerignore")
	rc, err := archive.TarWithOptions(ctxDir, &archive.TarOptions{ExcludePatterns: excludes, ChownOpts: &archive.ChownOpts{}})
	if err != nil {
		return nil, fmt.Errorf("archive the build context: %w", err)
	}
	return rc, nil
}

// Digest packs the context as Pack does and returns the tar's digest
// ("sha256:<hex>") and size, without keeping it.
func Digest(root, dir, dockerfile string, o PackOptions) (string, int64, error) {
	rc, err := Pack(root, dir, dockerfile, o)
	if err != nil {
		return "", 0, err
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return "", 0, fmt.Errorf("pack the build context %q: %w", dirOrRoot(dir), err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), n, nil
}

// within joins rel to root and refuses a result outside root, symbolic
// links included (a repository may hold a link to /).
func within(root, rel string) (string, error) {
	p := filepath.Join(root, filepath.FromSlash(rel))
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return p, nil // missing: the caller says so
	}
	rootReal, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", err
	}
	if real != rootReal && !strings.HasPrefix(real, rootReal+string(filepath.Separator)) {
		return "", fmt.Errorf("%q leads out of the build's directory", rel)
	}
	return real, nil
}

func dirOrRoot(dir string) string {
	if slices.Contains([]string{"", "."}, dir) {
		return "/"
	}
	return dir
}
