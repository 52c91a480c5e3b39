package api

import (
	"time"

	"github.com/distribution/reference"
)

// Healthcheck defaults, applied when a healthcheck leaves them unset.
const (
	DefaultHealthInterval = 10 * time.Second
	DefaultHealthTimeout  = 5 * time.Second
	DefaultHealthRetries  = 3
)

func defaultTypeMeta(t *TypeMeta, kind Kind) {
	if t.APIVersion == "" {
		t.APIVersion = APIVersion
	}
	if t.Kind == "" {
		t.Kind = kind
	}
}

// Default fills a project's unset fields and writes its domain in
// canonical form (lower case, IDNA ASCII).
func (p *Project) Default() {
	defaultTypeMeta(&p.TypeMeta, KindProject)
	if p.Spec.Domain != "" {
		if h, err := NormalizeHost(p.Spec.Domain); err == nil {
			p.Spec.Domain = h
		}
	}
}

// Default fills a volume's unset fields.
func (v *Volume) Default() {
	defaultTypeMeta(&v.TypeMeta, KindVolume)
	if v.Spec.ReclaimPolicy == "" {
		v.Spec.ReclaimPolicy = ReclaimRetain
	}
	if v.Spec.Driver == "" {
		v.Spec.Driver = "local"
	}
}

// Default fills a service's unset fields.
func (s *Service) Default() {
	defaultTypeMeta(&s.TypeMeta, KindService)
	sp := &s.Spec
	if sp.Replicas == nil {
		one := int32(1)
		sp.Replicas = &one
	}
	if sp.Build != nil {
		sp.Build.defaults()
		sp.ImagePullPolicy = PullNever // built here, never in a registry
	}
	if sp.ImagePullPolicy == "" {
		sp.ImagePullPolicy = defaultPullPolicy(sp.Image)
	}
	if sp.RestartPolicy == "" {
		sp.RestartPolicy = RestartAlways
	}
	for i := range sp.Ports {
		if sp.Ports[i].Protocol == "" {
			sp.Ports[i].Protocol = ProtocolTCP
		}
	}
	defaultDomains(sp)
	sp.Rollout.defaults()
	if hc := sp.Healthcheck; hc != nil {
		if hc.Interval.Duration == 0 {
			hc.Interval.Duration = DefaultHealthInterval
		}
		if hc.Timeout.Duration == 0 {
			hc.Timeout.Duration = DefaultHealthTimeout
		}
		if hc.Retries == 0 {
			hc.Retries = DefaultHealthRetries
		}
	}
}

// defaultPullPolicy follows Kubernetes: images without a tag or tagged
// "latest" are pulled every time, others only when missing.
func defaultPullPolicy(image string) PullPolicy {
	ref, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return PullIfNotPresent // validation reports the bad reference
	}
	if _, ok := ref.(reference.Digested); ok {
		return PullIfNotPresent
	}
	if t, ok := ref.(reference.Tagged); ok && t.Tag() != "latest" {
		return PullIfNotPresent
	}
	return PullAlways
}

// ReplicaCount returns the desired replica count (1 when unset).
func (s *ServiceSpec) ReplicaCount() int32 {
	if s.Replicas == nil {
		return 1
	}
	return *s.Replicas
}
