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
