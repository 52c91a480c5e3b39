package operate

import (
	"errors"
	"path"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCleanPathAccepts(t *testing.T) {
	for _, p := range []string{
		"",
		"a",
		"a/b/c.txt",
		".hidden",
		"..hidden",
		"a..b",
		"...",
		"100%.txt",
		"50% off",
		"%zz",
		"-rf",
		"--help",
		"with space",
		"日本語/ファイル.txt",
		"café",
		"cafe\u0301", // decomposed é: NFKC changes it, harmlessly
		"ﬁle",        // ligature: NFKC "file", harmless
		strings.Repeat("n", MaxNameBytes),
		strings.Repeat("d/", MaxPathDepth-1) + "f",
	} {
		got, err := CleanPath(p)
		if err != nil || got != p {
			t.Errorf("CleanPath(%q) = %q, %v; want it accepted unchanged", p, got, err)
		}
	}
}

func TestCleanPathRefuses(t *testing.T) {
	for _, tc := range []struct{ name, path string }{
		{"parent", ".."},
		{"parent prefix", "../x"},
		{"parent inside", "a/../../x"},
		{"parent at end", "a/.."},
		{"dot", "."},
		{"dot segment", "a/./b"},
		{"leading dot slash", "./a"},
		{"absolute", "/etc/passwd"},
		{"root", "/"},
		{"trailing slash", "a/"},
		{"double slash", "a//b"},
		{"encoded slash after dots", "..%2fx"},
		{"encoded slash upper", "..%2Fx"},
		{"encoded dots", "%2e%2e/x"},
		{"encoded dots upper", "%2E%2E"},
		{"encoded percent", "%252e%252e/x"},
		{"encoded NUL", "a%00b"},
		{"backslash traversal", `a\..\x`},
		{"backslash", `a\b`},
		{"NUL", "a\x00b"},
		{"newline", "a\nb"},
		{"tab", "a\tb"},
		{"DEL", "a\x7fb"},
		{"C1 control", "a\u0085b"},
		{"escape", "a\x1b[31mb"},
		{"bidi override", "txt\u202Eexe.doc"},
		{"bidi isolate", "a\u2066b"},
		{"byte order mark", "\uFEFFa"},
		{"invalid UTF-8", "a\xffb"},
		{"overlong UTF-8 slash", "a\xc0\xafb"},
		{"overlong UTF-8 dot", "\xc0\xae\xc0\xae/x"},
		{"lone surrogate", "a\xed\xa0\x80b"},
		{"fullwidth dots", "\uFF0E\uFF0E/x"},
		{"fullwidth solidus", "a\uFF0Fb"},
		{"fullwidth reverse solidus", "a\uFF3Cb"},
		{"one dot leader pair", "\u2025/x"},
		{"small full stops", "\uFE52\uFE52"},
		{"account of (a/c)", "\u2100"},
		{"fullwidth percent escape", "\uFF05\uFF12\uFF46"},
		{"long name", strings.Repeat("n", MaxNameBytes+1)},
		{"long path", strings.Repeat("abcdefgh/", MaxPathBytes/9+1) + "x"},
		{"too deep", strings.Repeat("d/", MaxPathDepth) + "f"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CleanPath(tc.path)
			if !errors.Is(err, ErrInvalidPath) {
				t.Fatalf("CleanPath(%q) = %q, %v; want ErrInvalidPath", tc.path, got, err)
			}
			var pe *PathError
			if !errors.As(err, &pe) || pe.Reason == "" {
				t.Errorf("error %v carries no reason", err)
			}
		})
	}
}

func TestCleanNonRootRefusesTheRoot(t *testing.T) {
	if _, err := cleanNonRoot(""); !errors.Is(err, ErrInvalidPath) {
		t.Fatalf("cleanNonRoot(\"\") = %v, want ErrInvalidPath", err)
	}
	if p, err := cleanNonRoot("a/b"); err != nil || p != "a/b" {
		t.Fatalf("cleanNonRoot(a/b) = %q, %v", p, err)
	}
}

func TestPathHelpers(t *testing.T) {
	for _, tc := range []struct {
		p, dir, name string
		prefixes     []string
	}{
		{"a", "", "a", []string{"a"}},
		{"a/b/c", "a/b", "c", []string{"a", "a/b", "a/b/c"}},
		{"", "", "", nil},
	} {
		dir, name := splitPath(tc.p)
		if dir != tc.dir || name != tc.name {
			t.Errorf("splitPath(%q) = %q, %q", tc.p, dir, name)
		}
		if tc.p != "" && joinPath(dir, name) != tc.p {
			t.Errorf("joinPath(%q, %q) = %q", dir, name, joinPath(dir, name))
		}
		if got := prefixes(tc.p); strings.Join(got, ",") != strings.Join(tc.prefixes, ",") {
			t.Errorf("prefixes(%q) = %q, want %q", tc.p, got, tc.prefixes)
		}
	}
}

// FuzzCleanPath checks the invariants every accepted path keeps, whatever
// the input: it is clean, relative, inside the root, and readable.
func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"a/b", "../x", "..%2fx", `a\..\x`, "/etc", "a//b", "．．/x", "a\x00", "ok.txt", "%2e%2e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		got, err := CleanPath(p)
		if err != nil {
			if !errors.Is(err, ErrInvalidPath) {
				t.Fatalf("CleanPath(%q): error %v does not wrap ErrInvalidPath", p, err)
			}
			return
		}
		if got != p {
			t.Fatalf("CleanPath(%q) changed the path to %q", p, got)
		}
		if p == "" {
			return
		}
		if path.Clean(p) != p || path.IsAbs(p) || strings.HasPrefix(path.Clean("/root/"+p), "/root/") == false {
			t.Fatalf("accepted %q escapes or is not clean", p)
		}
		if !utf8.ValidString(p) || strings.ContainsAny(p, "\\\x00") || len(p) > MaxPathBytes {
			t.Fatalf("accepted %q has a forbidden character or length", p)
		}
		for _, s := range strings.Split(p, "/") {
			if s == ".." || s == "." || s == "" || len(s) > MaxNameBytes {
				t.Fatalf("accepted %q has segment %q", p, s)
			}
		}
	})
}
