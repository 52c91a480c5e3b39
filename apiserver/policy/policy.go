// Package policy decides which service and volume specs a caller may
// submit. Docker access is root on the host, so every spec field that breaks
// a container's isolation from the host is refused for non-administrators,
// and the paths that reach Docker's own control socket are refused for
// everyone unless the server's configuration allows them.
//
// The package is pure: Check looks only at the object, whether the caller is
// an administrator, and the Config. It does not rely on api validation having
// run (paths are cleaned and compared here again), so a spelling that slips
// past one layer is still caught by the other.
package policy

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/panelx/panelx/api"
)

// Config is the server's spec policy.
type Config struct {
	// HostPorts are the host ports non-administrators may publish.
	HostPorts PortRanges
	// AdminHostAccess lets administrators use the host-level settings
	// (privileged, host namespaces, host paths, devices, capabilities,
	// sysctls, security options, any host port). When false, administrators
	// are held to the same rules as everyone else.
	AdminHostAccess bool
	// DockerSocket lets administrators (with AdminHostAccess) mount paths
	// that reach the Docker or containerd control sockets. Nobody else ever
	// may: access to the socket is root on the host.
	DockerSocket bool
}

// DefaultConfig is the policy of a server configured with nothing: host
// ports 1024–65535, administrators get host access, nobody gets the socket.
func DefaultConfig() Config {
	return Config{HostPorts: PortRanges{{From: 1024, To: 65535}}, AdminHostAccess: true}
}

// Check returns every field of obj the caller may not set, each as a
// Forbidden field error. admin says whether the caller is a server
// administrator.
func Check(obj api.Object, admin bool, cfg Config) api.ErrorList {
	c := checker{cfg: cfg, hostAccess: admin && cfg.AdminHostAccess, admin: admin}
	switch o := obj.(type) {
	case *api.Service:
		c.service(&o.Spec)
	case *api.Volume:
		c.volume(&o.Spec)
	}
	return c.errs
}

type checker struct {
	cfg        Config
	admin      bool
	hostAccess bool
	errs       api.ErrorList
}

// refuse records a host-level setting the caller may not use.
func (c *checker) refuse(p api.Path, what string) {
	why := "only server administrators may use it"
	if c.admin {
		why = "this server does not allow host access, even to administrators (PANELX_ADMIN_ALLOW_HOST_ACCESS=false)"
	}
	c.errs = append(c.errs, api.Forbidden(p, what+"; "+why))
}

// socket records a path that reaches the container runtime's control socket.
func (c *checker) socket(p api.Path, hostPath string) {
	c.errs = append(c.errs, api.Forbidden(p, fmt.Sprintf(
		"%q reaches the Docker or containerd control socket (root on the host); refused for everyone unless the server allows it (PANELX_ALLOW_DOCKER_SOCKET=true, administrators only)", hostPath)))
}

