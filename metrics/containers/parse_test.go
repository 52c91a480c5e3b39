package containers

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// The fixtures under testdata/v1 were read from a container on this
// project's Debian 12 / Engine 20.10 host (cgroup v1, cgroupfs driver)
// after it wrote 8 MiB with fsync; testdata/v2 hold the same shapes as a
// cgroup v2 host writes them.

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseUint(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		want    uint64
		wantErr bool
	}{
		{"v1 cpuacct.usage", string(fixture(t, "v1/cpuacct.usage")), 97105012, false},
		{"v1 memory.usage_in_bytes", string(fixture(t, "v1/memory.usage_in_bytes")), 9449472, false},
		{"v2 memory.current", string(fixture(t, "v2/memory.current")), 10543104, false},
		{"unlimited v1 limit", "9223372036854771712\n", 9223372036854771712, false},
		{"v2 max is no number", "max\n", 0, true},
		{"empty", "", 0, true},
		{"negative", "-1\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseUint([]byte(tt.data))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("parseUint(%q) = %d, %v; want %d, error %v", tt.data, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestLookupKey(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		key     string
		want    uint64
		wantErr error
	}{
		{"v1 working set input", "v1/memory.stat", "total_inactive_file", 8388608, nil},
		{"v1 cache", "v1/memory.stat", "total_cache", 8404992, nil},
		{"v2 inactive_file", "v2/memory.stat", "inactive_file", 8388608, nil},
		{"v2 cpu usage", "v2/cpu.stat", "usage_usec", 2093810, nil},
		{"prefix of another key is no match", "v2/cpu.stat", "usage", 0, errNoKey},
		{"missing", "v2/memory.stat", "total_inactive_file", 0, errNoKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := lookupKey(fixture(t, tt.file), tt.key)
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Fatalf("lookupKey(%s, %s) = %d, %v; want %d, %v", tt.file, tt.key, got, err, tt.want, tt.wantErr)
			}
		})
	}
	// Keys match whole: inactive_file is not the tail of total_inactive_file.
	if got, err := lookupKey([]byte("total_inactive_file 5\ninactive_file 7\n"), "inactive_file"); err != nil || got != 7 {
		t.Errorf("inactive_file after total_inactive_file = %d, %v; want 7", got, err)
	}
	if _, err := lookupKey([]byte("usage_usec x\n"), "usage_usec"); err == nil {
		t.Error("a value that is no number: want an error")
	}
}

func TestParseBlkio(t *testing.T) {
	tests := []struct {
		name    string
		parse   func([]byte) ([]devBytes, error)
		data    []byte
		want    []devBytes
		wantErr bool
	}{
		{
			name: "v1 two devices and the grand total", parse: parseBlkioV1,
			data: fixture(t, "v1/blkio.throttle.io_service_bytes_recursive"),
			want: []devBytes{{devID{254, 0}, 49152, 8404992}, {devID{253, 0}, 4096, 0}},
		},
		{name: "v1 no I/O yet", parse: parseBlkioV1, data: fixture(t, "v1/blkio_empty"), want: nil},
		{name: "v1 garbage", parse: parseBlkioV1, data: []byte("254:0 Read\n"), wantErr: true},
		{name: "v1 bad device", parse: parseBlkioV1, data: []byte("vda Read 5\n"), wantErr: true},
		{
			name: "v2 io.stat", parse: parseIOStatV2, data: fixture(t, "v2/io.stat"),
			want: []devBytes{{devID{254, 0}, 1459200, 8404992}, {devID{253, 0}, 4096, 0}},
		},
		{name: "v2 empty", parse: parseIOStatV2, data: []byte(""), want: nil},
		{name: "v2 bad number", parse: parseIOStatV2, data: []byte("254:0 rbytes=x\n"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.parse(tt.data)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseNetDev(t *testing.T) {
	tests := []struct {
		name    string
		data    []byte
		want    []InterfaceStats
		wantErr bool
	}{
		{
			name: "lo left out, counters past 32 bits, no space after the colon",
			data: fixture(t, "net_dev"),
			want: []InterfaceStats{
				{Interface: "eth0", RxBytes: 1050112, TxBytes: 53211},
				{Interface: "eth1", RxBytes: 4294967296000, TxBytes: 42},
			},
		},
		{name: "headers only", data: []byte("Inter-|\n face |\n"), want: nil},
		{name: "short line", data: []byte("h1\nh2\neth0: 1 2 3\n"), wantErr: true},
		{name: "no name", data: []byte("h1\nh2\n1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseNetDev(tt.data)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseMemTotal(t *testing.T) {
	got, err := parseMemTotal([]byte("MemTotal:       24683212 kB\nMemFree:        22000000 kB\n"))
	if err != nil || got != 24683212*1024 {
		t.Fatalf("parseMemTotal = %d, %v", got, err)
	}
	if _, err := parseMemTotal([]byte("MemFree: 1 kB\n")); !errors.Is(err, errNoKey) {
		t.Fatalf("no MemTotal: %v, want errNoKey", err)
	}
}
