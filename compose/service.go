package compose

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/panelx/panelx/api"
)

// serviceFields are the fields of types.ServiceConfig that convertService
// maps; reportUnset reports every other one that is set.
var serviceFields = []string{
	"name", "image", "entrypoint", "command", "working_dir", "user",
	"environment", "env_file", "ports", "expose", "volumes", "tmpfs",
	"depends_on", "healthcheck", "deploy", "scale", "restart",
	"labels", "label_file", "cpus", "mem_limit", "pull_policy",
	"privileged", "cap_add", "cap_drop", "devices", "sysctls", "security_opt",
	"network_mode", "networks", "pid", "ipc", "uts", "stop_grace_period", "container_name",
	"secrets", "build",
}

// The fields mapped in the nested structs of a service; each is walked with
// reportUnset like the service itself.
var (
	deployFields        = []string{"replicas", "mode", "resources", "restart_policy", "labels"}
	resourcesFields     = []string{"limits"}
	limitsFields        = []string{"cpus", "memory"}
	restartPolicyFields = []string{"condition"}
	portFields          = []string{"target", "published", "host_ip", "protocol", "mode"} // ingress or host: both publish on one host
	volumeMountFields   = []string{"type", "source", "target", "read_only", "volume"}
	tmpfsMountFields    = []string{"type", "target", "read_only", "tmpfs"}
	bindMountFields     = []string{"type", "source", "target", "read_only", "bind"}
	tmpfsOptionFields   = []string{"size", "mode"} // reported in one finding
	dependencyFields    = []string{"condition", "required"}
	healthcheckFields   = []string{"test", "interval", "timeout", "start_period", "retries", "disable"}
	deviceFields        = []string{"source", "target", "permissions"}
	topVolumeFields     = []string{"name", "driver", "driver_opts", "external", "labels"}
	networkFields       = []string{"name", "external", "internal", "driver"}
)

func servicePath(name string) string { return keyPath("services", name) }

func (c *converter) convertService(s types.ServiceConfig) (*api.Service, error) {
	p := servicePath(s.Name)
	pname := c.services[s.Name]
	c.reportUnset(p, s, serviceFields...)

	build, err := c.build(p+".build", s) // then the image is not used
	if err != nil {
		return nil, err
	}
	sp := api.ServiceSpec{
		Image:     s.Image,
		Build:     build,
		Command:   c.argv(p+".entrypoint", s.Entrypoint, "ENTRYPOINT"),
		Args:      c.argv(p+".command", s.Command, "CMD"),
		User:      s.User,
		Env:       c.env(p+".environment", s.Environment),
		DependsOn: c.dependsOn(p+".depends_on", s.DependsOn),
	}
	if sp.Build != nil {
		sp.Image = ""
	}
	if s.WorkingDir != "" {
		sp.WorkingDir = path.Clean(s.WorkingDir) // "/app/" means "/app", the form PanelX accepts
	}
	sp.ImagePullPolicy = c.pullPolicy(p+".pull_policy", s.PullPolicy)

	ports, err := c.ports(p+".ports", s.Ports)
	if err != nil {
		return nil, err
	}
	sp.Ports = c.expose(p+".expose", s.Expose, ports)

	c.reportUnset(p+".deploy", s.Deploy, deployFields...)
	replicas, replicasPath, err := c.replicas(p, s)
	if err != nil {
		return nil, err
	}
	if replicas > 1 && publishesHostPort(sp.Ports) {
		c.report(replicasPath, "%d replicas cannot all publish the same host port: imported with replicas 1 (remove the host ports to scale, or put a proxy in front)", replicas)
		replicas = 1
	}
	sp.Replicas = &replicas

	sp.Volumes = append(c.mounts(p, s, pname), c.serviceSecrets(p+".secrets", s.Secrets)...)
	sp.Healthcheck = c.healthcheck(p+".healthcheck", s.HealthCheck)
	sp.RestartPolicy = c.restartPolicy(p, s)
	sp.Resources = c.resources(p, s)
	sp.StopGracePeriod = c.stopGrace(p+".stop_grace_period", s.StopGracePeriod)
	c.hostSettings(p, s, &sp)
	sp.Networks, sp.Aliases = c.serviceNetworks(p+".networks", s.Networks)
	if s.ContainerName != "" {
		// Other services reach a Compose container by its container_name:
		// keep that name working as an alias on the project network.
		if alias, err := normalizeName(s.ContainerName); err == nil && sp.NetworkMode == "" && !slices.Contains(sp.Aliases, alias) {
			sp.Aliases = append(sp.Aliases, alias)
			c.report(p+".container_name", "PanelX names containers itself; %q is an alias on the project network, so other services still reach it by that name", alias)
		} else {
			c.report(p+".container_name", "PanelX names containers itself; %q cannot be an alias on the project network: other services reach this one by its service name", s.ContainerName)
		}
	}

	labels := map[string]string{}
	if s.Deploy != nil {
		c.labels(p+".deploy.labels", s.Deploy.Labels, labels, serviceLabelNote)
	}
	c.labels(p+".labels", s.Labels, labels, serviceLabelNote)

	return &api.Service{
		Metadata: api.ObjectMeta{Name: pname, Project: c.name, Labels: nilIfEmpty(labels)},
		Spec:     sp,
	}, nil
}

