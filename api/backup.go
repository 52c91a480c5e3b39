package api

import (
	"fmt"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/robfig/cron/v3"
)

// BackupSpec is a volume's backup schedule (Volume spec.backup): which
// target its archives go to, when, how many are kept, whether they are
// encrypted, and an optional consistency hook run before each copy. It is
// part of the Volume rather than a kind of its own: a schedule has no life
// apart from its volume (deleting the volume ends it, its conditions are
// the volume's), and an apply of a volume carries its protection with it.
type BackupSpec struct {
	// Schedule is a cron expression: five fields (minute hour day month
	// weekday), or a descriptor such as "@daily" or "@every 6h". Empty:
	// no scheduled runs (one-off backups through the API still work).
	Schedule string `json:"schedule,omitempty"`
	// TimeZone of the schedule (an IANA name; default UTC).
	TimeZone string `json:"timeZone,omitempty"`
	// Suspend stops scheduled runs without removing the schedule.
	Suspend bool `json:"suspend,omitempty"`
	// Target is where archives are written.
	Target BackupTarget `json:"target"`
	// Retention says which successful archives are kept.
	Retention BackupRetention `json:"retention,omitzero"`
	// Encryption, when set, encrypts archives with age to its recipients,
	// so the storage provider cannot read them.
	Encryption *BackupEncryption `json:"encryption,omitempty"`
	// Hook runs a command in a service's container before the copy (a
	// database dump into the volume, say). The copy does not start unless
	// it exits 0.
	Hook *BackupHook `json:"hook,omitempty"`
	// Deadline bounds one run, hook included (default 1h, at most 24h).
	Deadline Duration `json:"deadline,omitzero"`
}

// BackupTarget is exactly one of Local and S3.
type BackupTarget struct {
	Local *LocalBackupTarget `json:"local,omitempty"`
	S3    *S3BackupTarget    `json:"s3,omitempty"`
}

// LocalBackupTarget is a directory on the PanelX server's host, under the
// server's backup directory (PANELX_BACKUP_DIR) and the project's name:
// <backup dir>/<project>/<path>. A project can never name another's.
type LocalBackupTarget struct {
	// Path is a relative directory (default: the project's directory).
	Path string `json:"path,omitempty"`
}

// S3BackupTarget is an S3-compatible bucket.
type S3BackupTarget struct {
	// Endpoint is host[:port], without a scheme.
	Endpoint string `json:"endpoint"`
	Bucket   string `json:"bucket"`
	// Prefix is prepended to every object key (a "directory").
	Prefix string `json:"prefix,omitempty"`
	Region string `json:"region,omitempty"`
	// Insecure speaks plain HTTP instead of HTTPS.
	Insecure bool `json:"insecure,omitempty"`
	// CredentialsSecret names a Secret of the project with the keys
	// accessKeyID and secretAccessKey (sealed like every secret).
	CredentialsSecret string `json:"credentialsSecret"`
}

// Keys of an S3 target's credentials secret.
const (
	S3AccessKeyID     = "accessKeyID"
	S3SecretAccessKey = "secretAccessKey"
)

// BackupRetention keeps the newest KeepLast archives plus the newest of
// each of the last KeepDaily days and KeepWeekly ISO weeks (in the
// schedule's time zone); the rest are deleted after each successful run.
// All zero keeps everything.
type BackupRetention struct {
	KeepLast   int32 `json:"keepLast,omitempty"`
	KeepDaily  int32 `json:"keepDaily,omitempty"`
	KeepWeekly int32 `json:"keepWeekly,omitempty"`
}

// Any reports whether retention removes anything at all.
func (r BackupRetention) Any() bool { return r.KeepLast > 0 || r.KeepDaily > 0 || r.KeepWeekly > 0 }

// BackupEncryption encrypts archives with age.
type BackupEncryption struct {
	// Recipients are age public keys (age1…) the archive is encrypted to.
	Recipients []string `json:"recipients"`
	// IdentitySecret names a key of a Secret holding an age identity
	// (AGE-SECRET-KEY-1…) that restores use when the request brings none.
	// Without it, a restore must be given the identity.
	IdentitySecret *SecretKeySelector `json:"identitySecret,omitempty"`
}

// BackupHook is a command (an argument vector, never a shell string) run
// in the running container of a service of the volume's project.
type BackupHook struct {
	Service string   `json:"service"`
	Command []string `json:"command"`
	// Replica index to run in (default 0).
	Replica int32 `json:"replica,omitempty"`
	// Timeout of the command (default 10m).
	Timeout Duration `json:"timeout,omitzero"`
}

// Defaults and bounds of a backup spec.
const (
	DefaultBackupDeadline    = time.Hour
	MaxBackupDeadline        = 24 * time.Hour
	DefaultBackupHookTimeout = 10 * time.Minute
	maxRetention             = 10000
)

