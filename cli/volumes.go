package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newVolumesCmd(conn *connection) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "volumes [purge NAME...]",
		Short: "List the Docker volumes that outlived their Volume (retained data), and purge them",
		Long: `A Volume deleted with reclaimPolicy Retain, or a project deleted without
--purge-volumes, leaves its Docker volume and data behind: a Volume of the same
name in the same project finds it again. panelx volumes lists those you may
purge (server administrators: all; others: those of their projects), and
panelx volumes purge removes one for good.`,
		Example: `  panelx volumes
  panelx volumes purge panelx-shop-data`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, err := conn.client()
			if err != nil {
				return err
			}
			vols, err := c.RetainedVolumes(cmd.Context())
			if err != nil {
				return err
			}
			if output != "table" {
				return printValue(cmd.OutOrStdout(), vols, output)
			}
			if len(vols) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no retained volumes")
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "NAME\tPROJECT\tVOLUME\tCREATED\tUSED BY")
			for _, v := range vols {
				project := v.Project
				if !v.ProjectExists {
					project += " (deleted)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v.Name, project, v.Volume, humanAge(v.CreatedAt)+" ago", orDash(strings.Join(v.UsedBy, ",")))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table, yaml or json")
	purge := &cobra.Command{
		Use:   "purge NAME...",
		Short: "Remove retained Docker volumes and their data, for good",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.client()
			if err != nil {
				return err
			}
			for _, name := range args {
				if err := c.PurgeVolume(cmd.Context(), name); err != nil {
					return fmt.Errorf("purge %s: %w", name, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "volume %s purged\n", name)
			}
			return nil
		},
	}
	cmd.AddCommand(purge)
	return cmd
}
