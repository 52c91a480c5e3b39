package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/panelx/panelx/api"
)

// gcm returns AES-256-GCM under key.
func gcm(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// sealBytes returns nonce ‖ AES-256-GCM(key, plaintext, aad).
func sealBytes(key, plaintext []byte, aad string) ([]byte, error) {
	g, err := gcm(key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, g.NonceSize(), g.NonceSize()+len(plaintext)+g.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return g.Seal(nonce, nonce, plaintext, []byte(aad)), nil
}

func openBytes(key, sealed []byte, aad string) ([]byte, error) {
	g, err := gcm(key)
	if err != nil {
		return nil, err
	}
	if len(sealed) < g.NonceSize()+g.Overhead() {
		return nil, ErrTampered
	}
	out, err := g.Open(nil, sealed[:g.NonceSize()], sealed[g.NonceSize():], []byte(aad))
	if err != nil {
		return nil, ErrTampered
	}
	return out, nil
}

// Context strings bind a sealed item to what it is (additional data of
// both seals), so sealed data copied onto another row does not open.
func SecretContext(project, name string) string {
	return "panelx/secret/v1/" + project + "/" + name
}

// RegistryPasswordContext binds a registry password to its project and
// registry.
func RegistryPasswordContext(project, registry string) string {
	return "panelx/registry-password/v1/" + project + "/" + registry
}

// CertificateKeyContext binds an uploaded certificate's private key to its
// hostname.
func CertificateKeyContext(host string) string {
	return "panelx/certificate-key/v1/" + host
}

// wrap seals a data key under the active master key.
func (kr *Keyring) wrap(dataKey []byte, context string) (keyID string, wrapped []byte, err error) {
	if kr == nil {
		return "", nil, ErrNoKeyring
	}
	k := kr.Active()
	wrapped, err = sealBytes(k.key[:], dataKey, "datakey\x00"+context)
	return k.ID, wrapped, err
}

// unwrap opens a data key.
func (kr *Keyring) unwrap(keyID string, wrapped []byte, context string) ([]byte, error) {
	k, err := kr.key(keyID)
	if err != nil {
		return nil, err
	}
	dk, err := openBytes(k.key[:], wrapped, "datakey\x00"+context)
	if err != nil {
		return nil, fmt.Errorf("open the data key with master key %s: %w (the key file holds a different key under that ID?)", keyID, err)
	}
	if len(dk) != KeySize {
		return nil, fmt.Errorf("open the data key with master key %s: %w", keyID, ErrTampered)
	}
	return dk, nil
}

// SealSecret seals a secret's values. prev, when the secret already has
// sealed data, lends its data key: digests of unchanged values stay the
// same, so only services using a changed key roll.
func (kr *Keyring) SealSecret(context string, data map[string]string, prev *api.Sealed) (*api.Sealed, error) {
	var dataKey []byte
	if prev != nil {
		dk, err := kr.unwrap(prev.KeyID, prev.DataKey, context)
		if err != nil {
			return nil, err
		}
		dataKey = dk
	} else {
		dataKey = make([]byte, KeySize)
		if _, err := rand.Read(dataKey); err != nil {
			return nil, fmt.Errorf("seal: %w", err)
		}
	}
	plaintext, err := json.Marshal(data)
	if err != nil {
		return nil, err
	}
	sealedData, err := sealBytes(dataKey, plaintext, "data\x00"+context)
	if err != nil {
		return nil, err
	}
	keyID, wrapped, err := kr.wrap(dataKey, context)
	if err != nil {
		return nil, err
	}
	digests := make(map[string]string, len(data))
	for k, v := range data {
		digests[k] = digest(dataKey, k, v)
	}
	return &api.Sealed{KeyID: keyID, DataKey: wrapped, Data: sealedData, Digests: digests}, nil
}

// digest is HMAC-SHA256(mac key derived from the data key, key ‖ value):
// without the data key it reveals nothing about the value, however short.
func digest(dataKey []byte, key, value string) string {
	mk := hmac.New(sha256.New, dataKey)
	mk.Write([]byte("panelx digest key"))
	m := hmac.New(sha256.New, mk.Sum(nil))
	m.Write([]byte(key))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// OpenSecret returns a secret's values.
func (kr *Keyring) OpenSecret(context string, s *api.Sealed) (map[string]string, error) {
	if s == nil {
		return map[string]string{}, nil
	}
	dataKey, err := kr.unwrap(s.KeyID, s.DataKey, context)
	if err != nil {
		return nil, err
	}
	plaintext, err := openBytes(dataKey, s.Data, "data\x00"+context)
	if err != nil {
		return nil, fmt.Errorf("open secret values: %w", err)
	}
	var data map[string]string
	if err := json.Unmarshal(plaintext, &data); err != nil {
		return nil, fmt.Errorf("open secret values: %w", ErrTampered)
	}
	return data, nil
}

// Rewrap seals s's data key under the active master key; the data, and so
// the digests, stay as they are. It reports whether anything changed.
func (kr *Keyring) Rewrap(context string, s *api.Sealed) (*api.Sealed, bool, error) {
	if s == nil || kr == nil || s.KeyID == kr.Active().ID {
		return s, false, nil
	}
	dataKey, err := kr.unwrap(s.KeyID, s.DataKey, context)
	if err != nil {
		return nil, false, err
	}
	keyID, wrapped, err := kr.wrap(dataKey, context)
	if err != nil {
		return nil, false, err
	}
	out := *s
	out.KeyID, out.DataKey = keyID, wrapped
	out.Digests = maps.Clone(s.Digests)
	return &out, true, nil
}

// SameValues reports whether data holds exactly the values sealed in s,
// without opening s's data: by recomputing the digests under its data key.
func (kr *Keyring) SameValues(context string, s *api.Sealed, data map[string]string) (bool, error) {
	if s == nil {
		return len(data) == 0, nil
	}
	if len(s.Digests) != len(data) {
		return false, nil
	}
	dataKey, err := kr.unwrap(s.KeyID, s.DataKey, context)
	if err != nil {
		return false, err
	}
	for k, v := range data {
		if d, ok := s.Digests[k]; !ok || !hmac.Equal([]byte(d), []byte(digest(dataKey, k, v))) {
			return false, nil
		}
	}
	return true, nil
}

// ---- short strings (registry passwords) ----

// textPrefix marks a sealed string; stored strings without it are legacy
// plaintext, sealed on the next start (see SealText).
const textPrefix = "panelx-sealed:v1:"

// textEnvelope is a sealed string: like a secret, under its own data key.
type textEnvelope struct {
	KeyID   string `json:"k"`
	DataKey []byte `json:"d"`
	Data    []byte `json:"v"`
}

// IsSealedText reports whether s came from SealText.
func IsSealedText(s string) bool { return strings.HasPrefix(s, textPrefix) }

// SealText seals a short string into a printable one.
func (kr *Keyring) SealText(context, plaintext string) (string, error) {
	dataKey := make([]byte, KeySize)
	if _, err := rand.Read(dataKey); err != nil {
		return "", fmt.Errorf("seal: %w", err)
	}
	data, err := sealBytes(dataKey, []byte(plaintext), "text\x00"+context)
	if err != nil {
		return "", err
	}
	keyID, wrapped, err := kr.wrap(dataKey, context)
	if err != nil {
		return "", err
	}
	env, _ := json.Marshal(textEnvelope{KeyID: keyID, DataKey: wrapped, Data: data})
	return textPrefix + base64.RawStdEncoding.EncodeToString(env), nil
}

// OpenText opens a string from SealText. A string that was never sealed
// (stored before sealing existed) is returned as it is.
func (kr *Keyring) OpenText(context, sealed string) (string, error) {
	env, err := decodeText(sealed)
	if err != nil || env == nil {
		return sealed, err
	}
	dataKey, err := kr.unwrap(env.KeyID, env.DataKey, context)
	if err != nil {
		return "", err
	}
	out, err := openBytes(dataKey, env.Data, "text\x00"+context)
	if err != nil {
		return "", fmt.Errorf("open sealed text: %w", err)
	}
	return string(out), nil
}

// RewrapText re-seals a sealed string's data key under the active key (and
// seals a legacy plaintext one). It reports whether anything changed.
func (kr *Keyring) RewrapText(context, sealed string) (string, bool, error) {
	env, err := decodeText(sealed)
	if err != nil {
		return "", false, err
	}
	if env == nil {
		out, err := kr.SealText(context, sealed)
		return out, err == nil, err
	}
	if env.KeyID == kr.Active().ID {
		return sealed, false, nil
	}
	dataKey, err := kr.unwrap(env.KeyID, env.DataKey, context)
	if err != nil {
		return "", false, err
	}
	env.KeyID, env.DataKey, err = kr.wrap(dataKey, context)
	if err != nil {
		return "", false, err
	}
	data, _ := json.Marshal(env)
	return textPrefix + base64.RawStdEncoding.EncodeToString(data), true, nil
}

// TextKeyID is the master key a sealed string is under ("" for legacy
// plaintext).
func TextKeyID(sealed string) string {
	env, err := decodeText(sealed)
	if err != nil || env == nil {
		return ""
	}
	return env.KeyID
}

func decodeText(s string) (*textEnvelope, error) {
	if !IsSealedText(s) {
		return nil, nil
	}
	raw, err := base64.RawStdEncoding.DecodeString(s[len(textPrefix):])
	if err != nil {
		return nil, fmt.Errorf("open sealed text: %w", ErrTampered)
	}
	var env textEnvelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, fmt.Errorf("open sealed text: %w", ErrTampered)
	}
	return &env, nil
}

// Keys returns a secret's keys, sorted.
func Keys(data map[string]string) []string {
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Describe explains an unsealing failure for people, without detail that
// would help an attacker.
func Describe(err error) string {
	switch {
	case errors.Is(err, ErrNoKeyring):
		return "the server has no master key (PANELX_SECRET_KEY_FILE)"
	case errors.Is(err, ErrUnknownKey):
		return err.Error()
	case errors.Is(err, ErrTampered):
		return "the sealed data does not open with the master key of the same ID: wrong key file, or the data was changed"
	}
	return err.Error()
}
