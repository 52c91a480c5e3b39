package operate

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// helperFixture is a volume directory with a sibling "outside" directory
// holding a marker, and links inside the volume pointing out of it.
type helperFixture struct {
	vol, outside string
}

func newHelperFixture(t *testing.T) helperFixture {
	t.Helper()
	base := t.TempDir()
	fx := helperFixture{vol: filepath.Join(base, "vol"), outside: filepath.Join(base, "outside")}
	for _, d := range []string{fx.vol, fx.outside, filepath.Join(fx.vol, "dir/sub")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		filepath.Join(fx.outside, "marker"): "outside",
		filepath.Join(fx.vol, "a.txt"):      "a",
		filepath.Join(fx.vol, "dir/b.txt"):  "b",
		filepath.Join(fx.vol, "dir/sub/c"):  "c",
	}
	for p, body := range files {
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"link-out": fx.outside, // absolute, outside
		"link-up":  "../",      // relative, outside
		"link-in":  "dir",      // inside, still never followed
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(fx.vol, name)); err != nil {
			t.Fatal(err)
		}
	}
	return fx
}

func (fx helperFixture) run(t *testing.T, req helperRequest) helperResponse {
	t.Helper()
	raw, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return handleHelper(fx.vol, string(raw))
}

func (fx helperFixture) exists(p string) bool {
	_, err := os.Lstat(filepath.Join(fx.vol, p))
	return err == nil
}

// checkOutside fails the test when the outside directory changed.
func (fx helperFixture) checkOutside(t *testing.T) {
	t.Helper()
	entries, err := os.ReadDir(fx.outside)
	if err != nil || len(entries) != 1 || entries[0].Name() != "marker" {
		t.Fatalf("outside directory changed: %v %v", entries, err)
	}
	if b, err := os.ReadFile(filepath.Join(fx.outside, "marker")); err != nil || string(b) != "outside" {
		t.Fatalf("outside marker changed: %q %v", b, err)
	}
}

func TestHelperRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  helperRequest
		kind string
	}{
		{"rm through an absolute link", helperRequest{Op: "rm", Path: "link-out/marker"}, kindInvalid},
		{"rm through a parent link", helperRequest{Op: "rm", Path: "link-up/outside/marker"}, kindInvalid},
		{"rm through an inside link", helperRequest{Op: "rm", Path: "link-in/b.txt"}, kindInvalid},
		{"rm traversal", helperRequest{Op: "rm", Path: "../outside/marker"}, kindInvalid},
		{"rm absolute", helperRequest{Op: "rm", Path: "/etc/passwd"}, kindInvalid},
		{"rm the root", helperRequest{Op: "rm", Path: ""}, kindInvalid},
		{"rm missing", helperRequest{Op: "rm", Path: "missing"}, kindNotFound},
		{"rm under a file", helperRequest{Op: "rm", Path: "a.txt/x"}, kindNotDir},
		{"mv into a link", helperRequest{Op: "mv", Path: "a.txt", To: "link-out/stolen"}, kindInvalid},
		{"mv out of a link", helperRequest{Op: "mv", Path: "link-out/marker", To: "got"}, kindInvalid},
		{"mv traversal", helperRequest{Op: "mv", Path: "a.txt", To: "../outside/x"}, kindInvalid},
		{"mv encoded traversal", helperRequest{Op: "mv", Path: "a.txt", To: "..%2fx"}, kindInvalid},
		{"mv onto an existing file", helperRequest{Op: "mv", Path: "a.txt", To: "dir/b.txt"}, kindExist},
		{"mv replace onto a directory", helperRequest{Op: "mv", Path: "a.txt", To: "dir", Replace: true}, kindIsDir},
		{"mv replace onto a link", helperRequest{Op: "mv", Path: "a.txt", To: "link-out", Replace: true}, kindInvalid},
		{"mv missing source", helperRequest{Op: "mv", Path: "missing", To: "x"}, kindNotFound},
		{"mv into a missing directory", helperRequest{Op: "mv", Path: "a.txt", To: "nodir/x"}, kindNotFound},
		{"ls a link", helperRequest{Op: "ls", Path: "link-out"}, kindInvalid},
		{"ls through a link", helperRequest{Op: "ls", Path: "link-in/sub"}, kindInvalid},
		{"ls a file", helperRequest{Op: "ls", Path: "a.txt"}, kindNotDir},
		{"ls backslashes", helperRequest{Op: "ls", Path: `dir\..\..`}, kindInvalid},
		{"unknown operation", helperRequest{Op: "chmod", Path: "a.txt"}, kindOther},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newHelperFixture(t)
			resp := fx.run(t, tc.req)
			if resp.Kind != tc.kind {
				t.Fatalf("kind = %q (%s), want %q", resp.Kind, resp.Error, tc.kind)
			}
			fx.checkOutside(t)
			for _, p := range []string{"a.txt", "dir/b.txt", "dir/sub/c", "link-out", "link-in"} {
				if !fx.exists(p) {
					t.Errorf("%s vanished", p)
				}
			}
		})
	}
}

