package operate

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Bounds of a volume path. NAME_MAX is 255 bytes on Linux; the path bound
// keeps well under PATH_MAX once the helper's mount point is prefixed.
const (
	MaxPathBytes = 2048
	MaxNameBytes = 255
	MaxPathDepth = 64
)

// ErrInvalidPath is what every refused path wraps (the HTTP layer answers
// 400): a path that is not a clean relative path inside the volume, and a
// path that goes through a symbolic link.
var ErrInvalidPath = errors.New("invalid path")

// PathError says why a path was refused. It wraps ErrInvalidPath.
type PathError struct {
	Path   string
	Reason string
}

func (e *PathError) Error() string { return fmt.Sprintf("invalid path %q: %s", e.Path, e.Reason) }
func (e *PathError) Unwrap() error { return ErrInvalidPath }

func refuse(p, format string, args ...any) error {
	return &PathError{Path: p, Reason: fmt.Sprintf(format, args...)}
}

// CleanPath checks a path inside a volume and returns it unchanged, or an
// error wrapping ErrInvalidPath. The empty string is the volume root.
//
// Only clean, relative, slash-separated paths pass: no leading slash, no
// empty, "." or ".." segment (so no trailing slash either), no backslash, no
// control or bidirectional-override character, valid UTF-8, and bounded
// lengths. The HTTP layer decodes a URL exactly once, so anything still
// percent-encoded ("%2e%2e", "..%2f") is an attempt to smuggle a second
// decoding and is refused; so is a segment whose Unicode compatibility form
// (NFKC: "．．", "／") would turn into a separator or a dot segment in a
// layer that normalises. Nothing is "cleaned up" silently: a path is either
// exactly right or refused.
func CleanPath(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	if len(p) > MaxPathBytes {
		return "", refuse(p[:32]+"…", "longer than %d bytes", MaxPathBytes)
	}
	if !utf8.ValidString(p) {
		return "", refuse(p, "not valid UTF-8")
	}
	if strings.HasPrefix(p, "/") {
		return "", refuse(p, "absolute; paths are relative to the volume root")
	}
	segs := strings.Split(p, "/")
	if len(segs) > MaxPathDepth {
		return "", refuse(p, "deeper than %d levels", MaxPathDepth)
	}
	for _, s := range segs {
		if err := checkSegment(p, s); err != nil {
			return "", err
		}
	}
	return p, nil
}

func checkSegment(p, s string) error {
	switch {
	case s == "":
		return refuse(p, "empty segment (leading, trailing or doubled slash)")
	case s == "." || s == "..":
		return refuse(p, "%q segment", s)
	case len(s) > MaxNameBytes:
		return refuse(p, "a name is longer than %d bytes", MaxNameBytes)
	}
	if err := checkRunes(p, s); err != nil {
		return err
	}
	// Compatibility forms: refuse a name that some layer's NFKC
	// normalisation would turn into a traversal.
	if n := norm.NFKC.String(s); n != s {
		if strings.ContainsAny(n, "/\\") || n == "." || n == ".." || hasPercentEscape(n) {
			return refuse(p, "%q normalises to %q", s, n)
		}
	}
	return nil
}

func checkRunes(p, s string) error {
	for _, r := range s {
		switch {
		case r == '\\':
			return refuse(p, "backslash")
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
			return refuse(p, "control character %U", r)
		case isBidiControl(r) || r == 0xFEFF:
			return refuse(p, "invisible formatting character %U", r)
		}
	}
	if hasPercentEscape(s) {
		return refuse(p, "percent-encoded sequence; the path must be decoded exactly once")
	}
	return nil
}

// isBidiControl: characters that make a name display differently from what
// it is ("txt.exe" shown as "exe.txt").
func isBidiControl(r rune) bool {
	return r == 0x061C || r == 0x200E || r == 0x200F ||
		(r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069)
}

// hasPercentEscape reports a "%" followed by two hex digits. A lone "%"
// ("100%.txt") is an ordinary character.
func hasPercentEscape(s string) bool {
	for i := 0; i+2 < len(s); i++ {
		if s[i] == '%' && isHex(s[i+1]) && isHex(s[i+2]) {
			return true
		}
	}
	return false
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

// cleanNonRoot is CleanPath for operations that cannot apply to the volume
// root itself (read, write, mkdir, rename, delete).
func cleanNonRoot(p string) (string, error) {
	c, err := CleanPath(p)
	if err != nil {
		return "", err
	}
	if c == "" {
		return "", refuse(p, "the volume root itself")
	}
	return c, nil
}

// splitPath returns the parent directory ("" for the root) and the name.
func splitPath(p string) (dir, name string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}

// joinPath joins a clean directory ("" is the root) and a name.
func joinPath(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// prefixes returns "a", "a/b", "a/b/c" for "a/b/c", and nothing for "".
func prefixes(p string) []string {
	if p == "" {
		return nil
	}
	var out []string
	for i := 0; i < len(p); i++ {
		if p[i] == '/' {
			out = append(out, p[:i])
		}
	}
	return append(out, p)
}
