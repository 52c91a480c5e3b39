package builder

import (
	"io"

	"github.com/panelx/panelx/builder/buildctx"
)

// Context streams the build context dir of a clone in root as a tar,
// honouring its .dockerignore and leaving the clone's .git out.
func Context(root, dir, dockerfile string) (io.ReadCloser, error) {
	return buildctx.Pack(root, dir, dockerfile, buildctx.PackOptions{SkipGit: true})
}
