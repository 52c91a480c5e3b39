package api

import (
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"
	"time"
)

// BuildSpec builds a service's image from a git repository, or from a
// context uploaded to the project, instead of running an image someone
// else built. The image is tagged immutably by commit (or the context's
// digest), never latest, and the service runs it by ID.
type BuildSpec struct {
	// Git is the repository to build from; Upload is its alternative.
	Git GitSource `json:"git,omitzero"`
	// Upload is a build context uploaded to the project (POST
	// /api/v1/projects/{project}/build-contexts; `panelx apply -f
	// compose.yaml` uploads a local build: context), named by its digest.
	Upload *UploadSource `json:"upload,omitempty"`
	// Dockerfile is the Dockerfile's path in the context (default
	// "Dockerfile").
	Dockerfile string            `json:"dockerfile,omitempty"`
	Args       map[string]string `json:"args,omitempty"`
	// Target is the stage of a multi-stage Dockerfile to build.
	Target string `json:"target,omitempty"`
	// Memory bounds the build's containers (default 2Gi): a build must not
	// take the host down.
	Memory Quantity `json:"memory,omitempty"`
	// Deadline bounds a build (default 30m); past it the build is
	// cancelled and the running revision keeps serving.
	Deadline Duration `json:"deadline,omitzero"`
	// Webhook lets the forge ask for builds: a push to the tracked ref
	// (POST /api/v1/hooks/projects/{project}/services/{service}) builds
	// and rolls out.
	Webhook *WebhookSpec `json:"webhook,omitempty"`
}

// WebhookSpec is how a forge's push notifications are verified.
type WebhookSpec struct {
	// SecretRef names a Secret of the project whose key "secret" is the
	// webhook's shared secret (GitHub and Gitea sign the body with it,
	// GitLab sends it as a token).
	SecretRef string `json:"secretRef"`
}

// GitSource is where a build's context comes from.
type GitSource struct {
	// URL is the repository's http(s):// or ssh:// URL, or git@host:path,
	// without credentials (an SSH user name is not one).
	URL string `json:"url"`
	// Ref is a branch, a tag or a commit (default: the remote's HEAD).
	Ref string `json:"ref,omitempty"`
	// Dir is the build context's directory in the repository.
	Dir string `json:"dir,omitempty"`
	// SecretRef names a Secret of the project holding the credentials of a
	// private repository: over HTTP key "token", or "username" and
	// "password"; over SSH "sshPrivateKey" (a deploy key, with
	// "sshPassphrase" if it has one) and "knownHosts", the host keys to
	// trust (`ssh-keyscan HOST`).
	// They never appear in the spec, the status or a log line.
	SecretRef string `json:"secretRef,omitempty"`
	// Poll, when set, looks at the ref this often (at least 10s) and
	// builds a new commit: for repositories that cannot send webhooks.
	Poll Duration `json:"poll,omitzero"`
}

// UploadSource names an uploaded build context.
type UploadSource struct {
	// Digest is the context tar's "sha256:<hex>", as the upload answered.
	Digest string `json:"digest"`
}

// Build defaults and bounds.
const (
	DefaultBuildMemory   Quantity = "2Gi"
	DefaultBuildDeadline          = 30 * time.Minute
	MaxBuildDeadline              = 24 * time.Hour
	MaxBuildArgs                  = 64
	MinBuildPoll                  = 10 * time.Second
)

// BuildPhase is where the newest build of a service is.
type BuildPhase string

const (
	BuildQueued    BuildPhase = "Queued"
	BuildBuilding  BuildPhase = "Building"
	BuildSucceeded BuildPhase = "Succeeded"
	BuildFailed    BuildPhase = "Failed"
)

// AnnotationBuildRequest asks for a build of the tracked ref even if
// nothing of the spec changed (`panelx build`, webhooks): a new value is a
// new request.
const AnnotationBuildRequest = "panelx.dev/build-request"

// AnnotationBuildCancel cancels the build of the request it names
// (status.build.request): `panelx build --cancel`.
const AnnotationBuildCancel = "panelx.dev/build-cancel"

// BuildRollbackPrefix starts a build request that runs the image an older
// revision built (rollback:<revision>:<image>) instead of building.
const BuildRollbackPrefix = "rollback:"

// BuildStatus is the newest build of a service, and the image of the last
// one that succeeded — what the service runs.
type BuildStatus struct {
	Phase BuildPhase `json:"phase,omitempty"`
	// Commit is what the newest build checked out.
	Commit string `json:"commit,omitempty"`
	// Step is the builder's current step ("Step 3/5 : COPY . /app").
	Step string `json:"step,omitempty"`
	// Message is why the newest build failed: the builder's error line.
	Message    string     `json:"message,omitempty"`
	StartedAt  *time.Time `json:"startedAt,omitempty"`
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
	// Image and ImageID are the last successful build's, which the
	// replicas run; ImageCommit is its commit.
	Image       string `json:"image,omitempty"`
	ImageID     string `json:"imageID,omitempty"`
	ImageCommit string `json:"imageCommit,omitempty"`
	// Request is the build request (spec and annotation) the newest build
	// answered.
	Request string `json:"request,omitempty"`
}

// RunImage is the image reference the service's replicas run: its image,
// or for a service built from source the last successful build ("" before
// the first).
func (s *Service) RunImage() string {
	if s.Spec.Build == nil {
		return s.Spec.Image
	}
	if s.Status.Build != nil {
		return s.Status.Build.Image
	}
	return ""
}

