package schema

import (
	"reflect"

	"github.com/panelx/panelx/api"
)

// ForManifests returns a generator that knows the enums and custom JSON
// forms of the api package.
func ForManifests(prefix string) *Generator {
	g := NewGenerator(prefix)
	enum := func(t reflect.Type, vals ...string) { g.Enums[t] = vals }
	var kinds []string
	for _, k := range api.Kinds {
		kinds = append(kinds, string(k))
	}
	enum(reflect.TypeFor[api.Kind](), kinds...)
	enum(reflect.TypeFor[api.PullPolicy](), string(api.PullAlways), string(api.PullIfNotPresent), string(api.PullNever))
	enum(reflect.TypeFor[api.RestartPolicy](), string(api.RestartAlways), string(api.RestartOnFailure), string(api.RestartNever))
	enum(reflect.TypeFor[api.Protocol](), string(api.ProtocolTCP), string(api.ProtocolUDP))
	enum(reflect.TypeFor[api.ReclaimPolicy](), string(api.ReclaimRetain), string(api.ReclaimDelete))
	enum(reflect.TypeFor[api.ConditionStatus](), string(api.ConditionTrue), string(api.ConditionFalse), string(api.ConditionUnknown))
	enum(reflect.TypeFor[api.Phase](), string(api.PhasePending), string(api.PhaseProgressing), string(api.PhaseRunning),
		string(api.PhaseReady), string(api.PhaseDegraded), string(api.PhaseFailed), string(api.PhaseDeleting))
	g.Overrides[reflect.TypeFor[api.Duration]()] = Schema{"type": "string", "description": `a Go duration such as "5s" or "1m30s"`}
	g.Overrides[reflect.TypeFor[api.Sealed]()] = Schema{"type": "object", "readOnly": true,
		"description": "the sealed values: kept by the server, never returned; send spec.data instead"}
	// YAML numbers are accepted where a quantity belongs (cpus: 0.5).
	g.Overrides[reflect.TypeFor[api.Quantity]()] = Schema{"type": []string{"string", "number"},
		"description": `CPUs as cores ("0.5") or millicores ("500m"); memory as bytes with an optional suffix ("256Mi", "1G")`}
	return g
}

// Manifests defines every kind (Project, Secret, Service, Volume) in g and returns their refs
// by kind.
func Manifests(g *Generator) map[api.Kind]Schema {
	out := map[api.Kind]Schema{}
	for _, kind := range api.Kinds {
		obj, _ := api.New(kind)
		out[kind] = g.Define(reflect.TypeOf(obj), string(kind))
	}
	return out
}

// ManifestDocument is a standalone JSON Schema that accepts any one PanelX
// manifest (a Project, Secret, Service or Volume), for editors and GitOps checks.
func ManifestDocument() Schema {
	g := ForManifests("#/$defs/")
	refs := Manifests(g)
	var one []Schema
	for _, kind := range api.Kinds {
		one = append(one, refs[kind])
	}
	return Schema{
		"$schema": "https://json-schema.org/draft/2020-12/schema",
		"$id":     "https://panelx.dev/schemas/v1/manifest.json",
		"title":   "PanelX manifest (" + api.APIVersion + ")",
		"oneOf":   one,
		"$defs":   g.Defs(),
	}
}
