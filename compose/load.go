package compose

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/template"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"
)

// loaded is a compose project as compose-go sees it, with the PanelX
// project name and what loading found.
type loaded struct {
	project  *types.Project
	name     string
	findings []Finding
}

func load(ctx context.Context, in Input) (*loaded, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(in.Files) == 0 {
		return nil, errors.New("compose: no compose file given")
	}
	workDir, err := workingDir(in)
	if err != nil {
		return nil, err
	}
	files, err := readFiles(in.Files, workDir)
	if err != nil {
		return nil, err
	}
	env, err := environment(in.Env, workDir)
	if err != nil {
		return nil, err
	}
	vars := &missingVars{}
	nameInFile, hasVersion := topLevel(files)
	name, nameFinding, err := projectName(in.ProjectName, nameInFile, workDir, env, vars)
	if err != nil {
		return nil, err
	}

	details := types.ConfigDetails{WorkingDir: workDir, ConfigFiles: files, Environment: env}
	project, err := loader.LoadWithContext(ctx, details, func(o *loader.Options) {
		o.SetProjectName(name, true)
		o.Profiles = in.Profiles
		if in.Profiles == nil {
			o.Profiles = profilesFrom(env)
		}
		// Interpolation goes through our substitute so that unset
		// variables become findings instead of log lines.
		o.Interpolate.Substitute = vars.substitute
		loader.WithDiscardEnvFiles(o) // merged into environment already
	})
	if err != nil {
		return nil, fmt.Errorf("compose: %w", clarify(err))
	}
	l := &loaded{project: project, name: name}
	if nameFinding != "" {
		l.findings = append(l.findings, Finding{Field: "name", Detail: nameFinding})
	}
	if hasVersion {
		l.findings = append(l.findings, Finding{Field: "version", Detail: "obsolete in the compose specification: ignored"})
	}
	for _, v := range vars.list() {
		l.findings = append(l.findings, Finding{Field: "${" + v + "}", Detail: "variable is not set: an empty string was substituted (set it in the environment or .env)"})
	}
	return l, nil
}

func workingDir(in Input) (string, error) {
	dir := in.WorkingDir
	if dir == "" {
		for _, f := range in.Files {
			if f.Path != "" {
				dir = filepath.Dir(f.Path)
				break
			}
		}
	}
	if dir == "" {
		dir = "."
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("compose: working directory: %w", err)
	}
	return abs, nil
}

// readFiles reads every file up front, so the project name can be taken
// from the same bytes the loader parses.
func readFiles(in []File, workDir string) ([]types.ConfigFile, error) {
	files := make([]types.ConfigFile, len(in))
	for i, f := range in {
		// A file without a path gets a name in the working directory, for
		// errors and for compose-go's relative paths.
		name := filepath.Join(workDir, fmt.Sprintf("compose-input-%d.yaml", i))
		if f.Path != "" {
			abs, err := filepath.Abs(f.Path)
			if err != nil {
				return nil, fmt.Errorf("compose: %s: %w", f.Path, err)
			}
			name = abs
		}
		content := f.Content
		if content == nil {
			if f.Path == "" {
				return nil, fmt.Errorf("compose: file %d has neither a path nor content", i)
			}
			data, err := os.ReadFile(f.Path)
			if err != nil {
				return nil, fmt.Errorf("compose: read %w", err)
			}
			content = data
		}
		files[i] = types.ConfigFile{Filename: name, Content: content}
	}
	return files, nil
}

// environment returns the interpolation environment: env when given, else
// the process environment over WorkingDir/.env.
func environment(env map[string]string, workDir string) (map[string]string, error) {
	if env != nil {
		return maps.Clone(env), nil
	}
	out := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			out[k] = v
		}
	}
	dotEnv := filepath.Join(workDir, ".env")
	info, err := os.Stat(dotEnv)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return out, nil
	case err != nil:
		return nil, fmt.Errorf("compose: %w", err)
	case info.IsDir():
		return out, nil
	}
	fromFile, err := dotenv.GetEnvFromFile(out, []string{dotEnv})
	if err != nil {
		return nil, fmt.Errorf("compose: read %s: %w", dotEnv, err)
	}
	for k, v := range fromFile {
		if _, set := out[k]; !set { // the process environment wins, as in docker compose
			out[k] = v
		}
	}
	return out, nil
}

