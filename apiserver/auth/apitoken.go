package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
)

const (
	// APITokenPrefix starts every personal API token. A JWT always starts
	// with "eyJ" (base64 of `{"`), so the two can never be confused.
	APITokenPrefix = "pnx_"
	// apiTokenRandomBytes of entropy: 256 bits, beyond any guessing.
	apiTokenRandomBytes = 32
	// apiTokenLen is the prefix plus 43 unpadded base64url characters.
	apiTokenLen = len(APITokenPrefix) + 43
	// tokenPrefixLen is what TokenPrefix shows: "pnx_" plus 8 random
	// characters (48 bits), enough to tell tokens apart in a listing while
	// leaving 208 bits secret.
	tokenPrefixLen = 12
)

// GenerateAPIToken returns a new personal API token and its hash. Show the
// plaintext to the user once; store only the hash (and TokenPrefix).
func GenerateAPIToken() (plaintext string, hash []byte, err error) {
	buf := make([]byte, apiTokenRandomBytes)
	if _, err := rand.Read(buf); err != nil {
		return "", nil, fmt.Errorf("auth: generate api token: %w", err)
	}
	plaintext = APITokenPrefix + base64.RawURLEncoding.EncodeToString(buf)
	return plaintext, HashAPIToken(plaintext), nil
}

// HashAPIToken returns the value to store and look tokens up by. A plain
// SHA-256 is right here: the token carries 256 random bits, so there is no
// dictionary to attack and a slow password hash (bcrypt, argon2) would only
// cost CPU on every request. Look the hash up by equality in the store; do
// not compare plaintexts.
func HashAPIToken(plaintext string) []byte {
	sum := sha256.Sum256([]byte(plaintext))
	return sum[:]
}

// LooksLikeAPIToken reports whether a bearer token has the personal API
// token format (prefix, length, alphabet), so the HTTP layer can send it to
// the API-token check instead of the JWT verifier. It says nothing about
// validity.
func LooksLikeAPIToken(s string) bool {
	if len(s) != apiTokenLen || !strings.HasPrefix(s, APITokenPrefix) {
		return false
	}
	for _, r := range s[len(APITokenPrefix):] {
		if !isBase64URLChar(r) {
			return false
		}
	}
	return true
}

func isBase64URLChar(r rune) bool {
	return r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_'
}

// TokenPrefix returns the first 12 characters of a token, to identify it in
// listings without revealing it.
func TokenPrefix(plaintext string) string {
	if len(plaintext) <= tokenPrefixLen {
		return plaintext
	}
	return plaintext[:tokenPrefixLen]
}
