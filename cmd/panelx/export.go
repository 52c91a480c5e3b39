package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"
	"github.com/spf13/cobra"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/seal"
	"github.com/panelx/panelx/store"
)

func newExportCmd(g *globalFlags) *cobra.Command {
	var (
		backend    backendFlags
		output     string
		project    string
		secrets    bool
		recipients []string
		keyFile    string
	)
	cmd := &cobra.Command{
		Use:   "export [-o FILE] [--project P]",
		Short: "Write every project as manifests, to move to another server",
		Long: `Read the database (the embedded one in --data-dir, or PostgreSQL with
--database-url) and write every project, volume and service as manifests —
spec and labels, no status — that ` + "`panelx apply -f`" + ` loads into another server,
typically when moving from the embedded store to PostgreSQL:

  panelx export -o shop.yaml            # stop the server first: the embedded store is locked while it runs
  panelx apply -f shop.yaml --server https://new.example.com

Literal environment values are in the manifests, so the file is written
readable by its owner only. Secrets are exported as references only (their
names and keys, in comments) unless --secrets is given: then their values are
in the stream too, and the whole file is encrypted with age
(https://age-encryption.org) to the --age-recipient keys; decrypt it with
` + "`age -d -i key.txt shop.yaml.age | panelx apply -f -`" + `. What manifests do not
carry is listed in comments at the top: project members (add them again with
PUT /api/v1/projects/{project}/members/{userId}) and registry credentials
(their passwords are never exported; set them again with PUT
/api/v1/projects/{project}/registry-credentials/{registry}).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			st, closeStore, err := backend.open(ctx, log)
			if err != nil {
				return err
			}
			defer closeStore()
			if err := st.Ready(ctx); err != nil {
				return fmt.Errorf("database not ready: %w", err)
			}
			var opener *seal.Keyring
			var rcpts []age.Recipient
			if secrets {
				if len(recipients) == 0 {
					return errors.New("--secrets writes secret values: name who may read them with --age-recipient (an age public key, age1…)")
				}
				for _, r := range recipients {
					rc, err := age.ParseX25519Recipient(r)
					if err != nil {
						return fmt.Errorf("--age-recipient %q: %w", r, err)
					}
					rcpts = append(rcpts, rc)
				}
				if opener = loadKeyring(keyFile, &backend, log); opener == nil {
					return errors.New("--secrets needs the master key file (--secret-key-file)")
				}
			}
			var w io.Writer = cmd.OutOrStdout()
			if output != "" && output != "-" {
				f, err := os.OpenFile(output, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
				if err != nil {
					return err
				}
				defer f.Close()
				w = f
			}
			var enc io.WriteCloser
			if secrets {
				armor := armor.NewWriter(w)
				defer armor.Close()
				if enc, err = age.Encrypt(armor, rcpts...); err != nil {
					return err
				}
				w = enc
			}
			n, err := exportManifests(ctx, st, project, opener, w)
			if err != nil {
				return err
			}
			if enc != nil {
				if err := enc.Close(); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "exported %d object(s)\n", n)
			return nil
		},
	}
	env := newEnvFlags(cmd.Flags())
	backend.register(env)
	cmd.Flags().StringVarP(&output, "output", "o", "", "file to write (default: standard output)")
	cmd.Flags().StringVar(&project, "project", "", "export only this project")
	cmd.Flags().BoolVar(&secrets, "secrets", false, "include the secrets' values; the output is then encrypted with age")
	cmd.Flags().StringArrayVar(&recipients, "age-recipient", nil, "with --secrets: an age public key (age1…) that may decrypt the export (repeatable)")
	env.String(&keyFile, "secret-key-file", "PANELX_SECRET_KEY_FILE", "", "with --secrets: the master key file (default with the embedded database: <data-dir>/"+secretKeyFile+")")
	cmd.PreRunE = func(*cobra.Command, []string) error { return env.Err() }
	return cmd
}

// exportManifests writes the projects (all, or one) with their volumes and
// services as a manifest stream, and returns how many objects it wrote.
// With opener, secrets are written with their values; without, as notes.
func exportManifests(ctx context.Context, st store.Store, only string, opener *seal.Keyring, w io.Writer) (int, error) {
	var projects []*api.Project
	opts := store.ListOptions{}
	if only != "" {
		opts.Projects = []string{only}
	}
	if err := store.Each(ctx, st.Projects(), opts, func(p *api.Project) { projects = append(projects, p) }); err != nil {
		return 0, err
	}
	if only != "" && len(projects) == 0 {
		return 0, fmt.Errorf("no project %q", only)
	}
	var objs []api.Object
	var notes []string
	for _, p := range projects {
		if p.Metadata.DeletionTimestamp != nil {
			notes = append(notes, fmt.Sprintf("project %s is being deleted: left out", p.Metadata.Name))
			continue
		}
		objs = append(objs, manifestOf(p))
		name := p.Metadata.Name
		popts := store.ListOptions{Project: name}
		if err := store.Each(ctx, st.Volumes(), popts, func(v *api.Volume) {
			if v.Metadata.DeletionTimestamp == nil {
				objs = append(objs, manifestOf(v))
			}
		}); err != nil {
			return 0, err
		}
		var secretErr error
		if err := store.Each(ctx, st.Secrets(), popts, func(s *api.Secret) {
			if s.Metadata.DeletionTimestamp != nil || secretErr != nil {
				return
			}
			if opener == nil {
				notes = append(notes, fmt.Sprintf("project %s secret %s (keys %s; version %d): values not exported (export --secrets, or create it again)",
					name, s.Metadata.Name, strings.Join(s.Spec.Keys, ", "), s.Spec.Version))
				return
			}
			data, err := opener.OpenSecret(seal.SecretContext(name, s.Metadata.Name), s.Spec.Sealed)
			if err != nil {
				secretErr = fmt.Errorf("open secret %s/%s: %s", name, s.Metadata.Name, seal.Describe(err))
				return
			}
			m := manifestOf(s)
			m.Spec = api.SecretSpec{Data: data}
			objs = append(objs, m)
		}); err != nil {
			return 0, err
		}
		if secretErr != nil {
			return 0, secretErr
		}
		if err := store.Each(ctx, st.Services(), popts, func(s *api.Service) {
			if s.Metadata.DeletionTimestamp == nil {
				objs = append(objs, manifestOf(s))
			}
		}); err != nil {
			return 0, err
		}
		members, err := st.Members().List(ctx, name)
		if err != nil {
			return 0, err
		}
		var ms []string
		for _, m := range members {
			ms = append(ms, m.UserID+"="+string(m.Role))
		}
		if len(ms) > 0 {
			notes = append(notes, fmt.Sprintf("project %s members (not in manifests; the one who applies becomes owner): %s", name, strings.Join(ms, ", ")))
		}
		creds, err := st.RegistryCredentials().List(ctx, name)
		if err != nil {
			return 0, err
		}
		for _, c := range creds {
			notes = append(notes, fmt.Sprintf("project %s has credentials for registry %s (user %s): set them again, passwords are never exported", name, c.Registry, c.Username))
		}
	}
	id, err := st.InstallationID(ctx)
	if err != nil {
		return 0, err
	}
	fmt.Fprintln(w, "# PanelX export: apply with `panelx apply -f <this file>`.")
	fmt.Fprintf(w, "# installation: %s — on the same Docker host, run `panelx migrate --adopt-installation %s`\n", id, id)
	fmt.Fprintln(w, "# against the new, empty database first, so its server takes over these containers and volumes (data included).")
	for _, n := range notes {
		fmt.Fprintln(w, "# "+n)
	}
	data, err := api.MarshalYAMLStream(objs)
	if err != nil {
		return 0, err
	}
	if _, err := w.Write(data); err != nil {
		return 0, err
	}
	return len(objs), nil
}

// manifestOf keeps what a manifest carries: kind, name, project, labels,
// user annotations and spec.
func manifestOf[T api.Object](obj T) T {
	out := api.Clone(obj)
	m := out.GetMeta()
	annots := map[string]string{}
	for k, v := range m.Annotations {
		if !strings.HasPrefix(k, "panelx.dev/") {
			annots[k] = v
		}
	}
	*m = api.ObjectMeta{Name: m.Name, Project: m.Project, Labels: m.Labels}
	if len(annots) > 0 {
		m.Annotations = annots
	}
	switch o := any(out).(type) {
	case *api.Project:
		o.Status = api.ProjectStatus{}
	case *api.Service:
		o.Status = api.ServiceStatus{}
	case *api.Volume:
		o.Status = api.VolumeStatus{}
	case *api.Secret:
		o.Spec = api.SecretSpec{}
	}
	return out
}
