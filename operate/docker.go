package operate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/panelx/panelx/naming"
)

// Docker is the part of the Engine API this package calls; *client.Client
// (with API version negotiation, as from dockerclient.New)
// implements it.
type Docker interface {
	ContainerList(ctx context.Context, options container.ListOptions) ([]container.Summary, error)
	ContainerInspect(ctx context.Context, container string) (container.InspectResponse, error)
	ContainerLogs(ctx context.Context, container string, options container.LogsOptions) (io.ReadCloser, error)
	Events(ctx context.Context, options events.ListOptions) (<-chan events.Message, <-chan error)

	ContainerExecCreate(ctx context.Context, container string, options container.ExecOptions) (container.ExecCreateResponse, error)
	ContainerExecAttach(ctx context.Context, execID string, options container.ExecAttachOptions) (types.HijackedResponse, error)
	ContainerExecInspect(ctx context.Context, execID string) (container.ExecInspect, error)
	ContainerExecResize(ctx context.Context, execID string, options container.ResizeOptions) error

	ContainerStatPath(ctx context.Context, container, path string) (container.PathStat, error)
	CopyFromContainer(ctx context.Context, container, srcPath string) (io.ReadCloser, container.PathStat, error)
	CopyToContainer(ctx context.Context, container, path string, content io.Reader, options container.CopyToContainerOptions) error

	ContainerCreate(ctx context.Context, config *container.Config, hostConfig *container.HostConfig, networkingConfig *network.NetworkingConfig, platform *ocispec.Platform, containerName string) (container.CreateResponse, error)
	ContainerStart(ctx context.Context, container string, options container.StartOptions) error
	ContainerWait(ctx context.Context, container string, condition container.WaitCondition) (<-chan container.WaitResponse, <-chan error)
	ContainerKill(ctx context.Context, container, signal string) error
	ContainerRemove(ctx context.Context, container string, options container.RemoveOptions) error
	VolumeInspect(ctx context.Context, volumeID string) (volume.Volume, error)
	VolumeList(ctx context.Context, options volume.ListOptions) (volume.ListResponse, error)
	VolumeRemove(ctx context.Context, volumeID string, force bool) error
}

// callTimeout bounds single Docker calls that are not streams.
const callTimeout = 30 * time.Second

// ErrNoContainer: the service (or the chosen replica) has no container.
var ErrNoContainer = errors.New("no container")

// replicaContainer is a PanelX container of one service replica.
type replicaContainer struct {
	ID      string
	Name    string
	Replica int
	Running bool
	Created time.Time
	// Ended: a Swarm task that is over (its container does not run again:
	// its logs are complete); TTY: the task's container has a terminal.
	// Containers of the single engine leave both false.
	Ended bool
	TTY   bool
}

// serviceFilter selects the containers of one service of one installation,
// optionally one replica. Only containers carrying the full set of PanelX
// labels match, so helper containers never do.
func serviceFilter(instance, project, service string, replica *int) filters.Args {
	f := filters.NewArgs(
		filters.Arg("label", naming.LabelManaged+"=true"),
		filters.Arg("label", naming.LabelInstance+"="+instance),
		filters.Arg("label", naming.LabelProject+"="+project),
		filters.Arg("label", naming.LabelService+"="+service),
	)
	if replica != nil {
		f.Add("label", naming.LabelReplica+"="+strconv.Itoa(*replica))
	} else {
		f.Add("label", naming.LabelReplica)
	}
	return f
}

// listReplicas lists the service's containers (stopped ones too), ordered by
// replica index, then creation time.
func listReplicas(ctx context.Context, cli Docker, instance, project, service string, replica *int) ([]replicaContainer, error) {
	if instance == "" || project == "" || service == "" {
		return nil, errors.New("instance, project and service are required")
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	list, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: serviceFilter(instance, project, service, replica)})
	if err != nil {
		return nil, fmt.Errorf("list containers of %s/%s: %w", project, service, err)
	}
	out := make([]replicaContainer, 0, len(list))
	for _, s := range list {
		idx, err := strconv.Atoi(s.Labels[naming.LabelReplica])
		if err != nil || idx < 0 {
			continue
		}
		out = append(out, replicaContainer{
			ID:      s.ID,
			Name:    summaryName(s),
			Replica: idx,
			Running: s.State == "running",
			Created: time.Unix(s.Created, 0),
		})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Replica != out[j].Replica {
			return out[i].Replica < out[j].Replica
		}
		return out[i].Created.Before(out[j].Created)
	})
	return out, nil
}

func summaryName(s container.Summary) string {
	if len(s.Names) == 0 {
		return s.ID[:12]
	}
	return strings.TrimPrefix(s.Names[0], "/")
}

// withTimeout runs fn with a context bounded by callTimeout.
func withTimeout(ctx context.Context, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	return fn(ctx)
}
