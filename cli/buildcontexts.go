package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/builder/buildctx"
	"github.com/panelx/panelx/client"
	"github.com/panelx/panelx/compose"
)

// localBuilds gathers the build contexts of the Compose files an apply or
// diff converts that are directories of this machine. Each is packed once
// to learn its digest, which the manifests name (spec.build.upload);
// apply then uploads the ones the server does not hold yet.
type localBuilds struct {
	pending []pendingContext
}

type pendingContext struct {
	compose.LocalBuild
	digest string
	size   int64
}

// take is compose.Input.LocalBuild.
func (l *localBuilds) take(_ context.Context, b compose.LocalBuild) (*api.UploadSource, error) {
	digest, size, err := buildctx.Digest(b.Context, "", b.Dockerfile, buildctx.PackOptions{})
	if err != nil {
		return nil, fmt.Errorf("build context %s: %w", b.Context, err)
	}
	l.pending = append(l.pending, pendingContext{LocalBuild: b, digest: digest, size: size})
	return &api.UploadSource{Digest: digest}, nil
}

// ensureProjects creates the projects the uploads go to, from their
// documents in manifests, when they do not exist yet: an upload belongs
// to a project.
func (l *localBuilds) ensureProjects(ctx context.Context, c *client.Client, manifests []byte) error {
	if len(l.pending) == 0 {
		return nil
	}
	objs, err := api.ParseManifests(manifests)
	if err != nil {
		return err
	}
	done := map[string]bool{}
	for _, p := range l.pending {
		if done[p.Project] {
			continue
		}
		done[p.Project] = true
		_, err := c.Get(ctx, api.KindProject, "", p.Project)
		if err == nil {
			continue
		}
		if !client.IsNotFound(err) {
			return err
		}
		for _, obj := range objs {
			if obj.GetKind() == api.KindProject && obj.GetMeta().Name == p.Project {
				if _, err := c.Create(ctx, obj); err != nil {
					return fmt.Errorf("create project %s for its build contexts: %w", p.Project, err)
				}
			}
		}
	}
	return nil
}

// upload sends each context the server does not hold yet, telling w.
func (l *localBuilds) upload(ctx context.Context, c *client.Client, w io.Writer) error {
	for _, p := range l.pending {
		if _, err := c.StatBuildContext(ctx, p.Project, p.digest); err == nil {
			fmt.Fprintf(w, "build context %s of service %s: unchanged (%s)\n", p.Context, p.Service, shortDigest(p.digest))
			continue
		} else if !client.IsNotFound(err) {
			return err
		}
		rc, err := buildctx.Pack(p.Context, "", p.Dockerfile, buildctx.PackOptions{})
		if err != nil {
			return fmt.Errorf("build context %s: %w", p.Context, err)
		}
		got, err := c.UploadBuildContext(ctx, p.Project, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("build context %s of service %s: %w", p.Context, p.Service, err)
		}
		if got.Digest != p.digest {
			return fmt.Errorf("build context %s changed while it was uploaded (%s, then %s): apply again", p.Context, shortDigest(p.digest), shortDigest(got.Digest))
		}
		fmt.Fprintf(w, "build context %s of service %s: uploaded %d bytes (%s)\n", p.Context, p.Service, got.Size, shortDigest(p.digest))
	}
	return nil
}

func shortDigest(digest string) string {
	if len(digest) > len("sha256:")+12 {
		return digest[:len("sha256:")+12]
	}
	return digest
}