// argv maps entrypoint and command. Compose clears the image's value with
// an empty list; PanelX cannot express that.
func (c *converter) argv(p string, cmd types.ShellCommand, what string) []string {
	switch {
	case cmd == nil:
		return nil
	case len(cmd) == 0:
		c.report(p, "empty: PanelX cannot clear the image's %s, so the image's %s applies", what, what)
		return nil
	}
	return []string(cmd)
}

// env maps environment (env_file entries are merged into it by the
// loader), sorted by name for stable output.
func (c *converter) env(p string, env types.MappingWithEquals) []api.EnvVar {
	var out []api.EnvVar
	for _, k := range sortedKeys(env) {
		v := env[k]
		if v == nil {
			c.report(keyPath(p, k), "has no value and %s is not set in the environment: not imported (the container does not get it, as with docker compose)", k)
			continue
		}
		out = append(out, api.EnvVar{Name: k, Value: *v})
	}
	return out
}

func (c *converter) pullPolicy(p, policy string) api.PullPolicy {
	switch policy {
	case "":
		return ""
	case types.PullPolicyAlways:
		return api.PullAlways
	case types.PullPolicyNever:
		return api.PullNever
	case types.PullPolicyMissing, types.PullPolicyIfNotPresent:
		return api.PullIfNotPresent
	case types.PullPolicyBuild:
		c.report(p, "PanelX does not build images: the default pull policy applies")
		return ""
	}
	// refresh, daily, weekly, every_<duration>
	c.report(p, "%q: PanelX looks for a moved tag every PANELX_PULL_INTERVAL (default 5m) with imagePullPolicy Always, which it was imported as", policy)
	return api.PullAlways
}

// ---- ports ----

func (c *converter) ports(p string, ports []types.ServicePortConfig) ([]api.Port, error) {
	var out []api.Port
	for i, port := range ports {
		pp := indexPath(p, i)
		c.reportUnset(pp, port, portFields...)
		proto, ok := protocol(port.Protocol)
		if !ok {
			c.report(pp+".protocol", "PanelX publishes tcp and udp ports only: port %d/%s not imported", port.Target, port.Protocol)
			continue
		}
		if port.Target == 0 || port.Target > 65535 {
			return nil, fmt.Errorf("compose: %s: container port %d is not between 1 and 65535", pp, port.Target)
		}
		out = append(out, api.Port{ContainerPort: int32(port.Target), Protocol: proto})
		host, err := c.hostPort(pp, port)
		if err != nil {
			return nil, err
		}
		if host != 0 {
			out[len(out)-1].HostPort = host
			out[len(out)-1].HostIP = strings.Trim(port.HostIP, "[]")
		}
	}
	return out, nil
}

