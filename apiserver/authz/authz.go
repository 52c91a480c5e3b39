package authz

import (
	"context"
	"errors"
	"fmt"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/store"
)

// Action is something a role may be allowed to do in a project.
type Action string

const (
	// Read: get and list the project, its services, volumes, events and members.
	Read Action = "read"
	// Write: create, update and delete services and volumes.
	Write Action = "write"
	// UpdateProject: change the project's own spec and labels.
	UpdateProject Action = "update the project"
	// DeleteProject: delete the project and everything in it.
	DeleteProject Action = "delete the project"
	// ManageMembers: add, change and remove members (see CheckMemberPut).
	ManageMembers Action = "manage members"
	// ManageCredentials: read, set and delete registry credentials.
	ManageCredentials Action = "manage registry credentials"
	// RevealSecrets: read a secret's values back (everyone who may read
	// the project sees its secrets' keys and versions; editors may write
	// values but not read them).
	RevealSecrets Action = "read secret values"
)

// permissions lists, per action, the roles allowed it.
var permissions = map[Action][]store.Role{
	Read:              {store.RoleOwner, store.RoleAdmin, store.RoleEditor, store.RoleViewer},
	Write:             {store.RoleOwner, store.RoleAdmin, store.RoleEditor},
	UpdateProject:     {store.RoleOwner, store.RoleAdmin},
	ManageMembers:     {store.RoleOwner, store.RoleAdmin},
	ManageCredentials: {store.RoleOwner, store.RoleAdmin},
	RevealSecrets:     {store.RoleOwner, store.RoleAdmin},
	DeleteProject:     {store.RoleOwner},
}

// Can reports whether role may perform action.
func Can(role store.Role, action Action) bool {
	for _, r := range permissions[action] {
		if r == role {
			return true
		}
	}
	return false
}

// ErrForbidden is wrapped by ForbiddenError.
var ErrForbidden = errors.New("forbidden")

// ForbiddenError: a member whose role does not allow the action (403).
type ForbiddenError struct {
	Role   store.Role
	Action Action
	Detail string // overrides the generic message
}

func (e *ForbiddenError) Error() string {
	if e.Detail != "" {
		return e.Detail
	}
	return fmt.Sprintf("your role in this project (%s) does not allow you to %s", e.Role, e.Action)
}

func (e *ForbiddenError) Unwrap() error { return ErrForbidden }

// Forbidden returns a ForbiddenError with a specific message.
func Forbidden(detail string) error { return &ForbiddenError{Detail: detail} }

// ProjectNotFoundError: the project does not exist for this principal —
// either it does not exist at all, or they are not a member, or their token
// is scoped to another project. The three are indistinguishable on purpose.
type ProjectNotFoundError struct{ Project string }

func (e *ProjectNotFoundError) Error() string { return fmt.Sprintf("project %q not found", e.Project) }

func (e *ProjectNotFoundError) Is(target error) bool { return target == store.ErrNotFound }

// Authorizer answers what a principal may do in a project.
type Authorizer struct {
	members func() store.Members
	cache   *Cache
}

// NewAuthorizer reads memberships through members (usually repo.Members),
// kept in cache when it is set.
func NewAuthorizer(members func() store.Members, cache *Cache) *Authorizer {
	return &Authorizer{members: members, cache: cache}
}

// Role returns the principal's role in project, or a ProjectNotFoundError.
func (z *Authorizer) Role(ctx context.Context, p *Principal, project string) (store.Role, error) {
	if p == nil {
		return "", unauthenticated(reasonMissing, nil)
	}
	// A name that cannot exist is never sent to the store; an edge is in
	// no project.
	if len(api.ValidateName("", project)) > 0 || (p.Scoped() && p.Project != project) || p.Edge {
		return "", &ProjectNotFoundError{Project: project}
	}
	role, ok := z.cache.Member(project, p.UserID)
	if !ok {
		gen := z.cache.Generation()
		m, err := z.members().Get(ctx, project, p.UserID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			role = ""
		case err != nil:
			return "", fmt.Errorf("authorize %s in project %s: %w", p.UserID, project, err)
		default:
			role = m.Role
		}
		z.cache.PutMember(gen, project, p.UserID, role)
	}
	if role == "" {
		return "", &ProjectNotFoundError{Project: project}
	}
	return role, nil
}

// Authorize returns the principal's role in project when it allows action;
// a ProjectNotFoundError when the project does not exist for them; a
// ForbiddenError when their role does not allow the action.
func (z *Authorizer) Authorize(ctx context.Context, p *Principal, project string, action Action) (store.Role, error) {
	role, err := z.Role(ctx, p, project)
	if err != nil {
		return "", err
	}
	if !Can(role, action) {
		return role, &ForbiddenError{Role: role, Action: action}
	}
	return role, nil
}

// Projects returns the names of the projects the principal can see.
func (z *Authorizer) Projects(ctx context.Context, p *Principal) ([]string, error) {
	if p == nil {
		return nil, unauthenticated(reasonMissing, nil)
	}
	if p.Edge {
		return []string{}, nil
	}
	ms, err := z.members().ProjectsOf(ctx, p.UserID)
	if err != nil {
		return nil, fmt.Errorf("projects of %s: %w", p.UserID, err)
	}
	names := []string{}
	for _, m := range ms {
		if !p.Scoped() || m.Project == p.Project {
			names = append(names, m.Project)
		}
	}
	return names, nil
}

// CheckMemberPut decides whether a member with role actor may give a user
// the role next; current is the user's role now ("" if not a member).
// Owners and admins manage members; only an owner makes owners or changes
// an owner. (That a project keeps at least one owner is a rule about the
// state, checked where members are written.)
func CheckMemberPut(actor, current, next store.Role) error {
	switch {
	case !Can(actor, ManageMembers):
		return &ForbiddenError{Role: actor, Action: ManageMembers}
	case next == store.RoleOwner && actor != store.RoleOwner:
		return Forbidden("only an owner can make someone an owner")
	case current == store.RoleOwner && actor != store.RoleOwner:
		return Forbidden("only an owner can change the role of an owner")
	}
	return nil
}

// CheckMemberDelete decides whether a member with role actor may remove a
// member whose role is current; anyone may leave (self).
func CheckMemberDelete(actor, current store.Role, self bool) error {
	switch {
	case self:
		return nil
	case !Can(actor, ManageMembers):
		return &ForbiddenError{Role: actor, Action: ManageMembers}
	case current == store.RoleOwner && actor != store.RoleOwner:
		return Forbidden("only an owner can remove an owner")
	}
	return nil
}
