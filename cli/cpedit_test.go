package cli

import "testing"

func TestParseVolumeRef(t *testing.T) {
	tests := []struct {
		in     string
		want   volumeRef
		volume bool
	}{
		{"data:backups/dump.sql", volumeRef{"data", "backups/dump.sql"}, true},
		{"data:/abs/../x", volumeRef{"data", "x"}, true},
		{"data:", volumeRef{"data", ""}, true},
		{"data:../../etc/passwd", volumeRef{"data", "etc/passwd"}, true}, // cleaned inside the volume
		{"./a:b", volumeRef{}, false},
		{"/tmp/x", volumeRef{}, false},
		{"-", volumeRef{}, false},
		{"C:file", volumeRef{}, false}, // not a volume name (upper case)
	}
	for _, tt := range tests {
		got, ok := parseVolumeRef(tt.in)
		if ok != tt.volume || got != tt.want {
			t.Errorf("parseVolumeRef(%q) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.volume)
		}
	}
}

func TestBytesIEC(t *testing.T) {
	for _, tt := range []struct {
		in   float64
		want string
	}{{0, "0B"}, {1023, "1023B"}, {1024, "1.0KiB"}, {1536, "1.5KiB"}, {5 << 20, "5.0MiB"}, {3 << 30, "3.0GiB"}} {
		if got := bytesIEC(tt.in); got != tt.want {
			t.Errorf("bytesIEC(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
