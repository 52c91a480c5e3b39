package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/panelx/panelx/store/postgres"
)

func newMigrateCmd(g *globalFlags) *cobra.Command {
	var dbURL string
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the database schema (also done by `panelx server` at start)",
		Long: `Apply every pending migration to the PostgreSQL database. Safe to run while
servers are running and from several machines at once: migrations are
serialised by a PostgreSQL advisory lock, and applied ones are skipped.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			defer log.Sync() //nolint:errcheck // best effort on exit
			if dbURL == "" {
				return errNoDatabase
			}
			s, err := postgres.Open(cmd.Context(), dbURL, postgres.Options{Logger: log})
			if err != nil {
				return err
			}
			defer s.Close()
			applied, err := s.Migrate(cmd.Context())
			if err != nil {
				return err
			}
			log.Info("database schema is up to date", zap.Int64s("applied", applied))
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "applied %d migration(s); schema is up to date\n", len(applied))
			return err
		},
	}
	newEnvFlags(cmd.Flags()).Secret(&dbURL, "database-url", "PANELX_DATABASE_URL", "PostgreSQL URL, e.g. postgres://user:pass@host:5432/db")
	return cmd
}