func (c *checker) service(s *api.ServiceSpec) {
	p := api.Path("spec")
	if !c.hostAccess {
		if s.Privileged {
			c.refuse(p.Child("privileged"), "privileged mode gives the container every device and capability of the host")
		}
		// Allow-lists, not deny-lists: a mode validation does not know yet
		// (container:<id> joins another tenant's namespace) is refused too.
		if s.NetworkMode != "" && s.NetworkMode != "none" {
			c.refuse(p.Child("networkMode"), fmt.Sprintf("network mode %q leaves the project network", s.NetworkMode))
		}
		if s.PIDMode != "" {
			c.refuse(p.Child("pidMode"), fmt.Sprintf("pid mode %q shares another process namespace", s.PIDMode))
		}
		if s.IPCMode != "" && s.IPCMode != "private" && s.IPCMode != "shareable" {
			c.refuse(p.Child("ipcMode"), fmt.Sprintf("ipc mode %q shares another IPC namespace", s.IPCMode))
		}
		if s.UTSMode != "" {
			c.refuse(p.Child("utsMode"), fmt.Sprintf("uts mode %q shares another UTS namespace", s.UTSMode))
		}
		for i, capability := range s.CapAdd {
			c.refuse(p.Child("capAdd").Index(i), fmt.Sprintf("adding capability %q widens what the container may do to the host", capability))
		}
		for i, d := range s.Devices {
			c.refuse(p.Child("devices").Index(i), fmt.Sprintf("device %q exposes a host device", d))
		}
		for _, k := range sortedKeys(s.Sysctls) {
			c.refuse(p.Child("sysctls").Key(k), "sysctls change kernel settings")
		}
		for i, o := range s.SecurityOpt {
			if !tighteningSecurityOpt(o) {
				c.refuse(p.Child("securityOpt").Index(i), fmt.Sprintf("security option %q overrides the container's confinement (only no-new-privileges is open to everyone)", o))
			}
		}
		for i, port := range s.Ports {
			if port.HostPort != 0 && !c.cfg.HostPorts.Contains(port.HostPort) {
				c.refuse(p.Child("ports").Index(i).Child("hostPort"),
					fmt.Sprintf("host port %d is outside the ports this server allows (%s)", port.HostPort, c.cfg.HostPorts))
			}
		}
	}
	// A wildcard hostname would take every name under a domain, other
	// tenants' future names included: an administrator's decision.
	if !c.admin {
		for i, d := range s.Domains {
			if api.IsWildcard(d.Host) {
				c.errs = append(c.errs, api.Forbidden(p.Child("domains").Index(i).Child("host"),
					fmt.Sprintf("wildcard hostname %q covers every name under it; only server administrators may use one", d.Host)))
			}
		}
	}
	for i, m := range s.Volumes {
		if m.DockerVolume != "" && !c.hostAccess {
			c.refuse(p.Child("volumes").Index(i).Child("dockerVolume"), fmt.Sprintf("Docker volume %q is not the project's: its data may be anyone's", m.DockerVolume))
		}
		if m.HostPath == "" {
			continue
		}
		fp := p.Child("volumes").Index(i).Child("hostPath")
		switch {
		case !c.hostAccess:
			c.refuse(fp, fmt.Sprintf("mounting host path %q exposes the host's files", m.HostPath))
		case !c.cfg.DockerSocket && ReachesDockerSocket(m.HostPath):
			c.socket(fp, m.HostPath)
		}
	}
	if c.hostAccess && !c.cfg.DockerSocket {
		for i, d := range s.Devices {
			host, _, _ := strings.Cut(d, ":")
			if ReachesDockerSocket(host) {
				c.socket(p.Child("devices").Index(i), host)
			}
		}
	}
}

// tighteningSecurityOpt reports whether a security option only restricts
// the container: no-new-privileges, in the spellings Docker accepts as true.
func tighteningSecurityOpt(o string) bool {
	switch o {
	case "no-new-privileges", "no-new-privileges:true", "no-new-privileges=true":
		return true
	}
	return false
}

// Options of Docker's local volume driver that a non-administrator may
// use: a tmpfs and its sizing. Everything else — o=bind, type=none, a
// device that is a path or a block device, network filesystems — mounts
// something of the host's.
var (
	userVolumeTypes   = []string{"", "tmpfs"}
	userVolumeDevices = []string{"", "tmpfs"}
	userTmpfsFlags    = []string{"ro", "rw", "nosuid", "nodev", "noexec", "noatime", "nodiratime", "relatime"}
	userTmpfsValues   = []string{"size", "mode", "uid", "gid", "nr_inodes", "nr_blocks"}
)

