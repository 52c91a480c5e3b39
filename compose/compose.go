// Package compose imports a Docker Compose file as PanelX manifests: one
// Project, its Volumes and its Services.
//
// The file is loaded by the official parser (compose-go/v2) with its
// interpolation, normalisation and consistency checks, then mapped field by
// field. Whatever has no PanelX equivalent is reported as a Finding at its
// compose path rather than dropped: the fields of compose-go's types are
// walked by reflection, so a field this package does not know about is
// reported too.
package compose

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/panelx/panelx/api"
)

// File is one compose file. Content, when set, is used instead of reading
// Path; Path then only names the file in errors (and may be empty).
type File struct {
	Path    string
	Content []byte
}

// Input says what to convert and how.
type Input struct {
	// Files are merged in order, as `docker compose -f a.yml -f b.yml` does.
	Files []File
	// WorkingDir resolves relative paths in the file (env_file, extends,
	// bind sources). Default: the directory of the first file with a path,
	// else the current directory.
	WorkingDir string
	// ProjectName overrides the compose `name:` and the directory name.
	ProjectName string
	// Env is the environment for ${VAR} interpolation and for environment
	// entries written without a value. Nil means the process environment
	// over the variables of WorkingDir/.env, as docker compose does; a
	// non-nil map (even empty) is used exactly as given.
	// Interpolation never executes anything: $(…) and `…` stay literal.
	Env map[string]string
	// Profiles to activate; services of other profiles are not imported
	// (and reported). Nil means COMPOSE_PROFILES of the environment (the
	// process's or .env's), as docker compose reads it.
	Profiles []string
	// DropBindMounts leaves host bind mounts out (each reported). By
	// default they become spec.volumes[].hostPath, which the server's spec
	// policy allows administrators only: for anyone else the import stops
	// there rather than losing, say, a database's data directory.
	DropBindMounts bool
	// EmptyExternalVolumes imports an external: true volume as a new,
	// empty Volume (reported); by default the services mount the existing
	// Docker volume (spec.volumes[].dockerVolume, administrators only).
	EmptyExternalVolumes bool
	// LocalBuild, when set, takes a build: whose context is a directory of
	// this machine (`panelx apply` uploads it) and returns the upload it
	// becomes (spec.build.upload). Nil: such a service is reported and not
	// imported, since the server cannot see the directory.
	LocalBuild func(ctx context.Context, b LocalBuild) (*api.UploadSource, error)
}

// LocalBuild is a service's build from a directory of this machine.
type LocalBuild struct {
	Project, Service string // PanelX names
	// Context is the directory (absolute); Dockerfile is relative to it.
	Context, Dockerfile string
}

// Finding is one thing of the compose file that was not imported, or not
// imported as written.
type Finding struct {
	// Field is the compose path ("services.web.build",
	// "services.web.volumes[1]", "services.web.labels[com.example.x]"), or
	// "${NAME}" for an interpolation variable that is not set.
	Field string `json:"field"`
	// Detail says what was not mapped and what to do instead.
	Detail string `json:"detail"`
}

func (f Finding) String() string {
	if f.Field == "" {
		return f.Detail
	}
	return f.Field + ": " + f.Detail
}

// Result is a converted compose project.
type Result struct {
	// Objects are the Project, then its Volumes, then its Services (each
	// group sorted by name), defaulted and valid.
	Objects []api.Object
	// Unmapped lists every finding, sorted by field.
	Unmapped []Finding
}

// Convert loads the compose file(s) of in and maps them to PanelX objects.
// An error means the file could not be loaded (syntax, schema, consistency,
// a missing env_file or required variable) or cannot be expressed at all
// (a name that collides after normalisation); everything else that does not
// map is a Finding.
func Convert(ctx context.Context, in Input) (*Result, error) {
	loaded, err := load(ctx, in)
	if err != nil {
		return nil, err
	}
	c := &converter{ctx: ctx, project: loaded.project, name: loaded.name, dropBinds: in.DropBindMounts, emptyExternal: in.EmptyExternalVolumes, localBuild: in.LocalBuild}
	c.findings = append(c.findings, loaded.findings...)
	objs, err := c.convert()
	if err != nil {
		return nil, err
	}
	if len(c.services) == 0 {
		return nil, c.nothingImported()
	}
	for _, obj := range objs {
		if errs := obj.Validate(); len(errs) > 0 {
			// The mapping checks what it can foresee; this catches the rest
			// (an invalid environment variable name, a relative working_dir).
			// An unset variable is the usual cause: name it.
			var unset []string
			for _, f := range c.findings {
				if strings.HasPrefix(f.Field, "${") {
					unset = append(unset, f.Field)
				}
			}
			hint := ""
			if len(unset) > 0 {
				hint = fmt.Sprintf(" (not set, so an empty string was substituted: %s; set them in the environment or .env)", strings.Join(unset, ", "))
			}
			return nil, fmt.Errorf("compose: %s %s as converted is invalid: %w%s", obj.GetKind(), obj.GetMeta().Name, errs, hint)
		}
	}
	slices.SortStableFunc(c.findings, func(a, b Finding) int { return strings.Compare(a.Field, b.Field) })
	return &Result{Objects: objs, Unmapped: c.findings}, nil
}

