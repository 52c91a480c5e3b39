package docker

import (
	"archive/tar"
	"bytes"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"

	"github.com/panelx/panelx/reconcile"
)

// filesArchive is a tar of the files, with their parent directories,
// read-only to everyone in the container (Compose's secrets are 0444):
// the process may run as any user.
func filesArchive(files []reconcile.File) ([]byte, error) {
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

// dockerConfig maps a reconcile.ContainerSpec onto the Docker API's
// types, using only fields API 1.41 knows.
func dockerConfig(spec reconcile.ContainerSpec) (*container.Config, *container.HostConfig, *network.NetworkingConfig, error) {
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
