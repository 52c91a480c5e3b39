package apiserver

import (
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/apiserver/schema"
	"github.com/panelx/panelx/internal/version"
)

// schemaRef yields the schema of a body, defining what it needs in g.
type schemaRef func(g *schema.Generator) schema.Schema

func ref[T any]() schemaRef {
	return func(g *schema.Generator) schema.Schema { return g.For(reflect.TypeFor[T]()) }
}

func anyRef(*schema.Generator) schema.Schema { return schema.Schema{"type": "object"} }

// itemsRef is {"items": [T…]}, defined under name.
func itemsRef[T any](name string) schemaRef {
	return func(g *schema.Generator) schema.Schema {
		if _, ok := g.Defs()[name]; !ok {
			g.Defs()[name] = schema.Schema{"type": "object", "properties": schema.Schema{
				"items": schema.Schema{"type": "array", "items": g.For(reflect.TypeFor[T]())},
			}}
		}
		return schema.Schema{"$ref": g.RefPrefix + name}
	}
}

func manifestRef(kind api.Kind) schemaRef {
	return func(g *schema.Generator) schema.Schema { return schema.Manifests(g)[kind] }
}

// manifestStreamRef: one manifest or a JSON array of them; as YAML, any
// number of documents separated by "---".
func manifestStreamRef(g *schema.Generator) schema.Schema {
	m := schema.Manifests(g)
	one := schema.Schema{"oneOf": []any{m[api.KindProject], m[api.KindSecret], m[api.KindService], m[api.KindVolume]}}
	return schema.Schema{
		"description": "a manifest, a JSON array of manifests, or a multi-document YAML stream",
		"oneOf":       []any{one, schema.Schema{"type": "array", "items": one}},
	}
}

func manifestListRef(kind api.Kind) schemaRef {
	return func(g *schema.Generator) schema.Schema {
		name := string(kind) + "List"
		if _, ok := g.Defs()[name]; !ok {
			g.Defs()[name] = schema.Schema{"type": "object", "properties": schema.Schema{
				"apiVersion": schema.Schema{"type": "string", "const": api.APIVersion},
				"kind":       schema.Schema{"type": "string", "const": name},
				"metadata": schema.Schema{"type": "object", "properties": schema.Schema{
					"continue":        schema.Schema{"type": "string", "description": "pass as ?continue= for the next page; absent on the last page"},
					"resourceVersion": schema.Schema{"type": "string"},
				}},
				"items": schema.Schema{"type": "array", "items": schema.Manifests(g)[kind]},
			}}
		}
		return schema.Schema{"$ref": g.RefPrefix + name}
	}
}

var pathParamRe = regexp.MustCompile(`\{([^}]+)\}`)

var paramDescriptions = map[string]string{
	"project":  "project name",
	"service":  "service name",
	"volume":   "volume name",
	"userId":   "the member's user id (the Supabase user id)",
	"registry": "registry host[:port] as in image references: docker.io, ghcr.io, 127.0.0.1:5000",
	"id":       "the API token's id",
}

