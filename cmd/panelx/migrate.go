package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
)

func newMigrateCmd(g *globalFlags) *cobra.Command {
	var backend backendFlags
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the database schema (also done by `panelx server` at start)",
		Long: `Apply every pending migration to the database: PostgreSQL when --database-url
is set, otherwise the embedded SQLite database in --data-dir. Safe to run from
several machines at once against PostgreSQL: migrations are serialised by an
advisory lock, and applied ones are skipped. The embedded database cannot be
migrated while a server uses it (its data directory is locked).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			defer log.Sync() //nolint:errcheck // best effort on exit
			s, closeStore, err := backend.open(cmd.Context(), log)
			if err != nil {
				return err
			}
			defer closeStore()
			applied, err := s.Migrate(cmd.Context())
			if err != nil {
				return err
			}
			log.Info("database schema is up to date", zap.Int64s("applied", applied))
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "applied %d migration(s); schema is up to date (%s)\n", len(applied), describeBackend(&backend))
			return err
		},
	}
	env := newEnvFlags(cmd.Flags())
	backend.register(env)
	cmd.PreRunE = func(*cobra.Command, []string) error { return env.Err() }
	return cmd
}
