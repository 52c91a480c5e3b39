package reconcile

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
	"github.com/docker/docker/pkg/jsonmessage"
	"github.com/docker/go-connections/nat"
)

// Timeouts of Docker calls: no worker may hang on the engine.
const (
	callTimeout = 30 * time.Second
	pullTimeout = 10 * time.Minute
	stopGrace   = 10 * time.Second
)

// DockerRuntime implements Runtime with the Docker Engine API. It works with
// Engine 20.10 (API 1.41) and current engines through version negotiation.
type DockerRuntime struct {
	cli      *client.Client
	instance string
	// netMu serialises network creation: Docker's duplicate-name check is
	// not atomic, and two reconciles (the project's and a service's) may
	// both find the network missing.
	netMu sync.Mutex
	// Observe, when set, is called with the duration of every Docker call.
	Observe func(op string, d time.Duration, err error)
}

// NewDockerRuntime wraps a client; instance is the installation ID whose
// label marks the objects this runtime may touch.
func NewDockerRuntime(cli *client.Client, instance string) *DockerRuntime {
	return &DockerRuntime{cli: cli, instance: instance}
}

// call runs one Docker call with a timeout and reports its duration.
func (d *DockerRuntime) call(ctx context.Context, op string, timeout time.Duration, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	err := fn(ctx)
	if d.Observe != nil {
		d.Observe(op, time.Since(start), err)
	}
	return err
}

func (d *DockerRuntime) ownerFilter() filters.Args {
	return filters.NewArgs(filters.Arg("label", LabelInstance+"="+d.instance))
}

func (d *DockerRuntime) owned(labels map[string]string) bool {
	return labels[LabelManaged] == "true" && labels[LabelInstance] == d.instance
}