// hostPort returns the published port, 0 for none. A range for one
// container port ("8000-8002:80", Docker picks a free one) becomes its
// first port.
func (c *converter) hostPort(pp string, port types.ServicePortConfig) (int32, error) {
	if port.Published == "" {
		detail := "no host port: compose publishes the port on a random host port, PanelX publishes none (the project's services still reach it)"
		if port.HostIP != "" {
			detail = fmt.Sprintf("host IP %s without a host port: compose publishes a random host port, PanelX publishes none", port.HostIP)
		}
		c.report(pp, "%s", detail)
		return 0, nil
	}
	first, last, isRange := strings.Cut(port.Published, "-")
	n, err := strconv.ParseUint(first, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("compose: %s: published port %q is not a port number", pp, port.Published)
	}
	if isRange && last != first {
		c.report(pp+".published", "host port range %s for one container port: PanelX publishes a fixed port, %d", port.Published, n)
	}
	return int32(n), nil
}

func protocol(p string) (api.Protocol, bool) {
	switch strings.ToLower(p) {
	case "", "tcp":
		return api.ProtocolTCP, true
	case "udp":
		return api.ProtocolUDP, true
	}
	return "", false
}

// expose adds the exposed ports as container ports without a host port
// (documentation of what the service listens on, as in compose).
func (c *converter) expose(p string, expose types.StringOrNumberList, ports []api.Port) []api.Port {
	has := func(port int32, proto api.Protocol) bool {
		for _, q := range ports {
			if q.ContainerPort == port && q.Protocol == proto {
				return true
			}
		}
		return false
	}
	for i, e := range expose {
		spec, protoText, _ := strings.Cut(e, "/")
		proto, ok := protocol(protoText)
		first, last, err := portRange(spec)
		if !ok || err != nil {
			c.report(indexPath(p, i), "%q is not a port, port range or port/protocol (tcp, udp) PanelX understands: not imported", e)
			continue
		}
		for port := first; port <= last; port++ {
			if !has(port, proto) {
				ports = append(ports, api.Port{ContainerPort: port, Protocol: proto})
			}
		}
	}
	return ports
}

func portRange(s string) (int32, int32, error) {
	a, b, isRange := strings.Cut(s, "-")
	first, err := strconv.ParseUint(a, 10, 16)
	if err != nil || first == 0 {
		return 0, 0, fmt.Errorf("bad port %q", s)
	}
	last := first
	if isRange {
		last, err = strconv.ParseUint(b, 10, 16)
		if err != nil || last < first {
			return 0, 0, fmt.Errorf("bad port range %q", s)
		}
	}
	return int32(first), int32(last), nil
}

func publishesHostPort(ports []api.Port) bool {
	for _, p := range ports {
		if p.HostPort != 0 {
			return true
		}
	}
	return false
}

// ---- replicas, restart ----

// replicas returns the replica count and the compose path it came from.
// compose-go has already checked that scale and deploy.replicas agree.
func (c *converter) replicas(p string, s types.ServiceConfig) (int32, string, error) {
	n, from := 1, p+".deploy.replicas"
	switch {
	case s.Scale != nil:
		n, from = *s.Scale, p+".scale"
	case s.Deploy != nil && s.Deploy.Replicas != nil:
		n = *s.Deploy.Replicas
	}
	if n > api.MaxReplicas {
		return 0, "", fmt.Errorf("compose: %s: %d replicas is more than PanelX's maximum of %d", from, n, api.MaxReplicas)
	}
	if d := s.Deploy; d != nil {
		switch d.Mode {
		case "", "replicated":
		case "global":
			c.report(p+".deploy.mode", "PanelX runs a project on one host: global mode imported as %d replica(s)", n)
		default:
			c.report(p+".deploy.mode", "%q: PanelX runs long-lived services: imported as %d replica(s)", d.Mode, n)
		}
	}
	return int32(n), from, nil
}

