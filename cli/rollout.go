package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/client"
)

// reasonDeadlineExceeded is the condition reason of a rollout that missed
// spec.rollout.progressDeadline: the only failure that ends a wait, as
// with kubectl (a crash-looping replica may still recover in time).
const reasonDeadlineExceeded = "ProgressDeadlineExceeded"

func newRolloutCmd(conn *connection) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollout status|history|undo SERVICE -p PROJECT",
		Short: "Follow a service's rollout, list its revisions, or go back to one",
		Long: `Every change of what a service's containers run (image, command, environment,
the values of the secrets it uses, …) is recorded by the controller as a
numbered revision, and rolled out replica by replica. A rollout is complete
when every replica runs the new revision and is ready; it fails when that
takes longer than spec.rollout.progressDeadline (default 5m), and then the
previous revision keeps serving (and, with spec.rollout.autoRollback, the
service goes back to it).`,
		Example: `  panelx rollout status web -p shop --watch
  panelx rollout history web -p shop
  panelx rollout history web -p shop --revision 3
  panelx rollout undo web -p shop --to-revision 3`,
	}
	cmd.AddCommand(newRolloutStatusCmd(conn), newRolloutHistoryCmd(conn), newRolloutUndoCmd(conn))
	return cmd
}

func newRolloutStatusCmd(conn *connection) *cobra.Command {
	var (
		project string
		watch   bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "status SERVICE -p PROJECT [--watch] [--timeout 5m]",
		Short: "Show where a service's rollout is; with --watch, wait for it to finish",
		Long: `Print the service's current revision, its ready replicas and where its rollout
is: waiting for the controller, rolling out, complete, or failed (the revision
missed its progress deadline).

With --watch it follows the service until the rollout is complete (exit 0) or
has failed (exit 1, saying why), like ` + "`kubectl rollout status`" + `. A replica that
crashes or fails its health check does not end the wait by itself: the rollout
fails only at its deadline. --timeout bounds the wait (0: no bound); past it
the exit status is 1 as well.

Without --watch the exit status is 1 only for a failed rollout.`,
		Example: `  panelx rollout status web -p shop
  panelx apply -f shop.yaml && panelx rollout status web -p shop -w --timeout 10m`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if project == "" {
				return errors.New("give -p PROJECT")
			}
			if timeout < 0 {
				return errors.New("--timeout must not be negative")
			}
			c, err := conn.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			name, out := args[0], cmd.OutOrStdout()
			obj, err := c.Get(ctx, api.KindService, project, name)
			if err != nil {
				return fmt.Errorf("read service %s: %w", objectRef("service", project, name), err)
			}
			p := &rolloutPrinter{out: out}
			done, err := p.observe(obj.(*api.Service))
			if done || err != nil || !watch {
				return err
			}
			wctx, cancel := ctx, context.CancelFunc(func() {})
			if timeout > 0 {
				wctx, cancel = context.WithTimeout(ctx, timeout)
			}
			defer cancel()
			err = watchRollout(wctx, c, p, project, name, cmd.ErrOrStderr())
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				return &ExitError{Code: 1, Err: fmt.Errorf("timed out after %s waiting for the rollout of %s (%s)",
					timeout, objectRef("service", project, name), p.last)}
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&project, "project", "p", "", "the service's project")
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "wait until the rollout is complete or has failed")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "with --watch, how long to wait at most (0: no limit)")
	return cmd
}

// rolloutState is where a service's rollout is.
type rolloutState int

const (
	rolloutPending     rolloutState = iota // the controller has not seen the change yet
	rolloutProgressing                     // replicas are being replaced or are not ready yet
	rolloutComplete                        // Ready at the current generation and revision
	rolloutFailed                          // the revision missed its progress deadline
)

