package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/apiserver/auth"
	"github.com/panelx/panelx/apiserver/authz"
	"github.com/panelx/panelx/cli"
	"github.com/panelx/panelx/store"
)

func newTokenCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "API tokens: create one in the database (bootstrap); list or revoke yours through the API",
	}
	cmd.AddCommand(newTokenCreateCmd(g))
	cmd.AddCommand(cli.TokenClientCmds()...)
	return cmd
}

func newTokenCreateCmd(g *globalFlags) *cobra.Command {
	var (
		backend   backendFlags
		user      string
		name      string
		project   string
		expiresIn time.Duration
		edge      bool
	)
	cmd := &cobra.Command{
		Use:   "create --user <id> | --edge",
		Short: "Create an API token for a user (or an edge) and print it once",
		Long: `Create a personal API token for --user, writing straight to the database
(the same --database-url / --data-dir as the server), and print it once on
stdout. This is how the first user of an installation without Supabase gets
a credential; afterwards tokens are made through the API (POST /api/v1/tokens).

Whoever can run this can act as any user: it needs the database's credentials
(or, for the embedded database, its data directory, which a running server
keeps locked — stop the server first). Server administrators are the user ids
in PANELX_ADMIN_USERS; a token of such a user acts as an administrator.

With --edge (instead of --user) it makes a token for ` + "`panelx edge`" + `: it reads every
project's routes and uploaded certificates (keys included) and reaches nothing
else. The server also leaves one in <data-dir>/` + edgeTokenFile + ` on its first start.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case edge && (user != "" || project != ""):
				return errors.New("--edge makes a token of the edges: leave out --user and --project")
			case edge:
				user = authz.EdgeUserID
				if name == "bootstrap" {
					name = "edge"
				}
			case !authz.ValidUserID(user):
				return errors.New("--user: give the user id (the Supabase user id, or any id you choose without Supabase), or --edge")
			}
			if expiresIn < 0 {
				return errors.New("--expires-in must not be negative")
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			defer log.Sync() //nolint:errcheck // best effort on exit
			ctx := cmd.Context()
			st, closeStore, err := backend.open(ctx, log)
			if err != nil {
				return err
			}
			defer closeStore()
			if err := st.Ready(ctx); err != nil {
				return fmt.Errorf("database not ready (run `panelx migrate`): %w", err)
			}
			if project != "" {
				if _, err := st.Projects().Get(ctx, api.Key{Name: project}); errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("--project %q: no such project", project)
				} else if err != nil {
					return err
				}
			}
			plain, hash, err := auth.GenerateAPIToken()
			if err != nil {
				return err
			}
			t := store.APIToken{UserID: user, Name: name, Prefix: auth.TokenPrefix(plain), Hash: hash, Project: project}
			if expiresIn > 0 {
				exp := time.Now().Add(expiresIn).UTC()
				t.ExpiresAt = &exp
			}
			created, err := st.Tokens().Create(ctx, t)
			if err != nil {
				return err
			}
			expiry := "never expires"
			if created.ExpiresAt != nil {
				expiry = "expires " + created.ExpiresAt.Format(time.RFC3339)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "API token %s (%q) for user %s, %s. It is shown once; store it now:\n", created.ID, name, user, expiry)
			_, err = fmt.Fprintln(cmd.OutOrStdout(), plain)
			return err
		},
	}
	env := newEnvFlags(cmd.Flags())
	backend.register(env)
	cmd.Flags().StringVar(&user, "user", "", "user id the token authenticates as (required)")
	cmd.Flags().StringVar(&name, "name", "bootstrap", "a name to recognise the token by")
	cmd.Flags().StringVar(&project, "project", "", "limit the token to this project")
	cmd.Flags().DurationVar(&expiresIn, "expires-in", 0, "lifetime, e.g. 720h (0: no expiry)")
	cmd.Flags().BoolVar(&edge, "edge", false, "a token for `panelx edge` instead of a user's")
	cmd.PreRunE = func(*cobra.Command, []string) error { return env.Err() }
	return cmd
}
