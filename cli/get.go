package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/client"
)

// checkOutput refuses an -o the printers do not know.
func checkOutput(output string) error {
	if output != "table" && output != "yaml" && output != "json" {
		return fmt.Errorf("-o %q: want table, yaml or json", output)
	}
	return nil
}

// parseKind accepts project(s), service(s), volume(s), secret(s) in any
// case.
func parseKind(s string) (api.Kind, error) {
	switch strings.TrimSuffix(strings.ToLower(s), "s") {
	case "project":
		return api.KindProject, nil
	case "service", "svc":
		return api.KindService, nil
	case "volume":
		return api.KindVolume, nil
	case "secret":
		return api.KindSecret, nil
	}
	return "", fmt.Errorf("unknown kind %q: want projects, services, volumes or secrets", s)
}

func newGetCmd(conn *connection) *cobra.Command {
	var (
		project    string
		output     string
		watch      bool
		selector   string
		showValues bool
		all        bool
	)
	cmd := &cobra.Command{
		Use:   "get projects|services|volumes|secrets|events|domains [NAME]",
		Short: "Show resources, a project's events, or the domains the edge serves",
		Long: `Show resources as a table (or -o yaml|json), a project's events, or the
domains the edge serves.

Secrets show their keys and version, never their values. Owners and admins of
the project can read one secret's values with --show-values (printed as
KEY=VALUE lines; every read is recorded as an event of the project).`,
		Example: `  panelx get projects
  panelx get services -p shop
  panelx get service web -p shop -o yaml
  panelx get secrets -p shop
  panelx get secret db -p shop --show-values
  panelx get events -p shop
  panelx get domains            # every domain of every project you see
  panelx get services -p shop -w`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, err := conn.client()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			name := ""
			if len(args) == 2 {
				name = args[1]
			}
			if strings.HasPrefix(strings.ToLower(args[0]), "domain") {
				if watch {
					return fmt.Errorf("get domains does not watch; use get services -w")
				}
				return printDomains(cmd.Context(), c, out, project, name, output)
			}
			projects := []string{project}
			if all {
				if watch || name != "" || showValues {
					return errors.New("-A lists every project's objects: no NAME, -w or --show-values with it")
				}
				if projects, err = projectNames(cmd.Context(), c); err != nil {
					return err
				}
			}
			if strings.HasPrefix(strings.ToLower(args[0]), "event") {
				if project == "" && !all {
					return fmt.Errorf("events belong to a project: give -p PROJECT (or -A for all)")
				}
				var evs []api.Event
				for _, p := range projects {
					got, err := c.Events(cmd.Context(), p, "", name, 0)
					if err != nil {
						return err
					}
					evs = append(evs, got...)
				}
				return printEvents(out, evs, output)
			}
			kind, err := parseKind(args[0])
			if err != nil {
				return err
			}
			if all && kind != api.KindProject {
				var objs []api.Object
				for _, p := range projects {
					got, err := c.List(cmd.Context(), kind, p, selector)
					if err != nil {
						return fmt.Errorf("list the %ss of %s: %w", strings.ToLower(string(kind)), p, err)
					}
					objs = append(objs, got...)
				}
				return printObjectsAcross(out, objs, kind, output)
			}
			if showValues {
				if kind != api.KindSecret || name == "" || watch {
					return errors.New("--show-values reads the values of one secret: get secret NAME -p PROJECT --show-values")
				}
				data, err := c.SecretData(cmd.Context(), project, name)
				if err != nil {
					return fmt.Errorf("read the values of %s: %w", objectRef("secret", project, name), err)
				}
				return printSecretData(out, data, output)
			}
			if kind == api.KindProject && name == "" && cmd.Flags().Changed("project") {
				name = project
			}
			if watch {
				return watchObjects(cmd.Context(), c, out, kind, project, name)
			}
			var objs []api.Object
			if name != "" {
				obj, err := c.Get(cmd.Context(), kind, project, name)
				if err != nil {
					return err
				}
				objs = []api.Object{obj}
			} else if objs, err = c.List(cmd.Context(), kind, project, selector); err != nil {
				return err
			}
			return printObjects(out, objs, kind, output, name != "")
		},
	}
	cmd.Flags().StringVarP(&project, "project", "p", "", "the project")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table, yaml or json")
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "after the current state, print every change")
	cmd.Flags().StringVarP(&selector, "selector", "l", "", "label selector, e.g. tier=front,env!=prod")
	cmd.Flags().BoolVarP(&all, "all-projects", "A", false, "the objects (or events) of every project you can see")
	cmd.Flags().BoolVar(&showValues, "show-values", false, "get secret NAME: print its values (owners and admins; recorded as an event)")
	return cmd
}

