package cli

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/client"
)

func newCreateCmd(conn *connection) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "create secret NAME -p PROJECT",
		Short: "Create a resource from flags rather than a manifest (secrets)",
		Long: `Create a resource from command-line flags. Only secrets are made this way: their
values belong in files or the terminal, not in manifests kept in Git. Other
kinds are created with ` + "`panelx apply -f`" + `.`,
		Example: `  panelx create secret db -p shop --from-literal user=shop --from-file password=./db-password`,
	}
	cmd.AddCommand(newCreateSecretCmd(conn))
	return cmd
}

func newCreateSecretCmd(conn *connection) *cobra.Command {
	var (
		project  string
		literals []string
		files    []string
		envFiles []string
		update   bool
	)
	cmd := &cobra.Command{
		Use:   "secret NAME -p PROJECT [--from-literal KEY=VALUE] [--from-file [KEY=]PATH] [--from-env-file PATH] [--update]",
		Short: "Create (or with --update replace) a secret of a project",
		Long: `Create a secret: a project's named set of values that services take as
environment variables (env: [{name: DB_PASSWORD, valueFrom: {secretKeyRef:
{name: db, key: password}}}]). The server stores the values sealed and never
shows them again: ` + "`panelx get secrets`" + ` lists keys and versions only, and this
command never prints a value.

Values come from (each flag repeatable, all combined, a key at most once):
  --from-literal KEY=VALUE   the value as given (it stays in the shell history:
                             prefer a file for real credentials)
  --from-file KEY=PATH       a file's content, exactly (PATH alone: the key is
                             the file's name; PATH "-": standard input)
  --from-env-file PATH       KEY=VALUE lines; blank lines and lines starting
                             with # are skipped, a leading "export " is
                             allowed, one pair of surrounding quotes is
                             removed; nothing else is interpreted ($, \)

An existing secret is left alone unless --update is given: then its values are
replaced by the ones given — all of them, so keys not given are removed (PUT
semantics). Its version rises when a value changes, and the services using it
roll out with the new values.`,
		Example: `  panelx create secret db -p shop --from-literal user=shop --from-file password=./db-password
  panelx create secret api-keys -p shop --from-env-file ./secrets.env
  pass show shop/db | panelx create secret db -p shop --from-file password=- --update`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if project == "" {
				return errors.New("give -p PROJECT")
			}
			data, err := secretValues(literals, files, envFiles, cmd.InOrStdin())
			if err != nil {
				return err
			}
			if len(data) == 0 {
				return errors.New("no values: give --from-literal, --from-file or --from-env-file")
			}
			c, err := conn.client()
			if err != nil {
				return err
			}
			ctx, name, out := cmd.Context(), args[0], cmd.OutOrStdout()
			ref := objectRef("secret", project, name)
			sec := &api.Secret{TypeMeta: api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindSecret},
				Metadata: api.ObjectMeta{Project: project, Name: name}, Spec: api.SecretSpec{Data: data}}
			var current *api.Secret
			if update {
				obj, err := c.Get(ctx, api.KindSecret, project, name)
				switch {
				case client.IsNotFound(err):
				case err != nil:
					return fmt.Errorf("read %s: %w", ref, err)
				default:
					current = obj.(*api.Secret)
				}
			}
			if current == nil {
				obj, err := c.Create(ctx, sec)
				var ae *client.APIError
				if errors.As(err, &ae) && ae.Status == http.StatusConflict && !update {
					return fmt.Errorf("%s already exists: give --update to replace its values (all of them: keys not given are removed)", ref)
				}
				if err != nil {
					return fmt.Errorf("create %s: %w", ref, err)
				}
				created := obj.(*api.Secret)
				fmt.Fprintf(out, "%s created (keys: %s; version %d)\n", ref, strings.Join(created.Spec.Keys, ", "), created.Spec.Version)
				return nil
			}
			// PUT replaces the metadata too: keep the labels and
			// annotations it has (apply may have set them).
			sec.Metadata.Labels, sec.Metadata.Annotations = current.Metadata.Labels, current.Metadata.Annotations
			obj, err := c.Replace(ctx, sec)
			if err != nil {
				return fmt.Errorf("replace %s: %w", ref, err)
			}
			replaced := obj.(*api.Secret)
			if replaced.Spec.Version == current.Spec.Version {
				fmt.Fprintf(out, "%s unchanged (keys: %s; version %d)\n", ref, strings.Join(replaced.Spec.Keys, ", "), replaced.Spec.Version)
				return nil
			}
			line := fmt.Sprintf("%s replaced (keys: %s; version %d → %d", ref, strings.Join(replaced.Spec.Keys, ", "), current.Spec.Version, replaced.Spec.Version)
			var removed []string
			for _, k := range current.Spec.Keys {
				if !slices.Contains(replaced.Spec.Keys, k) {
					removed = append(removed, k)
				}
			}
			if len(removed) > 0 {
				line += "; removed: " + strings.Join(removed, ", ")
			}
			fmt.Fprintln(out, line+")")
			return nil
		},
	}
	cmd.Flags().StringVarP(&project, "project", "p", "", "the secret's project")
	cmd.Flags().StringArrayVar(&literals, "from-literal", nil, "KEY=VALUE (repeatable)")
	cmd.Flags().StringArrayVar(&files, "from-file", nil, "KEY=PATH, or PATH (the key is the file name); PATH - reads stdin (repeatable)")
	cmd.Flags().StringArrayVar(&envFiles, "from-env-file", nil, "a file of KEY=VALUE lines (repeatable)")
	cmd.Flags().BoolVar(&update, "update", false, "replace the values of an existing secret (keys not given are removed)")
	return cmd
}

