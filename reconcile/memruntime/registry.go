package memruntime

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"

	"github.com/distribution/reference"

	"github.com/panelx/panelx/reconcile"
)

// Registry is an image registry in memory: what a Runtime can pull. Images
// pushed under a tag move it, as with a real registry; hosts can require
// credentials. One Registry may serve several runtimes (or nodes).
type Registry struct {
	mu     sync.Mutex
	seq    int
	images map[string]Image // by normalized repository:tag
	auth   map[string]reconcile.RegistryAuth
}

// Image is an image as a registry and an engine know it.
type Image struct {
	// ID is the local image ID an engine gives it (sha256:…).
	ID string
	// Digest is the manifest digest the registry serves it under.
	Digest string
	// ExitCode, when not nil, makes containers of this image exit with it
	// as soon as they start (a crashing program).
	ExitCode *int
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{images: map[string]Image{}, auth: map[string]reconcile.RegistryAuth{}}
}

// Push stores a new image under ref (host/repository:tag) and returns ref;
// a push to an existing tag moves it. version tells images apart.
func (g *Registry) Push(ref, version string) string {
	return g.PushImage(ref, version, nil)
}

// PushImage is Push with an image whose containers exit at once with
// exitCode (when not nil).
func (g *Registry) PushImage(ref, version string, exitCode *int) string {
	key := normalize(ref)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.seq++
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%d", key, version, g.seq))
	id := hex.EncodeToString(sum[:])
	g.images[key] = Image{ID: "sha256:" + id, Digest: "sha256:" + id[32:] + id[:32], ExitCode: exitCode}
	return ref
}

// RequireAuth makes the registry at host accept only these credentials.
func (g *Registry) RequireAuth(host, username, password string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.auth[host] = reconcile.RegistryAuth{Registry: host, Username: username, Password: password}
}

// pull returns the image ref names, checking credentials as the registry
// would. Its errors read like the Engine's.
func (g *Registry) pull(ref string, auth *reconcile.RegistryAuth) (Image, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return Image{}, fmt.Errorf("invalid reference format: %w", err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if want, ok := g.auth[reference.Domain(named)]; ok {
		if auth == nil {
			return Image{}, fmt.Errorf("Head \"https://%s/v2/%s/manifests/%s\": no basic auth credentials", reference.Domain(named), reference.Path(named), tagOf(named))
		}
		if auth.Username != want.Username || auth.Password != want.Password {
			return Image{}, fmt.Errorf("Head \"https://%s/v2/%s/manifests/%s\": unauthorized: authentication required", reference.Domain(named), reference.Path(named), tagOf(named))
		}
	}
	if d, ok := named.(reference.Digested); ok {
		for key, img := range g.images {
			if img.Digest == d.Digest().String() && strings.HasPrefix(key, named.Name()+":") {
				return img, nil
			}
		}
		return Image{}, fmt.Errorf("manifest for %s not found: manifest unknown", ref)
	}
	img, ok := g.images[normalize(ref)]
	if !ok {
		return Image{}, fmt.Errorf("manifest for %s not found: manifest unknown: manifest unknown", ref)
	}
	return img, nil
}

func tagOf(named reference.Named) string {
	if t, ok := named.(reference.Tagged); ok {
		return t.Tag()
	}
	return "latest"
}

// normalize is name:tag with the default tag filled in; a reference that
// does not parse is kept as it is.
func normalize(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	if _, ok := named.(reference.Digested); ok {
		return named.String()
	}
	return reference.TagNameOnly(named).String()
}
