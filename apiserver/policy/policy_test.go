package policy

import (
	"slices"
	"strings"
	"testing"

	"github.com/panelx/panelx/api"
)

func svc(mutate func(*api.ServiceSpec)) *api.Service {
	s := &api.Service{Metadata: api.ObjectMeta{Project: "shop", Name: "web"}, Spec: api.ServiceSpec{Image: "nginx:1"}}
	mutate(&s.Spec)
	s.Default()
	return s
}

func vol(driver string, opts map[string]string) *api.Volume {
	v := &api.Volume{Metadata: api.ObjectMeta{Project: "shop", Name: "data"}, Spec: api.VolumeSpec{Driver: driver, DriverOpts: opts}}
	v.Default()
	return v
}

func mount(hostPath string) func(*api.ServiceSpec) {
	return func(s *api.ServiceSpec) {
		s.Volumes = []api.VolumeMount{{HostPath: hostPath, MountPath: "/data"}}
	}
}

type policyCase struct {
	name  string
	obj   api.Object
	want  []string // fields refused, in any order; nil: allowed
	admin bool
	cfg   *Config
}

// userCases are the ways a non-administrator can ask for host access, each
// refused on the field that expresses it, and what stays open to them.
func userCases() []policyCase {
	ports := func(p ...int32) func(*api.ServiceSpec) {
		return func(s *api.ServiceSpec) {
			for _, hp := range p {
				s.Ports = append(s.Ports, api.Port{ContainerPort: 80, HostPort: hp})
			}
		}
	}
	narrow := DefaultConfig()
	narrow.HostPorts = PortRanges{{8000, 9000}}
	return []policyCase{
		{name: "plain service", obj: svc(func(*api.ServiceSpec) {})},
		{name: "privileged", obj: svc(func(s *api.ServiceSpec) { s.Privileged = true }), want: []string{"spec.privileged"}},
		{name: "host network", obj: svc(func(s *api.ServiceSpec) { s.NetworkMode = "host" }), want: []string{"spec.networkMode"}},
		{name: "another container's network", obj: svc(func(s *api.ServiceSpec) { s.NetworkMode = "container:db" }), want: []string{"spec.networkMode"}},
		{name: "host network upper case", obj: svc(func(s *api.ServiceSpec) { s.NetworkMode = "HOST" }), want: []string{"spec.networkMode"}},
		{name: "no network", obj: svc(func(s *api.ServiceSpec) { s.NetworkMode = "none" })},
		{name: "host pid", obj: svc(func(s *api.ServiceSpec) { s.PIDMode = "host" }), want: []string{"spec.pidMode"}},
		{name: "another container's pid", obj: svc(func(s *api.ServiceSpec) { s.PIDMode = "container:db" }), want: []string{"spec.pidMode"}},
		{name: "host ipc", obj: svc(func(s *api.ServiceSpec) { s.IPCMode = "host" }), want: []string{"spec.ipcMode"}},
		{name: "another container's ipc", obj: svc(func(s *api.ServiceSpec) { s.IPCMode = "container:db" }), want: []string{"spec.ipcMode"}},
		{name: "private and shareable ipc", obj: svc(func(s *api.ServiceSpec) { s.IPCMode = "shareable" })},
		{name: "host uts", obj: svc(func(s *api.ServiceSpec) { s.UTSMode = "host" }), want: []string{"spec.utsMode"}},
		{name: "added capability", obj: svc(func(s *api.ServiceSpec) { s.CapAdd = []string{"NET_ADMIN"} }), want: []string{"spec.capAdd[0]"}},
		{name: "added capabilities, CAP_ prefix and ALL", obj: svc(func(s *api.ServiceSpec) { s.CapAdd = []string{"CAP_SYS_ADMIN", "ALL"} }), want: []string{"spec.capAdd[0]", "spec.capAdd[1]"}},
		{name: "dropped capabilities", obj: svc(func(s *api.ServiceSpec) { s.CapDrop = []string{"ALL"} })},
		{name: "device", obj: svc(func(s *api.ServiceSpec) { s.Devices = []string{"/dev/sda"} }), want: []string{"spec.devices[0]"}},
		{name: "device with container path and permissions", obj: svc(func(s *api.ServiceSpec) { s.Devices = []string{"/dev/fuse:/dev/fuse:rwm"} }), want: []string{"spec.devices[0]"}},
		{name: "sysctl", obj: svc(func(s *api.ServiceSpec) { s.Sysctls = map[string]string{"net.ipv4.ip_forward": "1"} }), want: []string{"spec.sysctls[net.ipv4.ip_forward]"}},
		{name: "namespaced sysctl", obj: svc(func(s *api.ServiceSpec) { s.Sysctls = map[string]string{"kernel.shmmax": "1"} }), want: []string{"spec.sysctls[kernel.shmmax]"}},
		{name: "seccomp unconfined", obj: svc(func(s *api.ServiceSpec) { s.SecurityOpt = []string{"seccomp=unconfined"} }), want: []string{"spec.securityOpt[0]"}},
		{name: "seccomp unconfined, colon", obj: svc(func(s *api.ServiceSpec) { s.SecurityOpt = []string{"seccomp:unconfined"} }), want: []string{"spec.securityOpt[0]"}},
		{name: "apparmor unconfined", obj: svc(func(s *api.ServiceSpec) { s.SecurityOpt = []string{"apparmor=unconfined"} }), want: []string{"spec.securityOpt[0]"}},
		{name: "selinux label disabled", obj: svc(func(s *api.ServiceSpec) { s.SecurityOpt = []string{"label=disable", "label:disable"} }), want: []string{"spec.securityOpt[0]", "spec.securityOpt[1]"}},
		{name: "unmasked system paths", obj: svc(func(s *api.ServiceSpec) { s.SecurityOpt = []string{"systempaths=unconfined"} }), want: []string{"spec.securityOpt[0]"}},
		{name: "no-new-privileges false", obj: svc(func(s *api.ServiceSpec) { s.SecurityOpt = []string{"no-new-privileges:false"} }), want: []string{"spec.securityOpt[0]"}},
		{name: "no-new-privileges", obj: svc(func(s *api.ServiceSpec) {
			s.SecurityOpt = []string{"no-new-privileges", "no-new-privileges:true", "no-new-privileges=true"}
		})},
		{name: "bind mount", obj: svc(mount("/srv/data")), want: []string{"spec.volumes[0].hostPath"}},
		{name: "bind mount of the root", obj: svc(mount("/")), want: []string{"spec.volumes[0].hostPath"}},
		{name: "an existing Docker volume", obj: svc(func(s *api.ServiceSpec) {
			s.Volumes = []api.VolumeMount{{DockerVolume: "legacy_pgdata", MountPath: "/data"}}
		}), want: []string{"spec.volumes[0].dockerVolume"}},
		{name: "bind mount of the socket", obj: svc(mount("/var/run/docker.sock")), want: []string{"spec.volumes[0].hostPath"}},
		{name: "relative bind mount", obj: svc(mount("etc")), want: []string{"spec.volumes[0].hostPath"}},
		{name: "second mount is the bind", obj: svc(func(s *api.ServiceSpec) {
			s.Volumes = []api.VolumeMount{{Name: "data", MountPath: "/data"}, {Tmpfs: true, MountPath: "/tmp"}, {HostPath: "/etc", MountPath: "/host-etc", ReadOnly: true}}
		}), want: []string{"spec.volumes[2].hostPath"}},
		{name: "named volume and tmpfs", obj: svc(func(s *api.ServiceSpec) {
			s.Volumes = []api.VolumeMount{{Name: "data", MountPath: "/data"}, {Tmpfs: true, MountPath: "/tmp"}}
		})},
		{name: "privileged port", obj: svc(ports(80)), want: []string{"spec.ports[0].hostPort"}},
		{name: "ssh port", obj: svc(ports(22)), want: []string{"spec.ports[0].hostPort"}},
		{name: "port just below the range", obj: svc(ports(1023)), want: []string{"spec.ports[0].hostPort"}},
		{name: "ports in the range", obj: svc(ports(1024, 8080, 65535))},
		{name: "second port outside", obj: svc(ports(8080, 443)), want: []string{"spec.ports[1].hostPort"}},
		{name: "unpublished port", obj: svc(ports(0))},
		{name: "port outside a narrow range", obj: svc(ports(7999, 8000, 9000, 9001)), cfg: &narrow, want: []string{"spec.ports[0].hostPort", "spec.ports[3].hostPort"}},
		{name: "everything at once", obj: svc(func(s *api.ServiceSpec) {
			s.Privileged, s.NetworkMode, s.PIDMode, s.IPCMode, s.UTSMode = true, "host", "host", "host", "host"
			s.CapAdd, s.Devices, s.SecurityOpt = []string{"SYS_ADMIN"}, []string{"/dev/kmsg"}, []string{"apparmor=unconfined"}
			s.Sysctls = map[string]string{"kernel.msgmax": "1"}
			s.Volumes = []api.VolumeMount{{HostPath: "/", MountPath: "/host"}}
			s.Ports = []api.Port{{ContainerPort: 22, HostPort: 22}}
		}), want: []string{"spec.privileged", "spec.networkMode", "spec.pidMode", "spec.ipcMode", "spec.utsMode", "spec.capAdd[0]",
			"spec.devices[0]", "spec.sysctls[kernel.msgmax]", "spec.securityOpt[0]", "spec.volumes[0].hostPath", "spec.ports[0].hostPort"}},

		// Volumes: Docker's local driver mounts whatever its options say.
		{name: "plain volume", obj: vol("", nil)},
		{name: "tmpfs volume", obj: vol("local", map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=100m,uid=1000,mode=1777,noexec"})},
		{name: "bind volume, the usual spelling", obj: vol("local", map[string]string{"type": "none", "o": "bind", "device": "/srv/data"}),
			want: []string{"spec.driverOpts[type]", "spec.driverOpts[o]", "spec.driverOpts[device]"}},
		{name: "o=bind alone", obj: vol("local", map[string]string{"o": "bind"}), want: []string{"spec.driverOpts[o]"}},
		{name: "o=rbind", obj: vol("local", map[string]string{"o": "rbind"}), want: []string{"spec.driverOpts[o]"}},
		{name: "bind among other options", obj: vol("local", map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "ro, BIND"}), want: []string{"spec.driverOpts[o]"}},
		{name: "other mount flags", obj: vol("local", map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "remount"}), want: []string{"spec.driverOpts[o]"}},
		{name: "device path alone", obj: vol("local", map[string]string{"device": "/srv/data"}), want: []string{"spec.driverOpts[device]"}},
		{name: "device with a double slash", obj: vol("local", map[string]string{"device": "//var/run"}), want: []string{"spec.driverOpts[device]"}},
		{name: "relative device", obj: vol("local", map[string]string{"type": "none", "device": "srv/data"}), want: []string{"spec.driverOpts[type]", "spec.driverOpts[device]"}},
		{name: "block device", obj: vol("local", map[string]string{"type": "ext4", "device": "/dev/sda1"}), want: []string{"spec.driverOpts[type]", "spec.driverOpts[device]"}},
		{name: "type bind", obj: vol("local", map[string]string{"type": "bind"}), want: []string{"spec.driverOpts[type]"}},
		{name: "nfs share", obj: vol("local", map[string]string{"type": "nfs", "o": "addr=10.0.0.1,rw", "device": ":/export"}),
			want: []string{"spec.driverOpts[type]", "spec.driverOpts[o]", "spec.driverOpts[device]"}},
		{name: "cifs share", obj: vol("local", map[string]string{"type": "cifs", "device": "//fileserver/share"}), want: []string{"spec.driverOpts[type]", "spec.driverOpts[device]"}},
		{name: "unknown option", obj: vol("local", map[string]string{"size": "10G"}), want: []string{"spec.driverOpts[size]"}},
		{name: "volume plugin", obj: vol("local-persist", map[string]string{"mountpoint": "/srv/data"}), want: []string{"spec.driver", "spec.driverOpts[mountpoint]"}},
	}
}