// secretValues gathers a secret's values from the flags. Errors name the
// flag, the key or the file, never a value: they reach the terminal.
func secretValues(literals, files, envFiles []string, stdin io.Reader) (map[string]string, error) {
	data := map[string]string{}
	add := func(source, key, value string) error {
		if key == "" {
			return fmt.Errorf("%s: empty key", source)
		}
		if _, dup := data[key]; dup {
			return fmt.Errorf("%s: key %q given twice", source, key)
		}
		data[key] = value
		return nil
	}
	for i, l := range literals {
		key, value, ok := strings.Cut(l, "=")
		if !ok {
			return nil, fmt.Errorf("--from-literal #%d: want KEY=VALUE", i+1)
		}
		if err := add("--from-literal", key, value); err != nil {
			return nil, err
		}
	}
	stdinRead := false
	for _, f := range files {
		key, path, ok := strings.Cut(f, "=")
		if !ok {
			key, path = filepath.Base(f), f
		}
		source := "--from-file " + path
		var content []byte
		var err error
		if path == "-" {
			if stdinRead {
				return nil, errors.New("--from-file: standard input (-) can be read once")
			}
			if !ok {
				return nil, errors.New("--from-file -: give the key, as KEY=-")
			}
			stdinRead, source = true, "--from-file "+key+"=-"
			if content, err = io.ReadAll(io.LimitReader(stdin, api.MaxSecretSize+1)); err != nil {
				return nil, fmt.Errorf("%s: read stdin: %w", source, err)
			}
		} else if content, err = readFile(path); err != nil {
			return nil, fmt.Errorf("--from-file: %w", err)
		}
		if len(content) > api.MaxSecretSize {
			return nil, fmt.Errorf("%s: more than %d KiB (the limit of a secret)", source, api.MaxSecretSize>>10)
		}
		if err := add(source, key, string(content)); err != nil {
			return nil, err
		}
	}
	for _, path := range envFiles {
		content, err := readFile(path)
		if err != nil {
			return nil, fmt.Errorf("--from-env-file: %w", err)
		}
		pairs, err := parseEnvFile(path, content)
		if err != nil {
			return nil, err
		}
		for _, p := range pairs {
			if err := add("--from-env-file "+path, p[0], p[1]); err != nil {
				return nil, err
			}
		}
	}
	return data, nil
}