func printObjects(w io.Writer, objs []api.Object, kind api.Kind, output string, single bool) error {
	switch output {
	case "yaml":
		data, err := api.MarshalYAMLStream(objs)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	case "json":
		var v any = objs
		if single && len(objs) == 1 {
			v = objs[0]
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, tableHeader(kind))
	for _, o := range objs {
		fmt.Fprintln(tw, tableRow(o))
	}
	return tw.Flush()
}

// printObjectsAcross is printObjects with a PROJECT column in tables.
func printObjectsAcross(w io.Writer, objs []api.Object, kind api.Kind, output string) error {
	if output != "table" {
		return printObjects(w, objs, kind, output, false)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "PROJECT\t"+tableHeader(kind))
	for _, o := range objs {
		fmt.Fprintln(tw, o.GetMeta().Project+"\t"+tableRow(o))
	}
	return tw.Flush()
}

func tableHeader(kind api.Kind) string {
	switch kind {
	case api.KindProject:
		return "NAME\tSERVICES\tPHASE\tAGE"
	case api.KindService:
		return "NAME\tIMAGE\tREADY\tPHASE\tMESSAGE\tAGE"
	case api.KindSecret:
		return "NAME\tKEYS\tVERSION\tAGE"
	default:
		return "NAME\tRECLAIM\tPHASE\tAGE"
	}
}

func tableRow(o api.Object) string {
	m := o.GetMeta()
	age := humanAge(m.CreationTimestamp)
	switch v := o.(type) {
	case *api.Project:
		return fmt.Sprintf("%s\t%d/%d\t%s\t%s", m.Name, v.Status.Services.Ready, v.Status.Services.Total, orDash(string(v.Status.Phase)), age)
	case *api.Service:
		msg := ""
		if d := api.FindCondition(v.Status.Conditions, api.ConditionDegraded); d != nil && d.Status == api.ConditionTrue {
			msg = d.Message
		} else if p := api.FindCondition(v.Status.Conditions, api.ConditionProgressing); p != nil && p.Status == api.ConditionTrue {
			msg = p.Message
		}
		msg = keepEnd(msg, 80)
		return fmt.Sprintf("%s\t%s\t%d/%d\t%s\t%s\t%s", m.Name, v.Spec.Image, v.Status.ReadyReplicas, v.Spec.ReplicaCount(),
			orDash(string(v.Status.Phase)), orDash(msg), age)
	case *api.Volume:
		return fmt.Sprintf("%s\t%s\t%s\t%s", m.Name, v.Spec.ReclaimPolicy, orDash(string(v.Status.Phase)), age)
	case *api.Secret:
		keys := strings.Join(v.Spec.Keys, ",")
		if len(keys) > 60 {
			keys = keys[:57] + "..."
		}
		return fmt.Sprintf("%s\t%s\t%d\t%s", m.Name, orDash(keys), v.Spec.Version, age)
	}
	return m.Name
}

// keepEnd shortens s to at most n bytes from its end: an error chain says
// its cause last ("pull x: …: manifest unknown"), so that is what stays.
func keepEnd(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := len(s) - (n - 3)
	for cut < len(s) && !utf8.RuneStart(s[cut]) {
		cut++
	}
	return "..." + s[cut:]
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func humanAge(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func printEvents(w io.Writer, evs []api.Event, output string) error {
	switch output {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(evs)
	case "yaml":
		data, err := api.MarshalYAML(evs)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "LAST SEEN\tTYPE\tREASON\tOBJECT\tCOUNT\tMESSAGE")
	for _, e := range evs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", humanAge(e.LastTimestamp), e.Type, e.Reason,
			strings.ToLower(string(e.Kind))+"/"+e.Name, e.Count, e.Message)
	}
	return tw.Flush()
}

// watchObjects prints a table row for the current state, then one per change.
func watchObjects(ctx context.Context, c *client.Client, w io.Writer, kind api.Kind, project, name string) error {
	f := client.WatchFilter{Project: project, Kind: kind, Name: name}
	if kind == api.KindProject {
		f.Project = name
	}
	events, errs, err := c.Watch(ctx, f)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "EVENT\t"+tableHeader(kind))
	for ev := range events {
		if ev.Type == "SYNCED" || ev.Kind != kind {
			tw.Flush()
			continue
		}
		obj := ev.Object
		if obj == nil {
			return fmt.Errorf("watch: %s event without an object", ev.Type)
		}
		fmt.Fprintln(tw, ev.Type+"\t"+tableRow(obj))
		tw.Flush()
	}
	if err := <-errs; err != nil {
		return err
	}
	return nil
}

