package policy

import (
	"fmt"
	"strconv"
	"strings"
)

// PortRange is an inclusive range of host ports.
type PortRange struct{ From, To int32 }

// PortRanges is a set of host port ranges.
type PortRanges []PortRange

// ParsePortRanges reads "1024-65535" or "80,443,8000-9000". The empty string
// is no ports at all.
func ParsePortRanges(s string) (PortRanges, error) {
	var out PortRanges
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		from, to, isRange := strings.Cut(part, "-")
		if !isRange {
			to = from
		}
		lo, err1 := parsePort(from)
		hi, err2 := parsePort(to)
		if err1 != nil || err2 != nil || lo > hi {
			return nil, fmt.Errorf("host port range %q: want a port (1–65535) or from-to, such as 1024-65535", part)
		}
		out = append(out, PortRange{From: lo, To: hi})
	}
	return out, nil
}

func parsePort(s string) (int32, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("bad port %q", s)
	}
	return int32(n), nil
}

// Contains reports whether port lies in one of the ranges.
func (r PortRanges) Contains(port int32) bool {
	for _, pr := range r {
		if port >= pr.From && port <= pr.To {
			return true
		}
	}
	return false
}

func (r PortRanges) String() string {
	if len(r) == 0 {
		return "none"
	}
	parts := make([]string, len(r))
	for i, pr := range r {
		if pr.From == pr.To {
			parts[i] = strconv.Itoa(int(pr.From))
		} else {
			parts[i] = fmt.Sprintf("%d-%d", pr.From, pr.To)
		}
	}
	return strings.Join(parts, ",")
}
