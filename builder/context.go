package builder

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	archive "github.com/moby/go-archive"
	"github.com/moby/patternmatcher/ignorefile"
)

// Context streams the build context in dir as a tar, leaving out what its
// .dockerignore excludes (but never the Dockerfile or .dockerignore, as
// the docker CLI does). Nothing is held in memory.
func Context(root, dir, dockerfile string) (io.ReadCloser, error) {
	ctxDir, err := within(root, dir)
	if err != nil {
		return nil, err
	}
	if info, err := os.Stat(ctxDir); err != nil || !info.IsDir() {
		return nil, fmt.Errorf("build context %q is not a directory of the repository", dir)
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
	// The clone's own .git is PanelX's, not the build's: sending it would
	// double the upload and hand the repository's history to the build.
	excludes = append(excludes, ".git")
	// The builder needs these two even when the patterns leave them out.
	excludes = append(excludes, "!"+filepath.ToSlash(dockerfile), "!.dockerignore")
	rc, err := archive.TarWithOptions(ctxDir, &archive.TarOptions{ExcludePatterns: excludes})
	if err != nil {
		return nil, fmt.Errorf("archive the build context: %w", err)
	}
	return rc, nil
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
		return "", fmt.Errorf("%q leads out of the repository", rel)
	}
	return real, nil
}

func dirOrRoot(dir string) string {
	if slices.Contains([]string{"", "."}, dir) {
		return "/"
	}
	return dir
}
