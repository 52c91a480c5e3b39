package reconcile

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/panelx/panelx/api"
)

// ContainerSpec is the effective configuration of one replica, independent
// of the Docker API types. Its hash decides whether a container is current.
type ContainerSpec struct {
	Name     string            `json:"-"`
	Labels   map[string]string `json:"-"`
	Image    string            `json:"image"` // the resolved image ID
	ImageRef string            `json:"-"`     // the reference the user wrote

	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	// RestartedAt is the spec's restartedAt: only in the hash, so changing
	// it replaces the replicas (empty leaves older hashes as they were).
	RestartedAt string `json:"restartedAt,omitempty"`
	// Env is the environment the container gets; EnvHash is what the spec
	// hash covers instead (secret values as digests; see resolveEnv).
	Env        []string   `json:"-"`
	EnvHash    []string   `json:"env,omitempty"`
	User       string     `json:"user,omitempty"`
	WorkingDir string     `json:"workingDir,omitempty"`
	Ports      []api.Port `json:"ports,omitempty"`
	Mounts     []Mount    `json:"mounts,omitempty"`
	// Files are written into the container before it starts (secret
	// mounts); the hash covers their references, never their content.
	Files         []File       `json:"files,omitempty"`
	NanoCPUs      int64        `json:"nanoCPUs,omitempty"`
	MemoryBytes   int64        `json:"memoryBytes,omitempty"`
	Healthcheck   *Healthcheck `json:"healthcheck,omitempty"`
	RestartPolicy string       `json:"restartPolicy"` // always, on-failure, no

	Network   string `json:"network,omitempty"` // the service's first project network, when NetworkMode is ""
	NetworkID string `json:"-"`                 // resolved by the executor at creation
	// MoreNetworks are the service's other project networks: Engine API
	// 1.41 creates a container on one network, the others are connected
	// before it starts.
	MoreNetworks   []string `json:"moreNetworks,omitempty"`
	MoreNetworkIDs []string `json:"-"` // resolved by the executor at creation
	Aliases        []string `json:"aliases,omitempty"`
	NetworkMode    string   `json:"networkMode,omitempty"` // host or none

	Privileged  bool              `json:"privileged,omitempty"`
	PIDMode     string            `json:"pidMode,omitempty"`
	IPCMode     string            `json:"ipcMode,omitempty"`
	UTSMode     string            `json:"utsMode,omitempty"`
	CapAdd      []string          `json:"capAdd,omitempty"`
	CapDrop     []string          `json:"capDrop,omitempty"`
	Devices     []string          `json:"devices,omitempty"`
	Sysctls     map[string]string `json:"sysctls,omitempty"`
	SecurityOpt []string          `json:"securityOpt,omitempty"`
}

// Mount is one mount of a container.
type Mount struct {
	Type     string `json:"type"` // volume, bind, tmpfs
	Source   string `json:"source,omitempty"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly,omitempty"`
}

// File is a read-only file of a container: one key of a secret.
type File struct {
	Path    string `json:"path"`
	Ref     string `json:"ref"` // secret:<name>/<key>@<digest>
	Content []byte `json:"-"`
}

// Healthcheck is Docker's healthcheck, in exec form.
type Healthcheck struct {
	Test        []string      `json:"test"`
	Interval    time.Duration `json:"interval"`
	Timeout     time.Duration `json:"timeout"`
	StartPeriod time.Duration `json:"startPeriod,omitempty"`
	Retries     int           `json:"retries"`
}

