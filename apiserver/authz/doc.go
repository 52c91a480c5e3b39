// Package authz is PanelX's one authentication and authorization layer. An
// [Authenticator] turns a bearer credential (a Supabase JWT or a personal API
// token) into a [Principal]; an [Authorizer] answers which role a principal
// has in a project — or that the project does not exist for them — and
// [Can] says what a role may do. Every project route of the REST API goes
// through it, and so will the WebSocket endpoints: [Authenticator.AuthenticateUpgrade]
// authenticates a request before it is upgraded and checks its Origin.
//
// Tenancy rule: a project the caller is not a member of, and everything in
// it, does not exist for them ([ProjectNotFoundError], a 404), so that
// project names and contents never leak. A member lacking a permission gets
// a [ForbiddenError] (403): they already know the project exists.
package authz
