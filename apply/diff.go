package apply

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/panelx/panelx/api"
)

// Diff describes how new differs from old in what a manifest controls —
// labels, user annotations and spec — one changed field per line:
//
//	~ spec.env[LOG_LEVEL].value: "info" → "debug"
//	+ spec.ports[0].hostPort: 8080
//	- metadata.labels.tier: "front"
//
// old may be nil (everything is added). Equal objects give "".
func Diff(old, new api.Object) string {
	a, b := map[string]string{}, map[string]string{}
	if old != nil {
		flattenObject(old, a)
	}
	flattenObject(new, b)
	var lines []string
	for _, k := range slices.Sorted(maps.Keys(b)) {
		switch va, ok := a[k]; {
		case !ok:
			lines = append(lines, "+ "+k+": "+b[k])
		case va != b[k]:
			lines = append(lines, "~ "+k+": "+va+" → "+b[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(a)) {
		if _, ok := b[k]; !ok {
			lines = append(lines, "- "+k+": "+a[k])
		}
	}
	slices.SortStableFunc(lines, func(x, y string) int { return strings.Compare(x[2:], y[2:]) })
	return strings.Join(lines, "\n")
}

func flattenObject(obj api.Object, out map[string]string) {
	m := obj.GetMeta()
	for k, v := range m.Labels {
		out["metadata.labels."+k] = strconv.Quote(v)
	}
	for k, v := range m.Annotations {
		if !strings.HasPrefix(k, SystemAnnotationPrefix) {
			out["metadata.annotations."+k] = strconv.Quote(v)
		}
	}
	spec := obj.SpecPtr()
	if sec, ok := obj.(*api.Secret); ok {
		// Never values, nor sealed data: the keys and the version say it.
		spec = &sec.Redacted().Spec
	}
	data, err := json.Marshal(spec)
	if err != nil {
		out["spec"] = fmt.Sprintf("<%v>", err)
		return
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		out["spec"] = fmt.Sprintf("<%v>", err)
		return
	}
	flatten("spec", v, out)
}

// flatten writes the leaves of a JSON value under path. Lists whose items
// all have distinct names are keyed by name, so inserting an env var does
// not show every later one as changed.
func flatten(path string, v any, out map[string]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			flatten(path+"."+k, e, out)
		}
	case []any:
		names := namesOf(v)
		for i, e := range v {
			elemPath := path + "[" + strconv.Itoa(i) + "]"
			if names != nil {
				elemPath = path + "[" + names[i] + "]"
				rest := maps.Clone(e.(map[string]any))
				delete(rest, "name")
				if len(rest) == 0 {
					out[elemPath] = "{}" // an item that is only a name
					continue
				}
				e = rest
			}
			flatten(elemPath, e, out)
		}
		if len(v) == 0 {
			out[path] = "[]"
		}
	case string:
		out[path] = strconv.Quote(v)
	default:
		data, _ := json.Marshal(v)
		out[path] = string(data)
	}
}

func namesOf(list []any) []string {
	names := make([]string, len(list))
	seen := map[string]bool{}
	for i, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return nil
		}
		n, ok := m["name"].(string)
		if !ok || n == "" || seen[n] {
			return nil
		}
		seen[n] = true
		names[i] = n
	}
	return names
}