// restartPolicy maps restart, overridden by deploy.restart_policy as in
// docker compose. Unset stays unset: PanelX's default (Always) applies.
func (c *converter) restartPolicy(p string, s types.ServiceConfig) api.RestartPolicy {
	policy := api.RestartPolicy("")
	if s.Restart != "" {
		policy = c.restart(p+".restart", s.Restart)
	}
	if s.Deploy == nil || s.Deploy.RestartPolicy == nil {
		return policy
	}
	rp := s.Deploy.RestartPolicy
	rpp := p + ".deploy.restart_policy"
	c.reportUnset(rpp, rp, restartPolicyFields...)
	var fromDeploy api.RestartPolicy
	switch rp.Condition {
	case "", "any":
		fromDeploy = api.RestartAlways
	case "on-failure":
		fromDeploy = api.RestartOnFailure
	case "none":
		fromDeploy = api.RestartNever
	default:
		c.report(rpp+".condition", "%q is not none, on-failure or any: not imported", rp.Condition)
		return policy
	}
	if policy != "" && policy != fromDeploy {
		c.report(p+".restart", "overridden by deploy.restart_policy (%s), as in docker compose", fromDeploy)
	}
	return fromDeploy
}

func (c *converter) restart(p, restart string) api.RestartPolicy {
	policy, retries, _ := strings.Cut(restart, ":")
	switch policy {
	case types.RestartPolicyNo:
		return api.RestartNever
	case types.RestartPolicyAlways:
		return api.RestartAlways
	case types.RestartPolicyUnlessStopped:
		c.report(p, "PanelX has no unless-stopped: imported as Always, so a container stopped by hand is started again (scale the service to 0 to stop it)")
		return api.RestartAlways
	case types.RestartPolicyOnFailure:
		if retries != "" {
			c.report(p, "PanelX does not limit restart attempts: imported as OnFailure without the limit of %s", retries)
		}
		return api.RestartOnFailure
	}
	c.report(p, "%q is not no, always, on-failure or unless-stopped: not imported", restart)
	return ""
}

// ---- volumes ----

// mounts maps volumes (named, anonymous, tmpfs, binds as hostPath unless
// dropped) and the tmpfs list.
func (c *converter) mounts(p string, s types.ServiceConfig, pname string) []api.VolumeMount {
	var out []api.VolumeMount
	for i, v := range s.Volumes {
		vp := indexPath(p+".volumes", i)
		switch v.Type {
		case types.VolumeTypeVolume:
			c.reportUnset(vp, v, volumeMountFields...)
			c.reportUnset(vp+".volume", v.Volume)
			if docker, ok := c.external[v.Source]; ok {
				out = append(out, api.VolumeMount{DockerVolume: docker, MountPath: v.Target, ReadOnly: v.ReadOnly})
				continue
			}
			name := c.volumes[v.Source]
			if v.Source == "" {
				name = c.anonymousVolume(vp, pname, v.Target)
			}
			out = append(out, api.VolumeMount{Name: name, MountPath: v.Target, ReadOnly: v.ReadOnly})
		case types.VolumeTypeTmpfs:
			c.reportUnset(vp, v, tmpfsMountFields...)
			if v.Tmpfs != nil && (v.Tmpfs.Size != 0 || v.Tmpfs.Mode != 0) {
				c.report(vp+".tmpfs", "PanelX mounts tmpfs with Docker's defaults: size and mode not imported")
			}
			c.reportUnset(vp+".tmpfs", v.Tmpfs, tmpfsOptionFields...)
			out = append(out, api.VolumeMount{Tmpfs: true, MountPath: v.Target, ReadOnly: v.ReadOnly})
		case types.VolumeTypeBind:
			if c.dropBinds {
				c.reportBind(vp, v)
				continue
			}
			c.reportUnset(vp, v, bindMountFields...)
			// create_host_path is what the short syntax implies; PanelX
			// mounts an existing path only, so say so when it was asked.
			c.reportUnset(vp+".bind", v.Bind, "create_host_path")
			if v.Bind != nil && v.Bind.CreateHostPath {
				c.report(vp, "the host path %s is mounted as it is: PanelX does not create it when it is missing", path.Clean(v.Source))
			}
			out = append(out, api.VolumeMount{HostPath: path.Clean(v.Source), MountPath: v.Target, ReadOnly: v.ReadOnly})
		default:
			c.report(vp, "volume type %q is not supported by PanelX: not imported", v.Type)
		}
	}
	for i, t := range s.Tmpfs {
		target, opts, _ := strings.Cut(t, ":")
		if opts != "" {
			c.report(indexPath(p+".tmpfs", i), "PanelX mounts tmpfs with Docker's defaults: options %q not imported", opts)
		}
		out = append(out, api.VolumeMount{Tmpfs: true, MountPath: path.Clean(target)})
	}
	return out
}

