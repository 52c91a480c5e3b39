package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/panelx/panelx/api"
)

// volumeRef is VOLUME:PATH, one side of panelx cp.
type volumeRef struct{ volume, path string }

// parseVolumeRef tells VOLUME:PATH from a local path: a volume name, a
// colon, a path. Local paths that contain a colon can be written ./a:b.
func parseVolumeRef(s string) (volumeRef, bool) {
	name, p, ok := strings.Cut(s, ":")
	if !ok || len(api.ValidateName("volume", name)) > 0 {
		return volumeRef{}, false
	}
	return volumeRef{volume: name, path: strings.TrimPrefix(path.Clean("/"+p), "/")}, true
}

func newCpCmd(conn *connection) *cobra.Command {
	var project string
	cmd := &cobra.Command{
		Use:   "cp SRC DST -p PROJECT",
		Short: "Copy a file into or out of a volume (VOLUME:PATH on one side; - is stdin or stdout)",
		Long: `Copy one file between this machine and a volume of a project, through the
volume files API (viewers may copy out; owners, admins and editors in). One side
is VOLUME:PATH, a path from the volume's root; the other a local file, or - for
standard input or output. Copying in replaces the file; a missing directory on
the way is an error (make it with the API's mkdir).`,
		Example: `  panelx cp ./dump.sql data:backups/dump.sql -p shop
  panelx cp data:backups/dump.sql ./dump.sql -p shop
  panelx cp data:config.json - -p shop`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, srcVol := parseVolumeRef(args[0])
			dst, dstVol := parseVolumeRef(args[1])
			switch {
			case srcVol == dstVol:
				return errors.New("give one side as VOLUME:PATH and the other as a local path (or -)")
			case srcVol && src.path == "", dstVol && dst.path == "":
				return errors.New("VOLUME:PATH needs a path in the volume")
			}
			c, err := conn.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if srcVol { // out of the volume
				rc, err := c.Download(ctx, project, src.volume, src.path)
				if err != nil {
					return fmt.Errorf("copy %s: %w", args[0], err)
				}
				defer rc.Close()
				if args[1] == "-" {
					_, err = io.Copy(cmd.OutOrStdout(), rc)
					return err
				}
				target := args[1]
				if fi, err := os.Stat(target); err == nil && fi.IsDir() {
					target = filepath.Join(target, path.Base(src.path))
				}
				// Into a temporary file first: a failed download leaves no half file.
				tmp, err := os.CreateTemp(filepath.Dir(target), "."+filepath.Base(target)+".*")
				if err != nil {
					return err
				}
				defer os.Remove(tmp.Name())
				n, err := io.Copy(tmp, rc)
				if cerr := tmp.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					return fmt.Errorf("copy %s: %w", args[0], err)
				}
				if err := os.Rename(tmp.Name(), target); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "%s → %s (%d bytes)\n", args[0], target, n)
				return nil
			}
			// Into the volume.
			var body io.Reader
			var size int64
			if args[0] == "-" {
				data, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), maxInput+1))
				if err != nil {
					return err
				}
				if len(data) > maxInput {
					return fmt.Errorf("stdin: more than %d bytes; copy from a file instead", maxInput)
				}
				body, size = bytes.NewReader(data), int64(len(data))
			} else {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				fi, err := f.Stat()
				if err != nil {
					return err
				}
				if !fi.Mode().IsRegular() {
					return fmt.Errorf("%s is not a regular file (cp copies one file)", args[0])
				}
				body, size = f, fi.Size()
			}
			if err := c.Upload(ctx, project, dst.volume, dst.path, body, size); err != nil {
				return fmt.Errorf("copy to %s: %w", args[1], err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%s → %s (%d bytes)\n", args[0], args[1], size)
			return nil
		},
	}
	cmd.Flags().StringVarP(&project, "project", "p", "", "the volume's project")
	return cmd
}

func newEditCmd(conn *connection) *cobra.Command {
	var project string
	cmd := &cobra.Command{
		Use:   "edit KIND NAME [-p PROJECT]",
		Short: "Edit a resource's manifest in $EDITOR and write it back",
		Long: `Open the manifest of a project, service or volume in $VISUAL or $EDITOR (vi
when neither is set) and write the edited manifest back with the
resourceVersion it was read at: if someone changed it meanwhile, nothing is
written and the edit is kept in a file to apply again. Saving it unchanged
changes nothing. Status and server-set metadata in the file are ignored.`,
		Example: `  panelx edit service web -p shop
  EDITOR=nano panelx edit project shop`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, err := parseKind(args[0])
			if err != nil {
				return err
			}
			if kind == api.KindSecret {
				return errors.New("secrets are not edited as manifests (their values are never shown): panelx create secret NAME --update")
			}
			c, err := conn.client()
			if err != nil {
				return err
			}
			if kind == api.KindProject {
				project = ""
			}
			obj, err := c.Get(cmd.Context(), kind, project, args[1])
			if err != nil {
				return err
			}
			read := obj.GetMeta().ResourceVersion
			orig, err := api.MarshalYAMLStream([]api.Object{obj})
			if err != nil {
				return err
			}
			f, err := os.CreateTemp("", "panelx-edit-*.yaml")
			if err != nil {
				return err
			}
			keep := false
			defer func() {
				if !keep {
					os.Remove(f.Name())
				}
			}()
			if _, err := f.Write(orig); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			if err := runEditor(f.Name(), cmd); err != nil {
				return err
			}
			edited, err := os.ReadFile(f.Name())
			if err != nil {
				return err
			}
			ref := objectRef(strings.ToLower(string(kind)), project, args[1])
			if bytes.Equal(bytes.TrimSpace(edited), bytes.TrimSpace(orig)) {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: no changes\n", ref)
				return nil
			}
			objs, err := api.ParseManifests(edited)
			if err == nil && len(objs) != 1 {
				err = fmt.Errorf("the file holds %d documents; keep the one", len(objs))
			}
			if err == nil && (objs[0].GetKind() != kind || api.KeyOf(objs[0]) != api.KeyOf(obj)) {
				err = fmt.Errorf("the kind, project and name cannot change (it is %s)", ref)
			}
			if err == nil {
				objs[0].GetMeta().ResourceVersion = read // written only if nobody else wrote since
				_, err = c.Replace(cmd.Context(), objs[0])
			}
			if err != nil {
				keep = true
				return fmt.Errorf("%s not changed: %w\nyour edit is in %s (panelx apply -f it, or edit again)", ref, err, f.Name())
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s edited\n", ref)
			return nil
		},
	}
	cmd.Flags().StringVarP(&project, "project", "p", "", "the project of the service or volume")
	return cmd
}

// runEditor runs $VISUAL or $EDITOR on file, on the terminal. The variable
// may hold arguments ("code --wait"); it is split on spaces, never given
// to a shell.
func runEditor(file string, cmd *cobra.Command) error {
	editor := strings.Fields(first(os.Getenv("VISUAL"), os.Getenv("EDITOR")))
	if len(editor) == 0 {
		editor = []string{"vi"}
	}
	ed := exec.CommandContext(cmd.Context(), editor[0], append(editor[1:], file)...)
	ed.Stdin, ed.Stdout, ed.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := ed.Run(); err != nil {
		return fmt.Errorf("editor %s: %w", strings.Join(editor, " "), err)
	}
	return nil
}
