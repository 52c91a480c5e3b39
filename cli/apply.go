package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/panelx/panelx/client"
)

func newApplyCmd(conn *connection) *cobra.Command {
	var (
		files        []string
		copts        composeOptions
		opts         client.ApplyOptions
		wait         bool
		timeout      time.Duration
		pruneVolumes bool
	)
	cmd := &cobra.Command{
		Use:   "apply -f FILE|DIR|-",
		Short: "Create or update resources from manifests (or a Compose file)",
		Long: `Send manifests (YAML or JSON; Project, Secret, Service and Volume documents)
to the server, which validates them all and writes them in one transaction:
all or nothing. Re-applying the same manifests changes nothing.

A Secret document's spec.data (key: value) is sealed by the server and never
shown again; the output and diffs name its keys and version only. Secrets are
never pruned. To keep values out of manifests, use ` + "`panelx create secret`" + `.

A Docker Compose file (docker-compose.yml, compose.yaml, or any file with a
top-level "services:" and no apiVersion) is converted first; see
` + "`panelx convert`" + `. A service whose build: context is a directory of this
machine is built by the server from an upload of that directory (honouring its
.dockerignore, at most the server's PANELX_MAX_BUILD_CONTEXT): apply uploads a
context the project does not hold yet, and an unchanged one is not sent again.

--prune deletes the services of the applied projects that the manifests no
longer contain (and their volumes with --prune-volumes). --wait follows the
rollout until every applied service is Ready at its new generation, and exits
non-zero at once when one turns Degraded or --timeout passes.`,
		Example: `  panelx apply -f shop.yaml
  panelx apply -f deploy/ --prune --wait --timeout 5m
  cat shop.yaml | panelx apply -f -
  panelx apply -f docker-compose.yml --wait`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.client()
			if err != nil {
				return err
			}
			copts.local = &localBuilds{}
			manifests, sources, err := loadManifests(files, cmd.InOrStdin(), cmd.ErrOrStderr(), copts)
			if err != nil {
				return err
			}
			opts.PruneVolumes = pruneVolumes
			if pruneVolumes {
				opts.Prune = true
			}
			ctx := cmd.Context()
			if !opts.DryRun {
				if err := copts.local.ensureProjects(ctx, c, manifests); err != nil {
					return err
				}
				if err := copts.local.upload(ctx, c, cmd.ErrOrStderr()); err != nil {
					return err
				}
			}
			results, err := c.Apply(ctx, manifests, opts)
			if err != nil {
				return hintBindMounts(nameDocuments(err, sources), sources)
			}
			printResults(cmd.OutOrStdout(), results, opts.DryRun, true)
			if !wait || opts.DryRun {
				return nil
			}
			wctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			return waitForRollout(wctx, c, results, cmd.OutOrStdout(), timeout)
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "manifest file, directory, or - for stdin (repeatable)")
	copts.register(cmd)
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "show what would change without changing anything")
	cmd.Flags().BoolVar(&opts.Prune, "prune", false, "delete services of the applied projects that the manifests no longer contain")
	cmd.Flags().BoolVar(&pruneVolumes, "prune-volumes", false, "with --prune, delete volumes (and their data) too")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until every applied service is Ready")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "how long --wait waits")
	return cmd
}

func newDiffCmd(conn *connection) *cobra.Command {
	var (
		files []string
		copts composeOptions
	)
	cmd := &cobra.Command{
		Use:   "diff -f FILE|DIR|-",
		Short: "Show what applying manifests would change",
		Long: `Ask the server what applying the manifests would change, without changing
anything. Exit status: 0 when nothing would change, 1 when something would,
2 on error (like kubectl diff).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.client()
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			copts.local = &localBuilds{} // named by digest, not uploaded
			manifests, sources, err := loadManifests(files, cmd.InOrStdin(), cmd.ErrOrStderr(), copts)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			results, err := c.Apply(cmd.Context(), manifests, client.ApplyOptions{DryRun: true})
			if err != nil {
				return &ExitError{Code: 2, Err: nameDocuments(err, sources)}
			}
			changed := false
			for _, r := range results {
				if r.Action != "unchanged" {
					changed = true
				}
			}
			printResults(cmd.OutOrStdout(), results, false, false)
			if changed {
				return &ExitError{Code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "manifest file, directory, or - for stdin (repeatable)")
	copts.register(cmd)
	return cmd
}

// printResults writes one line per object, kubectl-style, with its diff
// indented below. diff prints only what changes.
func printResults(w io.Writer, results []client.ApplyResult, dryRun, showUnchanged bool) {
	suffix := ""
	if dryRun {
		suffix = " (dry run)"
	}
	for _, r := range results {
		if r.Action == "unchanged" && !showUnchanged {
			continue
		}
		fmt.Fprintf(w, "%s %s%s\n", objectRef(string(r.Kind), r.Project, r.Name), r.Action, suffix)
		if r.Diff != "" && r.Action != "created" {
			for _, line := range strings.Split(r.Diff, "\n") {
				fmt.Fprintf(w, "    %s\n", line)
			}
		}
	}
}

// objectRef names an object as "service/shop/web" or "project/shop".
func objectRef(kind, project, name string) string {
	k := strings.ToLower(kind)
	if project == "" || k == "project" {
		return k + "/" + name
	}
	return k + "/" + project + "/" + name
}
