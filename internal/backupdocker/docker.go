// Package backupdocker is the Docker side of the controller's backups
// (controller.BackupDocker) over operate: volume archives and restores
// through the files helper containers, hooks through the exec path.
package backupdocker

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/panelx/panelx/backup"
	"github.com/panelx/panelx/controller"
	"github.com/panelx/panelx/naming"
	"github.com/panelx/panelx/operate"
)

// Docker implements controller.BackupDocker.
type Docker struct {
	CLI      operate.Docker
	Instance string
	// HelperBinary is the static panelx binary (restores run its swap).
	HelperBinary string
	// HelperImage creates the helper containers; empty: the image of one
	// of the project's containers.
	HelperImage string
}

var _ controller.BackupDocker = (*Docker)(nil)

func (d *Docker) OpenVolume(ctx context.Context, project, volume string) (controller.BackupVolume, error) {
	f, err := operate.OpenFiles(ctx, d.CLI, operate.FilesOptions{Instance: d.Instance, Project: project, Volume: volume,
		Image: d.HelperImage, HelperBinary: d.HelperBinary})
	if err != nil {
		return nil, err
	}
	return volume_{f: f}, nil
}

type volume_ struct{ f *operate.Files }

func (v volume_) Open(ctx context.Context) (io.ReadCloser, error) { return v.f.Archive(ctx) }

func (v volume_) Sink(ctx context.Context) (backup.Sink, error) {
	r, err := v.f.BeginRestore(ctx)
	if err != nil {
		return nil, err
	}
	return sink{r: r}, nil
}

type sink struct{ r *operate.VolumeRestore }

func (s sink) Stage(ctx context.Context, r io.Reader) error { return s.r.Stage(ctx, r) }
func (s sink) Discard(ctx context.Context) error            { return s.r.Discard(ctx) }
func (s sink) Commit(ctx context.Context, root *backup.RootAttrs) error {
	var attrs *operate.RootAttrs
	if root != nil {
		attrs = &operate.RootAttrs{Mode: root.Mode, UID: root.UID, GID: root.GID}
	}
	return s.r.Commit(ctx, attrs)
}

func (d *Docker) RunHook(ctx context.Context, project, service string, replica int, cmd []string, timeout time.Duration) (controller.BackupHookResult, error) {
	res, err := operate.RunCommand(ctx, d.CLI, operate.ExecTarget{Instance: d.Instance, Project: project, Service: service, Replica: replica}, cmd, timeout)
	if err != nil {
		return controller.BackupHookResult{}, err
	}
	return controller.BackupHookResult{ExitCode: res.ExitCode, Output: res.Output, Container: res.Container}, nil
}

func (d *Docker) RunningUsers(ctx context.Context, project, volume string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	list, err := d.CLI.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(
		filters.Arg("volume", naming.VolumeName(project, volume)),
		filters.Arg("status", "running"),
	)})
	if err != nil {
		return nil, fmt.Errorf("list containers mounting volume %s: %w", volume, err)
	}
	var out []string
	for _, c := range list {
		if c.Labels[operate.LabelHelper] != "" {
			continue // our own helpers never run, but be sure
		}
		name := c.ID[:12]
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		out = append(out, name)
	}
	return out, nil
}
