package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/client"
)

// stoppedReplicasAnnotation keeps the replica count `panelx stop` set to 0,
// for `panelx start` to bring back. The CLI is a client like any other, so
// it may not write under panelx.dev/ (the server's own).
const stoppedReplicasAnnotation = "panelx-cli/stopped-replicas"

// defaultProject is what -p means when it is not given: $PANELX_PROJECT,
// then the project `panelx use` saved.
func defaultProject() string {
	if p := os.Getenv("PANELX_PROJECT"); p != "" {
		return p
	}
	cfg, err := LoadConfig()
	if err != nil {
		return ""
	}
	return cfg.Project
}

// withDefaultProject gives every command with a -p flag (and its
// subcommands) the default project when -p is not on the command line. It
// sets the flag's value without marking it changed, so a command can still
// tell an explicit -p apart.
func withDefaultProject(cmd *cobra.Command) {
	for _, sub := range cmd.Commands() {
		withDefaultProject(sub)
	}
	f := cmd.Flags().Lookup("project")
	if f == nil || cmd.RunE == nil {
		return
	}
	f.Usage += " (default: $PANELX_PROJECT, or the project of panelx use)"
	run := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if !f.Changed {
			if p := defaultProject(); p != "" {
				if err := f.Value.Set(p); err != nil {
					return err
				}
			}
		}
		return run(cmd, args)
	}
}

func newUseCmd(conn *connection) *cobra.Command {
	return &cobra.Command{
		Use:   "use [PROJECT]",
		Short: "Set the project -p defaults to (no argument: show it; \"-\": clear it)",
		Long: `Save a default project, so that -p is not needed on every command. It is
kept with the server and token panelx login saved (a login to another server
clears it); $PANELX_PROJECT overrides it, -p overrides both.`,
		Example: `  panelx use shop
  panelx get services          # the services of shop
  panelx use -                 # no default any more`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := LoadConfig()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(args) == 0 {
				if p := defaultProject(); p != "" {
					fmt.Fprintln(out, p)
					return nil
				}
				return errors.New("no default project: panelx use PROJECT")
			}
			if args[0] == "-" {
				cfg.Project = ""
			} else {
				if errs := api.ValidateName("project", args[0]); len(errs) > 0 {
					return fmt.Errorf("%q is not a project name: %s", args[0], errs[0].Detail)
				}
				// Check it exists and is visible, so a typo fails now, not later.
				c, err := conn.client()
				if err != nil {
					return err
				}
				if _, err := c.Get(cmd.Context(), api.KindProject, "", args[0]); err != nil {
					return fmt.Errorf("project %s: %w", args[0], err)
				}
				cfg.Project = args[0]
			}
			if _, err := SaveConfig(cfg); err != nil {
				return err
			}
			if cfg.Project == "" {
				fmt.Fprintln(out, "no default project")
			} else {
				fmt.Fprintf(out, "default project: %s\n", cfg.Project)
			}
			return nil
		},
	}
}

// updateService reads a service, changes it with change and writes it back
// with the resourceVersion it read; a write that lost a race is tried
// again on the new version. change returns false when there is nothing
// to write.
func updateService(ctx context.Context, c *client.Client, project, name string, change func(*api.Service) (bool, error)) (*api.Service, bool, error) {
	for attempt := 0; ; attempt++ {
		obj, err := c.Get(ctx, api.KindService, project, name)
		if err != nil {
			return nil, false, err
		}
		svc := obj.(*api.Service)
		write, err := change(svc)
		if err != nil || !write {
			return svc, false, err
		}
		out, err := c.Replace(ctx, svc)
		var ae *client.APIError
		if errors.As(err, &ae) && (ae.Status == http.StatusConflict || ae.Status == http.StatusPreconditionFailed) && attempt < 4 {
			continue
		}
		if err != nil {
			return nil, false, err
		}
		return out.(*api.Service), true, nil
	}
}

// replicaCommand builds scale, stop and start: they differ in how they
// change the service and what they say.
type replicaCommand struct {
	use, short, long, example string
	args                      cobra.PositionalArgs
	change                    func(svc *api.Service, args []string) (string, bool, error)
}