// adminCases: administrators get host access, but never the runtime's
// control socket however it is spelled.
func adminCases() []policyCase {
	socket := []string{
		"/var/run/docker.sock", "/run/docker.sock", "//var/run/docker.sock", "/var/run/../run/docker.sock",
		"/var/run/./docker.sock", "/var/run/docker.sock/", "run/docker.sock", "/", "/var", "/run", "/var/run",
		"/run/containerd/containerd.sock", "/run/user/1000/docker.sock", "/home/ada/.docker/run/docker.sock",
		"/proc/1/root", "/proc/self/fd/3", "/dev/fd/3", "/dev/stdin", "/srv/../run/docker.sock", "/var/run/docker.sock\x00/x",
	}
	var cases []policyCase
	for _, p := range socket {
		cases = append(cases, policyCase{name: "socket bind " + p, obj: svc(mount(p)), admin: true, want: []string{"spec.volumes[0].hostPath"}})
	}
	allowed := DefaultConfig()
	allowed.DockerSocket = true
	locked := DefaultConfig()
	locked.AdminHostAccess = false
	everything := svc(func(s *api.ServiceSpec) {
		s.Privileged, s.NetworkMode, s.PIDMode, s.IPCMode, s.UTSMode = true, "host", "host", "host", "host"
		s.CapAdd, s.Devices, s.SecurityOpt = []string{"SYS_ADMIN"}, []string{"/dev/kmsg"}, []string{"apparmor=unconfined"}
		s.Sysctls = map[string]string{"kernel.msgmax": "1"}
		s.Volumes = []api.VolumeMount{{HostPath: "/srv/data", MountPath: "/data"}, {HostPath: "/etc/ssl/certs", MountPath: "/certs", ReadOnly: true}}
		s.Ports = []api.Port{{ContainerPort: 80, HostPort: 80}}
	})
	return append(cases, []policyCase{
		{name: "admin gets host settings", obj: everything, admin: true},
		{name: "admin mounts an existing Docker volume", obj: svc(func(s *api.ServiceSpec) {
			s.Volumes = []api.VolumeMount{{DockerVolume: "legacy_pgdata", MountPath: "/data"}}
		}), admin: true},
		{name: "host access disabled for admins", obj: everything, admin: true, cfg: &locked, want: []string{"spec.privileged", "spec.networkMode",
			"spec.pidMode", "spec.ipcMode", "spec.utsMode", "spec.capAdd[0]", "spec.devices[0]", "spec.sysctls[kernel.msgmax]", "spec.securityOpt[0]",
			"spec.volumes[0].hostPath", "spec.volumes[1].hostPath", "spec.ports[0].hostPort"}},
		{name: "paths that only look alike", obj: svc(func(s *api.ServiceSpec) {
			s.Volumes = []api.VolumeMount{{HostPath: "/running", MountPath: "/a"}, {HostPath: "/var/lib/dockerish", MountPath: "/b"}, {HostPath: "/srv/proc", MountPath: "/c"},
				{HostPath: "/etc", MountPath: "/d"}, {HostPath: "/var/lib/docker", MountPath: "/e"}, {HostPath: "/dev", MountPath: "/f"}}
		}), admin: true},
		{name: "socket allowed by configuration", obj: svc(mount("/var/run/docker.sock")), admin: true, cfg: &allowed},
		{name: "device through /proc", obj: svc(func(s *api.ServiceSpec) { s.Devices = []string{"/dev/sda", "/proc/self/fd/3:/dev/x:rwm"} }), admin: true, want: []string{"spec.devices[1]"}},
		{name: "admin bind volume", obj: vol("local", map[string]string{"type": "none", "o": "bind", "device": "/srv/data"}), admin: true},
		{name: "admin bind volume of the socket directory", obj: vol("local", map[string]string{"type": "none", "o": "bind", "device": "/var/run"}), admin: true, want: []string{"spec.driverOpts[device]"}},
		{name: "admin relative bind volume of /run", obj: vol("local", map[string]string{"type": "none", "o": "bind", "device": "run"}), admin: true, want: []string{"spec.driverOpts[device]"}},
		{name: "admin nfs share", obj: vol("local", map[string]string{"type": "nfs", "o": "addr=10.0.0.1", "device": "10.0.0.1:/run"}), admin: true},
		{name: "admin plugin mountpoint on the socket", obj: vol("local-persist", map[string]string{"mountpoint": "/var/run"}), admin: true, want: []string{"spec.driverOpts[mountpoint]"}},
		{name: "projects carry no host settings", obj: &api.Project{Metadata: api.ObjectMeta{Name: "shop"}}},
		// A wildcard hostname is not host access: locked administrators keep it.
		{name: "user wildcard hostname", obj: svc(func(s *api.ServiceSpec) {
			s.Domains = []api.Domain{{Host: "app.example.com"}, {Host: "*.example.com"}}
		}), want: []string{"spec.domains[1].host"}},
		{name: "admin wildcard hostname", obj: svc(func(s *api.ServiceSpec) { s.Domains = []api.Domain{{Host: "*.example.com"}} }), admin: true, cfg: &locked},
	}...)
}