func TestHelperBadRequests(t *testing.T) {
	fx := newHelperFixture(t)
	for _, raw := range []string{"", "{", `{"op":"rm","path":"a.txt","extra":1}`, `["rm"]`} {
		if resp := handleHelper(fx.vol, raw); resp.Kind != kindInvalid {
			t.Errorf("request %q: kind %q (%s), want invalid", raw, resp.Kind, resp.Error)
		}
	}
	if !fx.exists("a.txt") {
		t.Fatal("a bad request removed a file")
	}
}

func TestHelperRemove(t *testing.T) {
	fx := newHelperFixture(t)
	for _, p := range []string{"dir", "a.txt", "link-out", "link-up"} {
		if resp := fx.run(t, helperRequest{Op: "rm", Path: p}); resp.Error != "" {
			t.Fatalf("rm %s: %s", p, resp.Error)
		}
		if fx.exists(p) {
			t.Errorf("%s still exists", p)
		}
	}
	fx.checkOutside(t) // removing a link never touches its target
}

func TestHelperRename(t *testing.T) {
	fx := newHelperFixture(t)
	steps := []helperRequest{
		{Op: "mv", Path: "a.txt", To: "dir/sub/a.txt"},
		{Op: "mv", Path: "dir/sub", To: "moved"},
		{Op: "mv", Path: "link-out", To: "dir/link"}, // a link moves as itself
		{Op: "mv", Path: "dir/b.txt", To: "moved/c", Replace: true},
	}
	for _, req := range steps {
		if resp := fx.run(t, req); resp.Error != "" {
			t.Fatalf("%+v: %s", req, resp.Error)
		}
	}
	for p, want := range map[string]string{"moved/a.txt": "a", "moved/c": "b"} {
		if b, err := os.ReadFile(filepath.Join(fx.vol, p)); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", p, b, err, want)
		}
	}
	if target, err := os.Readlink(filepath.Join(fx.vol, "dir/link")); err != nil || target != fx.outside {
		t.Errorf("moved link = %q, %v", target, err)
	}
	fx.checkOutside(t)
}

func TestHelperList(t *testing.T) {
	fx := newHelperFixture(t)
	resp := fx.run(t, helperRequest{Op: "ls", Path: ""})
	if resp.Error != "" || resp.Truncated {
		t.Fatalf("ls: %+v", resp)
	}
	var names []string
	for _, e := range resp.Entries {
		names = append(names, e.Name+":"+string(e.Type)+":"+e.LinkTarget)
	}
	want := "a.txt:file:,dir:dir:,link-in:symlink:dir,link-out:symlink:" + fx.outside + ",link-up:symlink:../"
	if got := strings.Join(names, ","); got != want {
		t.Fatalf("entries = %s\nwant      %s", got, want)
	}
	if e := resp.Entries[0]; e.Size != 1 || e.Mode != 0o644 || e.ModTime.IsZero() || e.UID != os.Getuid() {
		t.Errorf("a.txt = %+v", e)
	}

	resp = fx.run(t, helperRequest{Op: "ls", Path: "", Limit: 2})
	if len(resp.Entries) != 2 || !resp.Truncated || resp.Entries[0].Name != "a.txt" || resp.Entries[1].Name != "dir" {
		t.Fatalf("ls limit 2 = %+v", resp)
	}
}

func TestRunVolumeHelperOutput(t *testing.T) {
	fx := newHelperFixture(t)
	var out bytes.Buffer
	if code := runVolumeHelper(fx.vol, `{"op":"ls","path":"dir"}`, &out); code != 0 {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	var resp helperResponse
	if err := json.Unmarshal(out.Bytes(), &resp); err != nil || len(resp.Entries) != 2 {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	out.Reset()
	if code := runVolumeHelper(fx.vol, `{"op":"rm","path":"../x"}`, &out); code != 1 || !strings.Contains(out.String(), `"kind":"invalid"`) {
		t.Fatalf("exit %d: %s", code, out.String())
	}
}