func (b *BuildSpec) validate(p Path) ErrorList {
	var errs ErrorList
	gp := p.Child("git")
	if b.Upload != nil {
		if b.Git != (GitSource{}) {
			errs = append(errs, Invalid(gp, "(set)", "a build comes from git or from an upload, not both"))
		}
		if !uploadDigestRe.MatchString(b.Upload.Digest) {
			errs = append(errs, Invalid(p.Child("upload").Child("digest"), b.Upload.Digest, "must be the digest the upload answered: sha256: and 64 lowercase hex digits"))
		}
		if b.Webhook != nil {
			errs = append(errs, Invalid(p.Child("webhook"), "(set)", "a forge's push builds a git source: an uploaded context has no webhook"))
		}
		return append(errs, b.validateCommon(p)...)
	}
	u, err := url.Parse(b.Git.URL)
	switch {
	case b.Git.URL == "":
		errs = append(errs, Required(gp.Child("url"), "the repository to build from (or upload a context: spec.build.upload)"))
	case scpLikeRe.MatchString(b.Git.URL) && !strings.ContainsAny(b.Git.URL, " \x00"):
		// git@host:path, reached over SSH with the key of secretRef.
	case err != nil || (u.Scheme != "https" && u.Scheme != "http" && u.Scheme != "ssh") || u.Host == "":
		errs = append(errs, Invalid(gp.Child("url"), b.Git.URL, "must be an http(s):// or ssh:// URL of a git repository, or git@host:path"))
	case u.User != nil && (u.Scheme != "ssh" || hasPassword(u)):
		errs = append(errs, Invalid(gp.Child("url"), "(redacted)", "must not hold credentials: put them in a Secret and name it in secretRef"))
	}
	if strings.ContainsAny(b.Git.Ref, " ~^:?*[\\\x00") || strings.HasPrefix(b.Git.Ref, "-") || len(b.Git.Ref) > 255 {
		errs = append(errs, Invalid(gp.Child("ref"), b.Git.Ref, "must be a branch, tag or commit"))
	}
	errs = append(errs, validateRelPath(gp.Child("dir"), b.Git.Dir)...)
	if d := b.Git.Poll.Duration; d != 0 && (d < MinBuildPoll || d > MaxBuildDeadline) {
		errs = append(errs, Invalid(gp.Child("poll"), d.String(), "must be 0 (no polling) or between 10s and 24h"))
	}
	if b.Git.SecretRef != "" {
		errs = append(errs, ValidateName(gp.Child("secretRef"), b.Git.SecretRef)...)
	}
	if b.Webhook != nil {
		errs = append(errs, ValidateName(p.Child("webhook").Child("secretRef"), b.Webhook.SecretRef)...)
	}
	return append(errs, b.validateCommon(p)...)
}

var uploadDigestRe = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// scpLikeRe is git's scp-like SSH address: user@host:path.
var scpLikeRe = regexp.MustCompile(`^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^/]`)

func hasPassword(u *url.URL) bool {
	_, ok := u.User.Password()
	return ok
}

// validateCommon checks what builds from git and from uploads share.
func (b *BuildSpec) validateCommon(p Path) ErrorList {
	var errs ErrorList
	errs = append(errs, validateRelPath(p.Child("dockerfile"), b.Dockerfile)...)
	if len(b.Args) > MaxBuildArgs {
		errs = append(errs, Invalid(p.Child("args"), len(b.Args), fmt.Sprintf("at most %d build args", MaxBuildArgs)))
	}
	for k, v := range b.Args {
		if !envNameRe.MatchString(k) {
			errs = append(errs, Invalid(p.Child("args").Key(k), k, "must consist of letters, digits, '_', '-' or '.', not starting with a digit"))
		}
		if strings.ContainsRune(v, 0) || len(v) > MaxEnvValueSize {
			errs = append(errs, Invalid(p.Child("args").Key(k), "(value)", "must be at most 128 KiB without NUL bytes"))
		}
	}
	if b.Target != "" && len(ValidateName("", strings.ToLower(b.Target))) > 0 {
		errs = append(errs, Invalid(p.Child("target"), b.Target, "must be a stage name"))
	}
	if b.Memory != "" {
		if n, err := b.Memory.Bytes(); err != nil || n < 6<<20 {
			errs = append(errs, Invalid(p.Child("memory"), b.Memory, "must be a byte quantity of at least 6Mi"))
		}
	}
	if d := b.Deadline.Duration; d < 0 || d > MaxBuildDeadline {
		errs = append(errs, Invalid(p.Child("deadline"), d.String(), "must be between 0 (the default, 30m) and 24h"))
	}
	return errs
}

// validateRelPath checks a path inside a repository: relative, clean, not
// leaving it.
func validateRelPath(p Path, rel string) ErrorList {
	if rel == "" {
		return nil
	}
	if path.IsAbs(rel) || path.Clean(rel) != rel || rel == ".." || strings.HasPrefix(rel, "../") || strings.ContainsRune(rel, 0) || len(rel) > 1024 {
		return ErrorList{Invalid(p, rel, "must be a clean relative path inside the repository")}
	}
	return nil
}

func (b *BuildSpec) defaults() {
	if b.Memory == "" {
		b.Memory = DefaultBuildMemory
	}
	if b.Deadline.Duration == 0 {
		b.Deadline.Duration = DefaultBuildDeadline
	}
	if b.Dockerfile == "" {
		b.Dockerfile = "Dockerfile"
	}
}
