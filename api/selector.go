package api

import (
	"fmt"
	"strings"
)

// Operator of a label selector requirement.
type Operator string

const (
	OpEquals    Operator = "="
	OpNotEquals Operator = "!="
	OpIn        Operator = "in"
	OpNotIn     Operator = "notin"
	OpExists    Operator = "exists"
	OpNotExists Operator = "!"
)

// Requirement is one clause of a label selector.
type Requirement struct {
	Key    string
	Op     Operator
	Values []string
}

// Selector is a conjunction of requirements, written like Kubernetes label
// selectors: "tier=front,env!=prod,canary,!legacy,zone in (a,b)".
type Selector []Requirement

// Matches reports whether labels satisfy every requirement.
func (s Selector) Matches(labels map[string]string) bool {
	for _, r := range s {
		v, ok := labels[r.Key]
		switch r.Op {
		case OpEquals:
			if !ok || v != r.Values[0] {
				return false
			}
		case OpNotEquals:
			if ok && v == r.Values[0] {
				return false
			}
		case OpIn:
			if !ok || !contains(r.Values, v) {
				return false
			}
		case OpNotIn:
			if ok && contains(r.Values, v) {
				return false
			}
		case OpExists:
			if !ok {
				return false
			}
		case OpNotExists:
			if ok {
				return false
			}
		}
	}
	return true
}

func contains(vals []string, v string) bool {
	for _, x := range vals {
		if x == v {
			return true
		}
	}
	return false
}

// ParseSelector parses a label selector. The empty string selects everything.
func ParseSelector(s string) (Selector, error) {
	var sel Selector
	for _, clause := range splitClauses(s) {
		clause = strings.TrimSpace(clause)
		if clause == "" {
			return nil, fmt.Errorf("label selector %q: empty clause", s)
		}
		r, err := parseRequirement(clause)
		if err != nil {
			return nil, fmt.Errorf("label selector %q: %w", s, err)
		}
		sel = append(sel, r)
	}
	return sel, nil
}

// splitClauses splits on commas outside parentheses.
func splitClauses(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	var out []string
	depth, start := 0, 0
	for i, c := range s {
		switch c {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

func parseRequirement(c string) (Requirement, error) {
	checkKey := func(k string) error {
		if msg := labelKeyProblem(k); msg != "" {
			return fmt.Errorf("key %q: %s", k, msg)
		}
		return nil
	}
	checkValue := func(v string) error {
		if len(v) > MaxLabelValue || !labelValueRe.MatchString(v) {
			return fmt.Errorf("value %q is not a valid label value", v)
		}
		return nil
	}
	if k, ok := strings.CutPrefix(c, "!"); ok {
		k = strings.TrimSpace(k)
		return Requirement{Key: k, Op: OpNotExists}, checkKey(k)
	}
	for _, op := range []struct {
		sym string
		op  Operator
	}{{"!=", OpNotEquals}, {"==", OpEquals}, {"=", OpEquals}} {
		if k, v, ok := strings.Cut(c, op.sym); ok {
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if err := checkKey(k); err != nil {
				return Requirement{}, err
			}
			return Requirement{Key: k, Op: op.op, Values: []string{v}}, checkValue(v)
		}
	}
	fields := strings.Fields(c)
	if len(fields) == 1 {
		return Requirement{Key: fields[0], Op: OpExists}, checkKey(fields[0])
	}
	if len(fields) >= 3 && (fields[1] == "in" || fields[1] == "notin") {
		k := fields[0]
		if err := checkKey(k); err != nil {
			return Requirement{}, err
		}
		rest := strings.TrimSpace(strings.Join(fields[2:], " "))
		if !strings.HasPrefix(rest, "(") || !strings.HasSuffix(rest, ")") {
			return Requirement{}, fmt.Errorf("%q: values must be in parentheses", c)
		}
		var vals []string
		for _, v := range strings.Split(rest[1:len(rest)-1], ",") {
			v = strings.TrimSpace(v)
			if err := checkValue(v); err != nil {
				return Requirement{}, err
			}
			vals = append(vals, v)
		}
		return Requirement{Key: k, Op: Operator(fields[1]), Values: vals}, nil
	}
	return Requirement{}, fmt.Errorf("cannot parse %q", c)
}

// String writes the selector back in its text form.
func (s Selector) String() string {
	parts := make([]string, len(s))
	for i, r := range s {
		switch r.Op {
		case OpEquals, OpNotEquals:
			parts[i] = r.Key + string(r.Op) + r.Values[0]
		case OpIn, OpNotIn:
			parts[i] = r.Key + " " + string(r.Op) + " (" + strings.Join(r.Values, ",") + ")"
		case OpExists:
			parts[i] = r.Key
		case OpNotExists:
			parts[i] = "!" + r.Key
		}
	}
	return strings.Join(parts, ",")
}
