// Package auth verifies the credentials PanelX accepts on its REST API:
// Supabase-issued JWTs (HS256 with the project's legacy secret, or ES256 /
// RS256 with keys from the project's JWKS endpoint) and personal API tokens.
//
// It does no HTTP routing and no storage: the HTTP layer extracts the bearer
// token, uses [LooksLikeAPIToken] to pick a verifier, and calls
// [Verifier.Verify] for JWTs or looks up [HashAPIToken] in the store for API
// tokens. Every verification failure wraps [ErrUnauthenticated] and carries a
// short reason that is safe to show to the client.
package auth
