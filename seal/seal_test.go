package seal

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/panelx/panelx/api"
)

func mustKey(t testing.TB) Key {
	t.Helper()
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSecretRoundTripAndBinding(t *testing.T) {
	kr := NewKeyring(mustKey(t))
	ctx := SecretContext("shop", "db")
	data := map[string]string{"PASSWORD": "hunter2", "USER": "app"}
	s, err := kr.SealSecret(ctx, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{s.Data, s.DataKey} {
		if strings.Contains(string(b), "hunter2") {
			t.Fatal("sealed data holds the value")
		}
	}
	got, err := kr.OpenSecret(ctx, s)
	if err != nil || got["PASSWORD"] != "hunter2" || got["USER"] != "app" {
		t.Fatalf("open: %v %v", got, err)
	}
	// Sealed data of one secret does not open as another's.
	if _, err := kr.OpenSecret(SecretContext("shop", "other"), s); !errors.Is(err, ErrTampered) {
		t.Errorf("open under another secret's context: %v, want ErrTampered", err)
	}
	// A flipped bit is detected.
	bad := *s
	bad.Data = append([]byte(nil), s.Data...)
	bad.Data[len(bad.Data)-1] ^= 1
	if _, err := kr.OpenSecret(ctx, &bad); !errors.Is(err, ErrTampered) {
		t.Errorf("open tampered data: %v, want ErrTampered", err)
	}
}

func TestDigestsFollowValuesNotSealing(t *testing.T) {
	kr := NewKeyring(mustKey(t))
	ctx := SecretContext("shop", "db")
	s1, _ := kr.SealSecret(ctx, map[string]string{"A": "1", "B": "2"}, nil)
	// Re-sealed with a changed B under the same data key: A's digest stays.
	s2, err := kr.SealSecret(ctx, map[string]string{"A": "1", "B": "3"}, s1)
	if err != nil {
		t.Fatal(err)
	}
	if s1.Digests["A"] != s2.Digests["A"] || s1.Digests["B"] == s2.Digests["B"] {
		t.Errorf("digests: %v then %v; want A kept and B changed", s1.Digests, s2.Digests)
	}
	same, err := kr.SameValues(ctx, s2, map[string]string{"A": "1", "B": "3"})
	if err != nil || !same {
		t.Errorf("SameValues of the sealed values = %v, %v", same, err)
	}
	if same, _ := kr.SameValues(ctx, s2, map[string]string{"A": "1", "B": "4"}); same {
		t.Error("SameValues of other values = true")
	}
	// A fresh secret with the same values has unrelated digests: a digest
	// says nothing about a value without its data key.
	s3, _ := kr.SealSecret(ctx, map[string]string{"A": "1"}, nil)
	if s3.Digests["A"] == s1.Digests["A"] {
		t.Error("two data keys gave the same digest")
	}
}

func TestRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key")
	kr, created, err := EnsureKeyFile(path)
	if err != nil || !created {
		t.Fatalf("EnsureKeyFile: created=%v err=%v", created, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", fi.Mode(), err)
	}
	ctx := SecretContext("shop", "db")
	s, _ := kr.SealSecret(ctx, map[string]string{"A": "1"}, nil)
	pw, _ := kr.SealText(RegistryPasswordContext("shop", "reg"), "pw")

	// Rotate: a new active key, the old one kept to unseal.
	old := kr.Active()
	next := mustKey(t)
	if err := WriteKeyFile(path, next, old); err != nil {
		t.Fatal(err)
	}
	// The running keyring follows the file when it meets the new key.
	if err := kr.Reload(); err != nil {
		t.Fatal(err)
	}
	s2, changed, err := kr.Rewrap(ctx, s)
	if err != nil || !changed || s2.KeyID != next.ID {
		t.Fatalf("Rewrap: %v %v %v", s2, changed, err)
	}
	if s2.Digests["A"] != s.Digests["A"] || string(s2.Data) != string(s.Data) {
		t.Error("rewrap changed the data or digests")
	}
	pw2, changed, err := kr.RewrapText(RegistryPasswordContext("shop", "reg"), pw)
	if err != nil || !changed || TextKeyID(pw2) != next.ID {
		t.Fatalf("RewrapText: %v %v", changed, err)
	}

	// With the old key gone, everything rewrapped still opens.
	if err := WriteKeyFile(path, next); err != nil {
		t.Fatal(err)
	}
	only, err := LoadKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := only.OpenSecret(ctx, s2); err != nil || got["A"] != "1" {
		t.Errorf("open after rotation: %v %v", got, err)
	}
	if got, err := only.OpenText(RegistryPasswordContext("shop", "reg"), pw2); err != nil || got != "pw" {
		t.Errorf("open text after rotation: %q %v", got, err)
	}
	// And what was not rewrapped says which key it needs.
	if _, err := only.OpenSecret(ctx, s); !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), old.ID) {
		t.Errorf("open under the removed key: %v, want ErrUnknownKey naming %s", err, old.ID)
	}
}