// projectName picks the override, else the compose `name:` (interpolated),
// else the working directory's name, and makes it a DNS-1123 label. The
// second result explains a change, if there was one.
func projectName(override, fromFile, workDir string, env map[string]string, vars *missingVars) (string, string, error) {
	raw, source := override, "the given project name"
	if raw == "" && fromFile != "" {
		interpolated, err := vars.substitute(fromFile, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if err != nil {
			return "", "", fmt.Errorf("compose: interpolate name: %w", err)
		}
		raw, source = interpolated, "name:"
	}
	if raw == "" {
		raw, source = filepath.Base(workDir), "the directory name"
	}
	name, err := normalizeName(raw)
	if err != nil {
		return "", "", fmt.Errorf("compose: project name from %s: %w; give one explicitly", source, err)
	}
	if name != raw {
		return name, fmt.Sprintf("project name %q (from %s) is not a DNS-1123 label: the project is named %q", raw, source, name), nil
	}
	return name, "", nil
}

// topLevel reads the two top-level keys compose-go consumes before its
// model can be inspected: `name:` (the last file that sets it wins, as in
// compose-go) and the obsolete `version:`.
func topLevel(files []types.ConfigFile) (name string, version bool) {
	for _, f := range files {
		dec := yaml.NewDecoder(bytes.NewReader(f.Content))
		for {
			var doc yaml.Node
			if err := dec.Decode(&doc); err != nil {
				break // EOF, or a syntax error the loader reports with more context
			}
			if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
				continue
			}
			top := doc.Content[0].Content
			for i := 0; i+1 < len(top); i += 2 {
				switch key, val := top[i].Value, top[i+1]; {
				case key == "name" && val.Kind == yaml.ScalarNode && val.Value != "":
					name = val.Value
				case key == "version":
					version = true
				}
			}
		}
	}
	return name, version
}

// missingVars records the variables interpolation found unset and had no
// default for (what docker compose warns about).
type missingVars struct {
	mu    sync.Mutex
	names map[string]bool
}

// substitute is template.Substitute, without its log line, recording
// unset variables.
func (m *missingVars) substitute(tmpl string, mapping template.Mapping) (string, error) {
	replace := func(s string, mapping template.Mapping, cfg *template.Config) (string, error) {
		var last string
		recording := func(k string) (string, bool) {
			last = k
			return mapping(k)
		}
		v, applied, err := template.DefaultReplacementAppliedFunc(s, recording, cfg)
		if err == nil && !applied && last != "" {
			m.add(last)
		}
		return v, err
	}
	return template.SubstituteWithOptions(tmpl, mapping, template.WithoutLogging, template.WithReplacementFunction(replace))
}

func (m *missingVars) add(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.names == nil {
		m.names = map[string]bool{}
	}
	m.names[name] = true
}

func (m *missingVars) list() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.names))
}

var falseSchemaRe = regexp.MustCompile(`(\S+) false schema$`)

// clarifiedError rewords a compose-go error while keeping it in the chain.
type clarifiedError struct {
	msg string
	err error
}

func (e *clarifiedError) Error() string { return e.msg }
func (e *clarifiedError) Unwrap() error { return e.err }

// clarify rewords the one schema message that says nothing to a user:
// jsonschema's "services.web.imag false schema" for an unknown field.
func clarify(err error) error {
	msg := err.Error()
	m := falseSchemaRe.FindStringSubmatchIndex(msg)
	if m == nil {
		return err
	}
	path := msg[m[2]:m[3]]
	field := path[strings.LastIndexByte(path, '.')+1:]
	return &clarifiedError{msg: msg[:m[0]] + fmt.Sprintf("%s: unknown field %q (not in the compose specification)", path, field), err: err}
}

// profilesFrom reads COMPOSE_PROFILES (comma-separated) as docker compose
// does: from the process environment, else the .env file.
func profilesFrom(env map[string]string) []string {
	var out []string
	for _, p := range strings.Split(env["COMPOSE_PROFILES"], ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
