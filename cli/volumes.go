package cli

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newVolumesCmd(conn *connection) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "volumes [purge NAME... | move VOLUME -p PROJECT --node NODE]",
		Aliases: []string{"volume"},
		Short:   "List the Docker volumes that outlived their Volume (retained data), purge them, or move a volume to another node",
		Long: `A Volume deleted with reclaimPolicy Retain, or a project deleted without
--purge-volumes, leaves its Docker volume and data behind: a Volume of the same
name in the same project finds it again. panelx volumes lists those you may
purge (server administrators: all; others: those of their projects), and
panelx volumes purge removes one for good.

On Docker Swarm, panelx volume move copies a volume's data to another node
(see panelx volume move --help).`,
		Example: `  panelx volumes
  panelx volumes purge panelx-shop-data
  panelx volume move data -p shop --node worker-2 --wait`,
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
	cmd.AddCommand(purge, newVolumeMoveCmd(conn))
	return cmd
}

func newVolumeMoveCmd(conn *connection) *cobra.Command {
	var (
		project, node string
		wait          bool
		timeout       time.Duration
	)
	cmd := &cobra.Command{
		Use:   "move VOLUME -p PROJECT --node NODE [--wait]",
		Short: "Move a volume's data to another node of the swarm",
		Long: `On Docker Swarm a volume's data lives on one node, and the services that mount
it run on that node only. move takes the data to NODE (its hostname, as
docker node ls shows it):

  1. the services that mount the volume are stopped (scaled to 0): they are
     down for the whole copy;
  2. the data is copied from the node it is on to NODE;
  3. the services start again, on NODE, with the replicas they had.

The copy on the old node stays there, untouched: remove it by hand
(docker volume rm on that node) once the volume works on NODE. A move onto a
node that still holds such a copy is refused (nothing is mixed): remove the
copy there first. The server needs PANELX_SWARM_HELPER_IMAGE, an image of
panelx every node can pull, which runs the copy on both nodes.

A move is recorded as a run of the volume, like a backup or restore, and
never runs beside one of them: panelx backup list VOLUME -p PROJECT --op move
lists the moves. With --wait the command waits for the run to end and prints
the nodes, the files and bytes copied and the archive's SHA-256, or why it
failed (exit 1).`,
		Example: `  panelx volume move data -p shop --node worker-2
  panelx volume move data -p shop --node worker-2 --wait`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if project == "" || node == "" {
				return errors.New("name the volume's project with -p and the node to move it to with --node (docker node ls)")
			}
			c, err := conn.client()
			if err != nil {
				return err
			}
			run, err := c.MoveVolume(cmd.Context(), project, args[0], node)
			if err != nil {
				return err
			}
			from := "its node"
			if run.Move != nil && run.Move.From != "" {
				from = run.Move.From
			}
			fmt.Fprintf(cmd.OutOrStdout(), "move %s of volume %s requested: %s → %s\n", run.ID, args[0], from, node)
			if !wait {
				return nil
			}
			return waitRun(cmd.Context(), c, cmd.OutOrStdout(), run, timeout)
		},
	}
	cmd.Flags().StringVarP(&project, "project", "p", "", "the volume's project")
	cmd.Flags().StringVar(&node, "node", "", "the node to move the data to: its hostname, as docker node ls shows it")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the run ends; exit 1 when it failed")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Hour, "with --wait, how long to wait")
	return cmd
}