func newReplicaCmd(conn *connection, rc replicaCommand, flags func(*pflag.FlagSet)) *cobra.Command {
	var (
		project string
		wait    bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use: rc.use, Short: rc.short, Long: rc.long, Example: rc.example, Args: rc.args,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var what string
			svc, written, err := updateService(ctx, c, project, args[0], func(s *api.Service) (bool, error) {
				var write bool
				var err error
				what, write, err = rc.change(s, args)
				return write, err
			})
			if err != nil {
				return fmt.Errorf("%s: %w", objectRef("service", project, args[0]), err)
			}
			ref := objectRef("service", project, args[0])
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", ref, what)
			if !wait || !written {
				return nil
			}
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			return waitForRollout(ctx, c, []client.ApplyResult{{Kind: api.KindService, Project: project, Name: args[0],
				Generation: svc.Metadata.Generation}}, cmd.OutOrStdout(), timeout)
		},
	}
	cmd.Flags().StringVarP(&project, "project", "p", "", "the service's project")
	cmd.Flags().BoolVarP(&wait, "wait", "w", false, "wait until the service is Ready at the new generation")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "with --wait, how long to wait")
	if flags != nil {
		flags(cmd.Flags())
	}
	return cmd
}

func newScaleCmd(conn *connection) *cobra.Command {
	var replicas int
	return newReplicaCmd(conn, replicaCommand{
		use:   "scale SERVICE --replicas N -p PROJECT",
		short: "Set a service's number of replicas",
		long: `Set spec.replicas of a service (0 to 100), keeping everything else. The
write carries the resourceVersion it read, so a concurrent change is never
overwritten (it is read again and retried).`,
		example: `  panelx scale web --replicas 3 -p shop --wait`,
		args:    cobra.ExactArgs(1),
		change: func(svc *api.Service, _ []string) (string, bool, error) {
			if replicas < 0 || replicas > api.MaxReplicas {
				return "", false, fmt.Errorf("--replicas %d: want 0 to %d", replicas, api.MaxReplicas)
			}
			if svc.Spec.ReplicaCount() == int32(replicas) {
				return fmt.Sprintf("already has %d replica(s)", replicas), false, nil
			}
			n := int32(replicas)
			svc.Spec.Replicas = &n
			delete(svc.Metadata.Annotations, stoppedReplicasAnnotation)
			return fmt.Sprintf("scaled to %d replica(s)", replicas), true, nil
		},
	}, func(fs *pflag.FlagSet) {
		fs.IntVar(&replicas, "replicas", -1, "the number of replicas")
	})
}

func newStopCmd(conn *connection) *cobra.Command {
	return newReplicaCmd(conn, replicaCommand{
		use:   "stop SERVICE -p PROJECT",
		short: "Stop a service: 0 replicas, keeping its spec (panelx start brings it back)",
		long: `Scale a service to 0 replicas, remembering its count in the annotation
` + stoppedReplicasAnnotation + `. Its spec, volumes and domains stay; panelx start
brings back as many replicas as it had.`,
		example: `  panelx stop web -p shop
  panelx start web -p shop --wait`,
		args: cobra.ExactArgs(1),
		change: func(svc *api.Service, _ []string) (string, bool, error) {
			n := svc.Spec.ReplicaCount()
			if n == 0 {
				return "already stopped", false, nil
			}
			if svc.Metadata.Annotations == nil {
				svc.Metadata.Annotations = map[string]string{}
			}
			svc.Metadata.Annotations[stoppedReplicasAnnotation] = strconv.Itoa(int(n))
			zero := int32(0)
			svc.Spec.Replicas = &zero
			return fmt.Sprintf("stopped (had %d replica(s))", n), true, nil
		},
	}, nil)
}

func newStartCmd(conn *connection) *cobra.Command {
	return newReplicaCmd(conn, replicaCommand{
		use:     "start SERVICE -p PROJECT",
		short:   "Start a stopped service with the replicas it had",
		long:    `Bring a service stopped by panelx stop back to the replica count it had (1 if it was scaled to 0 some other way).`,
		example: `  panelx start web -p shop --wait`,
		args:    cobra.ExactArgs(1),
		change: func(svc *api.Service, _ []string) (string, bool, error) {
			if svc.Spec.ReplicaCount() > 0 {
				return fmt.Sprintf("already running (%d replica(s))", svc.Spec.ReplicaCount()), false, nil
			}
			n := int32(1)
			if v, err := strconv.Atoi(svc.Metadata.Annotations[stoppedReplicasAnnotation]); err == nil && v > 0 && v <= api.MaxReplicas {
				n = int32(v)
			}
			delete(svc.Metadata.Annotations, stoppedReplicasAnnotation)
			svc.Spec.Replicas = &n
			return fmt.Sprintf("started with %d replica(s)", n), true, nil
		},
	}, nil)
}

