package main

import (
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/panelx/panelx/cli"
	"github.com/panelx/panelx/internal/logging"
	"github.com/panelx/panelx/internal/version"
)

// globalFlags are shared by every subcommand.
type globalFlags struct {
	logLevel  string
	logFormat string
}

func (g *globalFlags) logger() (*zap.Logger, error) {
	return logging.New(g.logLevel, g.logFormat)
}

func newRootCmd() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:   "panelx",
		Short: "PanelX: a self-hosted PaaS control plane for Docker",
		Long: `PanelX keeps a Docker host matching the projects, services and volumes you
declare, like a Kubernetes controller: declare desired state over its REST API
(or as YAML), and its reconcile loop converges containers, networks and volumes
and keeps them converged.

Server side: server, edge, migrate, token, secrets, export, health. Client side (talking to a server's API,
like kubectl): login, use, apply, diff, get, describe, events, edit, create, delete, scale, stop,
start, restart, top, rollout, convert, logs, exec, cp, volumes, version.

Every flag can also be set through the environment variable shown in its help.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	env := newEnvFlags(root.PersistentFlags())
	env.String(&g.logLevel, "log-level", "PANELX_LOG_LEVEL", "info", "log level: debug, info, warn or error")
	env.String(&g.logFormat, "log-format", "PANELX_LOG_FORMAT", "auto", "log format: json, console, or auto (console in a terminal, JSON otherwise)")
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error { return env.Err() }
	root.AddCommand(newServerCmd(g), newEdgeCmd(g), newMigrateCmd(g), newTokenCmd(g), newSecretsCmd(g), newExportCmd(g), newHealthCmd())
	root.AddCommand(cli.Commands(version.String())...)
	return root
}