func (c *converter) reportBind(vp string, v types.ServiceVolumeConfig) {
	if src := path.Clean(v.Source); src == "/var/run/docker.sock" || src == "/run/docker.sock" {
		c.report(vp, "the Docker socket gives the container root on the host: not imported (an administrator may add it as spec.volumes[].hostPath, knowing that)")
		return
	}
	c.report(vp, "host bind mount dropped (--drop-bind-mounts): %s at %s; an administrator may import it as spec.volumes[].hostPath, or use a named volume", v.Source, v.Target)
}

// anonymousVolume creates the Volume <service>-<n> for an anonymous mount.
func (c *converter) anonymousVolume(vp, service, target string) string {
	var name string
	for n := 1; ; n++ {
		name, _ = normalizeName(fmt.Sprintf("%s-%d", service, n))
		if !c.volumeNames.taken(name) {
			break
		}
	}
	c.volumeNames.from[name] = vp
	c.anonymous = append(c.anonymous, &api.Volume{Metadata: api.ObjectMeta{Name: name, Project: c.name}})
	c.report(vp, "anonymous volume at %s: imported as the Volume %q, which outlives the containers like a named volume and is shared by all replicas", target, name)
	return name
}

// ---- dependencies, healthcheck ----

func (c *converter) dependsOn(p string, deps types.DependsOnConfig) []string {
	var out []string
	for _, name := range sortedKeys(deps) {
		d := deps[name]
		dp := keyPath(p, name)
		c.reportUnset(dp, d, dependencyFields...)
		pname, ok := c.services[name]
		if !ok {
			c.report(dp, "%s is not imported (%s): dependency dropped", name, c.skipped[name])
			continue
		}
		switch d.Condition {
		case "", types.ServiceConditionStarted, types.ServiceConditionHealthy:
			// PanelX starts a service once its dependencies are ready, which
			// means healthy for a service with a healthcheck.
			out = append(out, pname)
		case types.ServiceConditionCompletedSuccessfully:
			c.report(dp+".condition", "PanelX has no run-to-completion services (it would wait for %s to be ready, which a finished container never is): dependency dropped", name)
		default:
			c.report(dp+".condition", "unknown condition %q: dependency dropped", d.Condition)
		}
	}
	return out
}

func (c *converter) healthcheck(p string, h *types.HealthCheckConfig) *api.Healthcheck {
	if h == nil {
		return nil
	}
	c.reportUnset(p, h, healthcheckFields...)
	if h.Disable || (len(h.Test) > 0 && h.Test[0] == "NONE") {
		c.report(p, "disabled: PanelX sets no healthcheck, but it cannot switch off the image's own HEALTHCHECK, which still runs if the image has one")
		return nil
	}
	var cmd []string
	switch {
	case len(h.Test) == 0:
		c.report(p+".test", "no test: PanelX needs the command to tune a healthcheck (the image's HEALTHCHECK applies as is): not imported")
		return nil
	case h.Test[0] == "CMD" && len(h.Test) > 1:
		cmd = h.Test[1:]
	case h.Test[0] == "CMD-SHELL" && len(h.Test) > 1:
		cmd = []string{"/bin/sh", "-c", strings.Join(h.Test[1:], " ")}
		c.report(p+".test", "shell form: runs as [/bin/sh, -c, …], so the image needs /bin/sh (use [\"CMD\", …] for an image without a shell)")
	default:
		c.report(p+".test", "%q has no command: not imported", h.Test)
		return nil
	}
	hc := &api.Healthcheck{Command: cmd}
	hc.Interval = duration(h.Interval)
	hc.Timeout = duration(h.Timeout)
	hc.StartPeriod = duration(h.StartPeriod)
	if h.Retries != nil {
		r := *h.Retries
		if r > 100 {
			c.report(p+".retries", "PanelX allows at most 100 retries: imported as 100")
			r = 100
		}
		hc.Retries = int32(r)
	}
	return hc
}

