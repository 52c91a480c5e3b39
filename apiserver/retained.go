package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/apiserver/authz"
	"github.com/panelx/panelx/store"
)

// DockerVolume is a Docker volume this installation made for a Volume.
type DockerVolume struct {
	Name      string    `json:"name"` // the Docker volume's name
	Project   string    `json:"project"`
	Volume    string    `json:"volume"`
	CreatedAt time.Time `json:"createdAt,omitzero"`
	// UsedBy are the containers, running or not, that mount it.
	UsedBy []string `json:"usedBy,omitempty"`
	// ProjectExists: the project is still there (its editors may purge the
	// volume); otherwise only server administrators see it.
	ProjectExists bool `json:"projectExists"`
}

// VolumeOperations is the part of Operations that lists and removes the
// installation's Docker volumes. An Operations without it answers 503.
type VolumeOperations interface {
	DockerVolumes(ctx context.Context) ([]DockerVolume, error)
	// RemoveDockerVolume removes one of them and its data (ErrOpNotFound:
	// not this installation's; ErrOpConflict: a container mounts it).
	RemoveDockerVolume(ctx context.Context, name string) error
}

func (s *Server) volumeOperations() (VolumeOperations, error) {
	ops, err := s.operations()
	if err != nil {
		return nil, err
	}
	vo, ok := ops.(VolumeOperations)
	if !ok {
		return nil, httpErr(http.StatusServiceUnavailable, "this server does not manage Docker volumes")
	}
	return vo, nil
}

// retainedVolumes returns the Docker volumes no Volume holds any more — a
// Volume deleted with reclaimPolicy Retain, a project deleted without
// purging its volumes — that the caller may see: a server administrator
// every one, anyone else those of projects still there where they may
// delete volumes.
func (s *Server) retainedVolumes(r *http.Request) ([]DockerVolume, error) {
	vo, err := s.volumeOperations()
	if err != nil {
		return nil, err
	}
	all, err := vo.DockerVolumes(r.Context())
	if err != nil {
		return nil, opError(err)
	}
	// What the store holds, read once: the projects, and the Volumes that
	// still hold their Docker volume.
	ctx := r.Context()
	projects := map[string]bool{}
	held := map[api.Key]bool{}
	if err := store.Each(ctx, s.store.Projects(), store.ListOptions{}, func(p *api.Project) { projects[p.Metadata.Name] = true }); err != nil {
		return nil, err
	}
	if err := store.Each(ctx, s.store.Volumes(), store.ListOptions{}, func(v *api.Volume) { held[api.KeyOf(v)] = true }); err != nil {
		return nil, err
	}
	p := authz.PrincipalFrom(ctx)
	mayPurge := map[string]bool{} // by project: asked once each
	var out []DockerVolume
	for _, v := range all {
		if held[api.Key{Project: v.Project, Name: v.Volume}] {
			continue // held by its Volume: not retained
		}
		v.ProjectExists = projects[v.Project]
		switch {
		case p.Admin && !p.Scoped():
		case v.ProjectExists:
			ok, asked := mayPurge[v.Project]
			if !asked {
				_, err := s.authorize(r, v.Project, authz.Write)
				var nf *authz.ProjectNotFoundError
				if err != nil && !errors.Is(err, authz.ErrForbidden) && !errors.As(err, &nf) {
					return nil, err // the store failed: say so, do not hide volumes
				}
				ok = err == nil
				mayPurge[v.Project] = ok
			}
			if !ok {
				continue
			}
		default:
			continue
		}
		out = append(out, v)
	}
	return out, nil
}

// listRetainedVolumes: GET /api/v1/retained-volumes.
func (s *Server) listRetainedVolumes(w http.ResponseWriter, r *http.Request) {
	vols, err := s.retainedVolumes(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, items(vols))
}

// purgeRetainedVolume: DELETE /api/v1/retained-volumes/{name} — the data
// goes for good. Only a volume the caller sees in the list can go, so a
// volume held by a Volume, or of a project the caller may not write, is a
// 404 like one that does not exist.
func (s *Server) purgeRetainedVolume(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	vols, err := s.retainedVolumes(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var found *DockerVolume
	for i := range vols {
		if vols[i].Name == name {
			found = &vols[i]
		}
	}
	if found == nil {
		s.fail(w, r, httpErr(http.StatusNotFound, "no retained volume %q that you may purge", name))
		return
	}
	vo, err := s.volumeOperations()
	if err == nil {
		err = vo.RemoveDockerVolume(r.Context(), name)
	}
	if err != nil {
		s.fail(w, r, opError(err))
		return
	}
	if found.ProjectExists {
		s.recordEvent(r.Context(), store.Event{Project: found.Project, Kind: api.KindVolume, Name: found.Volume, Type: store.EventNormal,
			Reason: "VolumePurged", Message: fmt.Sprintf("the retained Docker volume %s and its data were removed by %s", name, authz.PrincipalFrom(r.Context()).UserID)})
	}
	w.WriteHeader(http.StatusNoContent)
}
