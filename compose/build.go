package compose

import (
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

// build maps a build from a git context to spec.build.
func (c *converter) build(p string, s types.ServiceConfig) *api.BuildSpec {
	url, ref, dir, ok := gitContext(s.Build)
	if !ok {
		if s.Build != nil {
			c.report(p, "the build context %q is a directory of this machine, which the server cannot see: the service runs image %q, which must be in a registry (or make the context a git URL: https://…/repo.git#branch:dir)", s.Build.Context, s.Image)
		}
		return nil
	}
	c.reportUnset(p, *s.Build, buildFields...)
	b := &api.BuildSpec{Git: api.GitSource{URL: url, Ref: ref, Dir: dir}, Dockerfile: s.Build.Dockerfile, Target: s.Build.Target}
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
	return b
}
