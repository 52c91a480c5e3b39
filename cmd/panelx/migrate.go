package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
)

func newMigrateCmd(g *globalFlags) *cobra.Command {
	var (
		backend  backendFlags
		adopt    string
		supabase bool
	)
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
			if adopt != "" {
				if err := s.AdoptInstallation(cmd.Context(), adopt); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "this database now manages installation %s's Docker objects\n", adopt)
			}
			if supabase {
				if err := applySupabaseProfile(cmd.Context(), s); err != nil {
					return err
				}
				fmt.Fprintln(cmd.ErrOrStderr(), "applied the Supabase profile: grants to authenticated, row level security, the supabase_realtime publication")
			}
			log.Info("database schema is up to date", zap.Int64s("applied", applied))
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "applied %d migration(s); schema is up to date (%s)\n", len(applied), describeBackend(&backend))
			return err
		},
	}
	env := newEnvFlags(cmd.Flags())
	backend.register(env)
	env.Bool(&supabase, "supabase", "PANELX_SUPABASE", false,
		"also apply the Supabase profile: dashboards signed in to Supabase read projects, services, status and events under row level security, and Realtime publishes them (docs/supabase.md)")
	cmd.Flags().StringVar(&adopt, "adopt-installation", "", "moving servers on one host: take over the Docker containers, networks and volumes of this installation ID (from `panelx export`); the database must hold no projects yet")
	cmd.PreRunE = func(*cobra.Command, []string) error { return env.Err() }
	return cmd
}