func duration(d *types.Duration) api.Duration {
	if d == nil {
		return api.Duration{}
	}
	return api.Duration{Duration: time.Duration(*d)}
}

// ---- resources ----

func (c *converter) resources(p string, s types.ServiceConfig) api.Resources {
	var limits *types.Resource
	if d := s.Deploy; d != nil {
		c.reportUnset(p+".deploy.resources", d.Resources, resourcesFields...)
		limits = d.Resources.Limits
		c.reportUnset(p+".deploy.resources.limits", limits, limitsFields...)
	}
	var r api.Resources
	cpus, cpusPath := s.CPUS, p+".cpus"
	if cpus == 0 && limits != nil {
		cpus, cpusPath = limits.NanoCPUs.Value(), p+".deploy.resources.limits.cpus"
	}
	if cpus != 0 {
		q := api.Quantity(strconv.FormatFloat(float64(cpus), 'f', -1, 32))
		n, err := q.NanoCPUs()
		switch {
		case err != nil || n < 10_000_000:
			c.report(cpusPath, "%s CPUs is below PanelX's minimum of 0.01: not imported", q)
		case n > 1024*1_000_000_000:
			c.report(cpusPath, "%s CPUs is above PanelX's maximum of 1024: not imported", q)
		default:
			r.CPUs = q
		}
	}
	mem, memPath := int64(s.MemLimit), p+".mem_limit"
	if mem == 0 && limits != nil {
		mem, memPath = int64(limits.MemoryBytes), p+".deploy.resources.limits.memory"
	}
	switch {
	case mem == 0:
	case mem < api.MinMemoryBytes:
		c.report(memPath, "%d bytes is below Docker's minimum of 6Mi: not imported", mem)
	case mem%(1<<20) == 0:
		r.Memory = api.Quantity(strconv.FormatInt(mem>>20, 10) + "Mi")
	default:
		r.Memory = api.Quantity(strconv.FormatInt(mem, 10))
	}
	return r
}

// ---- host settings, networks, labels ----

// hostSettings maps the settings that break isolation from the host. They
// are imported as written: the API's policy decides who may use them.
func (c *converter) hostSettings(p string, s types.ServiceConfig, sp *api.ServiceSpec) {
	sp.Privileged = s.Privileged
	sp.CapAdd = s.CapAdd
	sp.CapDrop = s.CapDrop
	sp.SecurityOpt = s.SecurityOpt
	if len(s.Sysctls) > 0 {
		sp.Sysctls = maps.Clone(map[string]string(s.Sysctls))
	}
	for i, d := range s.Devices {
		c.reportUnset(indexPath(p+".devices", i), d, deviceFields...)
		dev := d.Source
		if d.Target != "" || d.Permissions != "" {
			dev += ":" + d.Target
		}
		if d.Permissions != "" {
			dev += ":" + d.Permissions
		}
		sp.Devices = append(sp.Devices, dev)
	}

	switch nm := s.NetworkMode; {
	case nm == "":
	case nm == "host" || nm == "none":
		sp.NetworkMode = nm
	case strings.HasPrefix(nm, types.ServicePrefix) || strings.HasPrefix(nm, types.ContainerPrefix):
		c.report(p+".network_mode", "PanelX cannot share another container's network: not imported (the service joins the project network; reach the other service by its name)")
	default:
		c.report(p+".network_mode", "%q: PanelX attaches services to the project network: not imported", nm)
	}
	sp.PIDMode = c.namespace(p+".pid", s.Pid, "host")
	sp.IPCMode = c.namespace(p+".ipc", s.Ipc, "host", "private", "shareable")
	sp.UTSMode = c.namespace(p+".uts", s.Uts, "host")
}