// DeadlineOrDefault is the run deadline in effect.
func (b *BackupSpec) DeadlineOrDefault() time.Duration {
	if b.Deadline.Duration > 0 {
		return b.Deadline.Duration
	}
	return DefaultBackupDeadline
}

// TimeoutOrDefault is the hook's timeout in effect.
func (h *BackupHook) TimeoutOrDefault() time.Duration {
	if h.Timeout.Duration > 0 {
		return h.Timeout.Duration
	}
	return DefaultBackupHookTimeout
}

// cronParser accepts five fields and descriptors (@daily, @every 1h).
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseBackupSchedule parses a schedule in its time zone.
func ParseBackupSchedule(expr, tz string) (cron.Schedule, error) {
	loc := time.UTC
	if tz != "" {
		l, err := time.LoadLocation(tz)
		if err != nil {
			return nil, fmt.Errorf("unknown time zone %q", tz)
		}
		loc = l
	}
	if strings.HasPrefix(strings.TrimSpace(expr), "TZ=") || strings.HasPrefix(strings.TrimSpace(expr), "CRON_TZ=") {
		return nil, fmt.Errorf("give the time zone in timeZone, not in the expression")
	}
	s, err := cronParser.Parse(expr)
	if err != nil {
		return nil, err
	}
	if spec, ok := s.(*cron.SpecSchedule); ok {
		spec.Location = loc
	}
	return s, nil
}

// BackupLocation returns the schedule's time zone (UTC when unset or bad).
func (b *BackupSpec) Location() *time.Location {
	if b.TimeZone != "" {
		if l, err := time.LoadLocation(b.TimeZone); err == nil {
			return l
		}
	}
	return time.UTC
}

func (b *BackupSpec) validate(p Path) ErrorList {
	var errs ErrorList
	if b.Schedule != "" {
		if len(b.Schedule) > 200 {
			errs = append(errs, Invalid(p.Child("schedule"), b.Schedule, "must be at most 200 characters"))
		} else if _, err := ParseBackupSchedule(b.Schedule, b.TimeZone); err != nil {
			errs = append(errs, Invalid(p.Child("schedule"), b.Schedule, "must be a cron expression (5 fields, or @daily, @every 6h…): "+err.Error()))
		}
	}
	if b.TimeZone != "" {
		if _, err := time.LoadLocation(b.TimeZone); err != nil || len(b.TimeZone) > 100 {
			errs = append(errs, Invalid(p.Child("timeZone"), b.TimeZone, "must be an IANA time zone such as Europe/Berlin"))
		}
	}
	tp := p.Child("target")
	switch {
	case b.Target.Local != nil && b.Target.S3 != nil, b.Target.Local == nil && b.Target.S3 == nil:
		errs = append(errs, Invalid(tp, "", "set exactly one of local and s3"))
	case b.Target.Local != nil:
		if b.Target.Local.Path != "" {
			if err := validRelativePath(b.Target.Local.Path); err != "" {
				errs = append(errs, Invalid(tp.Child("local").Child("path"), b.Target.Local.Path, err))
			}
		}
	default:
		errs = append(errs, b.Target.S3.validate(tp.Child("s3"))...)
	}
	rp := p.Child("retention")
	for _, r := range []struct {
		f string
		v int32
	}{{"keepLast", b.Retention.KeepLast}, {"keepDaily", b.Retention.KeepDaily}, {"keepWeekly", b.Retention.KeepWeekly}} {
		if r.v < 0 || r.v > maxRetention {
			errs = append(errs, Invalid(rp.Child(r.f), r.v, fmt.Sprintf("must be between 0 and %d", maxRetention)))
		}
	}
	if e := b.Encryption; e != nil {
		ep := p.Child("encryption")
		if len(e.Recipients) == 0 {
			errs = append(errs, Required(ep.Child("recipients"), "give at least one age recipient (age1…)"))
		}
		for i, r := range e.Recipients {
			if !strings.HasPrefix(r, "age1") || len(r) > 200 || strings.ContainsAny(r, " \t\r\n\x00") {
				errs = append(errs, Invalid(ep.Child("recipients").Index(i), r, "must be an age X25519 recipient (age1…)"))
			}
		}
		if s := e.IdentitySecret; s != nil {
			if !dns1123LabelRe.MatchString(s.Name) || len(s.Name) > MaxNameLength {
				errs = append(errs, Invalid(ep.Child("identitySecret").Child("name"), s.Name, "must name a Secret of the project"))
			}
			if s.Key == "" || len(s.Key) > 253 {
				errs = append(errs, Required(ep.Child("identitySecret").Child("key"), "name the key holding the identity"))
			}
		}
	}
	if h := b.Hook; h != nil {
		hp := p.Child("hook")
		if !dns1123LabelRe.MatchString(h.Service) || len(h.Service) > MaxNameLength {
			errs = append(errs, Invalid(hp.Child("service"), h.Service, "must name a service of the project"))
		}
		switch {
		case len(h.Command) == 0:
			errs = append(errs, Required(hp.Child("command"), "give the command as an argument list"))
		case len(h.Command) > 64:
			errs = append(errs, Invalid(hp.Child("command"), len(h.Command), "at most 64 arguments"))
		}
		for i, a := range h.Command {
			if len(a) > 4096 {
				errs = append(errs, Invalid(hp.Child("command").Index(i), "", "at most 4096 bytes"))
			}
		}
		errs = append(errs, validateArgv(hp.Child("command"), h.Command)...)
		if h.Replica < 0 || h.Replica > 100 {
			errs = append(errs, Invalid(hp.Child("replica"), h.Replica, "must be between 0 and 100"))
		}
		if d := h.Timeout.Duration; d < 0 || d > MaxBackupDeadline {
			errs = append(errs, Invalid(hp.Child("timeout"), h.Timeout.String(), "must be between 0 (10m) and 24h"))
		}
	}
	if d := b.Deadline.Duration; d < 0 || (d != 0 && d < time.Second) || d > MaxBackupDeadline {
		errs = append(errs, Invalid(p.Child("deadline"), b.Deadline.String(), "must be 0 (1h) or between 1s and 24h"))
	}
	return errs
}

