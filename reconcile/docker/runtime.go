package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
	"github.com/docker/docker/pkg/jsonmessage"

	"github.com/panelx/panelx/reconcile"
)

// Timeouts of Docker calls: no worker may hang on the engine.
const (
	callTimeout = 30 * time.Second
	pullTimeout = 10 * time.Minute
)

// Runtime implements reconcile.Runtime with the Docker Engine API (one
// engine, container by container). It works with Engine 20.10 (API 1.41)
// and current engines through version negotiation.
type Runtime struct {
	cli      *client.Client
	instance string
	// netMu serialises network creation: Docker's duplicate-name check is
	// not atomic, and two reconciles (the project's and a service's) may
	// both find the network missing.
	netMu sync.Mutex
	// Observe, when set, is called with the duration of every Docker call.
	Observe func(op string, d time.Duration, err error)
	// NetworkDriver is the driver of the networks it creates ("": bridge);
	// Attachable makes them attachable (an overlay that containers outside
	// the orchestrator may join).
	NetworkDriver string
	Attachable    bool
}

// NewRuntime wraps a client; instance is the installation ID whose
// label marks the objects this runtime may touch.
func NewRuntime(cli *client.Client, instance string) *Runtime {
	return &Runtime{cli: cli, instance: instance}
}

// call runs one Docker call with a timeout and reports its duration.
func (d *Runtime) call(ctx context.Context, op string, timeout time.Duration, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	err := fn(ctx)
	if d.Observe != nil {
		d.Observe(op, time.Since(start), err)
	}
	return err
}

func (d *Runtime) ownerFilter() filters.Args {
	return filters.NewArgs(filters.Arg("label", reconcile.LabelInstance+"="+d.instance))
}

func (d *Runtime) owned(labels map[string]string) bool {
	return labels[reconcile.LabelManaged] == "true" && labels[reconcile.LabelInstance] == d.instance
}

func (d *Runtime) ListContainers(ctx context.Context) ([]reconcile.ListedContainer, error) {
	var list []container.Summary
	asked := time.Now()
	err := d.call(ctx, "container_list", callTimeout, func(ctx context.Context) (err error) {
		list, err = d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: d.ownerFilter()})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	// What the list lacks (exit details, restart count, start time) comes
	// from an inspect, which the cache asks for only when the list shows
	// a change.
	out := make([]reconcile.ListedContainer, 0, len(list))
	for _, s := range list {
		if !d.owned(s.Labels) {
			continue
		}
		c, ok := reconcile.ContainerFromLabels(s.Labels)
		if !ok {
			continue
		}
		c.ID, c.ImageID = s.ID, s.ImageID
		if len(s.Names) > 0 {
			c.Name = strings.TrimPrefix(s.Names[0], "/")
		}
		for _, m := range s.Mounts {
			if m.Type == mount.TypeVolume {
				c.Volumes = append(c.Volumes, m.Name)
			}
		}
		if s.NetworkSettings != nil {
			c.Networks, c.IPs = endpoints(s.NetworkSettings.Networks)
		}
		out = append(out, listed(c, string(s.State), s.Status, asked))
	}
	return out, nil
}

// endpoints returns the network IDs of a container's endpoints and its
// addresses on them.
func endpoints(eps map[string]*network.EndpointSettings) (ids []string, ips map[string]string) {
	for _, ep := range eps {
		if ep != nil && ep.NetworkID != "" {
			ids = append(ids, ep.NetworkID)
			if ep.IPAddress != "" {
				if ips == nil {
					ips = map[string]string{}
				}
				ips[ep.NetworkID] = ep.IPAddress
			}
		}
	}
	return ids, ips
}

func (d *Runtime) InspectContainer(ctx context.Context, id string) (reconcile.Container, error) {
	var in container.InspectResponse
	asked := time.Now() // the state seen is no older than this
	err := d.call(ctx, "container_inspect", callTimeout, func(ctx context.Context) (err error) {
		in, err = d.cli.ContainerInspect(ctx, id)
		return err
	})
	if errdefs.IsNotFound(err) {
		return reconcile.Container{}, fmt.Errorf("inspect container %s: %w", id, reconcile.ErrNotFound)
	}
	if err != nil {
		return reconcile.Container{}, fmt.Errorf("inspect container %s: %w", id, err)
	}
	if in.Config == nil || !d.owned(in.Config.Labels) {
		return reconcile.Container{}, fmt.Errorf("inspect container %s: %w", id, reconcile.ErrNotFound)
	}
	c, ok := reconcile.ContainerFromLabels(in.Config.Labels)
	if !ok {
		return reconcile.Container{}, fmt.Errorf("inspect container %s: incomplete labels: %w", id, reconcile.ErrNotFound)
	}
	c.ID = in.ID
	c.Name = strings.TrimPrefix(in.Name, "/")
	c.ImageID = in.Image
	c.RestartCount = in.RestartCount
	if st := in.State; st != nil {
		c.State = string(st.Status)
		c.ExitCode = st.ExitCode
		c.OOMKilled = st.OOMKilled
		c.Error = st.Error
		c.StartedAt, _ = time.Parse(time.RFC3339Nano, st.StartedAt)
		c.FinishedAt, _ = time.Parse(time.RFC3339Nano, st.FinishedAt)
		c.ObservedAt = asked
		if st.Health != nil {
			c.Health = string(st.Health.Status)
		}
	}
	for _, m := range in.Mounts {
		if m.Type == mount.TypeVolume {
			c.Volumes = append(c.Volumes, m.Name)
		}
	}
	if in.NetworkSettings != nil {
		c.Networks, c.IPs = endpoints(in.NetworkSettings.Networks)
	}
	return c, nil
}

