//go:build unix

package sqlite

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestLockDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // created by the lock
	var held []func() error
	steps := []struct {
		name    string
		release bool // release the lock held, instead of taking one
		wantErr bool
	}{
		{name: "first server", wantErr: false},
		{name: "second server", wantErr: true},
		{name: "third server", wantErr: true},
		{name: "first server stops", release: true},
		{name: "next server", wantErr: false},
		{name: "one more", wantErr: true},
	}
	for _, st := range steps {
		if st.release {
			if err := held[0](); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			held = held[1:]
			continue
		}
		release, err := LockDataDir(dir)
		if !st.wantErr {
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			held = append(held, release)
			continue
		}
		if err == nil {
			release()
			t.Fatalf("%s: got the lock of a directory in use", st.name)
		}
		for _, want := range []string{dir, "another PanelX server is using it", "PID " + strconv.Itoa(os.Getpid())} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q does not say %q", st.name, err, want)
			}
		}
	}
	for _, release := range held {
		if err := release(); err != nil {
			t.Error(err)
		}
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("data directory mode %v, want 0700", fi.Mode().Perm())
	}
}