func (c *checker) volume(v *api.VolumeSpec) {
	p := api.Path("spec")
	if !c.hostAccess {
		if v.Driver != "" && v.Driver != "local" {
			c.refuse(p.Child("driver"), fmt.Sprintf("volume driver %q is a plugin of the host that may mount anything", v.Driver))
		}
		for _, k := range sortedKeys(v.DriverOpts) {
			val := v.DriverOpts[k]
			fp := p.Child("driverOpts").Key(k)
			switch k {
			case "type":
				if !slices.Contains(userVolumeTypes, strings.ToLower(strings.TrimSpace(val))) {
					c.refuse(fp, fmt.Sprintf("filesystem type %q mounts something of the host's (only tmpfs is open to everyone)", val))
				}
			case "device":
				if !slices.Contains(userVolumeDevices, strings.ToLower(strings.TrimSpace(val))) {
					c.refuse(fp, fmt.Sprintf("device %q names a host path or device (only tmpfs is open to everyone)", val))
				}
			case "o":
				for _, opt := range strings.Split(val, ",") {
					if !userTmpfsOption(opt) {
						c.refuse(fp, fmt.Sprintf("mount option %q is not a tmpfs sizing option (bind and rbind mount a host path)", strings.TrimSpace(opt)))
						break
					}
				}
			default:
				c.refuse(fp, fmt.Sprintf("driver option %q is not open to everyone (only type, device and o for a tmpfs)", k))
			}
		}
		return
	}
	// Administrators: only the control socket is off limits. The device of
	// a local volume is a path unless it names a remote share (host:/export);
	// any other option holding an absolute path (a plugin's mountpoint=) is
	// checked too.
	if c.cfg.DockerSocket {
		return
	}
	for _, k := range sortedKeys(v.DriverOpts) {
		val := v.DriverOpts[k]
		if (k == "device" && val != "" && isLocalDevice(val) || strings.HasPrefix(val, "/")) && ReachesDockerSocket(val) {
			c.socket(p.Child("driverOpts").Key(k), val)
		}
	}
}

func userTmpfsOption(opt string) bool {
	opt = strings.ToLower(strings.TrimSpace(opt))
	if opt == "" {
		return true
	}
	name, _, hasValue := strings.Cut(opt, "=")
	if hasValue {
		return slices.Contains(userTmpfsValues, name)
	}
	return slices.Contains(userTmpfsFlags, name)
}

// isLocalDevice reports whether a local-driver device names a path on this
// host rather than a remote share such as "nfs-server:/export".
func isLocalDevice(dev string) bool {
	if strings.HasPrefix(dev, "/") {
		return true
	}
	return !strings.Contains(dev, ":")
}

// socketDirs hold the container runtime's control sockets: /run and
// /var/run, its usual symlink. Mounting one of them, anything under them, or
// a directory containing them (/, /var) reaches the socket.
var socketDirs = []string{"/run", "/var/run"}

// magicPaths lead anywhere when the daemon resolves a mount source through
// them: /proc/<pid>/root and /proc/self/fd (the daemon's own open socket
// among its descriptors), and /dev/fd, /dev/std*, symlinks into
// /proc/self/fd. Their parents (/dev) are harmless: links inside a mounted
// directory resolve inside the container.
var magicPaths = []string{"/proc", "/dev/fd", "/dev/stdin", "/dev/stdout", "/dev/stderr"}

// socketNames are the file names of container runtime sockets wherever they
// are (rootless Docker, Docker Desktop, a copied socket).
var socketNames = []string{"docker.sock", "containerd.sock", "containerd.sock.ttrpc", "dockershim.sock", "cri-dockerd.sock", "docker.pid"}

// ReachesDockerSocket reports whether a host path, as Docker would resolve
// it, is, contains or lies under a path leading to the container runtime's
// control socket. The comparison is lexical and case-sensitive (Linux
// paths) after cleaning: "//var/run/docker.sock", "/var/run/../run/docker.sock"
// and a relative "run/docker.sock" (the daemon's working directory is /)
// are all caught. Symlinks on the host cannot be seen from here; only
// administrators can name host paths at all.
func ReachesDockerSocket(hostPath string) bool {
	if i := strings.IndexByte(hostPath, 0); i >= 0 {
		hostPath = hostPath[:i] // the kernel would stop reading there
	}
	p := path.Clean("/" + hostPath)
	if p == "/" {
		return true
	}
	for _, dir := range socketDirs {
		if p == dir || strings.HasPrefix(p, dir+"/") || strings.HasPrefix(dir, p+"/") {
			return true
		}
	}
	for _, magic := range magicPaths {
		if p == magic || strings.HasPrefix(p, magic+"/") {
			return true
		}
	}
	return slices.Contains(socketNames, path.Base(p))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