func (s *S3BackupTarget) validate(p Path) ErrorList {
	var errs ErrorList
	if s.Endpoint == "" || len(s.Endpoint) > 253 || strings.ContainsAny(s.Endpoint, "/ \t\r\n\x00?#@") {
		errs = append(errs, Invalid(p.Child("endpoint"), s.Endpoint, "must be host[:port], without scheme or path"))
	}
	if !s3BucketOK(s.Bucket) {
		errs = append(errs, Invalid(p.Child("bucket"), s.Bucket, "must be an S3 bucket name (3–63 lower-case letters, digits, '.', '-')"))
	}
	if s.Prefix != "" {
		if err := validRelativePath(strings.TrimSuffix(s.Prefix, "/")); err != "" {
			errs = append(errs, Invalid(p.Child("prefix"), s.Prefix, err))
		}
	}
	if len(s.Region) > 64 || strings.ContainsAny(s.Region, " /\t\r\n\x00") {
		errs = append(errs, Invalid(p.Child("region"), s.Region, "must be a region name"))
	}
	if !dns1123LabelRe.MatchString(s.CredentialsSecret) || len(s.CredentialsSecret) > MaxNameLength {
		errs = append(errs, Invalid(p.Child("credentialsSecret"), s.CredentialsSecret,
			"must name a Secret of the project with the keys accessKeyID and secretAccessKey"))
	}
	return errs
}

func s3BucketOK(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || (c == '.' || c == '-') && i > 0 && i < len(b)-1
		if !ok {
			return false
		}
	}
	return !strings.Contains(b, "..")
}

// validRelativePath returns why p is not a clean relative path of plain
// names ("" when it is).
func validRelativePath(p string) string {
	switch {
	case len(p) > 512:
		return "must be at most 512 characters"
	case !utf8.ValidString(p) || strings.ContainsAny(p, "\\\x00"):
		return "must be valid UTF-8 without backslashes or NUL"
	case strings.HasPrefix(p, "/"):
		return "must be relative"
	case path.Clean(p) != p:
		return "must be a clean path (no '.', '..', '//' or trailing '/')"
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." || seg == "." || strings.HasPrefix(seg, ".panelx") {
			return "must not contain '..' or names starting with .panelx"
		}
		for _, r := range seg {
			if r < 0x20 || r == 0x7f {
				return "must not contain control characters"
			}
		}
	}
	return ""
}

// ---- runs ----

// BackupOp is what a run does.
type BackupOp string

const (
	BackupOpBackup  BackupOp = "backup"
	BackupOpRestore BackupOp = "restore"
	// BackupOpMove copies a volume's data to another node of a swarm
	// (docs/architecture.md, "Runtimes"): never beside a backup or restore
	// of the same volume.
	BackupOpMove BackupOp = "move"
)

// Title names the op in event reasons and messages: Backup, Restore, Move.
func (op BackupOp) Title() string {
	switch op {
	case BackupOpRestore:
		return "Restore"
	case BackupOpMove:
		return "Move"
	}
	return "Backup"
}

// BackupPhase is where a run is.
type BackupPhase string

const (
	BackupPending   BackupPhase = "Pending"
	BackupRunning   BackupPhase = "Running"
	BackupSucceeded BackupPhase = "Succeeded"
	BackupFailed    BackupPhase = "Failed"
	// BackupMissed: a scheduled time passed without a run (the server was
	// down, or the previous run still ran).
	BackupMissed BackupPhase = "Missed"
)