// converter holds the state of one conversion.
type converter struct {
	ctx        context.Context
	localBuild func(context.Context, LocalBuild) (*api.UploadSource, error)
	project    *types.Project
	name       string // the PanelX project name
	findings   []Finding

	// services maps each imported compose service to its PanelX name,
	// volumes each top-level volume; volumeNames holds every Volume name
	// taken, generated ones included.
	services    map[string]string
	volumes     map[string]string
	volumeNames *nameTable
	// external maps each external: true volume to its Docker name.
	external map[string]string
	// secrets maps each top-level secret to its Secret and key.
	secrets map[string]composeSecret
	// networks maps each top-level network to its PanelX name.
	networks map[string]string
	// skipped holds services that are not imported, with the reason.
	skipped map[string]string
	// anonymous are the Volumes generated for anonymous mounts.
	anonymous     []*api.Volume
	dropBinds     bool
	emptyExternal bool
}

// nothingImported explains a file none of whose services became a PanelX
// service: an import of nothing is an error, not a success.
func (c *converter) nothingImported() error {
	if len(c.skipped) == 0 {
		return errors.New("compose: the file has no services")
	}
	var why []string
	var profiles []string
	for _, name := range sortedKeys(c.skipped) {
		why = append(why, name+": "+c.skipped[name])
		if s, ok := c.project.DisabledServices[name]; ok {
			profiles = append(profiles, s.Profiles...)
		}
	}
	msg := fmt.Sprintf("compose: no service could be imported (%s)", strings.Join(why, "; "))
	if len(profiles) > 0 {
		slices.Sort(profiles)
		msg += fmt.Sprintf("; enable a profile with --profile or COMPOSE_PROFILES (%s)", strings.Join(slices.Compact(profiles), ", "))
	}
	return errors.New(msg)
}

func (c *converter) report(field, format string, args ...any) {
	c.findings = append(c.findings, Finding{Field: field, Detail: fmt.Sprintf(format, args...)})
}

func (c *converter) convert() ([]api.Object, error) {
	c.reportProject()
	if err := c.nameNetworks(); err != nil {
		return nil, err
	}
	if err := c.nameServices(); err != nil {
		return nil, err
	}
	vols, err := c.convertVolumes()
	if err != nil {
		return nil, err
	}
	secrets, err := c.convertSecrets()
	if err != nil {
		return nil, err
	}
	var services []*api.Service
	for _, name := range sortedKeys(c.project.Services) {
		if _, ok := c.services[name]; !ok {
			continue
		}
		svc, err := c.convertService(c.project.Services[name])
		if err != nil {
			return nil, err
		}
		services = append(services, svc)
	}
	vols = append(vols, c.anonymous...)
	slices.SortFunc(vols, func(a, b *api.Volume) int { return strings.Compare(a.Metadata.Name, b.Metadata.Name) })

	project := &api.Project{Metadata: api.ObjectMeta{Name: c.name}}
	objs := []api.Object{project}
	for _, v := range vols {
		objs = append(objs, v)
	}
	for _, s := range secrets {
		objs = append(objs, s)
	}
	for _, s := range services {
		objs = append(objs, s)
	}
	for _, obj := range objs {
		obj.Default()
	}
	return objs, nil
}

// nameServices decides which services are imported and their PanelX names.
// A service without an image cannot be a PanelX service; it is reported
// and references to it are dropped.
func (c *converter) nameServices() error {
	c.services = map[string]string{}
	c.skipped = map[string]string{}
	names := newNameTable("services")
	for _, name := range sortedKeys(c.project.Services) {
		s := c.project.Services[name]
		pname, err := names.add(name)
		if err != nil {
			return err
		}
		if pname != name {
			c.report(servicePath(name), "%q is not a DNS-1123 label: the service is named %q (other services reach it by that name)", name, pname)
		}
		_, _, _, fromGit := gitContext(s.Build)
		switch {
		case s.Image != "" || fromGit || (s.Build != nil && c.localBuild != nil):
			c.services[name] = pname
		case s.Build != nil:
			c.skipped[name] = "it has only a build from a local directory"
			c.report(servicePath(name)+".build", "the build context %q is a directory of this machine, which the server cannot see: `panelx apply -f` of this file uploads it; or make it a git URL (https://…/repo.git#branch:dir), or build and push the image and set image (the service was not imported)", s.Build.Context)
		case s.Provider != nil:
			c.skipped[name] = "it is run by a provider"
			c.report(servicePath(name)+".provider", "PanelX runs containers, not provider services (the service was not imported)")
		default:
			// compose-go's consistency check rejects this already.
			return fmt.Errorf("compose: %s: no image", servicePath(name))
		}
	}
	for _, name := range sortedKeys(c.project.DisabledServices) {
		s := c.project.DisabledServices[name]
		c.skipped[name] = "its profile is not active"
		c.report(servicePath(name), "in profile(s) %s, none of them active: not imported (activate the profile to import it)", strings.Join(s.Profiles, ", "))
	}
	return nil
}