// BuildContainerSpec turns a service's spec into the configuration of
// replica index, running imageID with the secrets' values. Validation
// already vetted the spec, so quantities parse; a failure here would be a
// bug and yields zero limits. Call it only when SecretProblem is "".
func BuildContainerSpec(instance string, svc *api.Service, index int, imageID string, secrets Secrets) ContainerSpec {
	sp := &svc.Spec
	project, service := svc.Metadata.Project, svc.Metadata.Name
	cs := ContainerSpec{
		Image:       imageID,
		ImageRef:    svc.RunImage(),
		Entrypoint:  sp.Command,
		Cmd:         sp.Args,
		User:        sp.User,
		WorkingDir:  sp.WorkingDir,
		Ports:       sp.Ports,
		NetworkMode: sp.NetworkMode,
		Privileged:  sp.Privileged,
		PIDMode:     sp.PIDMode,
		IPCMode:     sp.IPCMode,
		UTSMode:     sp.UTSMode,
		CapAdd:      sp.CapAdd,
		CapDrop:     sp.CapDrop,
		Devices:     sp.Devices,
		Sysctls:     sp.Sysctls,
		SecurityOpt: sp.SecurityOpt,
		RestartedAt: sp.RestartedAt,
	}
	cs.Env, cs.EnvHash = resolveEnv(sp, secrets)
	for _, v := range sp.Volumes {
		m := Mount{Target: v.MountPath, ReadOnly: v.ReadOnly}
		switch {
		case v.Name != "":
			m.Type, m.Source = "volume", VolumeName(project, v.Name)
		case v.HostPath != "":
			m.Type, m.Source = "bind", v.HostPath
		case v.DockerVolume != "":
			m.Type, m.Source = "volume", v.DockerVolume
		case v.Secret != nil:
			s := secrets[v.Secret.Name]
			if value, ok := s.Values[v.Secret.Key]; ok { // else optional and absent
				cs.Files = append(cs.Files, File{Path: v.MountPath, Content: []byte(value),
					Ref: fmt.Sprintf("secret:%s/%s@%s", v.Secret.Name, v.Secret.Key, s.Digests[v.Secret.Key])})
			}
			continue
		default:
			m.Type = "tmpfs"
		}
		cs.Mounts = append(cs.Mounts, m)
	}
	if sp.Resources.CPUs != "" {
		cs.NanoCPUs, _ = sp.Resources.CPUs.NanoCPUs()
	}
	if sp.Resources.Memory != "" {
		cs.MemoryBytes, _ = sp.Resources.Memory.Bytes()
	}
	if hc := sp.Healthcheck; hc != nil {
		cs.Healthcheck = &Healthcheck{
			Test:        append([]string{"CMD"}, hc.Command...),
			Interval:    hc.Interval.Duration,
			Timeout:     hc.Timeout.Duration,
			StartPeriod: hc.StartPeriod.Duration,
			Retries:     int(hc.Retries),
		}
	}
	switch sp.RestartPolicy {
	case api.RestartOnFailure:
		cs.RestartPolicy = "on-failure"
	case api.RestartNever:
		cs.RestartPolicy = "no"
	default:
		cs.RestartPolicy = "always"
	}
	if cs.NetworkMode == "" {
		nets := ServiceNetworks(sp)
		cs.Network = ProjectNetworkName(project, nets[0])
		for _, n := range nets[1:] {
			cs.MoreNetworks = append(cs.MoreNetworks, ProjectNetworkName(project, n))
		}
		// Services reach each other by service name; a replica by name-index.
		cs.Aliases = []string{service, service + "-" + strconv.Itoa(index)}
		cs.Aliases = append(cs.Aliases, sp.Aliases...) // none: the hash stays what it was
	}

	hash, fields := hashSpec(&cs)
	cs.Name = ContainerName(project, service, index)
	cs.Labels = ownerLabels(instance)
	maps.Copy(cs.Labels, map[string]string{
		LabelProject:    project,
		LabelService:    service,
		LabelReplica:    strconv.Itoa(index),
		LabelSpecHash:   hash,
		LabelGeneration: strconv.FormatInt(svc.Metadata.Generation, 10),
		LabelFields:     encodeFields(fields),
		LabelImage:      svc.RunImage(),
	})
	return cs
}

// Hash returns the spec hash stored in the container's labels.
func (cs *ContainerSpec) Hash() string { return cs.Labels[LabelSpecHash] }

// hashSpec returns the hash of the whole effective configuration and short
// hashes of its parts. Replica count, pull policy and dependencies are not
// part of a container's configuration, so changing them recreates nothing.
func hashSpec(cs *ContainerSpec) (string, map[string]string) {
	whole, _ := json.Marshal(cs)
	sum := sha256.Sum256(whole)
	fields := map[string]string{}
	part := func(name string, v any) {
		data, _ := json.Marshal(v)
		s := sha256.Sum256(data)
		fields[name] = hex.EncodeToString(s[:4])
	}
	part("image", cs.Image)
	part("command", cs.Entrypoint)
	part("args", cs.Cmd)
	for _, e := range cs.EnvHash {
		name, _, _ := strings.Cut(e, "=")
		part("env "+name, e)
	}
	part("user", cs.User)
	part("workingDir", cs.WorkingDir)
	part("ports", cs.Ports)
	part("volumes", cs.Mounts)
	if len(cs.Files) > 0 { // none: the fields stay what they were
		part("secret files", cs.Files)
	}
	part("resources", []int64{cs.NanoCPUs, cs.MemoryBytes})
	part("healthcheck", cs.Healthcheck)
	part("restartPolicy", cs.RestartPolicy)
	network := []any{cs.Network, cs.Aliases, cs.NetworkMode}
	if len(cs.MoreNetworks) > 0 { // none: the part's hash stays what it was
		network = append(network, cs.MoreNetworks)
	}
	part("network", network)
	part("host settings", []any{cs.Privileged, cs.PIDMode, cs.IPCMode, cs.UTSMode, cs.CapAdd, cs.CapDrop, cs.Devices, cs.Sysctls, cs.SecurityOpt})
	if cs.RestartedAt != "" {
		part("restartedAt", cs.RestartedAt)
	}
	return hex.EncodeToString(sum[:16]), fields
}

func encodeFields(f map[string]string) string {
	data, _ := json.Marshal(f)
	return string(data)
}

func decodeFields(s string) map[string]string {
	var f map[string]string
	if json.Unmarshal([]byte(s), &f) != nil {
		return nil
	}
	return f
}

// describeChange names the parts of the configuration that differ, for a
// plan's cause: "env LOG_LEVEL, image".
func describeChange(old, new map[string]string) string {
	if old == nil {
		return "configuration changed"
	}
	var changed []string
	for k, v := range new {
		if old[k] != v {
			changed = append(changed, k)
		}
	}
	for k := range old {
		if _, ok := new[k]; !ok {
			changed = append(changed, k)
		}
	}
	if len(changed) == 0 {
		return "configuration changed"
	}
	slices.Sort(changed)
	return strings.Join(changed, ", ")
}

// ServiceNetworks names the project networks a service joins (none with a
// networkMode): its spec.networks, or the default network.
func ServiceNetworks(sp *api.ServiceSpec) []string {
	switch {
	case sp.NetworkMode != "":
		return nil
	case len(sp.Networks) == 0:
		return []string{DefaultNetwork}
	}
	return sp.Networks
}
