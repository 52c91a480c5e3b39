package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/panelx/panelx/api/httpapi"
	"github.com/panelx/panelx/internal/version"
	"github.com/panelx/panelx/store/postgres"
)

var errNoDatabase = errors.New("no database: set PANELX_DATABASE_URL (or --database-url) to a PostgreSQL URL such as postgres://panelx:secret@127.0.0.1:5432/panelx")

type serverConfig struct {
	databaseURL     string
	listen          string
	migrate         bool
	shutdownTimeout time.Duration
}

func newServerCmd(g *globalFlags) *cobra.Command {
	cfg := &serverConfig{}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the PanelX server: API, reconcile loop and metrics",
		Long: `Run the PanelX server. It migrates the database schema (unless --migrate=false),
then serves the API on --listen with /healthz (the process is alive) and /readyz
(the database is reachable and migrated). SIGTERM or Ctrl-C stops it gracefully:
it stops accepting connections and lets requests in flight finish.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			defer log.Sync() //nolint:errcheck // best effort on exit
			return runServer(cmd.Context(), cfg, log)
		},
	}
	env := newEnvFlags(cmd.Flags())
	env.Secret(&cfg.databaseURL, "database-url", "PANELX_DATABASE_URL", "PostgreSQL URL, e.g. postgres://user:pass@host:5432/db")
	env.String(&cfg.listen, "listen", "PANELX_LISTEN", ":8080", "address to serve the API on")
	env.Bool(&cfg.migrate, "migrate", "PANELX_MIGRATE", true, "apply pending database migrations at start")
	env.Duration(&cfg.shutdownTimeout, "shutdown-timeout", "PANELX_SHUTDOWN_TIMEOUT", 30*time.Second, "how long to let requests finish on shutdown")
	cmd.PreRunE = func(*cobra.Command, []string) error { return env.Err() }
	return cmd
}

func runServer(ctx context.Context, cfg *serverConfig, log *zap.Logger) error {
	if cfg.databaseURL == "" {
		return errNoDatabase
	}
	log.Info("starting", zap.String("version", version.String()))
	st, err := postgres.Open(ctx, cfg.databaseURL, postgres.Options{Logger: log})
	if err != nil {
		return err
	}
	defer st.Close()
	if cfg.migrate {
		applied, err := st.Migrate(ctx)
		if err != nil {
			return err
		}
		log.Info("database schema is up to date", zap.Int("applied", len(applied)))
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.listen, err)
	}
	log.Info("serving API", zap.String("addr", ln.Addr().String()))
	h := httpapi.New(httpapi.Options{Store: st, Logger: log})
	if err := httpapi.Serve(ctx, ln, h.Handler(), cfg.shutdownTimeout, log); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}