// projectFields are the top-level fields of types.Project that are mapped
// (services, volumes) or reported entry by entry below.
var projectFields = []string{"name", "services", "volumes", "networks", "secrets", "configs", "models", "jobs"}

// reportProject reports the top-level sections PanelX has no place for.
func (c *converter) reportProject() {
	// Anything else set at the top level (x-* fields, or a section a newer
	// compose-go knows) is reported by reflection.
	c.reportUnset("", *c.project, projectFields...)
	for _, section := range []struct {
		name   string
		keys   []string
		detail string
	}{
		{"configs", sortedKeys(c.project.Configs), "PanelX has no configs: bake the file into the image or put it on a volume"},
		{"models", sortedKeys(c.project.Models), "PanelX does not run AI models: run a model runner as a service"},
		{"jobs", append(sortedKeys(c.project.Jobs), sortedKeys(c.project.DisabledJobs)...), "PanelX runs long-lived services, not run-to-completion jobs: not imported"},
	} {
		for _, k := range section.keys {
			c.report(keyPath(section.name, k), "%s", section.detail)
		}
	}
}

// nameNetworks gives each top-level network its PanelX name — a network of
// the project that the services naming it join, as isolated from the
// others as Compose keeps it — and reports what of it PanelX does not do.
func (c *converter) nameNetworks() error {
	c.networks = map[string]string{}
	names := newNameTable("networks")
	for _, name := range sortedKeys(c.project.Networks) {
		n := c.project.Networks[name]
		np := keyPath("networks", name)
		pname, err := names.add(name)
		if err != nil {
			return err
		}
		c.networks[name] = pname
		if pname != name {
			c.report(np, "%q is not a DNS-1123 label: the network is named %q", name, pname)
		}
		if n.Name != "" && n.Name != c.project.Name+"_"+name && !bool(n.External) { // an external one is named by compose-go
			c.report(np+".name", "PanelX names the networks of a project itself: not imported")
		}
		if bool(n.External) {
			c.report(np+".external", "PanelX joins only networks it owns: the services that name it join a project network %q instead, and do not reach the containers of the existing network", pname)
		}
		if n.Internal {
			c.report(np+".internal", "PanelX's project networks are not internal (their containers reach outside the host): not imported")
		}
		if n.Driver != "" && n.Driver != "bridge" {
			c.report(np+".driver", "PanelX's project networks are bridge networks on one host: driver %q not imported", n.Driver)
		}
		c.reportUnset(np, n, networkFields...)
	}
	return nil
}

// nameTable normalises names of one kind and rejects collisions.
type nameTable struct {
	kind string
	from map[string]string // PanelX name → compose name
}

func newNameTable(kind string) *nameTable {
	return &nameTable{kind: kind, from: map[string]string{}}
}

func (t *nameTable) add(name string) (string, error) {
	pname, err := normalizeName(name)
	if err != nil {
		return "", fmt.Errorf("compose: %s.%s: %w", t.kind, name, err)
	}
	if prev, ok := t.from[pname]; ok {
		return "", fmt.Errorf("compose: %s %q and %q both become %q in PanelX: rename one of them", t.kind, prev, name, pname)
	}
	t.from[pname] = name
	return pname, nil
}

func (t *nameTable) taken(pname string) bool {
	_, ok := t.from[pname]
	return ok
}

// normalizeName turns a compose name into a DNS-1123 label: lower case,
// '_', '.' and spaces become '-', other characters are dropped, and the
// result is trimmed of '-' and cut to 63 characters.
func normalizeName(s string) (string, error) {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			b.WriteRune(r)
		case r == '_', r == '.', r == ' ':
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-")
	if len(out) > api.MaxNameLength {
		out = strings.TrimRight(out[:api.MaxNameLength], "-")
	}
	if out == "" {
		return "", fmt.Errorf("%q has no letters or digits to make a DNS-1123 label from", s)
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