// namespace maps a pid/ipc/uts mode PanelX supports, and reports others
// (service:x, container:x).
func (c *converter) namespace(p, mode string, supported ...string) string {
	if mode == "" {
		return ""
	}
	for _, s := range supported {
		if mode == s {
			return mode
		}
	}
	c.report(p, "%q: PanelX supports %s only: not imported", mode, strings.Join(supported, ", "))
	return ""
}

// serviceNetworks reports the networks PanelX does not make and returns
// the aliases of the default network, which it does.
// serviceNetworks maps a service's networks: the PanelX networks it joins
// (nil for the default network alone), highest priority first as Compose
// connects them, and the aliases of all of them.
func (c *converter) serviceNetworks(p string, networks map[string]*types.ServiceNetworkConfig) (joins, aliases []string) {
	order := sortedKeys(networks)
	priority := func(name string) int {
		if n := networks[name]; n != nil {
			return n.Priority
		}
		return 0
	}
	slices.SortStableFunc(order, func(a, b string) int { return priority(b) - priority(a) })
	perNetwork := map[string][]string{}
	for _, name := range order {
		np := keyPath(p, name)
		pname, ok := c.networks[name]
		if !ok {
			pname = name // "default", which compose-go does not always declare
		}
		joins = append(joins, pname)
		n := networks[name]
		if n == nil {
			continue
		}
		c.reportUnset(np, *n, "aliases", "priority")
		for i, a := range n.Aliases {
			if alias, err := normalizeName(a); err == nil && alias == a {
				perNetwork[pname] = append(perNetwork[pname], alias)
				if !slices.Contains(aliases, alias) {
					aliases = append(aliases, alias)
				}
			} else {
				c.report(indexPath(np+".aliases", i), "%q is not a DNS-1123 label: not imported", a)
			}
		}
	}
	for _, name := range order {
		pname := c.networks[name]
		if pname == "" {
			pname = name
		}
		if len(aliases) > 0 && !slices.Equal(perNetwork[pname], aliases) {
			c.report(keyPath(p, name), "PanelX gives a service the same aliases on each of its networks: here %s", strings.Join(aliases, ", "))
			break
		}
	}
	if slices.Equal(joins, []string{"default"}) {
		joins = nil
	}
	return joins, aliases
}

const (
	serviceLabelNote = "compose labels are container labels; PanelX keeps them as the service's labels (metadata.labels) when they are valid label keys and values, and this one is not"
	volumeLabelNote  = "compose volume labels are Docker volume labels; PanelX keeps them as the volume's labels (metadata.labels) when they are valid label keys and values, and this one is not"
)

// labels copies the valid labels into out and reports the others.
func (c *converter) labels(p string, labels map[string]string, out map[string]string, note string) {
	for _, k := range sortedKeys(labels) {
		v := labels[k]
		if errs := api.ValidateLabels("", map[string]string{k: v}); len(errs) > 0 {
			c.report(keyPath(p, k), "%s: %s", note, errs[0].Detail)
			continue
		}
		if prev, ok := out[k]; ok && prev != v {
			c.report(keyPath(p, k), "overrides %q from deploy.labels", prev)
		}
		out[k] = v
	}
}

func nilIfEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

// stopGrace maps stop_grace_period; beyond PanelX's bound it is capped.
func (c *converter) stopGrace(p string, d *types.Duration) api.Duration {
	if d == nil || *d <= 0 {
		return api.Duration{}
	}
	g := time.Duration(*d)
	if g > api.MaxStopGracePeriod {
		c.report(p, "%v is more than PanelX allows: imported as %v", g, api.MaxStopGracePeriod)
		g = api.MaxStopGracePeriod
	}
	return api.Duration{Duration: g}
}
