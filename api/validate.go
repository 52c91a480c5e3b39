package api

import (
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/distribution/reference"
)

// Limits of the resource model.
const (
	MaxNameLength   = 63
	MaxReplicas     = 100
	MaxLabelValue   = 63
	MaxEnvValueSize = 128 << 10
)

var (
	dns1123LabelRe = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	labelValueRe   = regexp.MustCompile(`^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$`)
	labelNameRe    = labelValueRe
	envNameRe      = regexp.MustCompile(`^[-._a-zA-Z][-._a-zA-Z0-9]*$`)
	capabilityRe   = regexp.MustCompile(`^(CAP_)?[A-Z][A-Z0-9_]*$`)
	sysctlRe       = regexp.MustCompile(`^[a-z0-9]([-_a-z0-9]*[a-z0-9])?([./][a-z0-9]([-_a-z0-9]*[a-z0-9])?)*$`)
	driverRe       = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.:/-]*$`)
)

// ValidateName checks a DNS-1123 label: lower-case letters, digits and '-',
// starting and ending with a letter or digit, at most 63 characters.
func ValidateName(p Path, name string) ErrorList {
	switch {
	case name == "":
		return ErrorList{Required(p, "")}
	case len(name) > MaxNameLength:
		return ErrorList{fieldErr(p, ErrTooLong, "must be at most %d characters", MaxNameLength)}
	case !dns1123LabelRe.MatchString(name):
		return ErrorList{Invalid(p, name, "must be a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit")}
	}
	return nil
}

// ValidateDomain checks a DNS name made of DNS-1123 labels.
func ValidateDomain(p Path, domain string) ErrorList {
	if len(domain) > 253 {
		return ErrorList{fieldErr(p, ErrTooLong, "must be at most 253 characters")}
	}
	for _, label := range strings.Split(domain, ".") {
		if label == "" || len(label) > MaxNameLength || !dns1123LabelRe.MatchString(label) {
			return ErrorList{Invalid(p, domain, "must be a lower-case DNS name such as shop.example.com")}
		}
	}
	return nil
}

func validateMeta(p Path, m *ObjectMeta, kind Kind) ErrorList {
	errs := ValidateName(p.Child("name"), m.Name)
	if kind == KindProject {
		if m.Project != "" && m.Project != m.Name {
			errs = append(errs, Forbidden(p.Child("project"), "a Project belongs to no project"))
		}
	} else {
		errs = append(errs, ValidateName(p.Child("project"), m.Project)...)
	}
	errs = append(errs, ValidateLabels(p.Child("labels"), m.Labels)...)
	size := 0
	for _, k := range sortedKeys(m.Annotations) {
		if msg := labelKeyProblem(k); msg != "" {
			errs = append(errs, Invalid(p.Child("annotations").Key(k), k, strings.Replace(msg, "label", "annotation", 1)))
		}
		if v := m.Annotations[k]; !validText(v) {
			errs = append(errs, Invalid(p.Child("annotations").Key(k), v, "must be valid UTF-8 without NUL bytes"))
		}
		size += len(k) + len(m.Annotations[k])
	}
	if size > 256<<10 {
		errs = append(errs, fieldErr(p.Child("annotations"), ErrTooLong, "must total at most 256 KiB"))
	}
	return errs
}

// ValidateLabels checks label keys ([prefix/]name, Kubernetes-style) and values.
func ValidateLabels(p Path, labels map[string]string) ErrorList {
	var errs ErrorList
	for _, k := range sortedKeys(labels) {
		kp := p.Key(k)
		if msg := labelKeyProblem(k); msg != "" {
			errs = append(errs, Invalid(kp, k, msg))
		}
		if v := labels[k]; len(v) > MaxLabelValue || !labelValueRe.MatchString(v) {
			errs = append(errs, Invalid(kp, v, "a label value must be at most 63 characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit"))
		}
	}
	return errs
}

func labelKeyProblem(k string) string {
	name := k
	if i := strings.IndexByte(k, '/'); i >= 0 {
		prefix := k[:i]
		name = k[i+1:]
		if len(ValidateDomain("", prefix)) > 0 {
			return "a label key prefix must be a lower-case DNS name"
		}
	}
	if name == "" || len(name) > MaxNameLength || !labelNameRe.MatchString(name) {
		return "a label key must be [prefix/]name, the name at most 63 characters of letters, digits, '-', '_' or '.'"
	}
	return ""
}

// Validate checks a project.
func (p *Project) Validate() ErrorList {
	errs := validateTypeMeta(&p.TypeMeta, KindProject)
	errs = append(errs, validateMeta("metadata", &p.Metadata, KindProject)...)
	if d := p.Spec.Domain; d != "" {
		h, err := NormalizeHost(d)
		switch {
		case err != nil:
			errs = append(errs, Invalid("spec.domain", d, err.Error()))
		case h != d:
			errs = append(errs, Invalid("spec.domain", d, "must be written in its canonical form "+h))
		case IsWildcard(h):
			errs = append(errs, Invalid("spec.domain", d, "must be a domain, not a wildcard: its services get <service>."+strings.TrimPrefix(h, "*.")))
		case len(h) > MaxProjectDomain:
			// <service>.<domain> must stay a valid hostname for every service name.
			errs = append(errs, fieldErr("spec.domain", ErrTooLong, "must be at most %d characters", MaxProjectDomain))
		}
	}
	if len(p.Spec.DisplayName) > 200 {
		errs = append(errs, fieldErr("spec.displayName", ErrTooLong, "must be at most 200 characters"))
	} else if !validText(p.Spec.DisplayName) {
		errs = append(errs, Invalid("spec.displayName", p.Spec.DisplayName, "must be valid UTF-8 without NUL bytes"))
	}
	return errs
}

// Validate checks a volume.
func (v *Volume) Validate() ErrorList {
	errs := validateTypeMeta(&v.TypeMeta, KindVolume)
	errs = append(errs, validateMeta("metadata", &v.Metadata, KindVolume)...)
	sp := Path("spec")
	switch v.Spec.ReclaimPolicy {
	case ReclaimRetain, ReclaimDelete:
	default:
		errs = append(errs, NotSupported(sp.Child("reclaimPolicy"), v.Spec.ReclaimPolicy, ReclaimRetain, ReclaimDelete))
	}
	if !driverRe.MatchString(v.Spec.Driver) || len(v.Spec.Driver) > 255 {
		errs = append(errs, Invalid(sp.Child("driver"), v.Spec.Driver, "must be a volume driver name such as \"local\""))
	}
	for _, k := range sortedKeys(v.Spec.DriverOpts) {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v.Spec.DriverOpts[k], 0) {
			errs = append(errs, Invalid(sp.Child("driverOpts").Key(k), k, "option names must be non-empty without '='; values without NUL"))
		}
	}
	if v.Spec.Backup != nil {
		errs = append(errs, v.Spec.Backup.validate(sp.Child("backup"))...)
	}
	return errs
}

func validateTypeMeta(t *TypeMeta, kind Kind) ErrorList {
	var errs ErrorList
	if t.APIVersion != APIVersion {
		errs = append(errs, NotSupported("apiVersion", t.APIVersion, APIVersion))
	}
	if t.Kind != kind {
		errs = append(errs, Invalid("kind", string(t.Kind), fmt.Sprintf("must be %q", kind)))
	}
	return errs
}

// Validate checks a service.
func (s *Service) Validate() ErrorList {
	errs := validateTypeMeta(&s.TypeMeta, KindService)
	errs = append(errs, validateMeta("metadata", &s.Metadata, KindService)...)
	return append(errs, s.Spec.validate("spec", s.Metadata.Name)...)
}

func (s *ServiceSpec) validate(p Path, self string) ErrorList {
	var errs ErrorList
	if s.Build == nil {
		errs = append(errs, ValidateImage(p.Child("image"), s.Image)...)
	} else {
		if s.Image != "" {
			errs = append(errs, Invalid(p.Child("image"), s.Image, "a service built from source runs its build: set image or build, not both"))
		}
		errs = append(errs, s.Build.validate(p.Child("build"))...)
	}
	switch s.ImagePullPolicy {
	case PullAlways, PullIfNotPresent, PullNever:
	default:
		errs = append(errs, NotSupported(p.Child("imagePullPolicy"), s.ImagePullPolicy, PullAlways, PullIfNotPresent, PullNever))
	}
	errs = append(errs, validateArgv(p.Child("command"), s.Command)...)
	errs = append(errs, validateArgv(p.Child("args"), s.Args)...)
	if s.WorkingDir != "" {
		errs = append(errs, validateAbsPath(p.Child("workingDir"), s.WorkingDir)...)
	}
	if strings.ContainsAny(s.User, "\x00\n") || len(s.User) > 256 {
		errs = append(errs, Invalid(p.Child("user"), s.User, "must be a user name or uid[:gid]"))
	}
	errs = append(errs, validateEnv(p.Child("env"), s.Env)...)
	replicas := int32(1)
	if s.Replicas == nil {
		errs = append(errs, Required(p.Child("replicas"), ""))
	} else {
		replicas = *s.Replicas
		if replicas < 0 || replicas > MaxReplicas {
			errs = append(errs, Invalid(p.Child("replicas"), replicas, fmt.Sprintf("must be between 0 and %d", MaxReplicas)))
		}
	}
	errs = append(errs, validatePorts(p.Child("ports"), s.Ports, replicas)...)
	errs = append(errs, validateMounts(p.Child("volumes"), s.Volumes)...)
	errs = append(errs, s.Resources.validate(p.Child("resources"))...)
	if s.Healthcheck != nil {
		errs = append(errs, s.Healthcheck.validate(p.Child("healthcheck"))...)
	}
	errs = append(errs, validateLabels(p.Child("aliases"), s.Aliases, 16, "aliases")...)
	if len(s.Aliases) > 0 && s.NetworkMode != "" {
		errs = append(errs, Invalid(p.Child("aliases"), s.Aliases, "aliases are names on the project network; networkMode "+s.NetworkMode+" has none"))
	}
	errs = append(errs, validateLabels(p.Child("networks"), s.Networks, 8, "networks")...)
	if len(s.Networks) > 0 && s.NetworkMode != "" {
		errs = append(errs, Invalid(p.Child("networks"), s.Networks, "networkMode "+s.NetworkMode+" joins no project network; remove one of the two"))
	}
	if s.ReadinessProbe != nil {
		errs = append(errs, s.ReadinessProbe.validate(p.Child("readinessProbe"))...)
	}
	seen := map[string]bool{}
	for i, d := range s.DependsOn {
		dp := p.Child("dependsOn").Index(i)
		if nameErrs := ValidateName(dp, d); len(nameErrs) > 0 {
			errs = append(errs, nameErrs...)
			continue
		}
		if d == self {
			errs = append(errs, Invalid(dp, d, "a service cannot depend on itself"))
		}
		if seen[d] {
			errs = append(errs, Duplicate(dp, d))
		}
		seen[d] = true
	}
	switch s.RestartPolicy {
	case RestartAlways, RestartOnFailure, RestartNever:
	default:
		errs = append(errs, NotSupported(p.Child("restartPolicy"), s.RestartPolicy, RestartAlways, RestartOnFailure, RestartNever))
	}
	errs = append(errs, validateDomains(p.Child("domains"), s)...)
	errs = append(errs, s.Rollout.validate(p.Child("rollout"))...)
	if d := s.StopGracePeriod.Duration; d < 0 || d > MaxStopGracePeriod {
		errs = append(errs, Invalid(p.Child("stopGracePeriod"), s.StopGracePeriod.String(), fmt.Sprintf("must be between 0 and %v", MaxStopGracePeriod)))
	}
	if s.RestartedAt != "" {
		if _, err := time.Parse(time.RFC3339, s.RestartedAt); err != nil {
			errs = append(errs, Invalid(p.Child("restartedAt"), s.RestartedAt, "must be an RFC 3339 time, e.g. 2026-12-03T20:00:00Z"))
		}
	}
	errs = append(errs, s.validateHostSettings(p)...)
	return errs
}

// validateHostSettings checks the syntax of the host-level settings; whether
// the caller may use them at all is the API's spec policy.
func (s *ServiceSpec) validateHostSettings(p Path) ErrorList {
	var errs ErrorList
	modes := []struct {
		field   string
		value   string
		allowed []string
	}{
		{"networkMode", s.NetworkMode, []string{"", "host", "none"}},
		{"pidMode", s.PIDMode, []string{"", "host"}},
		{"ipcMode", s.IPCMode, []string{"", "private", "shareable", "host"}},
		{"utsMode", s.UTSMode, []string{"", "host"}},
	}
	for _, m := range modes {
		ok := false
		for _, a := range m.allowed {
			ok = ok || m.value == a
		}
		if !ok {
			errs = append(errs, NotSupported(p.Child(m.field), m.value, m.allowed...))
		}
	}
	for i, c := range s.CapAdd {
		errs = append(errs, validateCapability(p.Child("capAdd").Index(i), c)...)
	}
	for i, c := range s.CapDrop {
		errs = append(errs, validateCapability(p.Child("capDrop").Index(i), c)...)
	}
	for i, d := range s.Devices {
		host, _, _ := strings.Cut(d, ":")
		if !strings.HasPrefix(host, "/") || strings.ContainsRune(d, 0) {
			errs = append(errs, Invalid(p.Child("devices").Index(i), d, "must be /dev/host[:/dev/container[:permissions]]"))
		}
	}
	for _, k := range sortedKeys(s.Sysctls) {
		if !sysctlRe.MatchString(k) || strings.ContainsRune(s.Sysctls[k], 0) {
			errs = append(errs, Invalid(p.Child("sysctls").Key(k), k, "must be a sysctl name such as net.core.somaxconn"))
		}
	}
	for i, o := range s.SecurityOpt {
		if o == "" || strings.ContainsRune(o, 0) {
			errs = append(errs, Invalid(p.Child("securityOpt").Index(i), o, "must be a non-empty option"))
		}
	}
	return errs
}

func validateCapability(p Path, c string) ErrorList {
	if c != "ALL" && !capabilityRe.MatchString(c) {
		return ErrorList{Invalid(p, c, "must be a capability name such as NET_ADMIN, or ALL")}
	}
	return nil
}

// ValidateImage checks an image reference such as registry:5000/team/app:1.4
// or app@sha256:….
func ValidateImage(p Path, image string) ErrorList {
	if image == "" {
		return ErrorList{Required(p, "")}
	}
	if strings.TrimSpace(image) != image {
		return ErrorList{Invalid(p, image, "must not have leading or trailing spaces")}
	}
	if _, err := reference.ParseNormalizedNamed(image); err != nil {
		return ErrorList{Invalid(p, image, "not a valid image reference: "+err.Error())}
	}
	return nil
}

// validText: the stores keep text in PostgreSQL, which refuses NUL and
// invalid UTF-8.
func validText(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

func validateArgv(p Path, argv []string) ErrorList {
	var errs ErrorList
	for i, a := range argv {
		if strings.ContainsRune(a, 0) || !utf8.ValidString(a) {
			errs = append(errs, Invalid(p.Index(i), a, "must be valid UTF-8 without NUL bytes"))
		}
	}
	return errs
}

func validateEnv(p Path, env []EnvVar) ErrorList {
	var errs ErrorList
	seen := map[string]bool{}
	for i, e := range env {
		ep := p.Index(i)
		switch {
		case e.Name == "":
			errs = append(errs, Required(ep.Child("name"), ""))
		case len(e.Name) > 256 || !envNameRe.MatchString(e.Name):
			errs = append(errs, Invalid(ep.Child("name"), e.Name, "must consist of letters, digits, '_', '-' or '.', and not start with a digit"))
		case seen[e.Name]:
			errs = append(errs, Duplicate(ep.Child("name"), e.Name))
		}
		seen[e.Name] = true
		if strings.ContainsRune(e.Value, 0) || len(e.Value) > MaxEnvValueSize {
			errs = append(errs, Invalid(ep.Child("value"), e.Value, "must be at most 128 KiB without NUL bytes"))
		}
		if e.ValueFrom == nil {
			continue
		}
		ref := e.ValueFrom.SecretKeyRef
		switch {
		case e.Value != "":
			errs = append(errs, Forbidden(ep.Child("valueFrom"), "set value or valueFrom, not both"))
		case ref == nil:
			errs = append(errs, Required(ep.Child("valueFrom.secretKeyRef"), "valueFrom needs a secretKeyRef"))
		default:
			errs = append(errs, ref.validate(ep.Child("valueFrom.secretKeyRef"))...)
		}
	}
	return errs
}

func validatePorts(p Path, ports []Port, replicas int32) ErrorList {
	var errs ErrorList
	for i, port := range ports {
		pp := p.Index(i)
		if port.ContainerPort < 1 || port.ContainerPort > 65535 {
			errs = append(errs, Invalid(pp.Child("containerPort"), port.ContainerPort, "must be between 1 and 65535"))
		}
		if port.HostPort < 0 || port.HostPort > 65535 {
			errs = append(errs, Invalid(pp.Child("hostPort"), port.HostPort, "must be between 1 and 65535, or 0 to publish nothing"))
		}
		switch port.Protocol {
		case ProtocolTCP, ProtocolUDP:
		default:
			errs = append(errs, NotSupported(pp.Child("protocol"), port.Protocol, ProtocolTCP, ProtocolUDP))
		}
		if port.HostIP != "" {
			if _, err := netip.ParseAddr(port.HostIP); err != nil {
				errs = append(errs, Invalid(pp.Child("hostIP"), port.HostIP, "must be an IP address"))
			}
			if port.HostPort == 0 {
				errs = append(errs, Invalid(pp.Child("hostIP"), port.HostIP, "is only meaningful with a hostPort"))
			}
		}
		if port.HostPort == 0 {
			continue
		}
		for _, prev := range ports[:i] {
			if PortsClash(prev, port) {
				errs = append(errs, Duplicate(pp.Child("hostPort"), port.HostPort))
				break
			}
		}
		if replicas > 1 {
			errs = append(errs, Invalid(pp.Child("hostPort"), port.HostPort, "a host port can be published by one replica only; set replicas to 1 or remove hostPort"))
		}
	}
	return errs
}

// PortsClash reports whether two published ports would bind the same host
// socket. An empty hostIP binds every address, so it clashes with any.
func PortsClash(a, b Port) bool {
	return a.HostPort != 0 && a.HostPort == b.HostPort && a.Protocol == b.Protocol &&
		(a.HostIP == "" || b.HostIP == "" || a.HostIP == b.HostIP)
}

func validateAbsPath(p Path, v string) ErrorList {
	switch {
	case !strings.HasPrefix(v, "/"):
		return ErrorList{Invalid(p, v, "must be an absolute path")}
	case path.Clean(v) != v:
		return ErrorList{Invalid(p, v, fmt.Sprintf("must be a clean path (%s) without '.', '..', '//' or a trailing '/'", path.Clean(v)))}
	case strings.ContainsAny(v, "\x00:,") || !utf8.ValidString(v):
		return ErrorList{Invalid(p, v, "must not contain NUL, ':' or ','")}
	case len(v) > 4096:
		return ErrorList{fieldErr(p, ErrTooLong, "must be at most 4096 characters")}
	}
	return nil
}

// dockerVolumeRe is what Docker accepts as a volume name.
var dockerVolumeRe = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

func (ref *SecretKeySelector) validate(p Path) ErrorList {
	errs := ValidateName(p.Child("name"), ref.Name)
	if ref.Key == "" {
		errs = append(errs, Required(p.Child("key"), ""))
	} else if len(ref.Key) > 253 || !secretKeyRe.MatchString(ref.Key) {
		errs = append(errs, Invalid(p.Child("key"), ref.Key, "a key must consist of letters, digits, '-', '_' or '.'"))
	}
	return errs
}

// validateLabels checks a list of DNS-1123 labels: each valid, none
// twice, at most max of them.
func validateLabels(p Path, list []string, max int, what string) ErrorList {
	var errs ErrorList
	for i, l := range list {
		if len(ValidateName("", l)) > 0 {
			errs = append(errs, Invalid(p.Index(i), l, "must be a DNS-1123 label: lower-case letters, digits and '-', starting and ending with a letter or digit"))
		} else if slices.Contains(list[:i], l) {
			errs = append(errs, Duplicate(p.Index(i), l))
		}
	}
	if len(list) > max {
		errs = append(errs, Invalid(p, len(list), fmt.Sprintf("at most %d %s", max, what)))
	}
	return errs
}

func validateMounts(p Path, mounts []VolumeMount) ErrorList {
	var errs ErrorList
	seen := map[string]bool{}
	for i, m := range mounts {
		mp := p.Index(i)
		sources := 0
		if m.Name != "" {
			sources++
			errs = append(errs, ValidateName(mp.Child("name"), m.Name)...)
		}
		if m.HostPath != "" {
			sources++
			errs = append(errs, validateAbsPath(mp.Child("hostPath"), m.HostPath)...)
		}
		if m.DockerVolume != "" {
			sources++
			if !dockerVolumeRe.MatchString(m.DockerVolume) || len(m.DockerVolume) > 255 {
				errs = append(errs, Invalid(mp.Child("dockerVolume"), m.DockerVolume, "must be a Docker volume name: letters, digits, '_', '.', '-', starting with a letter or digit"))
			}
		}
		if m.Secret != nil {
			sources++
			errs = append(errs, m.Secret.validate(mp.Child("secret"))...)
		}
		if m.Tmpfs {
			sources++
		}
		if sources != 1 {
			errs = append(errs, Invalid(mp, fmt.Sprintf("%d sources", sources), "set exactly one of name, hostPath, dockerVolume, secret or tmpfs"))
		}
		if m.MountPath == "" {
			errs = append(errs, Required(mp.Child("mountPath"), ""))
		} else {
			errs = append(errs, validateAbsPath(mp.Child("mountPath"), m.MountPath)...)
			if m.MountPath == "/" {
				errs = append(errs, Invalid(mp.Child("mountPath"), m.MountPath, "cannot mount over the container's root"))
			}
			if seen[m.MountPath] {
				errs = append(errs, Duplicate(mp.Child("mountPath"), m.MountPath))
			}
			seen[m.MountPath] = true
		}
	}
	return errs
}

func (r *Resources) validate(p Path) ErrorList {
	var errs ErrorList
	if r.CPUs != "" {
		n, err := r.CPUs.NanoCPUs()
		switch {
		case err != nil:
			errs = append(errs, Invalid(p.Child("cpus"), string(r.CPUs), err.Error()))
		case n < 10_000_000:
			errs = append(errs, Invalid(p.Child("cpus"), string(r.CPUs), "must be at least 0.01 (10m)"))
		case n > 1024*1_000_000_000:
			errs = append(errs, Invalid(p.Child("cpus"), string(r.CPUs), "must be at most 1024"))
		}
	}
	if r.Memory != "" {
		n, err := r.Memory.Bytes()
		switch {
		case err != nil:
			errs = append(errs, Invalid(p.Child("memory"), string(r.Memory), err.Error()))
		case n < MinMemoryBytes:
			errs = append(errs, Invalid(p.Child("memory"), string(r.Memory), "must be at least 6Mi, Docker's minimum"))
		}
	}
	return errs
}

func (h *Healthcheck) validate(p Path) ErrorList {
	var errs ErrorList
	if len(h.Command) == 0 {
		errs = append(errs, Required(p.Child("command"), "a healthcheck needs a command"))
	}
	errs = append(errs, validateArgv(p.Child("command"), h.Command)...)
	durations := []struct {
		field string
		value Duration
	}{{"interval", h.Interval}, {"timeout", h.Timeout}, {"startPeriod", h.StartPeriod}}
	for _, d := range durations {
		if d.value.Duration < 0 || (d.value.Duration > 0 && d.value.Duration < time.Millisecond) {
			errs = append(errs, Invalid(p.Child(d.field), d.value.String(), "must be 0 or at least 1ms"))
		}
	}
	if h.Retries < 0 || h.Retries > 100 {
		errs = append(errs, Invalid(p.Child("retries"), h.Retries, "must be between 0 and 100"))
	}
	return errs
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
