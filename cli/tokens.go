package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/panelx/panelx/client"
)

// TokenClientCmds are `panelx token list` and `panelx token revoke`: your
// own API tokens, through the API (cmd/panelx adds them beside the
// database-side `token create`).
func TokenClientCmds() []*cobra.Command {
	conn := &connection{}
	var output string
	list := &cobra.Command{
		Use:   "list",
		Short: "List your API tokens through the API (never their secret)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, err := conn.client()
			if err != nil {
				return err
			}
			toks, err := c.Tokens(cmd.Context())
			if err != nil {
				return err
			}
			if output != "table" {
				return printValue(cmd.OutOrStdout(), toks, output)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tPREFIX\tPROJECT\tCREATED\tLAST USED\tEXPIRES")
			for _, t := range toks {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, orDash(t.Name), t.Prefix, orDash(t.Project),
					humanAge(t.CreatedAt)+" ago", ago(t.LastUsedAt), until(t.ExpiresAt))
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVarP(&output, "output", "o", "table", "table, yaml or json")
	revoke := &cobra.Command{
		Use:   "revoke ID|NAME",
		Short: "Revoke one of your API tokens (by id, or by name when it is unique)",
		Long: `Revoke one of your API tokens through the API. It stops working on every
server within a second.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.client()
			if err != nil {
				return err
			}
			toks, err := c.Tokens(cmd.Context())
			if err != nil {
				return err
			}
			var match []client.APIToken
			for _, t := range toks {
				if t.ID == args[0] || t.Name == args[0] {
					match = append(match, t)
				}
			}
			switch len(match) {
			case 0:
				return fmt.Errorf("no token of yours has the id or name %q (panelx token list shows them)", args[0])
			case 1:
			default:
				var ids []string
				for _, t := range match {
					ids = append(ids, t.ID)
				}
				return fmt.Errorf("%d tokens are named %q: give the id (%s)", len(match), args[0], strings.Join(ids, ", "))
			}
			if err := c.RevokeToken(cmd.Context(), match[0].ID); err != nil {
				return fmt.Errorf("revoke %s: %w", match[0].ID, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "token %s (%s) revoked\n", match[0].ID, orDash(match[0].Name))
			return nil
		},
	}
	for _, c := range []*cobra.Command{list, revoke} {
		conn.register(c)
	}
	return []*cobra.Command{list, revoke}
}

func ago(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return humanAge(*t) + " ago"
}

func until(t *time.Time) string {
	if t == nil {
		return "never"
	}
	if d := time.Until(*t); d > 0 {
		return "in " + d.Round(time.Minute).String()
	}
	return "expired"
}
