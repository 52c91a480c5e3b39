package reconcile

import (
	"context"
	"errors"
	"time"
)

// Runtime is the small set of container-engine operations the loop needs.
// Implementations live in their own packages: reconcile/docker (the
// Docker Engine) and reconcile/memruntime (in memory, for tests). Every
// method touches only objects carrying the installation's instance label.
type Runtime interface {
	// ListContainers is one list call: see ListedContainer for what it
	// tells and what it does not.
	ListContainers(ctx context.Context) ([]ListedContainer, error)
	// InspectContainer returns ErrNotFound when the container is gone or is
	// not this installation's.
	InspectContainer(ctx context.Context, id string) (Container, error)
	ListNetworks(ctx context.Context) ([]Network, error)
	InspectNetwork(ctx context.Context, id string) (Network, error)
	ListVolumes(ctx context.Context) ([]Volume, error)
	InspectVolume(ctx context.Context, name string) (Volume, error)
	// ImageID returns the local ID of an image reference, or "" when the
	// image is not present.
	ImageID(ctx context.Context, ref string) (string, error)
	// ImageDigest returns the registry reference (repo@sha256:…) pinning
	// the local image of ref, or "" when it came from no registry.
	ImageDigest(ctx context.Context, ref string) (string, error)

	PullImage(ctx context.Context, ref string, auth *RegistryAuth) error
	CreateNetwork(ctx context.Context, name string, labels map[string]string) (Network, error)
	RemoveNetwork(ctx context.Context, name string) error
	CreateVolume(ctx context.Context, spec VolumeSpec) (Volume, error)
	RemoveVolume(ctx context.Context, name string) error
	CreateContainer(ctx context.Context, spec ContainerSpec) (string, error)
	StartContainer(ctx context.Context, ref string) error
	StopContainer(ctx context.Context, ref string, grace time.Duration) error
	RemoveContainer(ctx context.Context, ref string) error
	RenameContainer(ctx context.Context, ref, newName string) error

	// Events streams changes of this installation's containers, of its
	// networks and volumes, and of all images, over one connection. The
	// error channel yields one error when the stream ends; callers then
	// re-list.
	Events(ctx context.Context) (<-chan RuntimeEvent, <-chan error)
}

// RegistryAuth are credentials for pulling from a private registry.
type RegistryAuth struct {
	Registry string
	Username string
	Password string
}

// ObjectType of a runtime event.
type ObjectType string

const (
	ObjectContainer ObjectType = "container"
	ObjectNetwork   ObjectType = "network"
	ObjectVolume    ObjectType = "volume"
	// ObjectImage: an image was pulled, tagged, untagged, loaded or
	// deleted; the cache forgets the image IDs it knows.
	ObjectImage ObjectType = "image"
	// ObjectWorkload: an orchestrator's service changed (Name is the
	// workload's); the cache inspects it again.
	ObjectWorkload ObjectType = "service"
)

// RuntimeEvent says that an object changed; handlers re-inspect it rather
// than trusting the event's content.
type RuntimeEvent struct {
	Type   ObjectType
	Action string
	ID     string // container or network ID, volume name
	Name   string
	// Project and Service, for containers (from their labels).
	Project string
	Service string
	// Container is the container a network (dis)connect event is about.
	Container string
	Time      time.Time
}

// ErrNotFound: the object does not exist or is not this installation's.
var ErrNotFound = errors.New("not found")

// ErrNotOwned: an object with the name exists but belongs to someone else;
// PanelX will not touch it.
var ErrNotOwned = errors.New("exists but is not managed by this PanelX installation")

// NodeNamer is a runtime of several hosts that names the one whose engine
// it talks to (where it creates volumes).
type NodeNamer interface {
	NodeName(ctx context.Context) (string, error)
}

// NodeName is that host for a runtime of several, fenced or not; "" for
// one engine.
func NodeName(ctx context.Context, rt Runtime) (string, error) {
	if f, ok := rt.(FencedRuntime); ok {
		rt = f.Runtime
	}
	if nn, ok := rt.(NodeNamer); ok {
		return nn.NodeName(ctx)
	}
	return "", nil
}

// VolumeMove is a copy of a volume's data from one node to another.
type VolumeMove struct {
	Project string
	Volume  string // the Volume resource's name
	// From and To are nodes (hostnames, as status.node names them).
	From, To string
	// Spec is the volume created on To (its labels and driver).
	Spec VolumeSpec
	// Auth pulls the helper image on both nodes (nil: anonymous).
	Auth *RegistryAuth
}

// VolumeMoveResult is what the receiving node wrote and checked.
type VolumeMoveResult struct {
	Files, Bytes int64
	SHA256       string
}

// ErrNoMoveImage: moves between nodes run an image of panelx on them.
var ErrNoMoveImage = errors.New("moving a volume between nodes needs PANELX_SWARM_HELPER_IMAGE: an image of this panelx that every node can pull (its entrypoint the panelx binary, as the PanelX image's is)")

// VolumeMover is a runtime of several hosts that copies a volume's data
// between them (the swarm runtime; docs/architecture.md, Runtimes).
type VolumeMover interface {
	// MoveVolume copies the data; the copy on From stays as it was. It
	// refuses while a task that mounts the volume runs.
	MoveVolume(ctx context.Context, m VolumeMove) (VolumeMoveResult, error)
	// VolumeTasks names the running tasks, on any node, that mount the
	// Docker volume.
	VolumeTasks(ctx context.Context, dockerName string) ([]string, error)
	// MoveImage is the image the copy runs ("" : moves are not set up).
	MoveImage() string
}
