package auth

import "errors"

// ErrUnauthenticated is wrapped by every error Verify returns: the caller
// should answer 401 and may show [Reason] to the client.
var ErrUnauthenticated = errors.New("unauthenticated")

// Short, client-safe reasons. They name the failed check, never key material,
// internal URLs or library error text.
const (
	reasonMissing         = "missing token"
	reasonTooLarge        = "token too large"
	reasonMalformed       = "malformed token"
	reasonAlgNotAllowed   = "algorithm not allowed"
	reasonBadSignature    = "bad signature"
	reasonUnknownKey      = "unknown signing key"
	reasonKeyMismatch     = "signing key does not match algorithm"
	reasonKeysUnavail     = "signing keys unavailable"
	reasonExpired         = "token expired"
	reasonNotYetValid     = "token not valid yet"
	reasonIssuedInFuture  = "token issued in the future"
	reasonWrongAudience   = "wrong audience"
	reasonWrongIssuer     = "wrong issuer"
	reasonMissingExp      = "missing expiry"
	reasonMissingClaim    = "missing required claim"
	reasonMissingSubject  = "missing subject"
	reasonInvalidClaims   = "invalid claims"
	reasonUnsupportedCrit = "unsupported critical header"
)

// authError is a verification failure: a client-safe reason plus the
// underlying cause, which is for logs only.
type authError struct {
	reason string
	cause  error
}

func unauthenticated(reason string, cause error) error {
	return &authError{reason: reason, cause: cause}
}

// Error deliberately leaves the cause out, so that a handler writing
// err.Error() to the client leaks nothing beyond the reason.
func (e *authError) Error() string { return ErrUnauthenticated.Error() + ": " + e.reason }

// Unwrap exposes both the sentinel and the cause to errors.Is / errors.As.
func (e *authError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrUnauthenticated}
	}
	return []error{ErrUnauthenticated, e.cause}
}

// Reason returns the short client-safe reason of a verification error
// ("token expired", "bad signature", …), or "" when err is not one.
func Reason(err error) string {
	var ae *authError
	if errors.As(err, &ae) {
		return ae.reason
	}
	return ""
}
