package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/client"
)

func newBackupCmd(conn *connection) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup create|list|restore VOLUME -p PROJECT",
		Short: "Back a volume up now, list its backups, or restore one",
		Long: `A volume with spec.backup is backed up on its schedule to its target (a local
directory of the server, or an S3 bucket), and on request. Each run is recorded
with its start, end, size, SHA-256, target and object key; a backup is
Succeeded only after its archive was read back from the target and matched.

A restore verifies the whole archive first (checksum, decryption, structure),
then stops the services that use the volume, replaces its contents, and starts
them again. Restoring into the volume itself needs --overwrite; --to restores
into another volume of the project (a new one is created).`,
		Example: `  panelx backup create data -p shop --wait
  panelx backup list data -p shop
  panelx backup restore data -p shop --from 3f9a0c1d2b4e5f60 --overwrite --wait
  panelx backup restore data -p shop --from 3f9a0c1d2b4e5f60 --to data-copy`,
	}
	cmd.AddCommand(newBackupCreateCmd(conn), newBackupListCmd(conn), newBackupRestoreCmd(conn))
	return cmd
}

func newBackupCreateCmd(conn *connection) *cobra.Command {
	var (
		project string
		wait    bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "create VOLUME -p PROJECT [--wait]",
		Short: "Back the volume up now to its spec.backup target",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.client()
			if err != nil {
				return err
			}
			if project == "" {
				return errors.New("name the volume's project with -p")
			}
			run, err := c.CreateBackup(cmd.Context(), project, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "backup %s of volume %s requested\n", run.ID, args[0])
			if !wait {
				return nil
			}
			return waitRun(cmd.Context(), c, cmd.OutOrStdout(), run, timeout)
		},
	}
	cmd.Flags().StringVarP(&project, "project", "p", "", "the volume's project")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the run ends; exit 1 when it failed")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Hour, "with --wait, how long to wait")
	return cmd
}

func newBackupListCmd(conn *connection) *cobra.Command {
	var (
		project, output, op string
		limit               int
	)
	cmd := &cobra.Command{
		Use:   "list VOLUME -p PROJECT",
		Short: "List the volume's backup, restore and move runs, newest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.client()
			if err != nil {
				return err
			}
			if project == "" {
				return errors.New("name the volume's project with -p")
			}
			runs, err := c.Backups(cmd.Context(), project, args[0], api.BackupOp(op), limit)
			if err != nil {
				return err
			}
			if output != "table" {
				return printValue(cmd.OutOrStdout(), runs, output)
			}
			if len(runs) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no backups")
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "ID\tOP\tTRIGGER\tPHASE\tSTARTED\tDURATION\tSIZE\tSHA256\tREASON")
			for _, r := range runs {
				started, dur := "-", "-"
				if r.StartedAt != nil {
					started = humanAge(*r.StartedAt) + " ago"
					if r.FinishedAt != nil {
						dur = r.FinishedAt.Sub(*r.StartedAt).Round(100 * time.Millisecond).String()
					}
				}
				phase := string(r.Phase)
				if r.Pruned != nil {
					phase += " (pruned)"
				}
				size, sum := "-", "-"
				if r.Bytes > 0 {
					size = humanSize(r.Bytes)
				}
				if len(r.SHA256) >= 12 {
					sum = r.SHA256[:12]
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Op, r.Trigger, phase, started, dur, size, sum, orDash(oneLine(r.Reason)))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&project, "project", "p", "", "the volume's project")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table, yaml or json")
	cmd.Flags().StringVar(&op, "op", "", "only backup, restore or move runs")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many (default 100)")
	return cmd
}

func newBackupRestoreCmd(conn *connection) *cobra.Command {
	var (
		project, from, to, identity string
		overwrite, wait             bool
		timeout                     time.Duration
	)
	cmd := &cobra.Command{
		Use:   "restore VOLUME -p PROJECT --from BACKUP [--overwrite | --to VOLUME]",
		Short: "Restore a backup of the volume into it or into another volume",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.client()
			if err != nil {
				return err
			}
			if project == "" || from == "" {
				return errors.New("name the volume's project with -p and the backup with --from (panelx backup list)")
			}
			req := api.RestoreRequest{Backup: from, ToVolume: to, Overwrite: overwrite}
			if identity != "" {
				name, key, ok := strings.Cut(identity, "/")
				if !ok || name == "" || key == "" {
					return errors.New("--identity-secret is SECRET/KEY")
				}
				req.IdentitySecret = &api.SecretKeySelector{Name: name, Key: key}
			}
			run, err := c.Restore(cmd.Context(), project, args[0], req)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "restore %s of backup %s requested\n", run.ID, from)
			if !wait {
				return nil
			}
			return waitRun(cmd.Context(), c, cmd.OutOrStdout(), run, timeout)
		},
	}
	cmd.Flags().StringVarP(&project, "project", "p", "", "the volume's project")
	cmd.Flags().StringVar(&from, "from", "", "the ID of the backup to restore")
	cmd.Flags().StringVar(&to, "to", "", "restore into this volume of the project instead (created when missing)")
	cmd.Flags().BoolVar(&overwrite, "overwrite", false, "replace the contents of the volume restored into (required for the volume itself)")
	cmd.Flags().StringVar(&identity, "identity-secret", "", "SECRET/KEY of the project holding the age identity of an encrypted backup (default: spec.backup.encryption.identitySecret)")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the run ends; exit 1 when it failed")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Hour, "with --wait, how long to wait")
	return cmd
}

// waitRun polls a run until it ends and reports how.
func waitRun(ctx context.Context, c *client.Client, w io.Writer, run *api.BackupRun, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for !run.Phase.Finished() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("run %s is still %s after %v", run.ID, run.Phase, timeout)
		case <-time.After(500 * time.Millisecond):
		}
		var err error
		if run, err = c.Backup(ctx, run.Project, run.Volume, run.ID); err != nil {
			return err
		}
	}
	nodes := ""
	if run.Move != nil {
		nodes = fmt.Sprintf(" (%s → %s)", orDash(run.Move.From), run.Move.Node)
	}
	if run.Phase != api.BackupSucceeded {
		return fmt.Errorf("%s %s %s%s: %s", run.Op, run.ID, run.Phase, nodes, run.Reason)
	}
	switch {
	case run.Op == api.BackupOpBackup:
		fmt.Fprintf(w, "backup %s Succeeded: %s, sha256 %s, %s %s\n", run.ID, humanSize(run.Bytes), run.SHA256, run.Target, run.Key)
	case run.Op == api.BackupOpMove && run.Move != nil:
		fmt.Fprintf(w, "move %s Succeeded: %s → %s, %d files, %s, sha256 %s\n", run.ID, orDash(run.Move.From), run.Move.Node,
			run.Move.Files, humanSize(run.Bytes), run.SHA256)
	default:
		fmt.Fprintf(w, "%s %s Succeeded\n", run.Op, run.ID)
	}
	return nil
}

func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}