// rolloutStateOf says where a service's rollout is, in a line for people,
// and for a failed one why.
func rolloutStateOf(svc *api.Service) (state rolloutState, line, why string) {
	st, gen := &svc.Status, svc.Metadata.Generation
	rev := "the change"
	if n := st.Rollout.Revision; n > 0 {
		rev = fmt.Sprintf("revision %d", n)
	}
	replicas := fmt.Sprintf("%d/%d replicas ready", st.ReadyReplicas, svc.Spec.ReplicaCount())
	atGen := func(c *api.Condition) bool {
		return c != nil && c.Status == api.ConditionTrue && c.ObservedGeneration >= gen
	}
	ready := api.FindCondition(st.Conditions, api.ConditionReady)
	degraded := api.FindCondition(st.Conditions, api.ConditionDegraded)
	progressing := api.FindCondition(st.Conditions, api.ConditionProgressing)
	switch {
	case svc.Metadata.DeletionTimestamp != nil:
		return rolloutFailed, "being deleted", "the service is being deleted"
	case st.ObservedGeneration < gen:
		return rolloutPending, fmt.Sprintf("waiting for the controller to pick up generation %d", gen), ""
	case atGen(degraded) && degraded.Reason == reasonDeadlineExceeded:
		why := degraded.Message
		if svc.Spec.Rollout.AutoRollback && st.Rollout.ReadyRevision > 0 && st.Rollout.ReadyRevision != st.Rollout.Revision {
			why += fmt.Sprintf(" (autoRollback: going back to revision %d)", st.Rollout.ReadyRevision)
		}
		return rolloutFailed, fmt.Sprintf("%s failed: %s, %s", rev, reasonDeadlineExceeded, replicas), why
	case atGen(ready) && st.Rollout.StartedAt == nil:
		return rolloutComplete, fmt.Sprintf("%s rolled out, %s", rev, replicas), ""
	}
	// The most telling detail: what is wrong, else what is awaited.
	detail := ""
	switch {
	case atGen(degraded):
		detail = degraded.Message
	case progressing != nil && progressing.Message != "":
		detail = progressing.Message
	case ready != nil:
		detail = ready.Message
	}
	msg := fmt.Sprintf("%s rolling out: %s", rev, replicas)
	if detail != "" && detail != replicas {
		msg += " (" + detail + ")"
	}
	return rolloutProgressing, msg, ""
}

// rolloutPrinter prints a service's rollout state when it changes: plain
// lines, no cursor tricks, so it reads the same in a terminal and a CI log.
type rolloutPrinter struct {
	out  io.Writer
	last string
}

// observe prints the service's state and says whether the wait is over;
// a failed rollout is an error (exit status 1).
func (p *rolloutPrinter) observe(svc *api.Service) (bool, error) {
	state, line, why := rolloutStateOf(svc)
	ref := objectRef("service", svc.Metadata.Project, svc.Metadata.Name)
	if line != p.last {
		p.last = line
		fmt.Fprintf(p.out, "%s: %s\n", ref, line)
	}
	switch state {
	case rolloutComplete:
		return true, nil
	case rolloutFailed:
		return true, &ExitError{Code: 1, Err: fmt.Errorf("rollout of %s failed: %s", ref, why)}
	}
	return false, nil
}

