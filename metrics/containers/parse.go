package containers

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Parsers of the kernel's text files. They take the whole file content
// (the files are small and read in one go) and never allocate per line
// beyond what they return.

var errNoKey = errors.New("key not found")

// parseUint parses a file holding one unsigned number, such as
// cpuacct.usage, memory.usage_in_bytes or memory.current.
func parseUint(data []byte) (uint64, error) {
	s := string(bytes.TrimSpace(data))
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %q: %w", s, err)
	}
	return v, nil
}

// lookupKey returns the value of key in a flat keyed file ("key value"
// lines: memory.stat, cpu.stat).
func lookupKey(data []byte, key string) (uint64, error) {
	for line := range bytes.Lines(data) {
		k, v, ok := bytes.Cut(bytes.TrimSpace(line), []byte{' '})
		if !ok || string(k) != key {
			continue
		}
		n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse %s: %w", key, err)
		}
		return n, nil
	}
	return 0, fmt.Errorf("%s: %w", key, errNoKey)
}

// devID is a block device number.
type devID struct{ major, minor uint32 }

func (d devID) String() string { return fmt.Sprintf("%d:%d", d.major, d.minor) }

func parseDevID(s string) (devID, error) {
	maj, min, ok := strings.Cut(s, ":")
	if !ok {
		return devID{}, fmt.Errorf("device %q: want major:minor", s)
	}
	a, err := strconv.ParseUint(maj, 10, 32)
	if err != nil {
		return devID{}, fmt.Errorf("device %q: %w", s, err)
	}
	b, err := strconv.ParseUint(min, 10, 32)
	if err != nil {
		return devID{}, fmt.Errorf("device %q: %w", s, err)
	}
	return devID{uint32(a), uint32(b)}, nil
}

// devBytes is the block I/O of one device in bytes.
type devBytes struct {
	dev         devID
	read, write uint64
}

// parseBlkioV1 parses blkio.throttle.io_service_bytes(_recursive):
//
//	254:0 Read 49152
//	254:0 Write 8404992
//	...
//	Total 8454144
//
// Devices come out in the order of the file.
func parseBlkioV1(data []byte) ([]devBytes, error) {
	var out []devBytes
	index := map[devID]int{}
	for line := range bytes.Lines(data) {
		f := strings.Fields(string(line))
		if len(f) == 2 && f[0] == "Total" {
			continue
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("blkio line %q: want 'major:minor op value'", strings.TrimSpace(string(line)))
		}
		dev, err := parseDevID(f[0])
		if err != nil {
			return nil, err
		}
		v, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("blkio line %q: %w", strings.TrimSpace(string(line)), err)
		}
		i, ok := index[dev]
		if !ok {
			i = len(out)
			index[dev] = i
			out = append(out, devBytes{dev: dev})
		}
		switch f[1] {
		case "Read":
			out[i].read = v
		case "Write":
			out[i].write = v
		}
	}
	return out, nil
}

// parseIOStatV2 parses cgroup v2 io.stat:
//
//	254:0 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0
func parseIOStatV2(data []byte) ([]devBytes, error) {
	var out []devBytes
	for line := range bytes.Lines(data) {
		f := strings.Fields(string(line))
		if len(f) == 0 {
			continue
		}
		dev, err := parseDevID(f[0])
		if err != nil {
			return nil, err
		}
		d := devBytes{dev: dev}
		for _, kv := range f[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || (k != "rbytes" && k != "wbytes") {
				continue
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("io.stat %s: %w", kv, err)
			}
			if k == "rbytes" {
				d.read = n
			} else {
				d.write = n
			}
		}
		out = append(out, d)
	}
	return out, nil
}

// parseNetDev parses /proc/<pid>/net/dev, leaving out the loopback
// interface (traffic inside the container, never on the wire):
//
//	Inter-|   Receive                                                |  Transmit
//	 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets ...
//	    lo:       0       0    0    0    0     0          0         0        0       0 ...
//	  eth0:     200       2    0    0    0     0          0         0        0       0 ...
func parseNetDev(data []byte) ([]InterfaceStats, error) {
	var out []InterfaceStats
	n := 0
	for line := range bytes.Lines(data) {
		n++
		if n <= 2 { // the two header lines
			continue
		}
		name, rest, ok := strings.Cut(string(line), ":")
		if !ok {
			return nil, fmt.Errorf("net/dev line %q: no interface name", strings.TrimSpace(string(line)))
		}
		name = strings.TrimSpace(name)
		if name == "lo" {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 16 {
			return nil, fmt.Errorf("net/dev line %q: want 16 counters, got %d", strings.TrimSpace(string(line)), len(f))
		}
		rx, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("net/dev %s receive bytes: %w", name, err)
		}
		tx, err := strconv.ParseUint(f[8], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("net/dev %s transmit bytes: %w", name, err)
		}
		out = append(out, InterfaceStats{Interface: name, RxBytes: rx, TxBytes: tx})
	}
	return out, nil
}

// parseMemTotal returns MemTotal of /proc/meminfo in bytes.
func parseMemTotal(data []byte) (uint64, error) {
	for line := range bytes.Lines(data) {
		rest, ok := bytes.CutPrefix(line, []byte("MemTotal:"))
		if !ok {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("meminfo MemTotal %q: want '<n> kB'", strings.TrimSpace(string(rest)))
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("meminfo MemTotal: %w", err)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("meminfo MemTotal: %w", errNoKey)
}
