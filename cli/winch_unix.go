//go:build unix

package cli

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/panelx/panelx/client"
)

// followResize sends the terminal's new size on every SIGWINCH until stop.
func followResize(ctx context.Context, sess *client.ExecSession, in io.Reader, out io.Writer) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGWINCH)
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				if cols, rows, ok := terminalSize(in, out); ok {
					_ = sess.Resize(ctx, rows, cols)
				}
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		cancel()
	}
}
