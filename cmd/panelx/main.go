// Command panelx is PanelX: the server (API, reconcile loop, metrics) and
// the CLI that talks to it.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/panelx/panelx/cli"
	"github.com/panelx/panelx/operate"
	"github.com/panelx/panelx/volumemove"
)

func main() {
	// Inside a volume helper container (see package operate): before
	// anything else, so no flag or environment of the server applies.
	if len(os.Args) > 1 && os.Args[1] == operate.HelperCommand {
		os.Exit(operate.VolumeHelperMain())
	}
	// Inside a volume move task (see package volumemove), likewise.
	if len(os.Args) > 1 && os.Args[1] == volumemove.Command {
		os.Exit(volumemove.Main(os.Args[2:]))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		code := 1
		var exit *cli.ExitError
		if errors.As(err, &exit) {
			code = exit.Code
			err = exit.Err
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "panelx:", err)
		}
		os.Exit(code)
	}
}