// openAPIDocument renders the OpenAPI 3.1 document of the route table.
func (s *Server) openAPIDocument() []byte {
	g := schema.ForManifests("#/components/schemas/")
	problem := g.For(reflect.TypeFor[Problem]())
	problemResp := func(desc string) schema.Schema {
		return schema.Schema{"description": desc, "content": schema.Schema{"application/problem+json": schema.Schema{"schema": problem}}}
	}
	paths := schema.Schema{}
	for _, rt := range s.routes {
		d := rt.doc
		op := schema.Schema{
			"operationId": operationID(rt.method, rt.pattern),
			"summary":     d.summary,
			"tags":        []string{d.tag},
		}
		var params []schema.Schema
		for _, m := range pathParamRe.FindAllStringSubmatch(rt.pattern, -1) {
			params = append(params, schema.Schema{"name": m[1], "in": "path", "required": true,
				"description": paramDescriptions[m[1]], "schema": schema.Schema{"type": "string"}})
		}
		for _, q := range d.query {
			params = append(params, schema.Schema{"name": q.name, "in": "query", "description": q.description, "schema": schema.Schema{"type": q.typ}})
		}
		if d.ifMatch {
			params = append(params, schema.Schema{"name": "If-Match", "in": "header",
				"description": "the ETag (resourceVersion) you read; 412 when the object changed since", "schema": schema.Schema{"type": "string"}})
		}
		if params != nil {
			op["parameters"] = params
		}
		if d.body != nil {
			content := schema.Schema{}
			body := d.body(g)
			if d.patch {
				content[mergePatchType] = schema.Schema{"schema": schema.Schema{"type": "object",
					"description": "an RFC 7396 merge patch of the object's manifest"}}
			} else {
				for _, ct := range []string{"application/json", "application/yaml"} {
					content[ct] = schema.Schema{"schema": body}
				}
			}
			op["requestBody"] = schema.Schema{"required": true, "content": content}
		}
		ok := schema.Schema{"description": http.StatusText(d.status)}
		if d.resp != nil {
			ok["content"] = schema.Schema{"application/json": schema.Schema{"schema": d.resp(g)}}
		}
		responses := schema.Schema{strconv.Itoa(d.status): ok}
		if rt.public {
			op["security"] = []schema.Schema{}
		} else {
			responses["401"] = problemResp("missing, invalid, expired or revoked credential")
			responses["403"] = problemResp("the caller's role does not allow this")
			responses["404"] = problemResp("not found — including projects the caller is not a member of")
		}
		if d.body != nil {
			responses["413"] = problemResp("body larger than the server's limit")
			responses["415"] = problemResp("unsupported Content-Type")
			responses["422"] = problemResp("invalid object or refused by the spec policy; errors lists every field")
		}
		if d.ifMatch {
			responses["412"] = problemResp("If-Match (or metadata.resourceVersion) is not the current version")
		}
		if rt.method == http.MethodPost || rt.method == http.MethodPut || rt.method == http.MethodDelete {
			responses["409"] = problemResp("conflict: already exists, being deleted, or a rule about members")
		}
		responses["default"] = problemResp("an error, as an RFC 9457 problem document")
		op["responses"] = responses
		item, _ := paths[rt.pattern].(schema.Schema)
		if item == nil {
			item = schema.Schema{}
			paths[rt.pattern] = item
		}
		item[strings.ToLower(rt.method)] = op
	}
	doc := schema.Schema{
		"openapi": "3.1.0",
		"info": schema.Schema{
			"title":   "PanelX API",
			"version": version.String(),
			"description": "Projects, services and volumes of a PanelX installation (" + api.APIVersion + "). " +
				"Authenticate with a Supabase access token or a PanelX API token as Authorization: Bearer <token>. " +
				"Errors are RFC 9457 problem documents.",
		},
		"jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
		"paths":             paths,
		"security":          []schema.Schema{{"bearer": []string{}}},
		"components": schema.Schema{
			"schemas": g.Defs(),
			"securitySchemes": schema.Schema{"bearer": schema.Schema{"type": "http", "scheme": "bearer",
				"description": "a Supabase access token (JWT) or a PanelX API token (pnx_…)"}},
		},
	}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic("openapi document: " + err.Error()) // static data: a bug, found by the tests
	}
	return data
}

// operationID derives a stable id: "GET /api/v1/projects/{project}" →
// "get_projects_project".
func operationID(method, pattern string) string {
	p := strings.TrimPrefix(pattern, "/api/v1")
	p = strings.NewReplacer("{", "", "}", "", "-", "_").Replace(p)
	parts := []string{strings.ToLower(method)}
	for _, seg := range strings.Split(p, "/") {
		if seg != "" {
			parts = append(parts, strings.ReplaceAll(seg, ".", "_"))
		}
	}
	return strings.Join(parts, "_")
}

func (s *Server) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Access-Control-Allow-Origin", "*") // a public document
	_, _ = w.Write(s.openapi)
}

// manifestSchema is the JSON Schema of one manifest document, rendered once.
var manifestSchema = sync.OnceValue(func() []byte {
	data, err := json.MarshalIndent(schema.ManifestDocument(), "", "  ")
	if err != nil {
		panic(err) // built from Go types: cannot fail
	}
	return data
})

// serveManifestSchema: GET /api/v1/schema.json.
func (s *Server) serveManifestSchema(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/schema+json")
	w.Header().Set("Access-Control-Allow-Origin", "*") // a public document, like the OpenAPI one
	_, _ = w.Write(manifestSchema())
}