func newRestartCmd(conn *connection) *cobra.Command {
	return newReplicaCmd(conn, replicaCommand{
		use:   "restart SERVICE -p PROJECT",
		short: "Replace every replica of a service in a rolling update, changing nothing else",
		long: `Set spec.restartedAt to now: it is part of the replicas' configuration, so the
controller replaces them one by one as in any rollout (start-first where the
service's rollout says so, each new replica Ready before an old one stops; the
edge moves traffic without dropping a request) and records a revision.`,
		example: `  panelx restart web -p shop --wait`,
		args:    cobra.ExactArgs(1),
		change: func(svc *api.Service, _ []string) (string, bool, error) {
			if svc.Spec.ReplicaCount() == 0 {
				return "", false, errors.New("it has no replicas to restart (panelx start brings a stopped service back)")
			}
			now := time.Now().UTC().Truncate(time.Second)
			if prev, err := time.Parse(time.RFC3339, svc.Spec.RestartedAt); err == nil && !now.After(prev) {
				now = prev.Add(time.Second) // two restarts in one second are two restarts
			}
			svc.Spec.RestartedAt = now.Format(time.RFC3339)
			return fmt.Sprintf("restarting (%d replica(s))", svc.Spec.ReplicaCount()), true, nil
		},
	}, nil)
}

func newVersionCmd(conn *connection, clientVersion string) *cobra.Command {
	var clientOnly bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of this binary and of the server it talks to",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "client: %s\n", clientVersion)
			if clientOnly {
				return nil
			}
			c, err := conn.client()
			if err != nil {
				fmt.Fprintf(out, "server: unknown (%v)\n", err)
				return nil
			}
			v, err := c.Version(cmd.Context())
			if err != nil {
				return fmt.Errorf("server: %w", err)
			}
			fmt.Fprintf(out, "server: panelx %s (commit %s, built %s, %s)\n", v.Version, v.Commit, v.Date, v.Go)
			return nil
		},
	}
	cmd.Flags().BoolVar(&clientOnly, "client", false, "only this binary's version (no server needed)")
	return cmd
}

func newEventsCmd(conn *connection) *cobra.Command {
	var (
		project, output string
		all             bool
		limit           int
	)
	cmd := &cobra.Command{
		Use:   "events [SERVICE] -p PROJECT",
		Short: "Show a project's events (or one service's), newest first",
		Example: `  panelx events -p shop
  panelx events web -p shop
  panelx events -A`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, err := conn.client()
			if err != nil {
				return err
			}
			var kind api.Kind
			name := ""
			if len(args) == 1 {
				kind, name = api.KindService, args[0]
			}
			projects := []string{project}
			if all {
				if projects, err = projectNames(cmd.Context(), c); err != nil {
					return err
				}
			} else if project == "" {
				return errors.New("events belong to a project: give -p PROJECT (or -A for all)")
			}
			var evs []api.Event
			for _, p := range projects {
				got, err := c.Events(cmd.Context(), p, kind, name, limit)
				if err != nil {
					return fmt.Errorf("events of %s: %w", p, err)
				}
				evs = append(evs, got...)
			}
			return printEvents(cmd.OutOrStdout(), evs, output)
		},
	}
	cmd.Flags().StringVarP(&project, "project", "p", "", "the project")
	cmd.Flags().BoolVarP(&all, "all-projects", "A", false, "every project you can see")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table, yaml or json")
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many events per project")
	return cmd
}

// projectNames lists the projects the caller sees.
func projectNames(ctx context.Context, c *client.Client) ([]string, error) {
	objs, err := c.List(ctx, api.KindProject, "", "")
	if err != nil {
		return nil, err
	}
	names := make([]string, len(objs))
	for i, o := range objs {
		names[i] = o.GetMeta().Name
	}
	return names, nil
}