// watchRollout follows the service on the watch stream until its rollout
// ends or ctx does (its error). A stream the server ends (a restart) is
// opened again: the wait is the user's, not the connection's.
func watchRollout(ctx context.Context, c *client.Client, p *rolloutPrinter, project, name string, stderr io.Writer) error {
	ref := objectRef("service", project, name)
	for {
		done, err := watchRolloutOnce(ctx, c, p, project, name)
		if done || ctx.Err() != nil {
			if err == nil && !done {
				err = ctx.Err()
			}
			return err
		}
		var ae *client.APIError
		if errors.As(err, &ae) && ae.Status/100 == 4 {
			return err // refused, not interrupted: retrying changes nothing
		}
		fmt.Fprintf(stderr, "watching %s: %v; watching again\n", ref, err)
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// watchRolloutOnce follows one watch stream: the service's current state,
// then every change.
func watchRolloutOnce(ctx context.Context, c *client.Client, p *rolloutPrinter, project, name string) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the stream's reader when the wait ends first
	events, errs, err := c.Watch(ctx, client.WatchFilter{Project: project, Kind: api.KindService, Name: name})
	if err != nil {
		return false, err
	}
	seen := false
	for ev := range events {
		switch ev.Type {
		case "SYNCED":
			if !seen {
				return true, fmt.Errorf("%s not found", objectRef("service", project, name))
			}
		case "ERROR": // the server ends the stream after it
			return false, fmt.Errorf("watch: %s", ev.Message)
		case "DELETED":
			return true, &ExitError{Code: 1, Err: fmt.Errorf("%s was deleted during its rollout", objectRef("service", project, name))}
		case "ADDED", "MODIFIED":
			svc, ok := ev.Object.(*api.Service)
			if !ok || svc.Metadata.Name != name {
				continue
			}
			seen = true
			if done, err := p.observe(svc); done || err != nil {
				return done, err
			}
		}
	}
	return false, <-errs
}

func newRolloutHistoryCmd(conn *connection) *cobra.Command {
	var (
		project  string
		revision int64
		output   string
	)
	cmd := &cobra.Command{
		Use:   "history SERVICE -p PROJECT [--revision N]",
		Short: "List a service's revisions, or show one",
		Long: `List the revisions the controller recorded for a service, newest first: when
each was created and first became ready, who made the change and what it
changed, and the image it ran (pinned by digest when it came from a registry).
The revision the service runs now is marked (current); while it is not ready,
the last one that was is marked (last ready).

Only the newest spec.rollout.revisionHistoryLimit revisions (default 10) are
kept. With --revision N, print that revision in full: its spec (secret
references, never values), image, the versions of the secrets it used and why
it exists.`,
		Example: `  panelx rollout history web -p shop
  panelx rollout history web -p shop --revision 3
  panelx rollout history web -p shop -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if project == "" {
				return errors.New("give -p PROJECT")
			}
			if err := checkOutput(output); err != nil {
				return err
			}
			c, err := conn.client()
			if err != nil {
				return err
			}
			ctx, name, out := cmd.Context(), args[0], cmd.OutOrStdout()
			ref := objectRef("service", project, name)
			var revs []api.Revision
			if revision > 0 {
				rev, err := c.Revision(ctx, project, name, revision)
				if err != nil {
					return fmt.Errorf("read revision %d of %s: %w", revision, ref, err)
				}
				revs = []api.Revision{*rev}
			} else if revision < 0 {
				return errors.New("--revision: revisions are numbered from 1")
			} else if revs, err = c.Revisions(ctx, project, name); err != nil {
				return fmt.Errorf("list the revisions of %s: %w", ref, err)
			}
			if output != "table" {
				var v any = revs
				if revision > 0 {
					v = revs[0]
				}
				return printValue(out, v, output)
			}
			obj, err := c.Get(ctx, api.KindService, project, name)
			if err != nil {
				return fmt.Errorf("read %s: %w", ref, err)
			}
			ro := obj.(*api.Service).Status.Rollout
			if revision > 0 {
				return printRevision(out, &revs[0], ro)
			}
			if len(revs) == 0 {
				fmt.Fprintf(out, "%s has no revisions yet: the controller records one once it knows the image\n", ref)
				return nil
			}
			return printRevisions(out, revs, ro)
		},
	}
	cmd.Flags().StringVarP(&project, "project", "p", "", "the service's project")
	cmd.Flags().Int64Var(&revision, "revision", 0, "show this revision in full")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table, yaml or json")
	return cmd
}

// revisionMark notes the revision the service runs, or last ran ready.
func revisionMark(n int64, ro api.RolloutStatus) string {
	switch {
	case n == ro.Revision:
		return " (current)"
	case n == ro.ReadyRevision:
		return " (last ready)"
	}
	return ""
}

func printRevisions(w io.Writer, revs []api.Revision, ro api.RolloutStatus) error {
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "REVISION\tCREATED\tREADY\tBY\tCHANGE\tIMAGE")
	for _, r := range revs {
		change := describeCause(r.Cause)
		if len(change) > 60 {
			change = change[:57] + "..."
		}
		fmt.Fprintf(tw, "%d%s\t%s\t%s\t%s\t%s\t%s\n", r.Number, revisionMark(r.Number, ro), formatTime(&r.CreatedAt), formatTime(r.ReadyAt),
			orDash(r.Cause.By), orDash(change), shortImage(revisionImage(&r)))
	}
	return tw.Flush()
}

func printRevision(w io.Writer, r *api.Revision, ro api.RolloutStatus) error {
	spec, err := api.MarshalYAML(r.Spec)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Revision:\t%d%s\n", r.Number, revisionMark(r.Number, ro))
	fmt.Fprintf(tw, "Service:\t%s\n", objectRef("service", r.Project, r.Service))
	fmt.Fprintf(tw, "Created:\t%s\n", formatTime(&r.CreatedAt))
	fmt.Fprintf(tw, "Ready:\t%s\n", formatTime(r.ReadyAt))
	fmt.Fprintf(tw, "By:\t%s\n", orDash(r.Cause.By))
	fmt.Fprintf(tw, "Cause:\t%s\n", orDash(describeCause(r.Cause)))
	fmt.Fprintf(tw, "Image:\t%s\n", orDash(revisionImage(r)))
	fmt.Fprintf(tw, "Image ID:\t%s\n", orDash(r.ImageID))
	secrets := make([]string, 0, len(r.SecretVersions))
	for _, name := range slices.Sorted(maps.Keys(r.SecretVersions)) {
		secrets = append(secrets, fmt.Sprintf("%s (version %d)", name, r.SecretVersions[name]))
	}
	fmt.Fprintf(tw, "Secrets:\t%s\n", orDash(strings.Join(secrets, ", ")))
	fmt.Fprintf(tw, "Template hash:\t%s\n", orDash(r.TemplateHash))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "Spec:")
	for _, line := range strings.Split(strings.TrimRight(string(spec), "\n"), "\n") {
		fmt.Fprintf(w, "  %s\n", line)
	}
	return nil
}

// describeCause is what changed, and the note on why: "env GREETING
// (rollback to revision 1)".
func describeCause(c api.RevisionCause) string {
	s := strings.Join(c.Fields, ", ")
	switch {
	case s == "":
		return c.Message
	case c.Message != "":
		return s + " (" + c.Message + ")"
	}
	return s
}

// revisionImage is the image a revision ran: pinned by digest when known.
func revisionImage(r *api.Revision) string {
	if r.ImageDigest != "" {
		return r.ImageDigest
	}
	return r.Spec.Image
}

// shortImage cuts a digest to 12 hex digits for tables, like docker does.
func shortImage(ref string) string {
	repo, digest, ok := strings.Cut(ref, "@sha256:")
	if !ok || len(digest) <= 12 {
		return ref
	}
	return repo + "@sha256:" + digest[:12]
}

func formatTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func newRolloutUndoCmd(conn *connection) *cobra.Command {
	var (
		project string
		to      int64
	)
	cmd := &cobra.Command{
		Use:   "undo SERVICE -p PROJECT [--to-revision N]",
		Short: "Put a service back on an earlier revision",
		Long: `Put the service back on the template of an earlier revision: by default the
newest one before the current that ran something else, or --to-revision N.
Its image is pinned to the digest that revision ran, so a tag moved since
changes nothing. Replicas, domains, dependencies and rollout settings stay as
they are now, and so do the values of the secrets it uses (an undo does not
bring back a rotated credential).

The rollback is a change like any other: it is rolled out (follow it with
` + "`panelx rollout status -w`" + `) and recorded as a new revision.`,
		Example: `  panelx rollout undo web -p shop
  panelx rollout undo web -p shop --to-revision 3 && panelx rollout status web -p shop -w`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if project == "" {
				return errors.New("give -p PROJECT")
			}
			if to < 0 {
				return errors.New("--to-revision: revisions are numbered from 1")
			}
			c, err := conn.client()
			if err != nil {
				return err
			}
			name := args[0]
			ref := objectRef("service", project, name)
			svc, err := c.Rollback(cmd.Context(), project, name, to)
			if err != nil {
				return fmt.Errorf("roll back %s: %w", ref, err)
			}
			// The server says which revision it chose in the change cause.
			target := to
			var n int64
			if _, err := fmt.Sscanf(svc.Metadata.Annotations[api.AnnotationChangeCause], "rollback to revision %d", &n); err == nil {
				target = n
			}
			what := "an earlier revision"
			if target > 0 {
				what = fmt.Sprintf("revision %d", target)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s rolled back to %s (image %s)\n", ref, what, svc.Spec.Image)
			return nil
		},
	}
	cmd.Flags().StringVarP(&project, "project", "p", "", "the service's project")
	cmd.Flags().Int64Var(&to, "to-revision", 0, "the revision to go back to (default: the one before the current)")
	return cmd
}

// printValue writes v as indented JSON or as YAML.
func printValue(w io.Writer, v any, output string) error {
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	data, err := api.MarshalYAML(v)
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}