// Finished reports whether the phase is final.
func (p BackupPhase) Finished() bool {
	return p == BackupSucceeded || p == BackupFailed || p == BackupMissed
}

// BackupTrigger says why a run started.
type BackupTrigger string

const (
	BackupScheduled BackupTrigger = "schedule"
	BackupManual    BackupTrigger = "manual"
)

// BackupRun is one backup or restore of a volume, as recorded by the
// controller: created Pending (by the schedule or a request), Running, then
// Succeeded only once the archive was read back from the target and its
// size and checksum matched.
type BackupRun struct {
	ID      string        `json:"id"`
	Project string        `json:"project"`
	Volume  string        `json:"volume"`
	Op      BackupOp      `json:"op"`
	Trigger BackupTrigger `json:"trigger"`
	Phase   BackupPhase   `json:"phase"`
	// Reason says why a run failed or was missed.
	Reason      string     `json:"reason,omitempty"`
	RequestedBy string     `json:"requestedBy,omitempty"`
	ScheduledAt *time.Time `json:"scheduledAt,omitempty"`
	CreatedAt   time.Time  `json:"createdAt"`
	StartedAt   *time.Time `json:"startedAt,omitempty"`
	FinishedAt  *time.Time `json:"finishedAt,omitempty"`
	// Bytes and SHA256 are of the stored archive (after compression and
	// encryption), as read back from the target.
	Bytes  int64  `json:"bytes,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	// Target describes where the archive is ("local:shop/nightly",
	// "s3://bucket/prefix"); Key is the object's key there.
	Target    string `json:"target,omitempty"`
	Key       string `json:"key,omitempty"`
	Encrypted bool   `json:"encrypted,omitempty"`
	// Pruned is when retention deleted the archive.
	Pruned *time.Time `json:"pruned,omitempty"`
	// Restore is set on restores.
	Restore *RestoreParams `json:"restore,omitempty"`
	// Move is set on moves; Bytes and SHA256 are then of the copied
	// archive, as the receiving node counted it.
	Move *MoveParams `json:"move,omitempty"`
	// Epoch is the leader term the run was started in.
	Epoch int64 `json:"epoch,omitempty"`
}

// RestoreParams say what a restore restores, and where.
type RestoreParams struct {
	// Backup is the ID of the (succeeded) backup run to restore.
	Backup string `json:"backup"`
	// ToVolume is a new Volume of the same project to restore into; empty:
	// the backup's own volume, whose services are stopped first and
	// started after.
	ToVolume string `json:"toVolume,omitempty"`
	// Overwrite must be true to replace the contents of an existing
	// volume.
	Overwrite bool `json:"overwrite,omitempty"`
	// IdentitySecret: see RestoreRequest.
	IdentitySecret *SecretKeySelector `json:"identitySecret,omitempty"`
	// Stopped lists the services a restore scaled to 0, with the replicas
	// they had, so a restarted controller can start them again.
	Stopped map[string]int32 `json:"stopped,omitempty"`
}

// MoveParams say where a move takes a volume's data.
type MoveParams struct {
	// Node is the node (hostname, as status.node names it) that receives
	// the data; the volume's services run there afterwards.
	Node string `json:"node"`
	// From is the node the data was on when the move started.
	From string `json:"from,omitempty"`
	// Files is how many entries the receiving node wrote.
	Files int64 `json:"files,omitempty"`
	// Stopped lists the services the move scaled to 0, with the replicas
	// they had, so a restarted controller can start them again.
	Stopped map[string]int32 `json:"stopped,omitempty"`
}

// MoveRequest is the body of POST …/volumes/{volume}/move.
type MoveRequest struct {
	Node string `json:"node"`
}

// BackupRequest is the body of POST …/volumes/{volume}/backups: a one-off
// backup with the volume's spec.backup (it needs one).
type BackupRequest struct{}

// RestoreRequest is the body of POST …/volumes/{volume}/restore.
type RestoreRequest struct {
	Backup    string `json:"backup"`
	ToVolume  string `json:"toVolume,omitempty"`
	Overwrite bool   `json:"overwrite,omitempty"`
	// IdentitySecret names the key of a Secret of the project that holds
	// the age identity of an encrypted archive, when spec.backup names none
	// (or another). Identities travel only sealed, as secrets.
	IdentitySecret *SecretKeySelector `json:"identitySecret,omitempty"`
}

// BackupRunList is a page of runs, newest first.
type BackupRunList struct {
	Items []BackupRun `json:"items"`
}

// Condition types of a volume's backups.
const (
	// ConditionBackupHealthy is False after a failed or missed run, True
	// after a successful one.
	ConditionBackupHealthy = "BackupHealthy"
)