func TestWrongKeyFile(t *testing.T) {
	a, b := NewKeyring(mustKey(t)), NewKeyring(mustKey(t))
	s, _ := a.SealSecret(SecretContext("p", "s"), map[string]string{"K": "v"}, nil)
	_, err := b.OpenSecret(SecretContext("p", "s"), s)
	if !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("open with another key: %v", err)
	}
	var none *Keyring
	if _, err := none.OpenSecret(SecretContext("p", "s"), s); !errors.Is(err, ErrNoKeyring) {
		t.Fatalf("open without a keyring: %v", err)
	}
}

func TestKeyFileErrors(t *testing.T) {
	dir := t.TempDir()
	k := mustKey(t)
	good := filepath.Join(dir, "good")
	if err := WriteKeyFile(good, k); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(good)
	tests := map[string]string{
		"empty":       "# nothing\n",
		"not base64":  k.ID + " !!!\n",
		"short key":   k.ID + " AAAA\n",
		"edited id":   strings.Replace(string(data), k.ID, "0000000000000000", 1),
		"no id":       "c29tZXRoaW5n\n",
		"garbage key": "zz " + strings.Repeat("A", 44) + "\n",
	}
	for name, content := range tests {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
			os.WriteFile(p, []byte(content), 0o600)
			if _, err := LoadKeyring(p); err == nil {
				t.Error("loaded a bad key file")
			} else if strings.Contains(err.Error(), "AAAA") {
				t.Errorf("error echoes key material: %v", err)
			}
		})
	}
}

func TestLegacyPlaintextText(t *testing.T) {
	kr := NewKeyring(mustKey(t))
	if got, err := kr.OpenText("c", "plain"); err != nil || got != "plain" {
		t.Fatalf("legacy plaintext: %q %v", got, err)
	}
	sealed, changed, err := kr.RewrapText("c", "plain")
	if err != nil || !changed || !IsSealedText(sealed) {
		t.Fatalf("sealing legacy plaintext: %v %v", changed, err)
	}
	if got, _ := kr.OpenText("c", sealed); got != "plain" {
		t.Fatalf("open: %q", got)
	}
}

// BenchmarkOpenSecret is the cost of one secret read by the controller:
// unwrap the data key, open the values (5 keys of 40 bytes).
func BenchmarkOpenSecret(b *testing.B) {
	kr := NewKeyring(mustKey(b))
	ctx := SecretContext("shop", "db")
	data := map[string]string{}
	for _, k := range []string{"A", "B", "C", "D", "E"} {
		data[k] = strings.Repeat(k, 40)
	}
	s, _ := kr.SealSecret(ctx, data, nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kr.OpenSecret(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSealSecret is the cost of one secret write.
func BenchmarkSealSecret(b *testing.B) {
	kr := NewKeyring(mustKey(b))
	ctx := SecretContext("shop", "db")
	data := map[string]string{"A": strings.Repeat("a", 40), "B": strings.Repeat("b", 40)}
	var prev *api.Sealed
	b.ReportAllocs()
	for b.Loop() {
		s, err := kr.SealSecret(ctx, data, prev)
		if err != nil {
			b.Fatal(err)
		}
		prev = s
	}
}
