package containers

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
)

// cgroupMount is one cgroup file system in this process's mount namespace.
type cgroupMount struct {
	point string // where it is mounted, e.g. /sys/fs/cgroup/memory
	// root is the cgroup path that appears at point: "/" for the host's
	// hierarchy, "/docker/<id>" inside a container with its own namespace.
	root        string
	v2          bool
	controllers []string // v1 only, e.g. [cpu cpuacct]
}

// The v1 controllers the collector reads.
const (
	ctrlCPU    = "cpuacct"
	ctrlMemory = "memory"
	ctrlBlkio  = "blkio"
)

var v1Controllers = []string{ctrlCPU, ctrlMemory, ctrlBlkio}

// parseMountinfo returns the cgroup mounts of /proc/self/mountinfo:
//
//	34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
//	40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
func parseMountinfo(data []byte) ([]cgroupMount, error) {
	var out []cgroupMount
	for line := range bytes.Lines(data) {
		f := strings.Fields(string(line))
		sep := slices.Index(f, "-")
		if sep < 6 || len(f) < sep+4 {
			return nil, fmt.Errorf("mountinfo line %q: malformed", strings.TrimSpace(string(line)))
		}
		fstype := f[sep+1]
		if fstype != "cgroup" && fstype != "cgroup2" {
			continue
		}
		m := cgroupMount{root: unescapeMountinfo(f[3]), point: unescapeMountinfo(f[4]), v2: fstype == "cgroup2"}
		if !m.v2 {
			for _, opt := range strings.Split(f[sep+3], ",") {
				if slices.Contains(v1Controllers, opt) || opt == "cpu" {
					m.controllers = append(m.controllers, opt)
				}
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) the kernel
// writes for white space and backslashes in paths.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// cgroupLayout says where the cgroup files the collector reads live.
type cgroupLayout struct {
	v2     bool
	v1     map[string]cgroupMount // controller → mount, when !v2
	single cgroupMount            // the unified hierarchy, when v2
}

// detectLayout picks cgroup v1 when cpuacct, memory and blkio are mounted
// as v1 hierarchies (that includes "hybrid" hosts, whose unified hierarchy
// at /sys/fs/cgroup/unified has no controllers), else the cgroup2 mount.
// Among several mounts of one hierarchy the one showing the whole tree
// (root "/") wins: inside a container the host's hierarchy may be
// bind-mounted next to the container's own.
func detectLayout(mounts []cgroupMount) (cgroupLayout, error) {
	v1 := map[string]cgroupMount{}
	for _, ctrl := range v1Controllers {
		for _, m := range mounts {
			if m.v2 || !slices.Contains(m.controllers, ctrl) {
				continue
			}
			if cur, ok := v1[ctrl]; !ok || (cur.root != "/" && m.root == "/") {
				v1[ctrl] = m
			}
		}
	}
	if len(v1) == len(v1Controllers) {
		return cgroupLayout{v1: v1}, nil
	}
	var unified *cgroupMount
	for _, m := range mounts {
		if m.v2 && (unified == nil || (unified.root != "/" && m.root == "/")) {
			unified = &m
		}
	}
	if unified == nil {
		return cgroupLayout{}, errors.New("no cgroup v1 cpuacct/memory/blkio and no cgroup2 mount in mountinfo")
	}
	return cgroupLayout{v2: true, single: *unified}, nil
}

// cgroupDirs are the directories of one container's cgroup: three on v1,
// one (in all three fields) on v2.
type cgroupDirs struct {
	v2                 bool
	cpu, memory, blkio string
}

// resolve finds the container's cgroup directories from the content of
// /proc/<pid>/cgroup of its init process. The path must contain the
// container ID: that rejects a recycled PID, and a PID read from another
// PID namespace (PanelX in a container without the host's /proc), where
// the number names some other process. A path starting with "/.." lies
// outside this process's cgroup namespace and cannot be reached.
func (l cgroupLayout) resolve(procCgroup []byte, containerID string) (cgroupDirs, error) {
	paths, err := parseProcCgroup(procCgroup)
	if err != nil {
		return cgroupDirs{}, err
	}
	if l.v2 {
		p, ok := paths[""]
		if !ok {
			return cgroupDirs{}, errors.New("no cgroup v2 entry (0::) in /proc/<pid>/cgroup")
		}
		dir, err := l.single.join(p, containerID)
		if err != nil {
			return cgroupDirs{}, err
		}
		return cgroupDirs{v2: true, cpu: dir, memory: dir, blkio: dir}, nil
	}
	var dirs [3]string
	for i, ctrl := range v1Controllers {
		p, ok := paths[ctrl]
		if !ok {
			return cgroupDirs{}, fmt.Errorf("no %s entry in /proc/<pid>/cgroup", ctrl)
		}
		dir, err := l.v1[ctrl].join(p, containerID)
		if err != nil {
			return cgroupDirs{}, fmt.Errorf("%s: %w", ctrl, err)
		}
		dirs[i] = dir
	}
	return cgroupDirs{cpu: dirs[0], memory: dirs[1], blkio: dirs[2]}, nil
}

// join maps a cgroup path to a directory under the mount point.
func (m cgroupMount) join(cgroupPath, containerID string) (string, error) {
	if !strings.Contains(cgroupPath, containerID) {
		return "", fmt.Errorf("cgroup %q is not container %s's (PID reused, or from another PID namespace)", cgroupPath, shortID(containerID))
	}
	if strings.HasPrefix(cgroupPath, "/..") {
		return "", fmt.Errorf("cgroup %q lies outside this process's cgroup namespace", cgroupPath)
	}
	rel := cgroupPath
	if m.root != "/" {
		var ok bool
		rel, ok = strings.CutPrefix(cgroupPath, m.root)
		if !ok {
			return "", fmt.Errorf("cgroup %q is not under the mounted root %q of %s", cgroupPath, m.root, m.point)
		}
	}
	return path.Join(m.point, rel), nil
}

// parseProcCgroup maps each v1 controller to its path and the v2 entry
// ("0::/path") to the key "".
//
//	4:memory:/docker/f5db…
//	1:cpu,cpuacct:/docker/f5db…
//	0::/system.slice/docker-f5db….scope
func parseProcCgroup(data []byte) (map[string]string, error) {
	out := map[string]string{}
	for line := range bytes.Lines(data) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		parts := strings.SplitN(string(line), ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("/proc/<pid>/cgroup line %q: want id:controllers:path", line)
		}
		if parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, ctrl := range strings.Split(parts[1], ",") {
			out[ctrl] = parts[2]
		}
	}
	return out, nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
