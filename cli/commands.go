package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/client"
)

// Commands returns the client commands, sharing --server and --token.
func Commands(clientVersion string) []*cobra.Command {
	conn := &connection{}
	cmds := []*cobra.Command{
		newUseCmd(conn),
		newVersionCmd(conn, clientVersion),
		newDescribeCmd(conn),
		newEventsCmd(conn),
		newScaleCmd(conn),
		newStopCmd(conn),
		newStartCmd(conn),
		newRestartCmd(conn),
		newTopCmd(conn),
		newVolumesCmd(conn),
		newCpCmd(conn),
		newEditCmd(conn),
		newLoginCmd(conn),
		newApplyCmd(conn),
		newDiffCmd(conn),
		newGetCmd(conn),
		newCreateCmd(conn),
		newDeleteCmd(conn),
		newRolloutCmd(conn),
		newBackupCmd(conn),
		newLogsCmd(conn),
		newBuildCmd(conn),
		newExecCmd(conn),
	}
	for _, c := range cmds {
		conn.register(c)
		withDefaultProject(c)
	}
	return append(cmds, newConvertCmd())
}

func newLoginCmd(conn *connection) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "login --server URL",
		Short: "Save the server URL and a token for the other commands",
		Long: `Check a token against the server and save both in the user's config
(` + "`panelx/config.json`" + ` in the user config directory, readable by its owner only;
$PANELX_CONFIG overrides the path). The token is read from --token, from
PANELX_TOKEN, or from standard input (so it stays out of the shell history).
Create a token in the dashboard, with POST /api/v1/tokens, or on the server
with ` + "`panelx token create`" + `.`,
		Example: `  panelx login --server https://panel.example.com < token.txt
  echo "$PANELX_TOKEN" | panelx login --server http://localhost:8080`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if conn.server == "" {
				return errors.New("give --server URL")
			}
			token := first(conn.token, getenv("PANELX_TOKEN"))
			if token == "" {
				fmt.Fprintln(cmd.ErrOrStderr(), "token: ")
				line, err := bufio.NewReader(io.LimitReader(cmd.InOrStdin(), 64<<10)).ReadString('\n')
				if err != nil && line == "" {
					return fmt.Errorf("read the token from stdin: %w", err)
				}
				token = strings.TrimSpace(line)
			}
			c, err := client.New(conn.server, token)
			if err != nil {
				return err
			}
			user, err := c.Ping(cmd.Context())
			switch {
			case client.IsUnauthorized(err):
				return fmt.Errorf("the server refused the token: %w", err)
			case err != nil:
				return fmt.Errorf("cannot log in to %s: %w", conn.server, err)
			}
			cfg, err := LoadConfig()
			if err != nil {
				return err
			}
			if cfg.Server != conn.server {
				cfg.Project = "" // a default project belongs to its server
			}
			cfg.Server, cfg.Token = conn.server, token
			path, err := SaveConfig(cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "logged in to %s as %s (saved in %s)\n", conn.server, user, path)
			return nil
		},
	}
	return cmd
}

func newDeleteCmd(conn *connection) *cobra.Command {
	var (
		files   []string
		project string
		purge   bool
		wait    bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "delete (-f FILE|DIR | KIND NAME -p PROJECT)",
		Short: "Delete resources named in manifests, or one by kind and name",
		Long: `Delete resources. Deletion is two-phase: the server marks them and the
controller removes their containers (and, for a project, its network) before
the record goes. A volume's data goes only when the Volume itself is deleted,
or with a project delete that passes --purge-volumes. A secret's values go
with it: services still referring to it report SecretNotFound until it is back
or they stop referring to it.`,
		Example: `  panelx delete -f shop.yaml
  panelx delete service web -p shop
  panelx delete secret db -p shop
  panelx delete project shop --purge-volumes --wait`,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.client()
			if err != nil {
				return err
			}
			type target struct {
				kind          api.Kind
				project, name string
			}
			var targets []target
			switch {
			case len(files) > 0 && len(args) > 0:
				return errors.New("give either -f or KIND NAME, not both")
			case len(files) > 0:
				ins, err := readInputs(files, cmd.InOrStdin())
				if err != nil {
					return err
				}
				objs, err := api.ParseManifests(joinDocuments(ins))
				if err != nil {
					return err
				}
				for _, o := range objs {
					k := api.KeyOf(o)
					targets = append(targets, target{o.GetKind(), k.Project, k.Name})
				}
				// Services before what they use before projects: the reverse
				// of creation.
				order := map[api.Kind]int{api.KindService: 0, api.KindSecret: 1, api.KindVolume: 2, api.KindProject: 3}
				slices.SortStableFunc(targets, func(a, b target) int { return order[a.kind] - order[b.kind] })
			case len(args) == 2:
				kind, err := parseKind(args[0])
				if err != nil {
					return err
				}
				targets = []target{{kind, project, args[1]}}
			default:
				return errors.New("give -f FILE, or KIND NAME (with -p PROJECT for services, volumes and secrets)")
			}
			for _, t := range targets {
				err := c.Delete(cmd.Context(), t.kind, t.project, t.name, client.DeleteOptions{PurgeVolumes: purge && t.kind == api.KindProject})
				if client.IsNotFound(err) && len(files) > 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "%s not found\n", objectRef(string(t.kind), t.project, t.name))
					continue
				}
				if err != nil {
					return fmt.Errorf("delete %s: %w", objectRef(string(t.kind), t.project, t.name), err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s deleted\n", objectRef(string(t.kind), t.project, t.name))
			}
			if !wait {
				return nil
			}
			// Deletion is two-phase: the record goes once the controller has
			// removed what the object owned.
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			for _, t := range targets {
				for {
					_, err := c.Get(ctx, t.kind, t.project, t.name)
					if client.IsNotFound(err) {
						break
					}
					if ctx.Err() != nil {
						return &ExitError{Code: 1, Err: fmt.Errorf("timed out after %s waiting for %s to go", timeout, objectRef(string(t.kind), t.project, t.name))}
					}
					if err != nil {
						return err
					}
					select {
					case <-ctx.Done():
					case <-time.After(300 * time.Millisecond):
					}
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s gone\n", objectRef(string(t.kind), t.project, t.name))
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&wait, "wait", "w", false, "wait until the controller has removed what each object owned and its record is gone")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "with --wait, how long to wait")
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "manifest file, directory, or - for stdin (repeatable)")
	cmd.Flags().StringVarP(&project, "project", "p", "", "the project of the service, volume or secret")
	cmd.Flags().BoolVar(&purge, "purge-volumes", false, "deleting a project: remove its volumes' data too")
	return cmd
}
