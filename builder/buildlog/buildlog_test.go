package buildlog

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/panelx/panelx/api"
)

// TestKeptAcrossRestarts: a finished log is read back by a new set of
// logs over the same directory (a restarted server); a running one is
// not written; Forget removes it.
func TestKeptAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	key := api.Key{Project: "shop", Name: "web"}
	l := NewDir(dir)
	b := l.Start(key)
	b.Add("Step 1/2 : FROM base")
	b.Add("Step 2/2 : COPY . /app")
	if _, err := os.Stat(filepath.Join(dir, "shop", "web.log")); err == nil {
		t.Error("a running build's log was written")
	}
	b.Finish()

	restarted := NewDir(dir)
	lines, next, running, _, ok := restarted.Read(key, 0)
	if !ok || running || next != 2 || !slices.Equal(lines, []string{"Step 1/2 : FROM base", "Step 2/2 : COPY . /app"}) {
		t.Errorf("after a restart: %q next %d running %v ok %v", lines, next, running, ok)
	}
	if _, _, _, _, ok := restarted.Read(api.Key{Project: "shop", Name: "api"}, 0); ok {
		t.Error("a service that never built has a log")
	}
	// Hostile names never reach the file system.
	if f := restarted.file(api.Key{Project: "..", Name: "x"}); f != "" {
		t.Errorf("file for ../x: %q", f)
	}
	restarted.Forget(key)
	if _, err := os.Stat(filepath.Join(dir, "shop")); !os.IsNotExist(err) {
		t.Errorf("Forget left %v", err)
	}
	if _, _, _, _, ok := NewDir(dir).Read(key, 0); ok {
		t.Error("a forgotten log came back")
	}
}