func newDescribeCmd(conn *connection) *cobra.Command {
	var project string
	cmd := &cobra.Command{
		Use:   "describe service|project NAME [-p PROJECT]",
		Short: "Show a service (or project) in one view: spec, status, conditions, replicas, recent events",
		Example: `  panelx describe service web -p shop
  panelx describe project shop`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, err := parseKind(args[0])
			if err != nil {
				return err
			}
			if kind != api.KindService && kind != api.KindProject {
				return fmt.Errorf("describe shows services and projects; for %ss use get -o yaml", strings.ToLower(string(kind)))
			}
			c, err := conn.client()
			if err != nil {
				return err
			}
			name := args[1]
			if kind == api.KindProject {
				project = name
			}
			obj, err := c.Get(cmd.Context(), kind, project, name)
			if err != nil {
				return err
			}
			evs, err := c.Events(cmd.Context(), project, kind, name, 10)
			if err != nil {
				return fmt.Errorf("events: %w", err)
			}
			return describe(cmd.OutOrStdout(), obj, evs, time.Now())
		},
	}
	cmd.Flags().StringVarP(&project, "project", "p", "", "the service's project")
	return cmd
}

// describe writes one object as kubectl describe does: a few aligned
// sections a person reads top to bottom.
func describe(w io.Writer, obj api.Object, evs []api.Event, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	m := obj.GetMeta()
	line := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, orDash(v)) }
	line("Name", m.Name)
	if m.Project != "" {
		line("Project", m.Project)
	}
	line("Created", humanAge(m.CreationTimestamp)+" ago")
	if len(m.Labels) > 0 {
		line("Labels", joinMap(m.Labels))
	}
	if m.DeletionTimestamp != nil {
		line("Deleting", "since "+humanAge(*m.DeletionTimestamp))
	}
	var conds []api.Condition
	switch v := obj.(type) {
	case *api.Service:
		st := v.Status
		line("Image", v.Spec.Image)
		if st.ImageID != "" {
			line("Image ID", st.ImageID)
		}
		line("Replicas", fmt.Sprintf("%d desired, %d ready", v.Spec.ReplicaCount(), st.ReadyReplicas))
		line("Phase", string(st.Phase))
		gen := fmt.Sprintf("%d (observed %d)", m.Generation, st.ObservedGeneration)
		if st.ObservedGeneration < m.Generation {
			gen = fmt.Sprintf("%d (applying; the controller has seen %d)", m.Generation, st.ObservedGeneration)
		}
		line("Generation", gen)
		if n, ok := m.Annotations[stoppedReplicasAnnotation]; ok {
			line("Stopped", "by panelx stop; panelx start brings back "+n+" replica(s)")
		}
		var ports []string
		for _, p := range v.Spec.Ports {
			s := strconv.Itoa(int(p.ContainerPort))
			if p.HostPort != 0 {
				s = fmt.Sprintf("%s:%d→%d", orDefault(p.HostIP, "0.0.0.0"), p.HostPort, p.ContainerPort)
			}
			ports = append(ports, s)
		}
		if len(ports) > 0 {
			line("Ports", strings.Join(ports, ", "))
		}
		for _, d := range st.Domains {
			state := "routed"
			if !d.Routed {
				state = "not routed: " + d.Reason
			}
			line("Domain", d.Host+d.Path+" ("+state+")")
		}
		conds = st.Conditions
		if err := tw.Flush(); err != nil {
			return err
		}
		if len(st.Replicas) > 0 {
			fmt.Fprintln(w, "\nReplicas:")
			rt := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
			fmt.Fprintln(rt, "  INDEX\tSTATE\tHEALTH\tRESTARTS\tSTARTED\tCONTAINER\tMESSAGE")
			for _, r := range st.Replicas {
				started := "-"
				if r.StartedAt != nil {
					started = humanAge(*r.StartedAt) + " ago"
				}
				fmt.Fprintf(rt, "  %d\t%s\t%s\t%d\t%s\t%s\t%s\n", r.Index, orDash(r.State), orDash(r.Health), r.Restarts, started,
					orDash(shortID(r.ContainerID)), orDash(r.Message))
			}
			if err := rt.Flush(); err != nil {
				return err
			}
		}
	case *api.Project:
		line("Domain", v.Spec.Domain)
		line("Phase", string(v.Status.Phase))
		line("Services", fmt.Sprintf("%d ready of %d", v.Status.Services.Ready, v.Status.Services.Total))
		conds = v.Status.Conditions
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(conds) > 0 {
		fmt.Fprintln(w, "\nConditions:")
		ct := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
		fmt.Fprintln(ct, "  TYPE\tSTATUS\tREASON\tSINCE\tMESSAGE")
		for _, c := range conds {
			since := "-"
			if !c.LastTransitionTime.IsZero() {
				since = humanAge(c.LastTransitionTime) + " ago"
			}
			fmt.Fprintf(ct, "  %s\t%s\t%s\t%s\t%s\n", c.Type, c.Status, orDash(c.Reason), since, orDash(c.Message))
		}
		if err := ct.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintln(w, "\nEvents:")
	if len(evs) == 0 {
		fmt.Fprintln(w, "  none")
		return nil
	}
	et := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(et, "  LAST SEEN\tTYPE\tREASON\tCOUNT\tMESSAGE")
	for _, e := range evs {
		fmt.Fprintf(et, "  %s\t%s\t%s\t%d\t%s\n", humanAge(e.LastTimestamp), e.Type, e.Reason, e.Count, e.Message)
	}
	return et.Flush()
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func joinMap(m map[string]string) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

func newTopCmd(conn *connection) *cobra.Command {
	var (
		project  string
		watch    bool
		interval time.Duration
	)
	cmd := &cobra.Command{
		Use:   "top [SERVICE] -p PROJECT",
		Short: "Show CPU, memory and I/O of a project's containers (or one service's), from the live metrics stream",
		Long: `Show each running container's CPU (% of one core, like docker stats), memory
and network and block I/O rates, read from the project's live metrics stream
(what the server's collector sampled; no Docker call). -w keeps printing one
table per interval until Ctrl-C.`,
		Example: `  panelx top -p shop
  panelx top web -p shop -w --interval 5s`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if project == "" {
				return errors.New("give -p PROJECT")
			}
			c, err := conn.client()
			if err != nil {
				return err
			}
			service := ""
			if len(args) == 1 {
				service = args[0]
			}
			out := cmd.OutOrStdout()
			// The first message may come before the collector sampled a new
			// container; a table of nothing is shown only after a few tries.
			empty := 0
			return c.Stats(cmd.Context(), project, interval, func(m client.StatsMessage) error {
				var rows []client.ContainerStats
				for _, s := range m.Containers {
					if service == "" || s.Service == service {
						rows = append(rows, s)
					}
				}
				if len(rows) == 0 && !watch && empty < 3 {
					empty++
					return nil
				}
				if watch {
					fmt.Fprintf(out, "%s\n", m.Time.Local().Format(time.TimeOnly))
				}
				if err := printTop(out, rows); err != nil {
					return err
				}
				if !watch {
					return client.ErrStop
				}
				fmt.Fprintln(out)
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&project, "project", "p", "", "the project")
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "print a table every interval until Ctrl-C")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "with -w, how often (whole seconds, 1s to 60s)")
	return cmd
}

func printTop(w io.Writer, rows []client.ContainerStats) error {
	slices.SortFunc(rows, func(a, b client.ContainerStats) int { return strings.Compare(a.Name, b.Name) })
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tREPLICA\tCPU %\tMEMORY\tMEM %\tNET RX/s\tNET TX/s\tBLOCK R/s\tBLOCK W/s")
	for _, s := range rows {
		limit := "-"
		if s.MemoryLimitBytes > 0 {
			limit = fmt.Sprintf("%.1f", s.MemoryPercent)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Service, s.Replica, s.CPUPercent, bytesIEC(float64(s.MemoryUsedBytes)), limit,
			bytesIEC(s.NetworkRxBytesPerSecond), bytesIEC(s.NetworkTxBytesPerSecond), bytesIEC(s.BlockReadBytesPerSecond), bytesIEC(s.BlockWriteBytesPerSecond))
	}
	return tw.Flush()
}

// bytesIEC formats a byte count as docker stats does: 1.5MiB.
func bytesIEC(b float64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%.0fB", b)
	}
	div, exp := float64(unit), 0
	for n := b / unit; n >= unit && exp < 4; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", b/div, "KMGTP"[exp])
}
