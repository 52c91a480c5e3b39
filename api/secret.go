package api

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// KindSecret is a project's named set of secret values.
const KindSecret Kind = "Secret"

// Secret holds values a project's services take as environment variables
// (env[].valueFrom.secretKeyRef). Values are write-only: clients send
// spec.data, the server seals it (docs/architecture.md, "Secrets") and
// never returns it; reads show the keys and the version.
type Secret struct {
	TypeMeta
	Metadata ObjectMeta   `json:"metadata"`
	Spec     SecretSpec   `json:"spec"`
	Status   SecretStatus `json:"status,omitzero"`
}

// SecretSpec is a secret's content.
type SecretSpec struct {
	// Data maps keys to values. Sent by clients; the server seals it and
	// never stores or returns it in the clear.
	Data map[string]string `json:"data,omitempty"`

	// Set by the server; ignored on input.

	// Keys are the secret's keys, sorted.
	Keys []string `json:"keys,omitempty"`
	// Version rises whenever a value changes (writing the same values
	// again, or re-sealing them under a new master key, does not).
	Version int64 `json:"version,omitempty"`
	// Sealed is the encrypted data. The store keeps it; the API never
	// returns it.
	Sealed *Sealed `json:"sealed,omitempty"`
}

// SecretStatus is empty: a secret has nothing to observe. It exists so
// every kind has the same shape.
type SecretStatus struct{}

// Sealed is an envelope: Data is AES-256-GCM under a random data key, and
// the data key is sealed (AES-256-GCM) under the master key KeyID, which
// never enters the database.
type Sealed struct {
	KeyID   string `json:"keyId"`
	DataKey []byte `json:"dataKey"` // nonce ‖ sealed data key
	Data    []byte `json:"data"`    // nonce ‖ sealed values
	// Digests are per key HMAC-SHA256 digests of the values under the data
	// key: what a service's spec hash covers instead of the values.
	Digests map[string]string `json:"digests,omitempty"`
}

func (s *Secret) GetKind() Kind          { return KindSecret }
func (s *Secret) GetMeta() *ObjectMeta   { return &s.Metadata }
func (s *Secret) GetTypeMeta() *TypeMeta { return &s.TypeMeta }
func (s *Secret) SpecPtr() any           { return &s.Spec }
func (s *Secret) StatusPtr() any         { return &s.Status }

// Default fills a secret's type metadata.
func (s *Secret) Default() { defaultTypeMeta(&s.TypeMeta, KindSecret) }

// Limits of a secret.
const (
	MaxSecretKeys = 100
	MaxSecretSize = 512 << 10 // all values together
)

// secretKeyRe allows what env var names and file names share.
var secretKeyRe = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)

// Validate checks a secret as a client sent it. Messages never quote a
// value.
func (s *Secret) Validate() ErrorList {
	errs := validateTypeMeta(&s.TypeMeta, KindSecret)
	errs = append(errs, validateMeta("metadata", &s.Metadata, KindSecret)...)
	p := Path("spec.data")
	if len(s.Spec.Data) > MaxSecretKeys {
		errs = append(errs, fieldErr(p, ErrTooLong, "must have at most %d keys", MaxSecretKeys))
	}
	size := 0
	for _, k := range sortedKeys(s.Spec.Data) {
		v := s.Spec.Data[k]
		size += len(k) + len(v)
		if len(k) > 253 || !secretKeyRe.MatchString(k) || k == "." || k == ".." {
			errs = append(errs, Invalid(p.Key(k), k, "a key must consist of letters, digits, '-', '_' or '.'"))
		}
		if strings.ContainsRune(v, 0) {
			errs = append(errs, fieldErr(p.Key(k), ErrInvalid, "the value must not contain NUL bytes"))
		}
	}
	if size > MaxSecretSize {
		errs = append(errs, fieldErr(p, ErrTooLong, "keys and values must total at most %d KiB", MaxSecretSize>>10))
	}
	return errs
}

// Redacted returns the secret as the API shows it: keys and version, never
// values or the sealed data.
func (s *Secret) Redacted() *Secret {
	out := *s
	out.Spec = SecretSpec{Keys: slices.Clone(s.Spec.Keys), Version: s.Spec.Version}
	return &out
}

// ---- references from services ----

// EnvVarSource takes an environment variable's value from elsewhere.
type EnvVarSource struct {
	SecretKeyRef *SecretKeySelector `json:"secretKeyRef,omitempty"`
}

// SecretKeySelector names one key of a secret of the same project.
type SecretKeySelector struct {
	Name string `json:"name"`
	Key  string `json:"key"`
	// Optional: a missing secret or key leaves the variable unset instead
	// of holding the service back.
	Optional bool `json:"optional,omitempty"`
}