// parseEnvFile reads KEY=VALUE lines. Only what cannot be part of a
// secret value is interpreted: a value is taken as written, bar one pair
// of surrounding quotes, so a password with $ or \ arrives intact.
func parseEnvFile(path string, content []byte) ([][2]string, error) {
	var out [][2]string
	sc := bufio.NewScanner(bytes.NewReader(content))
	sc.Buffer(make([]byte, 64<<10), api.MaxSecretSize+1)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSuffix(sc.Text(), "\r")
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		key, value, ok := strings.Cut(strings.TrimLeftFunc(line, unicode.IsSpace), "=")
		key = strings.TrimSpace(strings.TrimPrefix(key, "export "))
		if !ok || key == "" {
			return nil, fmt.Errorf("--from-env-file %s: line %d: want KEY=VALUE", path, n) // not the line: it may hold a value
		}
		if len(value) >= 2 && (value[0] == '"' || value[0] == '\'') && value[len(value)-1] == value[0] {
			value = value[1 : len(value)-1]
		}
		out = append(out, [2]string{key, value})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--from-env-file %s: %w", path, err)
	}
	return out, nil
}

// printSecretData prints a secret's values: KEY=VALUE lines, or the
// server's SecretData document with -o json|yaml.
func printSecretData(w io.Writer, d *client.SecretData, output string) error {
	if output != "table" {
		return printValue(w, d, output)
	}
	for _, k := range slices.Sorted(maps.Keys(d.Data)) {
		fmt.Fprintf(w, "%s=%s\n", k, envValue(d.Data[k]))
	}
	return nil
}

// envValue keeps a KEY=VALUE line one line: a value with line breaks or
// other control characters is printed Go-quoted (-o json prints it as is).
func envValue(v string) string {
	if strings.IndexFunc(v, unicode.IsControl) >= 0 {
		return strconv.Quote(v)
	}
	return v
}

// SecretsRotateKeyCmd is `panelx secrets rotate-key`: a client command (it
// uses the saved login) under the server-side `panelx secrets`.
func SecretsRotateKeyCmd() *cobra.Command {
	conn := &connection{}
	var keepOld bool
	cmd := &cobra.Command{
		Use:   "rotate-key [--keep-old]",
		Short: "Rotate the master key: seal every secret and registry password under a new one",
		Long: `Ask the server to make a new master key the active one and re-seal every secret
and registry password under it (server administrators only). The values do
not change, so no service restarts; the secrets keep their versions.

The new key is written to the server's key file (PANELX_SECRET_KEY_FILE), and
the old keys leave it. Servers reading the same file follow at once. Servers
with their own copy of the file cannot open what was re-sealed until they get
the new one: rotate with --keep-old (the old keys stay in the file), copy the
file to every server, then rotate again without it to retire the old keys.
Back up the new key file: without it the secrets cannot be read.`,
		Example: `  panelx secrets rotate-key
  panelx secrets rotate-key --keep-old --server https://panel.example.com`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := conn.client()
			if err != nil {
				return err
			}
			rep, err := c.RotateKey(cmd.Context(), keepOld)
			if err != nil {
				return fmt.Errorf("rotate the master key: %w", err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "the active master key is now %s\n", rep.KeyID)
			fmt.Fprintf(out, "re-sealed %d secret(s) and %d registry credential(s)\n", rep.Secrets, rep.RegistryCredentials)
			switch {
			case len(rep.Retired) > 0:
				fmt.Fprintf(out, "retired from the key file: %s\n", strings.Join(rep.Retired, ", "))
			case keepOld:
				fmt.Fprintln(out, "the old keys stay in the key file (--keep-old)")
			}
			fmt.Fprintln(out, "back up the key file now: the earlier backup cannot open what was re-sealed")
			return nil
		},
	}
	cmd.Flags().BoolVar(&keepOld, "keep-old", false, "keep the old keys in the key file (for servers with their own copy of it)")
	conn.register(cmd)
	return cmd
}