func TestCheck(t *testing.T) {
	for _, tt := range append(userCases(), adminCases()...) {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tt.cfg != nil {
				cfg = *tt.cfg
			}
			errs := Check(tt.obj, tt.admin, cfg)
			var got []string
			for _, e := range errs {
				got = append(got, e.Field)
				if e.Type != api.ErrForbidden || !strings.Contains(e.Detail, "forbidden") {
					t.Errorf("%s: type %s detail %q, want a Forbidden error", e.Field, e.Type, e.Detail)
				}
			}
			want := slices.Clone(tt.want)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("refused %q, want %q\n%v", got, want, errs)
			}
		})
	}
}

// TestUserCasesAlsoRefusedForLockedAdmins: with host access disabled an
// administrator is held to exactly the rules of everyone else.
func TestUserCasesAlsoRefusedForLockedAdmins(t *testing.T) {
	locked := DefaultConfig()
	locked.AdminHostAccess = false
	for _, tt := range userCases() {
		if tt.cfg != nil {
			continue
		}
		user, admin := Check(tt.obj, false, locked), Check(tt.obj, true, locked)
		if len(user) != len(admin) {
			t.Errorf("%s: user refused %v, locked admin %v", tt.name, user, admin)
		}
		for _, e := range admin {
			if !strings.Contains(e.Detail, "PANELX_ADMIN_ALLOW_HOST_ACCESS") {
				t.Errorf("%s: %s does not say why an administrator is refused", tt.name, e)
			}
		}
	}
}

func TestParsePortRanges(t *testing.T) {
	tests := []struct {
		in      string
		want    PortRanges
		wantErr bool
	}{
		{"1024-65535", PortRanges{{1024, 65535}}, false},
		{"80, 443,8000-9000", PortRanges{{80, 80}, {443, 443}, {8000, 9000}}, false},
		{"", nil, false},
		{"0-100", nil, true},
		{"9000-8000", nil, true},
		{"1-65536", nil, true},
		{"http", nil, true},
		{"80,", nil, true},
		{"-5", nil, true},
	}
	for _, tt := range tests {
		got, err := ParsePortRanges(tt.in)
		if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
			t.Errorf("ParsePortRanges(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
	r := PortRanges{{80, 80}, {8000, 9000}}
	if r.String() != "80,8000-9000" || !r.Contains(8500) || r.Contains(81) || PortRanges(nil).Contains(80) {
		t.Errorf("PortRanges %v: String or Contains wrong", r)
	}
}
