package dockerd

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
)

// Candidate pools are 10.X.0.0/16 for X in [poolFirst, poolLast].
const (
	poolFirst = 200
	poolLast  = 250
)

// poolMu serializes choosing a pool and writing it to the engine directory
// within this process; other processes see the pool file.
var poolMu sync.Mutex

// pickPool chooses a /16 for the engine in dir that overlaps nothing in use
// and records it in dir/pool. In use are the host's addresses and routes,
// the main daemon's networks and default address pools, and the pools of
// the other private engines (their pool files under /tmp/pxd*).
func pickPool(dir string) (netip.Prefix, error) {
	poolMu.Lock()
	defer poolMu.Unlock()
	used := hostPrefixes()
	used = append(used, mainDaemonPrefixes()...)
	used = append(used, enginePools()...)
	for _, x := range rand.Perm(poolLast - poolFirst + 1) {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(poolFirst + x), 0, 0}), 16)
		if overlapsAny(p, used) {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, poolName), []byte(p.String()+"\n"), 0o600); err != nil {
			return netip.Prefix{}, err
		}
		return p, nil
	}
	return netip.Prefix{}, fmt.Errorf("no free address pool among 10.%d.0.0/16..10.%d.0.0/16 (in use: %v)", poolFirst, poolLast, used)
}

func overlapsAny(p netip.Prefix, used []netip.Prefix) bool {
	for _, u := range used {
		if u.Bits() > 0 && p.Overlaps(u) {
			return true
		}
	}
	return false
}

// hostPrefixes returns the networks of the host's addresses and the
// destinations of its IPv4 routes (the default route excluded).
func hostPrefixes() []netip.Prefix {
	var out []netip.Prefix
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() {
				out = append(out, p.Masked())
			}
		}
	}
	// /proc/net/route: Iface Destination Gateway Flags RefCnt Use Metric
	// Mask ..., addresses in little-endian hex.
	data, _ := os.ReadFile("/proc/net/route")
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		dst, ok1 := leHexAddr(f[1])
		mask, ok2 := leHexAddr(f[7])
		if !ok1 || !ok2 {
			continue
		}
		bits, _ := net.IPMask(mask.AsSlice()).Size()
		if bits > 0 {
			out = append(out, netip.PrefixFrom(dst, bits).Masked())
		}
	}
	return out
}

func leHexAddr(s string) (netip.Addr, bool) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 4 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte{b[3], b[2], b[1], b[0]}), true
}

// mainDaemonPrefixes returns the subnets of the main daemon's networks and
// its configured default address pools, if it answers (best effort: a
// network of the main daemon with a bridge is among the host routes too).
func mainDaemonPrefixes() []netip.Prefix {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out []netip.Prefix
	if nets, err := cli.NetworkList(ctx, network.ListOptions{}); err == nil {
		for _, n := range nets {
			for _, c := range n.IPAM.Config {
				if p, err := netip.ParsePrefix(c.Subnet); err == nil {
					out = append(out, p.Masked())
				}
			}
		}
	}
	if info, err := cli.Info(ctx); err == nil {
		for _, ap := range info.DefaultAddressPools {
			if p, err := netip.ParsePrefix(ap.Base); err == nil {
				out = append(out, p.Masked())
			}
		}
	}
	return out
}

// enginePools returns the pools recorded by the private engines of every
// test process (live ones, and dead ones not swept yet).
func enginePools() []netip.Prefix {
	files, _ := filepath.Glob(filepath.Join(tmpRoot, "pxd*", poolName))
	var out []netip.Prefix
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil {
			if p, err := netip.ParsePrefix(strings.TrimSpace(string(b))); err == nil {
				out = append(out, p)
			}
		}
	}
	return out
}
