package cli

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/client"
)

func newBuildCmd(conn *connection) *cobra.Command {
	var (
		project string
		follow  bool
		cancel  bool
	)
	cmd := &cobra.Command{
		Use:   "build SERVICE -p PROJECT",
		Short: "Build a service's git ref again and roll it out",
		Long: `Ask for a new build of a service built from source (spec.build): the server
clones the tracked ref (a branch's newest commit), builds the image, tags it by
commit and rolls the service onto it; the running revision keeps serving until
the new one is ready, and keeps serving if the build fails. With -f the build's
log follows until it ends (credentials are redacted).`,
		Example: `  panelx build web -p shop
  panelx build web -p shop -f
  panelx build web -p shop --cancel`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if project == "" {
				return errors.New("give -p PROJECT")
			}
			c, err := conn.client()
			if err != nil {
				return err
			}
			if cancel {
				if err := c.CancelBuild(cmd.Context(), project, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "service/%s/%s: build cancel requested\n", project, args[0])
				return nil
			}
			request, err := c.RequestBuild(cmd.Context(), project, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "service/%s/%s: build requested (%s)\n", project, args[0], request)
			if !follow {
				return nil
			}
			return followBuild(cmd, c, project, args[0], request)
		},
	}
	cmd.Flags().StringVarP(&project, "project", "p", "", "the service's project")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "print the build's log until it ends")
	cmd.Flags().BoolVar(&cancel, "cancel", false, "cancel the queued or running build instead (the running revision keeps serving)")
	return cmd
}

// followBuild waits until the service's newest build answers the request,
// then prints its log as it runs.
func followBuild(cmd *cobra.Command, c *client.Client, project, service, request string) error {
	ctx := cmd.Context()
	stamp, _, _ := strings.Cut(request, " ")
	asked, err := time.Parse(time.RFC3339Nano, stamp)
	if err != nil {
		return fmt.Errorf("the server's build request %q has no time", request)
	}
	for {
		obj, err := c.Get(ctx, api.KindService, project, service)
		if err != nil {
			return err
		}
		// The build answering the request starts after it (queued ones
		// have no start yet).
		if b := obj.(*api.Service).Status.Build; b != nil && b.StartedAt != nil && !b.StartedAt.Before(asked.Truncate(time.Second)) {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(300 * time.Millisecond):
		}
	}
	err = c.BuildLogs(ctx, project, service, true, cmd.OutOrStdout())
	if ctx.Err() != nil {
		return nil
	}
	return err
}
