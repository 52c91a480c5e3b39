// Package api holds PanelX's resource model: the Project, Service and Volume
// manifests (apiVersion panelx.dev/v1), their defaulting, validation and strict
// JSON/YAML decoding. It does no I/O; the HTTP layer lives in sub-packages.
package api

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// APIVersion is the only apiVersion PanelX manifests carry.
const APIVersion = "panelx.dev/v1"

// Kind names a resource type.
type Kind string

// The kinds of resources PanelX manages.
const (
	KindProject Kind = "Project"
	KindService Kind = "Service"
	KindVolume  Kind = "Volume"
)

// Kinds lists every kind, in the order a project is built: the project first,
// then what its services use, then the services.
var Kinds = []Kind{KindProject, KindSecret, KindVolume, KindService}

// TypeMeta says what a document is.
type TypeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       Kind   `json:"kind"`
}

// ObjectMeta is the metadata every resource carries. Name and Project come from
// the user; the rest is set by the server and ignored on input.
type ObjectMeta struct {
	// Name is a DNS-1123 label, unique within the project (or, for a
	// Project, within the installation).
	Name string `json:"name"`
	// Project is the owning project of a Service or Volume; empty for a Project.
	Project string            `json:"project,omitempty"`
	UID     string            `json:"uid,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
	// Annotations carry machine-written notes, such as the deletion options
	// of a project being deleted.
	Annotations map[string]string `json:"annotations,omitempty"`
	// Generation rises on every spec change and never on status writes.
	Generation int64 `json:"generation,omitempty"`
	// ResourceVersion rises on every write; it is the optimistic-concurrency
	// token (HTTP ETag / If-Match). Opaque to clients.
	ResourceVersion   string     `json:"resourceVersion,omitempty"`
	CreationTimestamp time.Time  `json:"creationTimestamp,omitzero"`
	DeletionTimestamp *time.Time `json:"deletionTimestamp,omitempty"`
}

// AnnotationPurgeVolumes on a Project being deleted asks the controller to
// remove its volumes' data too.
const AnnotationPurgeVolumes = "panelx.dev/purge-volumes"

// Key identifies one resource of a known kind.
type Key struct {
	Project string // empty for a Project
	Name    string
}

func (k Key) String() string {
	if k.Project == "" {
		return k.Name
	}
	return k.Project + "/" + k.Name
}

// Object is implemented by *Project, *Service and *Volume.
type Object interface {
	GetKind() Kind
	GetMeta() *ObjectMeta
	GetTypeMeta() *TypeMeta
	// SpecPtr and StatusPtr return pointers to the spec and status so generic
	// code (the store) can encode and decode them without a type switch.
	SpecPtr() any
	StatusPtr() any
	// Default fills unset fields with their defaults.
	Default()
	// Validate reports every problem of the object, each with its field path.
	Validate() ErrorList
}

// New returns an empty object of the kind, with its TypeMeta filled in.
func New(kind Kind) (Object, error) {
	var obj Object
	switch kind {
	case KindProject:
		obj = &Project{}
	case KindService:
		obj = &Service{}
	case KindVolume:
		obj = &Volume{}
	case KindSecret:
		obj = &Secret{}
	default:
		return nil, fmt.Errorf("unknown kind %q", kind)
	}
	*obj.GetTypeMeta() = TypeMeta{APIVersion: APIVersion, Kind: kind}
	return obj, nil
}

// KeyOf returns the key of an object.
func KeyOf(obj Object) Key {
	m := obj.GetMeta()
	return Key{Project: m.Project, Name: m.Name}
}

// Clone returns a deep copy of an object (through JSON, which every field
// round-trips through by construction).
func Clone[T Object](obj T) T {
	data, err := json.Marshal(obj)
	if err != nil {
		panic(fmt.Sprintf("clone %s: %v", obj.GetKind(), err))
	}
	out, err := New(obj.GetKind())
	if err != nil {
		panic(err)
	}
	if err := json.Unmarshal(data, out); err != nil {
		panic(fmt.Sprintf("clone %s: %v", obj.GetKind(), err))
	}
	return out.(T)
}

// ---- Project ----

// Project groups services and volumes; it owns a Docker bridge network.
type Project struct {
	TypeMeta
	Metadata ObjectMeta    `json:"metadata"`
	Spec     ProjectSpec   `json:"spec"`
	Status   ProjectStatus `json:"status,omitzero"`
}

// ProjectSpec is the desired state of a project.
type ProjectSpec struct {
	// Domain is an optional base domain. A service's spec.domains entry
	// without a host serves <service>.<domain>.
	Domain string `json:"domain,omitempty"`
	// DisplayName is a free-form human name for dashboards.
	DisplayName string `json:"displayName,omitempty"`
}

// ProjectStatus is what the controller last observed of a project.
type ProjectStatus struct {
	ObservedGeneration int64         `json:"observedGeneration,omitempty"`
	Phase              Phase         `json:"phase,omitempty"`
	Conditions         []Condition   `json:"conditions,omitempty"`
	Services           ServiceCounts `json:"services,omitzero"`
	Network            string        `json:"network,omitempty"`
}

// ServiceCounts summarises the services of a project.
type ServiceCounts struct {
	Total int32 `json:"total"`
	Ready int32 `json:"ready"`
}

func (p *Project) GetKind() Kind          { return KindProject }
func (p *Project) GetMeta() *ObjectMeta   { return &p.Metadata }
func (p *Project) GetTypeMeta() *TypeMeta { return &p.TypeMeta }
func (p *Project) SpecPtr() any           { return &p.Spec }
func (p *Project) StatusPtr() any         { return &p.Status }

// ---- Volume ----

// Volume is a named Docker volume of a project. Only an explicit delete of
// the Volume (or a project delete that asks to purge volumes) removes data.
type Volume struct {
	TypeMeta
	Metadata ObjectMeta   `json:"metadata"`
	Spec     VolumeSpec   `json:"spec"`
	Status   VolumeStatus `json:"status,omitzero"`
}

// ReclaimPolicy says what happens to a volume's data when its project is
// deleted.
type ReclaimPolicy string

const (
	// ReclaimRetain keeps the Docker volume when the project is deleted
	// without purge; only a delete of this Volume removes it.
	ReclaimRetain ReclaimPolicy = "Retain"
	// ReclaimDelete removes the Docker volume with its project, too.
	ReclaimDelete ReclaimPolicy = "Delete"
)

// VolumeSpec is the desired state of a volume.
type VolumeSpec struct {
	ReclaimPolicy ReclaimPolicy `json:"reclaimPolicy,omitempty"`
	// Driver is the Docker volume driver (default "local").
	Driver string `json:"driver,omitempty"`
	// DriverOpts are passed to the driver. Options that bind a host path
	// (local driver: o=bind, device=/path) are refused for non-administrators.
	DriverOpts map[string]string `json:"driverOpts,omitempty"`
	// Backup schedules backups of the volume (see BackupSpec).
	Backup *BackupSpec `json:"backup,omitempty"`
}

// VolumeStatus is what the controller last observed of a volume.
type VolumeStatus struct {
	ObservedGeneration int64       `json:"observedGeneration,omitempty"`
	Phase              Phase       `json:"phase,omitempty"`
	Conditions         []Condition `json:"conditions,omitempty"`
	// DockerName is the name of the Docker volume holding the data.
	DockerName string `json:"dockerName,omitempty"`
	// Node is the host that holds the data, on a runtime with several
	// (Swarm: the services that mount the volume run there only).
	Node string `json:"node,omitempty"`
}

func (v *Volume) GetKind() Kind          { return KindVolume }
func (v *Volume) GetMeta() *ObjectMeta   { return &v.Metadata }
func (v *Volume) GetTypeMeta() *TypeMeta { return &v.TypeMeta }
func (v *Volume) SpecPtr() any           { return &v.Spec }
func (v *Volume) StatusPtr() any         { return &v.Status }

// ---- Service ----

// Service is a set of identical containers (replicas) of one image.
type Service struct {
	TypeMeta
	Metadata ObjectMeta    `json:"metadata"`
	Spec     ServiceSpec   `json:"spec"`
	Status   ServiceStatus `json:"status,omitzero"`
}

func (s *Service) GetKind() Kind          { return KindService }
func (s *Service) GetMeta() *ObjectMeta   { return &s.Metadata }
func (s *Service) GetTypeMeta() *TypeMeta { return &s.TypeMeta }
func (s *Service) SpecPtr() any           { return &s.Spec }
func (s *Service) StatusPtr() any         { return &s.Status }

// PullPolicy says when an image is pulled.
type PullPolicy string

const (
	PullAlways       PullPolicy = "Always"
	PullIfNotPresent PullPolicy = "IfNotPresent"
	PullNever        PullPolicy = "Never"
)

// RestartPolicy maps onto Docker's restart policies.
type RestartPolicy string

const (
	RestartAlways    RestartPolicy = "Always"
	RestartOnFailure RestartPolicy = "OnFailure"
	RestartNever     RestartPolicy = "Never"
)

// Protocol of a published port.
type Protocol string

const (
	ProtocolTCP Protocol = "tcp"
	ProtocolUDP Protocol = "udp"
)

// ServiceSpec is the desired state of a service.
type ServiceSpec struct {
	Image string `json:"image,omitempty"`
	// Build builds the image from a git repository instead (see BuildSpec).
	Build           *BuildSpec `json:"build,omitempty"`
	ImagePullPolicy PullPolicy `json:"imagePullPolicy,omitempty"`
	// Command replaces the image's ENTRYPOINT, Args its CMD.
	Command    []string `json:"command,omitempty"`
	Args       []string `json:"args,omitempty"`
	WorkingDir string   `json:"workingDir,omitempty"`
	User       string   `json:"user,omitempty"`
	Env        []EnvVar `json:"env,omitempty"`
	Ports      []Port   `json:"ports,omitempty"`
	// Replicas is the number of containers, 0–100 (default 1).
	Replicas    *int32        `json:"replicas,omitempty"`
	Volumes     []VolumeMount `json:"volumes,omitempty"`
	Resources   Resources     `json:"resources,omitzero"`
	Healthcheck *Healthcheck  `json:"healthcheck,omitempty"`
	// ReadinessProbe is run by PanelX, not Docker: a replica counts as
	// ready — for rollouts, status and the edge's traffic — only while it
	// passes. It is not part of the container's configuration.
	ReadinessProbe *Probe `json:"readinessProbe,omitempty"`
	// Aliases are more names the service answers to on its networks,
	// besides its own (Compose's container_name and network aliases).
	Aliases []string `json:"aliases,omitempty"`
	// Networks are the project's networks the service joins, by name;
	// empty means the project's default network ("default"). Services
	// reach each other only over a network both joined, as with Compose's
	// networks; a network exists while a service names it. The first one
	// carries the service's traffic from the edge and its probes.
	Networks      []string      `json:"networks,omitempty"`
	DependsOn     []string      `json:"dependsOn,omitempty"`
	RestartPolicy RestartPolicy `json:"restartPolicy,omitempty"`
	// Domains are the hostnames the edge routes to this service's ready
	// replicas, with automatic HTTPS.
	Domains []Domain `json:"domains,omitempty"`
	// Rollout bounds how long a change may take and whether a change that
	// does not become Ready in time is rolled back.
	Rollout RolloutSpec `json:"rollout,omitzero"`
	// StopGracePeriod is how long a replica has to exit after SIGTERM
	// before it is killed, whenever PanelX stops it (a rollout, a scale
	// down, a deletion); 0 means DefaultStopGracePeriod (10s, as Docker
	// and Compose). It is not part of the container's configuration:
	// changing it recreates nothing.
	StopGracePeriod Duration `json:"stopGracePeriod,omitzero"`
	// RestartedAt (RFC 3339) is part of the replicas' configuration, so
	// changing it replaces every replica in a rolling update with nothing
	// else changed: `panelx restart` sets it to the time of the request.
	RestartedAt string `json:"restartedAt,omitempty"`

	// Host-level settings. Each of them breaks the container's isolation
	// from the host; the API refuses them for non-administrators.
	Privileged  bool              `json:"privileged,omitempty"`
	NetworkMode string            `json:"networkMode,omitempty"` // "" (the project network), "host" or "none"
	PIDMode     string            `json:"pidMode,omitempty"`     // "" or "host"
	IPCMode     string            `json:"ipcMode,omitempty"`     // "", "private", "shareable" or "host"
	UTSMode     string            `json:"utsMode,omitempty"`     // "" or "host"
	CapAdd      []string          `json:"capAdd,omitempty"`
	CapDrop     []string          `json:"capDrop,omitempty"`
	Devices     []string          `json:"devices,omitempty"` // /dev/host[:/dev/container[:rwm]]
	Sysctls     map[string]string `json:"sysctls,omitempty"`
	SecurityOpt []string          `json:"securityOpt,omitempty"`
}

// Stop grace bounds: Docker's and Compose's default, and the most a
// replica may ask for (a deletion waits that long at worst).
const (
	DefaultStopGracePeriod = 10 * time.Second
	MaxStopGracePeriod     = time.Hour
)

// StopGrace is the stop grace period in effect.
func (s *ServiceSpec) StopGrace() time.Duration {
	if s.StopGracePeriod.Duration <= 0 {
		return DefaultStopGracePeriod
	}
	return s.StopGracePeriod.Duration
}

// TLSMode says how the edge serves a domain over HTTPS.
type TLSMode string

const (
	// TLSAuto: a certificate from the edge's ACME CA (Let's Encrypt by
	// default), or the one uploaded for the hostname.
	TLSAuto TLSMode = "Auto"
	// TLSOff: plain HTTP only (no certificate, no redirect).
	TLSOff TLSMode = "Off"
)

// Domain is one hostname (and path prefix) a service serves through the
// edge. A hostname belongs to one service on the whole server.
type Domain struct {
	// Host is the hostname, such as app.example.com; an internationalized
	// name is kept in its ASCII (xn--) form. Empty: <service>.<the project's
	// spec.domain>. A wildcard (*.example.com) is for administrators.
	Host string `json:"host,omitempty"`
	// Path is a path prefix ("/api" serves /api and /api/…); default "/".
	Path string `json:"path,omitempty"`
	// Port is the container port requests go to; default: the first of
	// spec.ports.
	Port int32 `json:"port,omitempty"`
	// RedirectHTTPS answers plain HTTP with a redirect to HTTPS (default
	// true). ACME HTTP-01 challenges are always answered.
	RedirectHTTPS *bool `json:"redirectHTTPS,omitempty"`
	// TLS is Auto (default) or Off.
	TLS TLSMode `json:"tls,omitempty"`
	// Timeout bounds how long a replica may take to start answering (the
	// response headers); 0: the edge's default (60s). Streams (SSE,
	// WebSocket) are not cut once they answer.
	Timeout Duration `json:"timeout,omitzero"`
	// MaxBodySize caps request bodies ("10Mi"); empty: no limit.
	MaxBodySize Quantity `json:"maxBodySize,omitempty"`
}

// EnvVar is one environment variable of a container: a literal Value, or
// one taken from a Secret (ValueFrom).
type EnvVar struct {
	Name      string        `json:"name"`
	Value     string        `json:"value,omitempty"`
	ValueFrom *EnvVarSource `json:"valueFrom,omitempty"`
}

// Port is a container port, published on the host when HostPort is set.
type Port struct {
	ContainerPort int32    `json:"containerPort"`
	HostPort      int32    `json:"hostPort,omitempty"`
	HostIP        string   `json:"hostIP,omitempty"`
	Protocol      Protocol `json:"protocol,omitempty"`
}

// VolumeMount mounts one source into the containers at MountPath. Exactly one
// source is set: Name (a Volume of the project), HostPath (a bind mount, for
// administrators only) or Tmpfs.
type VolumeMount struct {
	Name     string `json:"name,omitempty"`
	HostPath string `json:"hostPath,omitempty"`
	// DockerVolume mounts an existing Docker volume that PanelX does not
	// own (Compose's external: true): PanelX never creates or removes it,
	// and the service waits while it does not exist. Administrators only —
	// its data may be anyone's.
	DockerVolume string `json:"dockerVolume,omitempty"`
	// Secret mounts one key of a Secret of the project as a read-only
	// file (mode 0444) at mountPath, as Compose's secrets do.
	Secret    *SecretKeySelector `json:"secret,omitempty"`
	Tmpfs     bool               `json:"tmpfs,omitempty"`
	MountPath string             `json:"mountPath"`
	ReadOnly  bool               `json:"readOnly,omitempty"`
}

// Resources limits a container's CPU and memory.
type Resources struct {
	// CPUs is a number of cores ("0.5", "2") or millicores ("500m").
	CPUs Quantity `json:"cpus,omitempty"`
	// Memory is a byte quantity: "256Mi", "1Gi", "500M", "1048576".
	Memory Quantity `json:"memory,omitempty"`
}

// Quantity is a CPU or memory amount as the user wrote it; YAML numbers are
// accepted and kept as text.
type Quantity string

// Healthcheck runs a command inside the container.
type Healthcheck struct {
	// Command runs without a shell (exec form).
	Command     []string `json:"command"`
	Interval    Duration `json:"interval,omitzero"`
	Timeout     Duration `json:"timeout,omitzero"`
	StartPeriod Duration `json:"startPeriod,omitzero"`
	Retries     int32    `json:"retries,omitempty"`
}

// Probe is a readiness check PanelX runs against each replica: exactly
// one of HTTPGet, TCPSocket and Exec.
type Probe struct {
	HTTPGet   *HTTPGetAction   `json:"httpGet,omitempty"`
	TCPSocket *TCPSocketAction `json:"tcpSocket,omitempty"`
	Exec      *ExecAction      `json:"exec,omitempty"`
	// InitialDelay before the first check (default 0); Period between
	// checks (default 2s); Timeout of one check (default 1s).
	InitialDelay Duration `json:"initialDelay,omitzero"`
	Period       Duration `json:"period,omitzero"`
	Timeout      Duration `json:"timeout,omitzero"`
	// FailureThreshold consecutive failures make a ready replica unready
	// (default 3); SuccessThreshold consecutive successes make it ready
	// (default 1).
	FailureThreshold int32 `json:"failureThreshold,omitempty"`
	SuccessThreshold int32 `json:"successThreshold,omitempty"`
}

// HTTPGetAction passes on a 2xx or 3xx answer to GET http://<replica>:Port/Path.
type HTTPGetAction struct {
	Path string `json:"path,omitempty"` // default "/"
	Port int32  `json:"port"`
}

// TCPSocketAction passes when a TCP connection to the replica's Port opens.
type TCPSocketAction struct {
	Port int32 `json:"port"`
}

// ExecAction passes when Command (no shell) exits 0 inside the replica.
type ExecAction struct {
	Command []string `json:"command"`
}

// Probe defaults.
const (
	DefaultProbePeriod           = 2 * time.Second
	DefaultProbeTimeout          = time.Second
	DefaultProbeFailureThreshold = 3
	DefaultProbeSuccessThreshold = 1
)

// PeriodOrDefault and the like read a probe's settings with defaults.
func (p *Probe) PeriodOrDefault() time.Duration {
	if p.Period.Duration > 0 {
		return p.Period.Duration
	}
	return DefaultProbePeriod
}

func (p *Probe) TimeoutOrDefault() time.Duration {
	if p.Timeout.Duration > 0 {
		return p.Timeout.Duration
	}
	return DefaultProbeTimeout
}

func (p *Probe) FailureThresholdOrDefault() int {
	if p.FailureThreshold > 0 {
		return int(p.FailureThreshold)
	}
	return DefaultProbeFailureThreshold
}

func (p *Probe) SuccessThresholdOrDefault() int {
	if p.SuccessThreshold > 0 {
		return int(p.SuccessThreshold)
	}
	return DefaultProbeSuccessThreshold
}

func (p *Probe) validate(path Path) ErrorList {
	var errs ErrorList
	n := 0
	if p.HTTPGet != nil {
		n++
		if p.HTTPGet.Path != "" && !strings.HasPrefix(p.HTTPGet.Path, "/") {
			errs = append(errs, Invalid(path.Child("httpGet").Child("path"), p.HTTPGet.Path, "must start with /"))
		}
		if strings.ContainsAny(p.HTTPGet.Path, " \t\r\n") {
			errs = append(errs, Invalid(path.Child("httpGet").Child("path"), p.HTTPGet.Path, "must not contain spaces or control characters"))
		}
		errs = append(errs, validateProbePort(path.Child("httpGet").Child("port"), p.HTTPGet.Port)...)
	}
	if p.TCPSocket != nil {
		n++
		errs = append(errs, validateProbePort(path.Child("tcpSocket").Child("port"), p.TCPSocket.Port)...)
	}
	if p.Exec != nil {
		n++
		if len(p.Exec.Command) == 0 {
			errs = append(errs, Required(path.Child("exec").Child("command"), "an exec probe needs a command"))
		}
		errs = append(errs, validateArgv(path.Child("exec").Child("command"), p.Exec.Command)...)
	}
	if n != 1 {
		errs = append(errs, Invalid(path, n, "give exactly one of httpGet, tcpSocket and exec"))
	}
	for _, d := range []struct {
		field    string
		v        Duration
		min, max time.Duration
	}{{"initialDelay", p.InitialDelay, 0, time.Hour}, {"period", p.Period, 100 * time.Millisecond, 10 * time.Minute},
		{"timeout", p.Timeout, 100 * time.Millisecond, 10 * time.Minute}} {
		if d.v.Duration != 0 && (d.v.Duration < d.min || d.v.Duration > d.max) {
			errs = append(errs, Invalid(path.Child(d.field), d.v.String(), fmt.Sprintf("must be 0 (the default) or between %v and %v", d.min, d.max)))
		}
	}
	for _, t := range []struct {
		field string
		v     int32
	}{{"failureThreshold", p.FailureThreshold}, {"successThreshold", p.SuccessThreshold}} {
		if t.v < 0 || t.v > 100 {
			errs = append(errs, Invalid(path.Child(t.field), t.v, "must be between 0 (the default) and 100"))
		}
	}
	return errs
}

func validateProbePort(p Path, port int32) ErrorList {
	if port < 1 || port > 65535 {
		return ErrorList{Invalid(p, port, "must be a port from 1 to 65535")}
	}
	return nil
}

// Duration is a time.Duration written as a Go duration string ("5s", "1m30s").
type Duration struct{ time.Duration }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("must be a duration string such as \"5s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("must be a duration such as \"5s\" or \"1m30s\": %q", s)
	}
	d.Duration = v
	return nil
}

// ---- status ----

// Phase summarises where a resource is in its life.
type Phase string

const (
	PhasePending     Phase = "Pending"
	PhaseProgressing Phase = "Progressing"
	PhaseRunning     Phase = "Running"
	PhaseReady       Phase = "Ready"
	PhaseDegraded    Phase = "Degraded"
	PhaseFailed      Phase = "Failed"
	PhaseDeleting    Phase = "Deleting"
)

// ConditionStatus is True, False or Unknown.
type ConditionStatus string

const (
	ConditionTrue    ConditionStatus = "True"
	ConditionFalse   ConditionStatus = "False"
	ConditionUnknown ConditionStatus = "Unknown"
)

// Condition types the controller reports.
const (
	ConditionReady       = "Ready"
	ConditionProgressing = "Progressing"
	ConditionDegraded    = "Degraded"
	// ConditionNodeLost (orchestrated runtimes): True while replicas of
	// the service were running on a node the cluster has lost.
	ConditionNodeLost = "NodeLost"
)

// Condition is one aspect of a resource's state, Kubernetes-style.
type Condition struct {
	Type               string          `json:"type"`
	Status             ConditionStatus `json:"status"`
	Reason             string          `json:"reason,omitempty"`
	Message            string          `json:"message,omitempty"`
	ObservedGeneration int64           `json:"observedGeneration,omitempty"`
	LastTransitionTime time.Time       `json:"lastTransitionTime,omitzero"`
}

// ServiceStatus is what the controller last observed of a service.
type ServiceStatus struct {
	ObservedGeneration int64           `json:"observedGeneration,omitempty"`
	Phase              Phase           `json:"phase,omitempty"`
	ReadyReplicas      int32           `json:"readyReplicas"`
	Conditions         []Condition     `json:"conditions,omitempty"`
	Replicas           []ReplicaStatus `json:"replicas,omitempty"`
	// ImageID is the image the replicas run (or were last created from).
	ImageID string `json:"imageID,omitempty"`
	// Endpoints are the replicas the edge may send requests to: running,
	// ready and not being replaced. A replica leaves this list before it is
	// stopped (see docs/architecture.md, "Edge").
	Endpoints []Endpoint `json:"endpoints,omitempty"`
	// Domains reports each of spec.domains: routed or not, and why, and
	// its certificate.
	Domains []DomainStatus `json:"domains,omitempty"`
	// Rollout is where the service's revisions are.
	Rollout RolloutStatus `json:"rollout,omitzero"`
	// Build is the newest build of a service built from source.
	Build *BuildStatus `json:"build,omitempty"`
}

// Endpoint is one replica's address on the project network.
type Endpoint struct {
	Replica     int32  `json:"replica"`
	ContainerID string `json:"containerId"`
	IP          string `json:"ip"`
}

// DomainStatus is the state of one hostname of a service.
type DomainStatus struct {
	Host string `json:"host"`
	Path string `json:"path,omitempty"`
	// Routed: the edge has a route for it with at least one ready replica.
	Routed bool `json:"routed"`
	// Reason says why it is not routed (or a warning when it is).
	Reason      string             `json:"reason,omitempty"`
	Certificate *CertificateStatus `json:"certificate,omitempty"`
}

// CertificateState is where a hostname's certificate is.
type CertificateState string

const (
	CertificatePending CertificateState = "Pending"
	CertificateIssued  CertificateState = "Issued"
	CertificateFailed  CertificateState = "Failed"
)

// CertificateStatus is what an edge last reported of a hostname's
// certificate.
type CertificateStatus struct {
	State CertificateState `json:"state"`
	// Source is "acme" or "custom" (uploaded).
	Source string `json:"source,omitempty"`
	// Message is the CA's error text when Failed.
	Message    string     `json:"message,omitempty"`
	Issuer     string     `json:"issuer,omitempty"`
	NotAfter   *time.Time `json:"notAfter,omitempty"`
	RenewAfter *time.Time `json:"renewAfter,omitempty"`
	UpdatedAt  time.Time  `json:"updatedAt,omitzero"`
}

// ReplicaStatus is the state of one container of a service.
type ReplicaStatus struct {
	Index       int32      `json:"index"`
	ContainerID string     `json:"containerId,omitempty"`
	State       string     `json:"state"`            // created, running, restarting, exited, missing…
	Health      string     `json:"health,omitempty"` // starting, healthy, unhealthy
	Restarts    int32      `json:"restarts"`
	StartedAt   *time.Time `json:"startedAt,omitempty"`
	Message     string     `json:"message,omitempty"`
	// Node is the host the replica runs on (orchestrated runtimes).
	Node string `json:"node,omitempty"`
}

// FindCondition returns the condition of the type, or nil.
func FindCondition(conds []Condition, typ string) *Condition {
	for i := range conds {
		if conds[i].Type == typ {
			return &conds[i]
		}
	}
	return nil
}

// SetCondition sets a condition, keeping its LastTransitionTime when the
// status did not change. It returns the new slice.
func SetCondition(conds []Condition, c Condition, now time.Time) []Condition {
	if old := FindCondition(conds, c.Type); old != nil {
		if old.Status == c.Status {
			c.LastTransitionTime = old.LastTransitionTime
		} else {
			c.LastTransitionTime = now
		}
		*old = c
		return conds
	}
	c.LastTransitionTime = now
	return append(conds, c)
}
