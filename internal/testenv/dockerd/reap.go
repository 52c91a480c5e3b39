package dockerd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// reap removes whatever an engine left under dir and on the host once its
// dockerd and containerd are gone (or were never stopped, for a dead test):
// runc containers, processes using the directory, its default bridge and
// the bridges in its pool, its iptables rule, mounts, and finally the
// directory. It returns what it could not do. After a clean shutdown only
// the default bridge, mounts and the directory are left to remove.
func reap(dir, bridge string, pool netip.Prefix, logf func(string, ...any)) []error {
	var errs []error
	// Containers the API could not remove: runc delete --force kills and
	// deletes them (dockerd keeps runc's state under the exec-root).
	runcRoot := filepath.Join(dir, "exec", "runtime-runc", "moby")
	if entries, err := os.ReadDir(runcRoot); err == nil {
		for _, ent := range entries {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			out, err := exec.CommandContext(ctx, "runc", "--root", runcRoot, "delete", "--force", ent.Name()).CombinedOutput()
			cancel()
			if err != nil {
				logf("dockerd cleanup: runc delete --force %.12s: %v: %s", ent.Name(), err, bytes.TrimSpace(out))
			} else {
				logf("dockerd cleanup: deleted leftover container %.12s with runc", ent.Name())
			}
		}
	}
	// Processes whose command line names the directory: container shims
	// ("-address DIR/containerd.sock"), docker-proxy, and for a dead test
	// the daemons themselves.
	if pids := processesUsing(dir); len(pids) > 0 {
		for _, pid := range pids {
			logf("dockerd cleanup: killing leftover process %d (%s)", pid, cmdline(pid))
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		waitGone(pids, 10*time.Second)
	}
	if err := deleteBridges(bridge, pool, logf); err != nil {
		errs = append(errs, err)
	}
	if err := deleteRules(dir); err != nil {
		errs = append(errs, err)
	}
	// Unmount, remove, and check: a lazily detached mount can keep a file
	// busy for a moment, so retry a few times.
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = unmountUnder(dir); err == nil {
			if err = os.RemoveAll(dir); err == nil {
				break
			}
		}
		time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond)
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("remove %s: %w", dir, err))
	}
	if left := mountsUnder(dir); len(left) > 0 {
		errs = append(errs, fmt.Errorf("mounts left under %s: %v", dir, left))
	}
	return errs
}

// sweepStale reaps the directories of engines whose test process died: it
// can take their lock.
func sweepStale(logf func(string, ...any)) {
	dirs, _ := filepath.Glob(filepath.Join(tmpRoot, "pxd*"))
	for _, dir := range dirs {
		f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR, 0)
		if err != nil {
			continue // not an engine directory, or being created
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close() // a live engine
			continue
		}
		var pool netip.Prefix
		if b, err := os.ReadFile(filepath.Join(dir, poolName)); err == nil {
			pool, _ = netip.ParsePrefix(strings.TrimSpace(string(b)))
		}
		logf("dockerd: removing %s, left by a test process that died", dir)
		for _, err := range reap(dir, filepath.Base(dir), pool, logf) {
			logf("dockerd: sweep %s: %v", dir, err)
		}
		f.Close()
	}
	// Rules of engines whose directory is gone.
	if err := deleteRulesOf(func(dir string) bool {
		_, err := os.Stat(dir)
		return errors.Is(err, os.ErrNotExist)
	}); err != nil {
		logf("dockerd: sweep iptables rules: %v", err)
	}
}

// processesUsing returns the processes other than this one whose command
// line mentions dir (as dir/...).
func processesUsing(dir string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if strings.Contains(cmdline(pid), dir+"/") {
			pids = append(pids, pid)
		}
	}
	return pids
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
}

func waitGone(pids []int, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		alive := false
		for _, pid := range pids {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
				alive = true
			}
		}
		if !alive {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// deleteBridges deletes the engine's default bridge and the bridges with an
// address in pool: the networks of an engine that could not prune them.
func deleteBridges(bridge string, pool netip.Prefix, logf func(string, ...any)) error {
	ifs, err := net.Interfaces()
	if err != nil {
		return err
	}
	var errs []error
	for _, ifc := range ifs {
		if _, err := os.Stat(filepath.Join("/sys/class/net", ifc.Name, "bridge")); err != nil {
			continue // not a bridge
		}
		if ifc.Name == bridge {
			if out, err := exec.Command("ip", "link", "delete", ifc.Name).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("ip link delete %s: %v: %s", ifc.Name, err, bytes.TrimSpace(out)))
			}
			continue
		}
		if !pool.IsValid() {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok || !pool.Contains(ip.Unmap()) {
				continue
			}
			logf("dockerd cleanup: deleting leftover bridge %s (%s)", ifc.Name, ipn)
			if out, err := exec.Command("ip", "link", "delete", ifc.Name).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("ip link delete %s: %v: %s", ifc.Name, err, bytes.TrimSpace(out)))
			}
			break
		}
	}
	return errors.Join(errs...)
}

// deleteRules deletes the FORWARD rules carrying the marker of dir.
func deleteRules(dir string) error {
	return deleteRulesOf(func(d string) bool { return d == dir })
}

// deleteRulesOf deletes the FORWARD rules of InterContainer whose engine
// directory satisfies match.
func deleteRulesOf(match func(dir string) bool) error {
	if _, err := exec.LookPath("iptables"); err != nil {
		return nil
	}
	out, err := exec.Command("iptables", "-w", "-S", "FORWARD").Output()
	if err != nil {
		return nil // no usable iptables here: nothing of ours either
	}
	var errs []error
	for _, line := range strings.Split(string(out), "\n") {
		// iptables -S quotes the comment: --comment "panelx-...:/tmp/pxdNNN"
		fields := strings.Fields(line)
		if len(fields) < 2 || fields[0] != "-A" {
			continue
		}
		owner := ""
		for i, f := range fields {
			f = strings.Trim(f, `"`)
			fields[i] = f
			if d, ok := strings.CutPrefix(f, ruleMarker("")); ok {
				owner = d
			}
		}
		if owner == "" || !match(owner) {
			continue
		}
		fields[0] = "-D"
		if out, err := exec.Command("iptables", append([]string{"-w"}, fields...)...).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("iptables %s: %v: %s", strings.Join(fields, " "), err, bytes.TrimSpace(out)))
		}
	}
	return errors.Join(errs...)
}

// mountsUnder returns the mount points at or under dir, from this process's
// mountinfo (dockerd and containerd share the mount namespace), deepest
// first.
func mountsUnder(dir string) []string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var mps []string
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			mps = append(mps, mp)
		}
	}
	slices.SortStableFunc(mps, func(a, b string) int {
		return strings.Count(b, "/") - strings.Count(a, "/")
	})
	return mps
}

// unescapeMountinfo undoes the octal escapes (\040 for a space, ...) of
// /proc/self/mountinfo paths.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
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

// unmountUnder lazily unmounts everything at or under dir, deepest first,
// until nothing is left (a mount point can hold stacked mounts).
func unmountUnder(dir string) error {
	for round := 0; round < 10; round++ {
		mps := mountsUnder(dir)
		if len(mps) == 0 {
			return nil
		}
		for _, mp := range mps {
			if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil &&
				!errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
				return fmt.Errorf("unmount %s: %w", mp, err)
			}
		}
	}
	if left := mountsUnder(dir); len(left) > 0 {
		return fmt.Errorf("still mounted: %v", left)
	}
	return nil
}
