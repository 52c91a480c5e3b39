package store

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/panelx/panelx/api"
)

// ContinueToken marks where the next page of a list starts: after the
// object with this key. Backends share it so a token means the same
// everywhere.
type ContinueToken struct {
	Project string `json:"p"`
	Name    string `json:"n"`
}

// EncodeContinue returns the token after the last object of a page.
func EncodeContinue(last api.Key) string {
	data, _ := json.Marshal(ContinueToken{Project: last.Project, Name: last.Name})
	return base64.RawURLEncoding.EncodeToString(data)
}

// DecodeContinue reads a token a client sent back; anything else is
// ErrInvalid. The names in it reach SQL, so they must be text the
// databases accept.
func DecodeContinue(s string) (ContinueToken, error) {
	var c ContinueToken
	data, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(data, &c)
	}
	if err != nil || !validKeyText(c.Project) || !validKeyText(c.Name) {
		return c, fmt.Errorf("bad continue token: %w", ErrInvalid)
	}
	return c, nil
}

func validKeyText(s string) bool {
	return len(s) <= 253 && utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}