func (d *Runtime) ListNetworks(ctx context.Context) ([]reconcile.Network, error) {
	var list []network.Summary
	err := d.call(ctx, "network_list", callTimeout, func(ctx context.Context) (err error) {
		list, err = d.cli.NetworkList(ctx, network.ListOptions{Filters: d.ownerFilter()})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	out := make([]reconcile.Network, 0, len(list))
	for _, n := range list {
		if d.owned(n.Labels) {
			out = append(out, reconcile.NetworkFromLabels(n.ID, n.Name, n.Labels))
		}
	}
	return out, nil
}

func (d *Runtime) InspectNetwork(ctx context.Context, id string) (reconcile.Network, error) {
	var n network.Inspect
	err := d.call(ctx, "network_inspect", callTimeout, func(ctx context.Context) (err error) {
		n, err = d.cli.NetworkInspect(ctx, id, network.InspectOptions{})
		return err
	})
	if errdefs.IsNotFound(err) {
		return reconcile.Network{}, fmt.Errorf("inspect network %s: %w", id, reconcile.ErrNotFound)
	}
	if err != nil {
		return reconcile.Network{}, fmt.Errorf("inspect network %s: %w", id, err)
	}
	if !d.owned(n.Labels) {
		return reconcile.Network{}, fmt.Errorf("inspect network %s: %w", id, reconcile.ErrNotOwned)
	}
	return reconcile.NetworkFromLabels(n.ID, n.Name, n.Labels), nil
}

func (d *Runtime) ListVolumes(ctx context.Context) ([]reconcile.Volume, error) {
	var resp volume.ListResponse
	err := d.call(ctx, "volume_list", callTimeout, func(ctx context.Context) (err error) {
		resp, err = d.cli.VolumeList(ctx, volume.ListOptions{Filters: d.ownerFilter()})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	out := make([]reconcile.Volume, 0, len(resp.Volumes))
	for _, v := range resp.Volumes {
		if v != nil && d.owned(v.Labels) {
			out = append(out, volumeFromDocker(v))
		}
	}
	return out, nil
}

func volumeFromDocker(v *volume.Volume) reconcile.Volume {
	return reconcile.Volume{Name: v.Name, Project: v.Labels[reconcile.LabelProject], Volume: v.Labels[reconcile.LabelVolume], Driver: v.Driver}
}

func (d *Runtime) InspectVolume(ctx context.Context, name string) (reconcile.Volume, error) {
	var v volume.Volume
	err := d.call(ctx, "volume_inspect", callTimeout, func(ctx context.Context) (err error) {
		v, err = d.cli.VolumeInspect(ctx, name)
		return err
	})
	if errdefs.IsNotFound(err) {
		return reconcile.Volume{}, fmt.Errorf("inspect volume %s: %w", name, reconcile.ErrNotFound)
	}
	if err != nil {
		return reconcile.Volume{}, fmt.Errorf("inspect volume %s: %w", name, err)
	}
	if !d.owned(v.Labels) {
		return reconcile.Volume{}, fmt.Errorf("volume %s: %w", name, reconcile.ErrNotOwned)
	}
	return volumeFromDocker(&v), nil
}

func (d *Runtime) ImageID(ctx context.Context, ref string) (string, error) {
	var in image.InspectResponse
	err := d.call(ctx, "image_inspect", callTimeout, func(ctx context.Context) (err error) {
		in, err = d.cli.ImageInspect(ctx, ref)
		return err
	})
	if errdefs.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("inspect image %s: %w", ref, err)
	}
	return in.ID, nil
}

func (d *Runtime) ImageDigest(ctx context.Context, ref string) (string, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", fmt.Errorf("image digest of %s: %w", ref, err)
	}
	if _, ok := named.(reference.Digested); ok {
		return ref, nil // pinned already
	}
	var in image.InspectResponse
	err = d.call(ctx, "image_inspect", callTimeout, func(ctx context.Context) (err error) {
		in, err = d.cli.ImageInspect(ctx, ref)
		return err
	})
	if errdefs.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("inspect image %s: %w", ref, err)
	}
	for _, rd := range in.RepoDigests {
		if d, err := reference.ParseNormalizedNamed(rd); err == nil && d.Name() == named.Name() {
			return rd, nil
		}
	}
	return "", nil
}

func (d *Runtime) PullImage(ctx context.Context, ref string, auth *reconcile.RegistryAuth) error {
	opts := image.PullOptions{}
	if auth != nil {
		enc, err := registry.EncodeAuthConfig(registry.AuthConfig{Username: auth.Username, Password: auth.Password, ServerAddress: auth.Registry})
		if err != nil {
			return fmt.Errorf("pull %s: encode credentials: %w", ref, err)
		}
		opts.RegistryAuth = enc
	}
	return d.call(ctx, "image_pull", pullTimeout, func(ctx context.Context) error {
		rc, err := d.cli.ImagePull(ctx, ref, opts)
		if err != nil {
			return fmt.Errorf("pull %s: %w", ref, err)
		}
		defer rc.Close()
		// The pull's outcome is in the progress stream, not the status code.
		if err := jsonmessage.DisplayJSONMessagesStream(rc, io.Discard, 0, false, nil); err != nil {
			return fmt.Errorf("pull %s: %w", ref, err)
		}
		return nil
	})
}

func (d *Runtime) CreateNetwork(ctx context.Context, name string, labels map[string]string) (reconcile.Network, error) {
	d.netMu.Lock()
	defer d.netMu.Unlock()
	if n, err := d.InspectNetwork(ctx, name); err == nil {
		return n, nil // created meanwhile
	} else if errors.Is(err, reconcile.ErrNotOwned) {
		return reconcile.Network{}, fmt.Errorf("create network %s: a network with this name %w", name, reconcile.ErrNotOwned)
	}
	var resp network.CreateResponse
	err := d.call(ctx, "network_create", callTimeout, func(ctx context.Context) (err error) {
		// The client asks the engine to refuse duplicate names, so a
		// network of someone else's with this name is an error, not a twin.
		driver := d.NetworkDriver
		if driver == "" {
			driver = "bridge"
		}
		resp, err = d.cli.NetworkCreate(ctx, name, network.CreateOptions{Driver: driver, Attachable: d.Attachable, Labels: labels})
		return err
	})
	if errdefs.IsConflict(err) || (err != nil && strings.Contains(err.Error(), "already exists")) {
		n, ierr := d.InspectNetwork(ctx, name)
		if ierr == nil {
			return n, nil // ours already: created concurrently
		}
		return reconcile.Network{}, fmt.Errorf("create network %s: a network with this name %w", name, reconcile.ErrNotOwned)
	}
	if err != nil {
		return reconcile.Network{}, fmt.Errorf("create network %s: %w", name, err)
	}
	return reconcile.NetworkFromLabels(resp.ID, name, labels), nil
}

func (d *Runtime) RemoveNetwork(ctx context.Context, name string) error {
	n, err := d.InspectNetwork(ctx, name)
	if errors.Is(err, reconcile.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove network %s: %w", name, err)
	}
	err = d.call(ctx, "network_remove", callTimeout, func(ctx context.Context) error {
		return d.cli.NetworkRemove(ctx, n.ID)
	})
	if err != nil && !errdefs.IsNotFound(err) {
		if strings.Contains(err.Error(), "active endpoints") {
			// PlanProject removes the network only once no container of the
			// project is left: an endpoint that outlives its container is
			// the engine's (Engine 20.10 loses count when many containers
			// leave a network at once; `docker compose down` trips on it too).
			return fmt.Errorf("remove network %s: %w (no container of the project is left: the engine kept a stale endpoint; restarting dockerd clears it, and the removal is retried)", name, err)
		}
		return fmt.Errorf("remove network %s: %w", name, err)
	}
	return nil
}

func (d *Runtime) CreateVolume(ctx context.Context, spec reconcile.VolumeSpec) (reconcile.Volume, error) {
	// Creating an existing volume succeeds silently in Docker, so check
	// first that a volume of that name is not someone else's.
	existing, err := d.InspectVolume(ctx, spec.Name)
	switch {
	case err == nil:
		return existing, nil
	case errors.Is(err, reconcile.ErrNotOwned):
		return reconcile.Volume{}, fmt.Errorf("create volume %s: a volume with this name %w", spec.Name, reconcile.ErrNotOwned)
	case !errors.Is(err, reconcile.ErrNotFound):
		return reconcile.Volume{}, fmt.Errorf("create volume %s: %w", spec.Name, err)
	}
	var v volume.Volume
	err = d.call(ctx, "volume_create", callTimeout, func(ctx context.Context) (err error) {
		v, err = d.cli.VolumeCreate(ctx, volume.CreateOptions{Name: spec.Name, Driver: spec.Driver, DriverOpts: spec.DriverOpts, Labels: spec.Labels})
		return err
	})
	if err != nil {
		return reconcile.Volume{}, fmt.Errorf("create volume %s: %w", spec.Name, err)
	}
	return volumeFromDocker(&v), nil
}

func (d *Runtime) RemoveVolume(ctx context.Context, name string) error {
	if _, err := d.InspectVolume(ctx, name); errors.Is(err, reconcile.ErrNotFound) {
		return nil
	} else if err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	err := d.call(ctx, "volume_remove", callTimeout, func(ctx context.Context) error {
		return d.cli.VolumeRemove(ctx, name, false)
	})
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	return nil
}

func (d *Runtime) CreateContainer(ctx context.Context, spec reconcile.ContainerSpec) (string, error) {
	cfg, host, netCfg, err := dockerConfig(spec)
	if err != nil {
		return "", fmt.Errorf("create container %s: %w", spec.Name, err)
	}
	var resp container.CreateResponse
	err = d.call(ctx, "container_create", callTimeout, func(ctx context.Context) (err error) {
		resp, err = d.cli.ContainerCreate(ctx, cfg, host, netCfg, nil, spec.Name)
		return err
	})
	if errdefs.IsConflict(err) {
		return "", fmt.Errorf("create container %s: the name is taken by a container this installation does not manage or has not seen yet: %w", spec.Name, err)
	}
	if err != nil {
		return "", fmt.Errorf("create container %s: %w", spec.Name, err)
	}
	// A container missing one of its networks or files is not what was
	// asked for: it goes, and the next reconcile creates it again.
	discard := func(err error) (string, error) {
		_ = d.call(context.WithoutCancel(ctx), "container_remove", callTimeout, func(ctx context.Context) error {
			return d.cli.ContainerRemove(ctx, resp.ID, container.RemoveOptions{Force: true})
		})
		return "", fmt.Errorf("create container %s: %w", spec.Name, err)
	}
	for i, id := range spec.MoreNetworkIDs {
		err := d.call(ctx, "network_connect", callTimeout, func(ctx context.Context) error {
			return d.cli.NetworkConnect(ctx, id, resp.ID, &network.EndpointSettings{Aliases: spec.Aliases})
		})
		if err != nil {
			return discard(fmt.Errorf("connect network %s: %w", spec.MoreNetworks[i], err))
		}
	}
	if len(spec.Files) > 0 {
		archive, err := filesArchive(spec.Files)
		if err != nil {
			return discard(err)
		}
		err = d.call(ctx, "container_copy", callTimeout, func(ctx context.Context) error {
			return d.cli.CopyToContainer(ctx, resp.ID, "/", bytes.NewReader(archive), container.CopyToContainerOptions{})
		})
		if err != nil {
			return discard(fmt.Errorf("write secret files: %w", err))
		}
	}
	return resp.ID, nil
}

func (d *Runtime) StartContainer(ctx context.Context, ref string) error {
	err := d.call(ctx, "container_start", callTimeout, func(ctx context.Context) error {
		return d.cli.ContainerStart(ctx, ref, container.StartOptions{})
	})
	if err != nil {
		return fmt.Errorf("start container %s: %w", ref, err)
	}
	return nil
}

func (d *Runtime) StopContainer(ctx context.Context, ref string, grace time.Duration) error {
	secs := int((grace + time.Second - 1) / time.Second) // the engine counts whole seconds: round up
	err := d.call(ctx, "container_stop", grace+callTimeout, func(ctx context.Context) error {
		return d.cli.ContainerStop(ctx, ref, container.StopOptions{Timeout: &secs})
	})
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("stop container %s: %w", ref, err)
	}
	return nil
}

func (d *Runtime) RemoveContainer(ctx context.Context, ref string) error {
	err := d.call(ctx, "container_remove", callTimeout, func(ctx context.Context) error {
		// Force: a container that restarts in a loop cannot be stopped first.
		return d.cli.ContainerRemove(ctx, ref, container.RemoveOptions{Force: true})
	})
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("remove container %s: %w", ref, err)
	}
	return nil
}

func (d *Runtime) RenameContainer(ctx context.Context, ref, newName string) error {
	err := d.call(ctx, "container_rename", callTimeout, func(ctx context.Context) error {
		return d.cli.ContainerRename(ctx, ref, newName)
	})
	if err != nil {
		return fmt.Errorf("rename container %s to %s: %w", ref, newName, err)
	}
	return nil
}

var _ reconcile.Runtime = (*Runtime)(nil)
