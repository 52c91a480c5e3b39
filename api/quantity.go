package api

import (
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strings"
)

// MinMemoryBytes is the smallest memory limit Docker accepts.
const MinMemoryBytes = 6 << 20

var (
	cpuRe    = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?|\.[0-9]+)$`)
	milliRe  = regexp.MustCompile(`^[0-9]+m$`)
	memoryRe = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?)(Ki|Mi|Gi|Ti|k|K|M|G|T)?$`)
)

var memorySuffixes = map[string]int64{
	"":   1,
	"k":  1000,
	"K":  1000,
	"M":  1000 * 1000,
	"G":  1000 * 1000 * 1000,
	"T":  1000 * 1000 * 1000 * 1000,
	"Ki": 1 << 10,
	"Mi": 1 << 20,
	"Gi": 1 << 30,
	"Ti": 1 << 40,
}

// NanoCPUs parses a CPU quantity: cores ("0.5", "2") or millicores ("500m").
// It returns the value in billionths of a core, as Docker's NanoCPUs wants.
func (q Quantity) NanoCPUs() (int64, error) {
	s := string(q)
	switch {
	case milliRe.MatchString(s):
		return scaleDecimal(strings.TrimSuffix(s, "m"), 1_000_000)
	case cpuRe.MatchString(s):
		return scaleDecimal(s, 1_000_000_000)
	default:
		return 0, fmt.Errorf("must be a number of cores such as \"0.5\" or millicores such as \"500m\"")
	}
}

// Bytes parses a memory quantity: plain bytes or a decimal (k, M, G, T) or
// binary (Ki, Mi, Gi, Ti) suffix.
func (q Quantity) Bytes() (int64, error) {
	m := memoryRe.FindStringSubmatch(string(q))
	if m == nil {
		return 0, fmt.Errorf("must be a byte quantity such as \"256Mi\", \"1Gi\" or \"500M\"")
	}
	return scaleDecimal(m[1], memorySuffixes[m[3]])
}

// scaleDecimal multiplies a non-negative decimal string by unit exactly and
// rejects results that are fractional or overflow int64.
func scaleDecimal(s string, unit int64) (int64, error) {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return 0, fmt.Errorf("not a number: %q", s)
	}
	r.Mul(r, new(big.Rat).SetInt64(unit))
	if !r.IsInt() {
		return 0, fmt.Errorf("%q is more precise than the smallest unit", s)
	}
	n := r.Num()
	if !n.IsInt64() || n.Int64() > math.MaxInt64/2 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n.Int64(), nil
}
