package store

import (
	"fmt"

	"github.com/panelx/panelx/api"
)

// CheckSealed refuses a Secret that still carries plaintext values. The API
// seals spec.data before it writes; backends call this on every Create and
// Update, so a bug there can never put values in the database in the
// clear. Other kinds pass.
func CheckSealed(obj api.Object) error {
	if s, ok := obj.(*api.Secret); ok && len(s.Spec.Data) > 0 {
		return fmt.Errorf("secret values must be sealed before they are stored: %w", ErrInvalid)
	}
	return nil
}
