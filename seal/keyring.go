// Package seal encrypts what PanelX must keep secret in its database —
// secret values, registry passwords — with envelope encryption: each item
// under its own random data key (AES-256-GCM), the data key under a master
// key that lives in a file and never enters the database. Key IDs let the
// master key rotate: items are re-wrapped under a new key without touching
// their data (see Keyring.Rewrap).
package seal

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// KeySize is the size of master and data keys (AES-256).
const KeySize = 32

// Errors of unsealing; test with errors.Is.
var (
	// ErrNoKeyring: the server has no master key file.
	ErrNoKeyring = errors.New("no master key (set PANELX_SECRET_KEY_FILE)")
	// ErrUnknownKey: the item was sealed under a master key the key file
	// does not hold.
	ErrUnknownKey = errors.New("sealed under a master key the key file does not hold")
	// ErrTampered: the data does not authenticate under the key — changed,
	// or sealed for another item.
	ErrTampered = errors.New("the sealed data does not authenticate")
)

// Key is one master key. Its ID is derived from the key itself, so a file
// holding another key under the same name cannot be mistaken for it.
type Key struct {
	ID  string
	key [KeySize]byte
}

// NewKey returns a random master key.
func NewKey() (Key, error) {
	var k Key
	if _, err := rand.Read(k.key[:]); err != nil {
		return Key{}, fmt.Errorf("generate master key: %w", err)
	}
	k.ID = keyID(k.key[:])
	return k, nil
}

func keyID(key []byte) string {
	sum := sha256.Sum256(append([]byte("panelx master key id\x00"), key...))
	return hex.EncodeToString(sum[:8])
}

// Keyring is the master keys of a key file: the first is the one new items
// are sealed under; the others only unseal. It re-reads the file when asked
// for a key it does not hold, so a running server follows a rotation.
type Keyring struct {
	path string
	mu   sync.RWMutex
	keys []Key
	// stamp is the key file's modification time and size when read: a
	// rotation (another process rewriting the file) is picked up at the
	// next seal, so nothing is sealed under a key that left the file.
	stamp fileStamp
}

type fileStamp struct {
	mod  int64
	size int64
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{mod: fi.ModTime().UnixNano(), size: fi.Size()}
}

// The key file: comment lines, then one key per line, "<id> <base64 key>",
// the active key first.
const fileHeader = `# PanelX master key file. Without it the secrets and registry passwords in
# the database cannot be read: back it up, keep it out of the database and
# out of version control. The first key seals; the others only unseal.
`

// LoadKeyring reads a key file.
func LoadKeyring(path string) (*Keyring, error) {
	stamp := stampOf(path)
	keys, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	return &Keyring{path: path, keys: keys, stamp: stamp}, nil
}

// NewKeyring holds keys in memory only (tests, benchmarks).
func NewKeyring(keys ...Key) *Keyring { return &Keyring{keys: keys} }

func readKeyFile(path string) ([]Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read master key file: %w", err)
	}
	var keys []Key
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, enc, ok := strings.Cut(line, " ")
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
		if !ok || err != nil || len(raw) != KeySize {
			return nil, fmt.Errorf("master key file %s, line %d: want \"<id> <base64 of %d bytes>\"", path, n, KeySize)
		}
		if want := keyID(raw); id != want {
			return nil, fmt.Errorf("master key file %s, line %d: the key's ID is %s, not %s (the line was edited)", path, n, want, id)
		}
		var k Key
		copy(k.key[:], raw)
		k.ID = id
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("master key file %s holds no key", path)
	}
	return keys, nil
}

// WriteKeyFile writes keys (the active one first) to path with mode 0600,
// atomically: a crash leaves the old file or the new one.
func WriteKeyFile(path string, keys ...Key) error {
	var b strings.Builder
	b.WriteString(fileHeader)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s %s\n", k.ID, base64.StdEncoding.EncodeToString(k.key[:]))
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write master key file: %w", err)
	}
	f, err := os.CreateTemp(dir, ".panelx-key-*")
	if err != nil {
		return fmt.Errorf("write master key file: %w", err)
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("write master key file: %w", err)
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return fmt.Errorf("write master key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write master key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write master key file: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write master key file: %w", err)
	}
	return nil
}

// EnsureKeyFile loads path, creating it with a new key when it does not
// exist. created says whether it did.
func EnsureKeyFile(path string) (kr *Keyring, created bool, err error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		k, err := NewKey()
		if err != nil {
			return nil, false, err
		}
		// O_EXCL semantics: another process may have created it meanwhile.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			f.Close()
			if err := WriteKeyFile(path, k); err != nil {
				return nil, false, err
			}
			created = true
		} else if !errors.Is(err, os.ErrExist) {
			return nil, false, fmt.Errorf("create master key file: %w", err)
		}
	}
	kr, err = LoadKeyring(path)
	return kr, created, err
}

// Path is the key file the keyring reads ("" when in memory).
func (kr *Keyring) Path() string { return kr.path }

// Active is the key new items are sealed under (the file's first, re-read
// when the file changed).
func (kr *Keyring) Active() Key {
	kr.reloadIfChanged()
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	return kr.keys[0]
}

func (kr *Keyring) reloadIfChanged() {
	if kr.path == "" {
		return
	}
	kr.mu.RLock()
	same := stampOf(kr.path) == kr.stamp
	kr.mu.RUnlock()
	if !same {
		_ = kr.Reload() // a broken file keeps the keys held: better than none
	}
}

// Keys returns the keys held, the active one first (to write them back to
// a key file).
func (kr *Keyring) Keys() ([]Key, error) {
	if kr == nil {
		return nil, ErrNoKeyring
	}
	kr.reloadIfChanged()
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	return append([]Key(nil), kr.keys...), nil
}

// IDs lists the IDs of the keys held, the active one first.
func (kr *Keyring) IDs() []string {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	ids := make([]string, len(kr.keys))
	for i, k := range kr.keys {
		ids[i] = k.ID
	}
	return ids
}

// Reload re-reads the key file (after a rotation).
func (kr *Keyring) Reload() error {
	if kr.path == "" {
		return nil
	}
	stamp := stampOf(kr.path)
	keys, err := readKeyFile(kr.path)
	if err != nil {
		return err
	}
	kr.mu.Lock()
	kr.keys, kr.stamp = keys, stamp
	kr.mu.Unlock()
	return nil
}

// key finds a key by ID, re-reading the file once when it is not held.
func (kr *Keyring) key(id string) (Key, error) {
	if kr == nil {
		return Key{}, ErrNoKeyring
	}
	if k, ok := kr.find(id); ok {
		return k, nil
	}
	if err := kr.Reload(); err == nil {
		if k, ok := kr.find(id); ok {
			return k, nil
		}
	}
	return Key{}, fmt.Errorf("%w: key %s (it holds %s)", ErrUnknownKey, id, strings.Join(kr.IDs(), ", "))
}

func (kr *Keyring) find(id string) (Key, bool) {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	for _, k := range kr.keys {
		if k.ID == id {
			return k, true
		}
	}
	return Key{}, false
}
