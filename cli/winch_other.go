//go:build !unix

package cli

import (
	"context"
	"io"

	"github.com/panelx/panelx/client"
)

// followResize: without SIGWINCH the size is sent once, at the start.
func followResize(context.Context, *client.ExecSession, io.Reader, io.Writer) (stop func()) {
	return func() {}
}
