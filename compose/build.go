package compose

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/panelx/panelx/api"
)

// buildFields are the fields of a service's build that build maps.
var buildFields = []string{"context", "dockerfile", "args", "target"}

// gitContext splits a build context that is a git URL — Compose's
// "https://host/repo.git#ref:dir" — into its parts; ok is false for a
// directory of this machine, which the server cannot see.
func gitContext(b *types.BuildConfig) (url, ref, dir string, ok bool) {
	if b == nil {
		return "", "", "", false
	}
	ctx := b.Context
	if !strings.HasPrefix(ctx, "https://") && !strings.HasPrefix(ctx, "http://") {
		return "", "", "", false
	}
	url, fragment, _ := strings.Cut(ctx, "#")
	ref, dir, _ = strings.Cut(fragment, ":")
	return url, ref, strings.Trim(dir, "/"), true
}

// build maps a build from a git context to spec.build, and one from a
// directory of this machine to an upload when the caller uploads (apply).
func (c *converter) build(p string, s types.ServiceConfig) (*api.BuildSpec, error) {
	url, ref, dir, ok := gitContext(s.Build)
	var b *api.BuildSpec
	switch {
	case ok:
		c.reportUnset(p, *s.Build, buildFields...)
		b = &api.BuildSpec{Git: api.GitSource{URL: url, Ref: ref, Dir: dir}, Dockerfile: s.Build.Dockerfile, Target: s.Build.Target}
	case s.Build == nil:
		return nil, nil
	case c.localBuild == nil:
		c.report(p, "the build context %q is a directory of this machine, which the server cannot see: the service runs image %q, which must be in a registry (`panelx apply -f` of this file uploads the context; or make it a git URL: https://…/repo.git#branch:dir)", s.Build.Context, s.Image)
		return nil, nil
	default:
		c.reportUnset(p, *s.Build, buildFields...)
		dockerfile, err := localDockerfile(s.Build)
		if err != nil {
			return nil, fmt.Errorf("compose: %s: %w", p, err)
		}
		up, err := c.localBuild(c.ctx, LocalBuild{Project: c.name, Service: c.services[s.Name], Context: s.Build.Context, Dockerfile: dockerfile})
		if err != nil {
			return nil, fmt.Errorf("compose: %s: %w", p, err)
		}
		b = &api.BuildSpec{Upload: up, Dockerfile: dockerfile, Target: s.Build.Target}
	}
	for _, k := range sortedKeys(s.Build.Args) {
		v := s.Build.Args[k]
		if v == nil {
			c.report(keyPath(p+".args", k), "no value (Compose would take it from the environment): not imported")
			continue
		}
		if b.Args == nil {
			b.Args = map[string]string{}
		}
		b.Args[k] = *v
	}
	if s.Image != "" {
		c.report(servicePath(s.Name)+".image", "PanelX tags what it builds itself (<repository>/<project>-<service>:<commit>): %q is not used", s.Image)
	}
	return b, nil
}

// localDockerfile is the build's Dockerfile relative to its context
// directory; one outside the context cannot be uploaded with it.
func localDockerfile(b *types.BuildConfig) (string, error) {
	df := b.Dockerfile
	if df == "" {
		return "Dockerfile", nil
	}
	if !filepath.IsAbs(df) {
		df = filepath.Join(b.Context, df)
	}
	rel, err := filepath.Rel(b.Context, df)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("the Dockerfile %q is outside the build context %q: move it into the context to upload it", b.Dockerfile, b.Context)
	}
	return filepath.ToSlash(rel), nil
}
