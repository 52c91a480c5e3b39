package operate

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/errdefs"

	"github.com/panelx/panelx/naming"
)

// InstallationVolume is a Docker volume PanelX made for a project's Volume
// (it carries the installation's labels).
type InstallationVolume struct {
	Name            string // the Docker volume's name
	Project, Volume string
	CreatedAt       time.Time
	// UsedBy are the containers (running or not) that mount it.
	UsedBy []string
}

// ListVolumes lists the Docker volumes of the installation, with the
// containers that mount each: one volume list and one container list.
func ListVolumes(ctx context.Context, cli Docker, instance string) ([]InstallationVolume, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	f := filters.NewArgs(filters.Arg("label", naming.LabelInstance+"="+instance))
	vols, err := cli.VolumeList(ctx, volume.ListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	users := map[string][]string{}
	for _, c := range cs {
		for _, m := range c.Mounts {
			if m.Type == "volume" && m.Name != "" && len(c.Names) > 0 {
				users[m.Name] = append(users[m.Name], strings.TrimPrefix(c.Names[0], "/"))
			}
		}
	}
	var out []InstallationVolume
	for _, v := range vols.Volumes {
		if v == nil || v.Labels[naming.LabelProject] == "" || v.Labels[naming.LabelVolume] == "" {
			continue
		}
		created, _ := time.Parse(time.RFC3339, v.CreatedAt)
		used := users[v.Name]
		slices.Sort(used)
		out = append(out, InstallationVolume{Name: v.Name, Project: v.Labels[naming.LabelProject], Volume: v.Labels[naming.LabelVolume],
			CreatedAt: created, UsedBy: used})
	}
	slices.SortFunc(out, func(a, b InstallationVolume) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// RemoveVolume removes a Docker volume of the installation, and its data.
// A volume of another installation (or none) is ErrNotFound; one that a
// container still mounts is ErrExist (Docker refuses it too).
func RemoveVolume(ctx context.Context, cli Docker, instance, name string) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	v, err := cli.VolumeInspect(ctx, name)
	if errdefs.IsNotFound(err) {
		return fmt.Errorf("volume %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("inspect volume %s: %w", name, err)
	}
	if v.Labels[naming.LabelInstance] != instance {
		return fmt.Errorf("volume %s is not one of this installation: %w", name, ErrNotFound)
	}
	if err := cli.VolumeRemove(ctx, name, false); err != nil {
		if errdefs.IsConflict(err) {
			return fmt.Errorf("volume %s is in use by a container: %w", name, ErrExist)
		}
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	return nil
}
