// Package schema generates JSON Schemas (draft 2020-12, the dialect of
// OpenAPI 3.1) from Go types, following encoding/json's field names, and
// knows the PanelX manifests: [Manifests] is used by the OpenAPI document
// and by anything else that needs a schema of the resources (editors,
// GitOps checks).
//
// The schemas describe shape: field names, types, enums, and that unknown
// fields are refused (additionalProperties: false), as the strict decoder
// does. Value rules (name syntax, required fields, ranges) stay in
// api.Validate, which reports them as 422 field errors.
package schema

import (
	"encoding/json"
	"reflect"
	"strings"
	"time"
)

// Schema is one JSON Schema object.
type Schema = map[string]any

// Generator turns Go types into schemas, collecting every named struct as a
// definition referenced with $ref.
type Generator struct {
	// RefPrefix starts every $ref: "#/components/schemas/" for OpenAPI,
	// "#/$defs/" for a standalone document.
	RefPrefix string
	// Enums lists the allowed values of named string types.
	Enums map[reflect.Type][]string
	// Overrides give the schema of types with a custom JSON form.
	Overrides map[reflect.Type]Schema

	defs  map[string]Schema
	names map[reflect.Type]string
}

// NewGenerator returns a generator with refs under prefix.
func NewGenerator(prefix string) *Generator {
	return &Generator{
		RefPrefix: prefix,
		Enums:     map[reflect.Type][]string{},
		Overrides: map[reflect.Type]Schema{},
		defs:      map[string]Schema{},
		names:     map[reflect.Type]string{},
	}
}

// Defs returns the definitions collected so far, by name.
func (g *Generator) Defs() map[string]Schema { return g.defs }

// Define registers t under name (default: its Go name) and returns a $ref.
func (g *Generator) Define(t reflect.Type, name string) Schema {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if existing, ok := g.names[t]; ok {
		return Schema{"$ref": g.RefPrefix + existing}
	}
	if name == "" {
		name = g.nameOf(t)
	}
	g.names[t] = name
	g.defs[name] = nil // reserve: recursive types refer to it while it is built
	g.defs[name] = g.structSchema(t)
	return Schema{"$ref": g.RefPrefix + name}
}

// For returns the schema of t, defining named structs on the way.
func (g *Generator) For(t reflect.Type) Schema {
	if s, ok := g.Overrides[t]; ok {
		return clone(s)
	}
	if t == reflect.TypeFor[time.Time]() {
		return Schema{"type": "string", "format": "date-time"}
	}
	if t == reflect.TypeFor[json.RawMessage]() {
		return Schema{}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.For(t.Elem())
	case reflect.Struct:
		if t.Name() == "" {
			return g.structSchema(t)
		}
		return g.Define(t, "")
	case reflect.Map:
		return Schema{"type": "object", "additionalProperties": g.For(t.Elem())}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return Schema{"type": "string", "contentEncoding": "base64"}
		}
		return Schema{"type": "array", "items": g.For(t.Elem())}
	case reflect.String:
		s := Schema{"type": "string"}
		if vals, ok := g.Enums[t]; ok {
			s["enum"] = vals
		}
		return s
	case reflect.Bool:
		return Schema{"type": "boolean"}
	case reflect.Int8, reflect.Int16, reflect.Int32:
		return Schema{"type": "integer", "format": "int32"}
	case reflect.Int, reflect.Int64:
		return Schema{"type": "integer", "format": "int64"}
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint, reflect.Uint64:
		return Schema{"type": "integer", "minimum": 0}
	case reflect.Float32, reflect.Float64:
		return Schema{"type": "number"}
	}
	return Schema{} // interfaces: anything
}

func (g *Generator) structSchema(t reflect.Type) Schema {
	props := Schema{}
	g.addFields(t, props)
	return Schema{"type": "object", "properties": props, "additionalProperties": false}
}

// addFields adds t's JSON fields to props, flattening embedded structs
// without a JSON name as encoding/json does.
func (g *Generator) addFields(t reflect.Type, props Schema) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				g.addFields(ft, props)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		props[name] = g.For(f.Type)
	}
}

func (g *Generator) nameOf(t reflect.Type) string {
	name := t.Name()
	if _, taken := g.defs[name]; taken || name == "" {
		pkg := t.PkgPath()
		pkg = pkg[strings.LastIndex(pkg, "/")+1:]
		name = strings.ToUpper(pkg[:1]) + pkg[1:] + name
	}
	return name
}

func clone(s Schema) Schema {
	out := make(Schema, len(s))
	for k, v := range s {
		out[k] = v
	}
	return out
}
