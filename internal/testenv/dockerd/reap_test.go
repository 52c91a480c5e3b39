package dockerd

import (
	"net/netip"
	"testing"
)

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{
		`/tmp/pxd1/data`:              `/tmp/pxd1/data`,
		`/tmp/pxd1/a\040b`:            `/tmp/pxd1/a b`,
		`/tmp/pxd1/tab\011x\134y`:     "/tmp/pxd1/tab\tx\\y",
		`/tmp/pxd1/trailing\04`:       `/tmp/pxd1/trailing\04`,
		`/tmp/pxd1/not\999an\escape`:  `/tmp/pxd1/not\999an\escape`,
		`/tmp/pxd1/new\012line\040ok`: "/tmp/pxd1/new\nline ok",
	} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOverlapsAny(t *testing.T) {
	p := netip.MustParsePrefix("10.210.0.0/16")
	for _, tc := range []struct {
		used []string
		want bool
	}{
		{nil, false},
		{[]string{"0.0.0.0/0"}, false}, // a default route is not a conflict
		{[]string{"172.17.0.0/16", "192.0.2.0/24"}, false},
		{[]string{"10.210.3.0/24"}, true},
		{[]string{"10.0.0.0/8"}, true},
		{[]string{"10.211.0.0/16"}, false},
	} {
		var used []netip.Prefix
		for _, u := range tc.used {
			used = append(used, netip.MustParsePrefix(u))
		}
		if got := overlapsAny(p, used); got != tc.want {
			t.Errorf("overlapsAny(%s, %v) = %v, want %v", p, tc.used, got, tc.want)
		}
	}
}

func TestLeHexAddr(t *testing.T) {
	// /proc/net/route writes 172.17.0.0 as 000011AC.
	a, ok := leHexAddr("000011AC")
	if !ok || a != netip.MustParseAddr("172.17.0.0") {
		t.Errorf("leHexAddr(000011AC) = %v, %v", a, ok)
	}
	if _, ok := leHexAddr("zz"); ok {
		t.Errorf("leHexAddr(zz) ok")
	}
}