func (d *DockerRuntime) ListContainers(ctx context.Context) ([]ListedContainer, error) {
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
	// a change (ListedContainer.unchangedSince).
	out := make([]ListedContainer, 0, len(list))
	for _, s := range list {
		if !d.owned(s.Labels) {
			continue
		}
		c, ok := containerFromLabels(s.Labels)
		if !ok {
			continue
		}
		c.ID, c.ImageID, c.State = s.ID, s.ImageID, string(s.State)
		if len(s.Names) > 0 {
			c.Name = strings.TrimPrefix(s.Names[0], "/")
		}
		if c.State == "running" {
			c.Health = healthFromStatus(s.Status)
		}
		for _, m := range s.Mounts {
			if m.Type == mount.TypeVolume {
				c.Volumes = append(c.Volumes, m.Name)
			}
		}
		if s.NetworkSettings != nil {
			c.Networks, c.IPs = endpoints(s.NetworkSettings.Networks)
		}
		out = append(out, ListedContainer{Container: c, Status: s.Status, ListedAt: asked})
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

func (d *DockerRuntime) InspectContainer(ctx context.Context, id string) (Container, error) {
	var in container.InspectResponse
	asked := time.Now() // the state seen is no older than this
	err := d.call(ctx, "container_inspect", callTimeout, func(ctx context.Context) (err error) {
		in, err = d.cli.ContainerInspect(ctx, id)
		return err
	})
	if errdefs.IsNotFound(err) {
		return Container{}, fmt.Errorf("inspect container %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Container{}, fmt.Errorf("inspect container %s: %w", id, err)
	}
	if in.Config == nil || !d.owned(in.Config.Labels) {
		return Container{}, fmt.Errorf("inspect container %s: %w", id, ErrNotFound)
	}
	c, ok := containerFromLabels(in.Config.Labels)
	if !ok {
		return Container{}, fmt.Errorf("inspect container %s: incomplete labels: %w", id, ErrNotFound)
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

func (d *DockerRuntime) ListNetworks(ctx context.Context) ([]Network, error) {
	var list []network.Summary
	err := d.call(ctx, "network_list", callTimeout, func(ctx context.Context) (err error) {
		list, err = d.cli.NetworkList(ctx, network.ListOptions{Filters: d.ownerFilter()})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	out := make([]Network, 0, len(list))
	for _, n := range list {
		if d.owned(n.Labels) {
			out = append(out, networkOf(n.ID, n.Name, n.Labels))
		}
	}
	return out, nil
}

func (d *DockerRuntime) InspectNetwork(ctx context.Context, id string) (Network, error) {
	var n network.Inspect
	err := d.call(ctx, "network_inspect", callTimeout, func(ctx context.Context) (err error) {
		n, err = d.cli.NetworkInspect(ctx, id, network.InspectOptions{})
		return err
	})
	if errdefs.IsNotFound(err) {
		return Network{}, fmt.Errorf("inspect network %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Network{}, fmt.Errorf("inspect network %s: %w", id, err)
	}
	if !d.owned(n.Labels) {
		return Network{}, fmt.Errorf("inspect network %s: %w", id, ErrNotOwned)
	}
	return networkOf(n.ID, n.Name, n.Labels), nil
}

func (d *DockerRuntime) ListVolumes(ctx context.Context) ([]Volume, error) {
	var resp volume.ListResponse
	err := d.call(ctx, "volume_list", callTimeout, func(ctx context.Context) (err error) {
		resp, err = d.cli.VolumeList(ctx, volume.ListOptions{Filters: d.ownerFilter()})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	out := make([]Volume, 0, len(resp.Volumes))
	for _, v := range resp.Volumes {
		if v != nil && d.owned(v.Labels) {
			out = append(out, volumeFromDocker(v))
		}
	}
	return out, nil
}

func volumeFromDocker(v *volume.Volume) Volume {
	return Volume{Name: v.Name, Project: v.Labels[LabelProject], Volume: v.Labels[LabelVolume], Driver: v.Driver}
}

func (d *DockerRuntime) InspectVolume(ctx context.Context, name string) (Volume, error) {
	var v volume.Volume
	err := d.call(ctx, "volume_inspect", callTimeout, func(ctx context.Context) (err error) {
		v, err = d.cli.VolumeInspect(ctx, name)
		return err
	})
	if errdefs.IsNotFound(err) {
		return Volume{}, fmt.Errorf("inspect volume %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return Volume{}, fmt.Errorf("inspect volume %s: %w", name, err)
	}
	if !d.owned(v.Labels) {
		return Volume{}, fmt.Errorf("volume %s: %w", name, ErrNotOwned)
	}
	return volumeFromDocker(&v), nil
}

func (d *DockerRuntime) ImageID(ctx context.Context, ref string) (string, error) {
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

func (d *DockerRuntime) ImageDigest(ctx context.Context, ref string) (string, error) {
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

func (d *DockerRuntime) PullImage(ctx context.Context, ref string, auth *RegistryAuth) error {
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

func (d *DockerRuntime) CreateNetwork(ctx context.Context, name string, labels map[string]string) (Network, error) {
	d.netMu.Lock()
	defer d.netMu.Unlock()
	if n, err := d.InspectNetwork(ctx, name); err == nil {
		return n, nil // created meanwhile
	} else if errors.Is(err, ErrNotOwned) {
		return Network{}, fmt.Errorf("create network %s: a network with this name %w", name, ErrNotOwned)
	}
	var resp network.CreateResponse
	err := d.call(ctx, "network_create", callTimeout, func(ctx context.Context) (err error) {
		// The client asks the engine to refuse duplicate names, so a
		// network of someone else's with this name is an error, not a twin.
		resp, err = d.cli.NetworkCreate(ctx, name, network.CreateOptions{Driver: "bridge", Labels: labels})
		return err
	})
	if errdefs.IsConflict(err) || (err != nil && strings.Contains(err.Error(), "already exists")) {
		n, ierr := d.InspectNetwork(ctx, name)
		if ierr == nil {
			return n, nil // ours already: created concurrently
		}
		return Network{}, fmt.Errorf("create network %s: a network with this name %w", name, ErrNotOwned)
	}
	if err != nil {
		return Network{}, fmt.Errorf("create network %s: %w", name, err)
	}
	return networkOf(resp.ID, name, labels), nil
}

func (d *DockerRuntime) RemoveNetwork(ctx context.Context, name string) error {
	n, err := d.InspectNetwork(ctx, name)
	if errors.Is(err, ErrNotFound) {
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

func (d *DockerRuntime) CreateVolume(ctx context.Context, spec VolumeSpec) (Volume, error) {
	// Creating an existing volume succeeds silently in Docker, so check
	// first that a volume of that name is not someone else's.
	existing, err := d.InspectVolume(ctx, spec.Name)
	switch {
	case err == nil:
		return existing, nil
	case errors.Is(err, ErrNotOwned):
		return Volume{}, fmt.Errorf("create volume %s: a volume with this name %w", spec.Name, ErrNotOwned)
	case !errors.Is(err, ErrNotFound):
		return Volume{}, fmt.Errorf("create volume %s: %w", spec.Name, err)
	}
	var v volume.Volume
	err = d.call(ctx, "volume_create", callTimeout, func(ctx context.Context) (err error) {
		v, err = d.cli.VolumeCreate(ctx, volume.CreateOptions{Name: spec.Name, Driver: spec.Driver, DriverOpts: spec.DriverOpts, Labels: spec.Labels})
		return err
	})
	if err != nil {
		return Volume{}, fmt.Errorf("create volume %s: %w", spec.Name, err)
	}
	return volumeFromDocker(&v), nil
}

func (d *DockerRuntime) RemoveVolume(ctx context.Context, name string) error {
	if _, err := d.InspectVolume(ctx, name); errors.Is(err, ErrNotFound) {
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

func (d *DockerRuntime) CreateContainer(ctx context.Context, spec ContainerSpec) (string, error) {
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

// filesArchive is a tar of the files, with their parent directories,
// read-only to everyone in the container (Compose's secrets are 0444):
// the process may run as any user.
func filesArchive(files []File) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, f := range files {
		rel := strings.TrimPrefix(path.Clean(f.Path), "/")
		var parents []string
		for dir := path.Dir(rel); dir != "." && !dirs[dir]; dir = path.Dir(dir) {
			parents = append(parents, dir)
			dirs[dir] = true
		}
		slices.Reverse(parents)
		for _, dir := range parents {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755}); err != nil {
				return nil, err
			}
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: rel, Mode: 0o444, Size: int64(len(f.Content))}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.Content); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// dockerConfig maps a ContainerSpec onto the Docker API's types, using only
// fields API 1.41 knows.
func dockerConfig(spec ContainerSpec) (*container.Config, *container.HostConfig, *network.NetworkingConfig, error) {
	cfg := &container.Config{
		Image:      spec.Image,
		Entrypoint: spec.Entrypoint,
		Cmd:        spec.Cmd,
		Env:        spec.Env,
		User:       spec.User,
		WorkingDir: spec.WorkingDir,
		Labels:     spec.Labels,
	}
	host := &container.HostConfig{
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyMode(spec.RestartPolicy)},
		// Bounded logs: a chatty container must not fill the disk.
		LogConfig:   container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m", "max-file": "3"}},
		Privileged:  spec.Privileged,
		PidMode:     container.PidMode(spec.PIDMode),
		IpcMode:     container.IpcMode(spec.IPCMode),
		UTSMode:     container.UTSMode(spec.UTSMode),
		CapAdd:      spec.CapAdd,
		CapDrop:     spec.CapDrop,
		Sysctls:     spec.Sysctls,
		SecurityOpt: spec.SecurityOpt,
	}
	host.NanoCPUs = spec.NanoCPUs
	host.Memory = spec.MemoryBytes
	if spec.Healthcheck != nil {
		cfg.Healthcheck = &container.HealthConfig{
			Test:        spec.Healthcheck.Test,
			Interval:    spec.Healthcheck.Interval,
			Timeout:     spec.Healthcheck.Timeout,
			StartPeriod: spec.Healthcheck.StartPeriod,
			Retries:     spec.Healthcheck.Retries,
		}
	}
	if len(spec.Ports) > 0 {
		cfg.ExposedPorts = nat.PortSet{}
		host.PortBindings = nat.PortMap{}
		for _, p := range spec.Ports {
			port, err := nat.NewPort(string(p.Protocol), strconv.Itoa(int(p.ContainerPort)))
			if err != nil {
				return nil, nil, nil, err
			}
			cfg.ExposedPorts[port] = struct{}{}
			if p.HostPort != 0 {
				host.PortBindings[port] = append(host.PortBindings[port], nat.PortBinding{HostIP: p.HostIP, HostPort: strconv.Itoa(int(p.HostPort))})
			}
		}
	}
	for _, m := range spec.Mounts {
		dm := mount.Mount{Type: mount.Type(m.Type), Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly}
		host.Mounts = append(host.Mounts, dm)
	}
	for _, dev := range spec.Devices {
		parts := strings.SplitN(dev, ":", 3)
		dm := container.DeviceMapping{PathOnHost: parts[0], PathInContainer: parts[0], CgroupPermissions: "rwm"}
		if len(parts) > 1 {
			dm.PathInContainer = parts[1]
		}
		if len(parts) > 2 {
			dm.CgroupPermissions = parts[2]
		}
		host.Devices = append(host.Devices, dm)
	}
	var netCfg *network.NetworkingConfig
	switch {
	case spec.NetworkMode != "":
		host.NetworkMode = container.NetworkMode(spec.NetworkMode)
	case spec.Network != "":
		ref := spec.Network
		if spec.NetworkID != "" {
			ref = spec.NetworkID
		}
		host.NetworkMode = container.NetworkMode(ref)
		netCfg = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			ref: {Aliases: spec.Aliases},
		}}
	}
	return cfg, host, netCfg, nil
}

func (d *DockerRuntime) StartContainer(ctx context.Context, ref string) error {
	err := d.call(ctx, "container_start", callTimeout, func(ctx context.Context) error {
		return d.cli.ContainerStart(ctx, ref, container.StartOptions{})
	})
	if err != nil {
		return fmt.Errorf("start container %s: %w", ref, err)
	}
	return nil
}

func (d *DockerRuntime) StopContainer(ctx context.Context, ref string, grace time.Duration) error {
	secs := int((grace + time.Second - 1) / time.Second) // the engine counts whole seconds: round up
	err := d.call(ctx, "container_stop", grace+callTimeout, func(ctx context.Context) error {
		return d.cli.ContainerStop(ctx, ref, container.StopOptions{Timeout: &secs})
	})
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("stop container %s: %w", ref, err)
	}
	return nil
}

func (d *DockerRuntime) RemoveContainer(ctx context.Context, ref string) error {
	err := d.call(ctx, "container_remove", callTimeout, func(ctx context.Context) error {
		// Force: a container that restarts in a loop cannot be stopped first.
		return d.cli.ContainerRemove(ctx, ref, container.RemoveOptions{Force: true})
	})
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("remove container %s: %w", ref, err)
	}
	return nil
}

func (d *DockerRuntime) RenameContainer(ctx context.Context, ref, newName string) error {
	err := d.call(ctx, "container_rename", callTimeout, func(ctx context.Context) error {
		return d.cli.ContainerRename(ctx, ref, newName)
	})
	if err != nil {
		return fmt.Errorf("rename container %s to %s: %w", ref, newName, err)
	}
	return nil
}

// Container events worth a look; exec_* (every healthcheck run), attach,
// resize and the like are left out.
var containerActions = []string{"create", "start", "restart", "die", "stop", "kill", "oom", "destroy", "pause", "unpause", "rename", "update", "health_status"}

// Network and volume events: created, destroyed, (dis)connected.
var objectActions = []string{"create", "destroy", "connect", "disconnect"}

// Image events that can change which image a reference names.
var imageActions = []string{"pull", "tag", "untag", "delete", "import", "load"}

// Events follows one stream. A filter's keys are ANDed and its values
// ORed, and network, volume and image events carry no labels: so the
// stream asks for the union of the actions of these types, and toEvent
// keeps this installation's containers (by label) and its networks and
// volumes (by name). One connection, not one per type: the engine keeps a
// goroutine and a buffer for each subscriber.
func (d *DockerRuntime) Events(ctx context.Context) (<-chan RuntimeEvent, <-chan error) {
	out := make(chan RuntimeEvent, 256)
	errc := make(chan error, 1)
	ctx, cancel := context.WithCancel(ctx)
	f := filters.NewArgs()
	for _, t := range []ObjectType{ObjectContainer, ObjectNetwork, ObjectVolume, ObjectImage} {
		f.Add("type", string(t))
	}
	seen := map[string]bool{}
	for _, a := range slices.Concat(containerActions, objectActions, imageActions) {
		if !seen[a] {
			seen[a] = true
			f.Add("event", a)
		}
	}
	msgs, errs := d.cli.Events(ctx, events.ListOptions{Filters: f})
	go func() {
		defer cancel()
		defer close(out)
		for {
			var m events.Message
			select {
			case m = <-msgs:
			case err := <-errs:
				errc <- fmt.Errorf("docker events: %w", err)
				return
			case <-ctx.Done():
				errc <- ctx.Err()
				return
			}
			ev, ok := d.toEvent(m)
			if !ok {
				continue
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				errc <- ctx.Err()
				return
			}
		}
	}()
	return out, errc
}

func (d *DockerRuntime) toEvent(m events.Message) (RuntimeEvent, bool) {
	ev := RuntimeEvent{
		Type:   ObjectType(m.Type),
		Action: string(m.Action),
		ID:     m.Actor.ID,
		Name:   m.Actor.Attributes["name"],
		Time:   time.Unix(0, m.TimeNano),
	}
	switch ev.Type {
	case ObjectContainer:
		if m.Actor.Attributes[LabelInstance] != d.instance {
			return ev, false // another installation's, or no PanelX's
		}
		ev.Project, ev.Service = m.Actor.Attributes[LabelProject], m.Actor.Attributes[LabelService]
	case ObjectVolume:
		ev.Name = m.Actor.ID
		if !strings.HasPrefix(ev.Name, NamePrefix) {
			return ev, false
		}
	case ObjectNetwork:
		if ev.Name != "" && !strings.HasPrefix(ev.Name, NamePrefix) {
			return ev, false
		}
		ev.Container = m.Actor.Attributes["container"]
	case ObjectImage:
	default:
		return ev, false
	}
	return ev, true
}

// ExecProbe runs cmd (no shell) in a container, discards its output (at
// most 64 KiB is read), and returns its exit code: an exec readiness probe.
func (d *DockerRuntime) ExecProbe(ctx context.Context, id string, cmd []string) (int, error) {
	exec, err := d.cli.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return -1, fmt.Errorf("create exec in %.12s: %w", id, err)
	}
	att, err := d.cli.ContainerExecAttach(ctx, exec.ID, container.ExecAttachOptions{})
	if err != nil {
		return -1, fmt.Errorf("attach exec in %.12s: %w", id, err)
	}
	defer att.Close()
	stop := context.AfterFunc(ctx, att.Close) // a timeout ends the read
	defer stop()
	_, _ = io.Copy(io.Discard, io.LimitReader(att.Reader, 64<<10))
	if err := ctx.Err(); err != nil {
		return -1, err
	}
	insp, err := d.cli.ContainerExecInspect(ctx, exec.ID)
	if err != nil {
		return -1, fmt.Errorf("inspect exec in %.12s: %w", id, err)
	}
	if insp.Running {
		return -1, errors.New("still running after its output ended")
	}
	return insp.ExitCode, nil
}