// SecretRefs returns the names of the secrets a service's spec uses,
// sorted and without duplicates.
func (s *ServiceSpec) SecretRefs() []string {
	var names []string
	for _, e := range s.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			names = append(names, e.ValueFrom.SecretKeyRef.Name)
		}
	}
	for _, m := range s.Volumes {
		if m.Secret != nil {
			names = append(names, m.Secret.Name)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// ---- rollouts and revisions ----

// Rollout defaults.
const (
	DefaultProgressDeadline     = 5 * time.Minute
	DefaultRevisionHistoryLimit = 10
	MaxRevisionHistoryLimit     = 100
)

// RolloutSpec says how a service's changes roll out.
type RolloutSpec struct {
	// ProgressDeadline bounds how long a new revision may take to become
	// Ready (default 5m). Past it the service is Degraded
	// (ProgressDeadlineExceeded); the previous revision keeps serving.
	ProgressDeadline Duration `json:"progressDeadline,omitzero"`
	// AutoRollback: past the deadline, go back to the last revision that
	// was Ready.
	AutoRollback bool `json:"autoRollback,omitempty"`
	// RevisionHistoryLimit is how many revisions are kept (default 10).
	RevisionHistoryLimit int32 `json:"revisionHistoryLimit,omitempty"`
}

func (r *RolloutSpec) defaults() {
	if r.ProgressDeadline.Duration == 0 {
		r.ProgressDeadline.Duration = DefaultProgressDeadline
	}
	if r.RevisionHistoryLimit == 0 {
		r.RevisionHistoryLimit = DefaultRevisionHistoryLimit
	}
}

func (r *RolloutSpec) validate(p Path) ErrorList {
	var errs ErrorList
	if d := r.ProgressDeadline.Duration; d < 10*time.Second || d > 24*time.Hour {
		errs = append(errs, Invalid(p.Child("progressDeadline"), d.String(), "must be between 10s and 24h"))
	}
	if n := r.RevisionHistoryLimit; n < 1 || n > MaxRevisionHistoryLimit {
		errs = append(errs, Invalid(p.Child("revisionHistoryLimit"), n, fmt.Sprintf("must be between 1 and %d", MaxRevisionHistoryLimit)))
	}
	return errs
}

// Revision is one immutable, numbered template of a service: what its
// containers ran from, recorded by the controller whenever it changed.
type Revision struct {
	Project string `json:"project"`
	Service string `json:"service"`
	Number  int64  `json:"number"`
	// TemplateHash identifies the effective template (the containers'
	// spec hash); equal hashes run identical containers.
	TemplateHash string `json:"templateHash"`
	// Spec is the service's spec as it was (secret references, not
	// values).
	Spec ServiceSpec `json:"spec"`
	// ImageID is the image the containers ran; ImageDigest the registry
	// reference pinning it (repo@sha256:…), when the image came from one.
	ImageID     string `json:"imageID"`
	ImageDigest string `json:"imageDigest,omitempty"`
	// SecretVersions are the versions of the secrets it used, by name.
	SecretVersions map[string]int64 `json:"secretVersions,omitempty"`
	Cause          RevisionCause    `json:"cause"`
	CreatedAt      time.Time        `json:"createdAt"`
	// ReadyAt is when all of its replicas were first ready.
	ReadyAt *time.Time `json:"readyAt,omitempty"`
}

// RollbackSpec is current with the template of the revision: its image
// pinned to the digest it ran, when known, so a tag moved since changes
// nothing. What is not part of a template — replicas, domains,
// dependencies, rollout settings — stays as it is.
func (r *Revision) RollbackSpec(current ServiceSpec) ServiceSpec {
	next := r.Spec
	if r.ImageDigest != "" && next.Build == nil { // a build's image comes back through the build request (RollbackBuildRequest)
		next.Image = r.ImageDigest
		if next.ImagePullPolicy == PullAlways {
			next.ImagePullPolicy = PullIfNotPresent // a digest does not move
		}
	}
	next.Replicas = current.Replicas
	next.Domains = current.Domains
	next.DependsOn = current.DependsOn
	next.Rollout = current.Rollout
	return next
}

// RollbackBuildRequest is the build request that brings back the image a
// revision of a service built from source ran, without building: the
// builder takes the image as it is.
func (r *Revision) RollbackBuildRequest() string {
	return fmt.Sprintf("%s%d:%s", BuildRollbackPrefix, r.Number, r.ImageDigest)
}

// RevisionCause says why a revision exists.
type RevisionCause struct {
	// By is who made the change (a user ID, or "panelx" for the
	// controller's own changes).
	By string `json:"by,omitempty"`
	// Fields names what changed since the previous revision
	// ("image", "env DB_PASSWORD").
	Fields []string `json:"fields,omitempty"`
	// Message is a free-form note ("rollback to revision 3").
	Message string `json:"message,omitempty"`
}

// Annotations the API writes on a service so the controller can say who
// caused a revision.
const (
	AnnotationChangedBy   = "panelx.dev/changed-by"
	AnnotationChangeCause = "panelx.dev/change-cause"
)

// RolloutStatus is where the service's current revision is.
type RolloutStatus struct {
	// Revision is the number of the revision the service should run.
	Revision int64 `json:"revision,omitempty"`
	// StartedAt is when that revision was recorded; the progress
	// deadline counts from it.
	StartedAt *time.Time `json:"startedAt,omitempty"`
	// ReadyRevision is the last revision that was Ready.
	ReadyRevision int64 `json:"readyRevision,omitempty"`
}