// domainRow is one hostname of a service, as get domains shows it.
type domainRow struct {
	Project     string                 `json:"project"`
	Service     string                 `json:"service"`
	Host        string                 `json:"host"`
	Path        string                 `json:"path,omitempty"`
	Routed      bool                   `json:"routed"`
	Reason      string                 `json:"reason,omitempty"`
	Certificate *api.CertificateStatus `json:"certificate,omitempty"`
}

// printDomains lists the domains of a project's services (every project's
// the caller sees when project is empty), from their status: routed or
// not and why, and where each certificate is. name narrows to one service.
func printDomains(ctx context.Context, c *client.Client, w io.Writer, project, name, output string) error {
	projects := []string{project}
	if project == "" {
		list, err := c.List(ctx, api.KindProject, "", "")
		if err != nil {
			return err
		}
		projects = projects[:0]
		for _, p := range list {
			projects = append(projects, p.GetMeta().Name)
		}
	}
	var rows []domainRow
	for _, p := range projects {
		svcs, err := c.List(ctx, api.KindService, p, "")
		if err != nil {
			return err
		}
		for _, o := range svcs {
			s := o.(*api.Service)
			if name != "" && s.Metadata.Name != name {
				continue
			}
			for i, d := range s.Spec.Domains {
				row := domainRow{Project: p, Service: s.Metadata.Name, Host: d.Host, Path: d.Path, Reason: "not reconciled yet"}
				if i < len(s.Status.Domains) {
					st := s.Status.Domains[i]
					row.Host, row.Routed, row.Reason, row.Certificate = st.Host, st.Routed, st.Reason, st.Certificate
				}
				if row.Host == "" {
					row.Host = "<" + s.Metadata.Name + ".project domain>"
				}
				rows = append(rows, row)
			}
		}
	}
	switch output {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if rows == nil {
			rows = []domainRow{}
		}
		return enc.Encode(rows)
	case "yaml":
		data, err := api.MarshalYAML(rows)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "HOST\tPATH\tPROJECT\tSERVICE\tROUTED\tCERTIFICATE\tEXPIRES\tMESSAGE")
	for _, r := range rows {
		cert, expires, msg := "-", "-", r.Reason
		if c := r.Certificate; c != nil {
			cert = string(c.State)
			if c.Source == "custom" {
				cert += " (uploaded)"
			}
			if c.NotAfter != nil {
				expires = c.NotAfter.Format("2006-01-02")
			}
			if msg == "" && c.State != api.CertificateIssued {
				msg = c.Message
			}
		}
		if len(msg) > 80 {
			msg = msg[:77] + "..."
		}
		routed := "no"
		if r.Routed {
			routed = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Host, orDash(r.Path), r.Project, r.Service, routed, cert, expires, orDash(msg))
	}
	return tw.Flush()
}
