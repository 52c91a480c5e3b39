// Package store keeps PanelX's desired state and status. This file is the
// backend-independent interface the API and the controller depend on; the
// PostgreSQL backend lives in store/postgres, and store/storetest holds the
// conformance suite every backend must pass.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/panelx/panelx/api"
)

// Errors a backend returns, wrapped with context. Test with errors.Is.
var (
	ErrNotFound      = errors.New("not found")
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict: the object changed since the caller read it (stale
	// resourceVersion or uid), or the write is not allowed in its state.
	ErrConflict = errors.New("conflict")
	// ErrInvalid: a malformed argument, such as a bad continue token.
	ErrInvalid = errors.New("invalid")
	// ErrUnavailable: the database cannot be reached (down, restarting,
	// refusing connections). Nothing was written; try again shortly.
	ErrUnavailable = errors.New("the database is unavailable")
	// ErrNoSpace: the database cannot write for lack of disk space.
	// Nothing was written; reads still work.
	ErrNoSpace = errors.New("the database has no space left to write")
)

// Store is a backend: the resource repository plus transactions, the change
// feed and lifecycle.
type Store interface {
	Repo
	// InTx runs fn in one transaction: all of its writes land or none does.
	// fn must use only the Repo it is given.
	InTx(ctx context.Context, fn func(Repo) error) error
	// Watch delivers changes until ctx ends. Its first Change, and the first
	// after every reconnect or overflow, is a Resync marker: changes may have
	// been missed, so the consumer re-lists what it cares about.
	Watch(ctx context.Context) (<-chan Change, error)
	// Ready reports whether the backend is reachable and its schema current.
	Ready(ctx context.Context) error
	// InstallationID identifies this installation; created with the schema,
	// it is the value of the dev.panelx.instance label on Docker objects.
	InstallationID(ctx context.Context) (string, error)
	Close()
}

// Repo gives access to each table.
type Repo interface {
	Projects() Resources[*api.Project]
	Services() Resources[*api.Service]
	Volumes() Resources[*api.Volume]
	// Secrets hold sealed data only: a Create or Update whose spec.data is
	// not empty fails with ErrInvalid (the API seals before it writes; see
	// CheckSealed), and the schema refuses it too.
	Secrets() Resources[*api.Secret]
	Revisions() Revisions
	Members() Members
	Events() Events
	Tokens() Tokens
	RegistryCredentials() RegistryCredentials
	Hostnames() Hostnames
	Edges() Edges
	Certificates() Certificates
}

// Resources is the repository of one kind. Keys: a Project has only a name;
// Services, Volumes and Secrets have their project and name.
type Resources[T api.Object] interface {
	// Create stores a new object. Server-set metadata (uid, generation,
	// resourceVersion, timestamps) and status are ignored. A Service,
	// Volume or Secret needs its project to exist and not be deleting.
	Create(ctx context.Context, obj T) (T, error)
	Get(ctx context.Context, key api.Key) (T, error)
	// GetIfChanged is Get for a reader that already holds the object at
	// uid and resourceVersion rv: it still reads the row (so the answer is
	// as fresh as Get's), but when the row carries both it skips decoding
	// and returns changed=false with no object. An empty uid always reads.
	GetIfChanged(ctx context.Context, key api.Key, uid, rv string) (obj T, changed bool, err error)
	List(ctx context.Context, opts ListOptions) (List[T], error)
	// Update replaces labels, annotations and spec. When the object's
	// resourceVersion (or uid) is set and no longer current, it fails with
	// ErrConflict. Generation rises only when the spec changes.
	Update(ctx context.Context, obj T) (T, error)
	// UpdateStatus replaces the status only; generation never changes. The
	// same preconditions as Update apply.
	UpdateStatus(ctx context.Context, obj T) (T, error)
	// Delete marks the object for deletion (sets deletionTimestamp); the
	// controller removes what it owns and then calls Remove. Deleting a
	// project marks its services, too (its volumes and secrets stay
	// unmarked: they go with the project's row).
	Delete(ctx context.Context, key api.Key, opts DeleteOptions) (T, error)
	// Remove drops the row of an object marked for deletion, if its uid
	// still matches. A project's rows (services, volumes, secrets,
	// members, events) go with it, and a service's revisions with it; the
	// change feed reports each resource row removed.
	Remove(ctx context.Context, key api.Key, uid string) error
}

// ListOptions narrow a list. The zero value lists everything.
type ListOptions struct {
	// Project restricts to one project (ignored for Projects).
	Project string
	// Projects, when not nil, restricts to these projects (tenancy).
	Projects []string
	Selector api.Selector
	// Limit caps the page size (0: no limit); Continue resumes after the
	// last item of the previous page.
	Limit    int
	Continue string
}

// List is one page of objects, in (project, name) order.
type List[T api.Object] struct {
	Items []T
	// Continue is set when there are more items.
	Continue string
	// ResourceVersion is the store's latest resourceVersion when the list was
	// read, so a watcher can tell older changes from newer ones.
	ResourceVersion string
}

// DeleteOptions are the preconditions and options of a delete.
type DeleteOptions struct {
	ResourceVersion string
	UID             string
	// PurgeVolumes, on a project delete, removes the volumes' data too.
	PurgeVolumes bool
}

// Role is a member's role in a project.
type Role string

const (
	RoleOwner  Role = "owner"
	RoleAdmin  Role = "admin"
	RoleEditor Role = "editor"
	RoleViewer Role = "viewer"
)

// Roles lists the roles from most to least powerful.
var Roles = []Role{RoleOwner, RoleAdmin, RoleEditor, RoleViewer}

// Valid reports whether r is one of the roles.
func (r Role) Valid() bool {
	for _, x := range Roles {
		if r == x {
			return true
		}
	}
	return false
}

// Member is a user's membership in a project.
type Member struct {
	Project   string    `json:"project"`
	UserID    string    `json:"userId"`
	Role      Role      `json:"role"`
	CreatedAt time.Time `json:"createdAt"`
}

// Members stores project memberships.
type Members interface {
	// Get returns ErrNotFound when the user is not a member.
	Get(ctx context.Context, project, userID string) (Member, error)
	List(ctx context.Context, project string) ([]Member, error)
	// Put adds the member or changes their role.
	Put(ctx context.Context, m Member) (Member, error)
	Delete(ctx context.Context, project, userID string) error
	// ProjectsOf lists the projects the user is a member of, by name.
	ProjectsOf(ctx context.Context, userID string) ([]Member, error)
}

// Events are the API's wire type (api.Event), stored as they are.
type (
	EventType = api.EventType
	Event     = api.Event
)

const (
	EventNormal  = api.EventNormal
	EventWarning = api.EventWarning
)

// EventFilter narrows an event list.
type EventFilter struct {
	Kind  api.Kind
	Name  string
	Limit int // newest first; 0 means 100
}

// Events stores events.
type Events interface {
	Record(ctx context.Context, e Event) error
	List(ctx context.Context, project string, f EventFilter) ([]Event, error)
}

// ChangeType says what a Change is.
type ChangeType int

const (
	// ChangeResync: changes may have been missed; re-list.
	ChangeResync ChangeType = iota
	// ChangeUpsert: the row was inserted or updated.
	ChangeUpsert
	// ChangeRemoved: the row is gone.
	ChangeRemoved
)

func (t ChangeType) String() string {
	switch t {
	case ChangeResync:
		return "resync"
	case ChangeUpsert:
		return "upsert"
	case ChangeRemoved:
		return "removed"
	}
	return "unknown"
}

// Change says which object changed and how; it carries no object, so a
// consumer always reads the current state (level-triggered).
type Change struct {
	Type ChangeType
	Kind api.Kind
	Key  api.Key
	UID  string
	// ResourceVersion of the write.
	ResourceVersion int64
	SpecChanged     bool
	StatusChanged   bool
	// Deleting: this write set deletionTimestamp.
	Deleting bool
	// CommittedAt is when the backend sent the change (for lag metrics).
	CommittedAt time.Time
}

// Kinds of the change feed besides the resources': the API's caches of
// credentials and memberships follow them (nothing else needs to).
const (
	// KindMember: a membership changed; Key is {project, user ID}.
	KindMember api.Kind = "Member"
	// KindAPIToken: an API token was created, changed or revoked; Key.Name
	// is its ID.
	KindAPIToken api.Kind = "APIToken"
)

// FeedState is implemented by backends whose change feed can be down while
// the store works (PostgreSQL's LISTEN connection): a cache that relies on
// the feed must not be used then.
type FeedState interface {
	FeedLive() bool
}

// Elector is implemented by backends several servers can share. Only the
// leader runs the controller; the others serve the API and stand by.
type Elector interface {
	// Campaign blocks until this process holds the lease (or ctx ends).
	Campaign(ctx context.Context) (Lease, error)
}

// Lease is one term of leadership. The holder acts only while Valid: it is
// checked right before every mutating runtime call, and turns false before
// the lease can have expired for anyone else, so a paused or cut-off
// leader never acts beside its successor.
type Lease interface {
	// Context ends when the lease is lost, released or no longer valid.
	Context() context.Context
	// Epoch numbers the term; it rises with every new holder. Objects
	// created in a term carry it.
	Epoch() int64
	// Valid reports whether the holder may still act, by its own
	// monotonic clock; Deadline is when that ends unless renewed.
	Valid() bool
	Deadline() time.Time
	// Release gives the lease up at once (a stand-by takes over without
	// waiting for it to expire).
	Release()
}

// APIToken is a personal API token. Only its SHA-256 hash is stored; the
// plaintext is shown once, when it is created.
type APIToken struct {
	ID     string `json:"id"`
	UserID string `json:"userId"`
	Name   string `json:"name"`
	// Prefix is the token's first characters, to recognise it in a list.
	Prefix string `json:"prefix"`
	Hash   []byte `json:"-"`
	// Project, when set, limits the token to that project.
	Project    string     `json:"project,omitempty"`
	ExpiresAt  *time.Time `json:"expiresAt,omitempty"`
	CreatedAt  time.Time  `json:"createdAt"`
	LastUsedAt *time.Time `json:"lastUsedAt,omitempty"`
}

// Tokens stores API tokens.
type Tokens interface {
	// Create stores a token; ID and CreatedAt are set by the store.
	Create(ctx context.Context, t APIToken) (APIToken, error)
	// GetByHash finds the token with this hash (ErrNotFound otherwise).
	GetByHash(ctx context.Context, hash []byte) (APIToken, error)
	List(ctx context.Context, userID string) ([]APIToken, error)
	// Delete revokes a token of the user (ErrNotFound otherwise).
	Delete(ctx context.Context, userID, id string) error
	// Touch records a use; callers treat it as best effort.
	Touch(ctx context.Context, id string, at time.Time) error
}

// RegistryCredential lets a project pull from a private registry. The
// password never leaves the server: it is excluded from JSON, and List
// leaves it empty.
type RegistryCredential struct {
	Project   string    `json:"project"`
	Registry  string    `json:"registry"` // host[:port], as in image references
	Username  string    `json:"username"`
	Password  string    `json:"-"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// RegistryCredentials stores registry credentials per project.
type RegistryCredentials interface {
	// Put creates or replaces the credential of a project for a registry.
	Put(ctx context.Context, c RegistryCredential) (RegistryCredential, error)
	// Get returns it with its password (for the controller's pulls only).
	Get(ctx context.Context, project, registry string) (RegistryCredential, error)
	// List returns a project's credentials without passwords.
	List(ctx context.Context, project string) ([]RegistryCredential, error)
	Delete(ctx context.Context, project, registry string) error
}

// Revisions stores the immutable, numbered templates of each service (see
// api.Revision). Revisions belong to a service's row, not its name: they go
// with the row, and a service re-created under the same name starts again
// at 1. Reads by key see the revisions of the current row. Nothing here is
// in the change feed.
type Revisions interface {
	// Record stores rev as the next revision of the service whose row has
	// uid serviceUID, numbered one above the newest (1 for the first) —
	// unless the newest already has rev's TemplateHash, which it then
	// returns with created false. Project and Service come from the row;
	// a zero CreatedAt becomes the database's time. It keeps the newest
	// keep revisions (at least 1) and drops the rest, in the same
	// transaction. Concurrent calls for one service are serialised, so a
	// number is never taken twice. ErrNotFound when no service row has
	// that uid (any more).
	Record(ctx context.Context, serviceUID string, rev api.Revision, keep int) (out api.Revision, created bool, err error)
	// List returns a service's revisions, newest first; none when the
	// service does not exist.
	List(ctx context.Context, service api.Key) ([]api.Revision, error)
	// Get returns one revision (ErrNotFound when it does not exist).
	Get(ctx context.Context, service api.Key, number int64) (api.Revision, error)
	// Latest returns the newest revision (ErrNotFound when there is none).
	Latest(ctx context.Context, service api.Key) (api.Revision, error)
	// MarkReady sets ReadyAt of a revision to at (the database's time when
	// zero), once: a later call keeps the first time. ErrNotFound when the
	// revision does not exist.
	MarkReady(ctx context.Context, service api.Key, number int64, at time.Time) error
}

// Each calls fn with every object a List with opts returns, page by page
// (500 at a time unless opts.Limit says otherwise), so a caller never holds
// more than a page it did not ask to keep.
func Each[T api.Object](ctx context.Context, res Resources[T], opts ListOptions, fn func(T)) error {
	if opts.Limit == 0 {
		opts.Limit = 500
	}
	for {
		page, err := res.List(ctx, opts)
		if err != nil {
			return err
		}
		for _, obj := range page.Items {
			fn(obj)
		}
		if page.Continue == "" {
			return nil
		}
		opts.Continue = page.Continue
	}
}
