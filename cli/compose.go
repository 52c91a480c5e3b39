package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/panelx/panelx/compose"
)

// convertCompose turns a Compose file into a manifest stream, telling the
// user on stderr what could not be mapped.
func convertCompose(in input, stderr io.Writer, opts composeOptions) ([]byte, error) {
	res, err := composeResult(context.Background(), in, "", opts)
	if err != nil {
		return nil, err
	}
	reportFindings(stderr, in.name, res.Unmapped)
	var b bytes.Buffer
	if err := compose.WriteYAML(&b, res.Objects); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// composeOptions are the Compose flags of apply, diff and convert.
type composeOptions struct {
	profiles       []string
	dropBindMounts bool
	emptyExternal  bool
	// local, when set, takes builds from directories of this machine
	// (apply uploads them; diff names them by digest).
	local *localBuilds
}

func (o *composeOptions) register(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&o.profiles, "profile", nil, "Compose files: enable this profile (repeatable; default: $COMPOSE_PROFILES, or the .env file's)")
	cmd.Flags().BoolVar(&o.dropBindMounts, "drop-bind-mounts", false,
		"Compose files: leave host bind mounts out (each reported) instead of importing them as hostPath, which only administrators may use")
	cmd.Flags().BoolVar(&o.emptyExternal, "empty-external-volumes", false,
		"Compose files: import an external: true volume as a new, empty Volume (reported) instead of mounting the existing Docker volume, which only administrators may do")
}

func composeResult(ctx context.Context, in input, project string, opts composeOptions) (*compose.Result, error) {
	f := compose.File{Content: in.data}
	if in.name != "-" {
		f.Path = in.name
	}
	in2 := compose.Input{Files: []compose.File{f}, ProjectName: project,
		Profiles: opts.profiles, DropBindMounts: opts.dropBindMounts, EmptyExternalVolumes: opts.emptyExternal}
	if opts.local != nil {
		in2.LocalBuild = opts.local.take
	}
	res, err := compose.Convert(ctx, in2)
	if err != nil {
		return nil, fmt.Errorf("compose file %s: %w", in.name, err)
	}
	return res, nil
}

func reportFindings(w io.Writer, name string, findings []compose.Finding) {
	for _, f := range findings {
		fmt.Fprintf(w, "%s: not mapped: %s: %s\n", name, f.Field, f.Detail)
	}
}

func newConvertCmd() *cobra.Command {
	var (
		file    string
		project string
		copts   composeOptions
	)
	cmd := &cobra.Command{
		Use:   "convert -f docker-compose.yml",
		Short: "Print the PanelX manifests of a Docker Compose file",
		Long: `Convert a Docker Compose file into a Project with its Services and Volumes
and print them as YAML manifests, to review or keep in git. Whatever cannot be
mapped (build:, network_mode, …) is listed in a comment at the top and on
stderr: nothing is dropped silently. Host bind mounts become hostPath mounts,
which only administrators may apply (--drop-bind-mounts leaves them out, each
reported); an external: true volume is mounted as the existing Docker volume
(dockerVolume, administrators only; --empty-external-volumes makes a new,
empty Volume instead). A file that imports no service at all is an error. Interpolation uses the
environment and the .env file beside the Compose file; nothing is executed.`,
		Example: `  panelx convert -f docker-compose.yml > shop.yaml
  panelx convert -f compose.yaml --project shop | panelx apply -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ins, err := readInputs([]string{file}, cmd.InOrStdin())
			if err != nil {
				return err
			}
			res, err := composeResult(cmd.Context(), ins[0], project, copts)
			if err != nil {
				return err
			}
			reportFindings(cmd.ErrOrStderr(), ins[0].name, res.Unmapped)
			return compose.WriteYAML(cmd.OutOrStdout(), res.Objects, res.Unmapped...)
		},
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "docker-compose.yml", "the Compose file, or - for stdin")
	cmd.Flags().StringVar(&project, "project", "", "project name (default: the file's name: or its directory)")
	copts.register(cmd)
	return cmd
}
