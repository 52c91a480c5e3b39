package operate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestHelperSwap: the staged entries replace the volume's, the root gets
// the archive's mode, links are moved as links, and a staging name that
// is not a restore's is refused.
func TestHelperSwap(t *testing.T) {
	vol := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(vol, "old.txt"), []byte("old"), 0o644))
	must(os.MkdirAll(filepath.Join(vol, "olddir/sub"), 0o755))
	must(os.Symlink("/etc", filepath.Join(vol, "oldlink")))
	staging := restorePrefix + "abc"
	must(os.MkdirAll(filepath.Join(vol, staging, "dir"), 0o755))
	must(os.WriteFile(filepath.Join(vol, staging, "new.txt"), []byte("new"), 0o600))
	must(os.WriteFile(filepath.Join(vol, staging, "dir/f"), []byte("f"), 0o644))
	must(os.Symlink("new.txt", filepath.Join(vol, staging, "link")))

	for _, bad := range []string{"not-staging", "../" + staging, restorePrefix + "x/y"} {
		req, _ := json.Marshal(helperRequest{Op: "swap", Path: bad})
		if resp := handleHelper(vol, string(req)); resp.Error == "" {
			t.Errorf("swap of %q accepted", bad)
		}
	}
	req, _ := json.Marshal(helperRequest{Op: "swap", Path: staging, Root: &RootAttrs{Mode: 0o700, UID: os.Getuid(), GID: os.Getgid()}})
	if resp := handleHelper(vol, string(req)); resp.Error != "" {
		t.Fatalf("swap: %s", resp.Error)
	}
	ents, err := os.ReadDir(vol)
	must(err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"dir", "link", "new.txt"}) {
		t.Fatalf("volume holds %v", names)
	}
	if b, _ := os.ReadFile(filepath.Join(vol, "dir/f")); string(b) != "f" {
		t.Errorf("dir/f: %q", b)
	}
	if target, _ := os.Readlink(filepath.Join(vol, "link")); target != "new.txt" {
		t.Errorf("link: %q", target)
	}
	fi, err := os.Stat(vol)
	must(err)
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("root mode %v, want 0700", fi.Mode().Perm())
	}
	for _, n := range names {
		if strings.HasPrefix(n, ".panelx") {
			t.Errorf("left behind: %s", n)
		}
	}
}
