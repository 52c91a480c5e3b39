package schema

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/panelx/panelx/api"
)

// TestManifestSchemaCoversEveryField walks the Go types and checks every
// JSON field appears in the schema, so a field added to api/types.go shows
// up in the OpenAPI document without anyone remembering to add it.
func TestManifestSchemaCoversEveryField(t *testing.T) {
	g := ForManifests("#/$defs/")
	Manifests(g)
	defs := g.Defs()
	for _, name := range []string{"Project", "Service", "Volume", "ServiceSpec", "VolumeMount", "ObjectMeta", "Port", "Healthcheck"} {
		if defs[name] == nil {
			t.Fatalf("no definition %s; have %v", name, keys(defs))
		}
	}
	svc := defs["Service"]["properties"].(Schema)
	for _, f := range []string{"apiVersion", "kind", "metadata", "spec", "status"} {
		if _, ok := svc[f]; !ok {
			t.Errorf("Service schema lacks %s", f)
		}
	}
	spec := defs["ServiceSpec"]["properties"].(Schema)
	st := reflect.TypeFor[api.ServiceSpec]()
	for i := 0; i < st.NumField(); i++ {
		name, _, _ := strings.Cut(st.Field(i).Tag.Get("json"), ",")
		if _, ok := spec[name]; !ok {
			t.Errorf("ServiceSpec schema lacks %s", name)
		}
	}
	if defs["ServiceSpec"]["additionalProperties"] != false {
		t.Error("unknown fields must be refused, as the strict decoder does")
	}
	if got := spec["imagePullPolicy"].(Schema)["enum"]; !reflect.DeepEqual(got, []string{"Always", "IfNotPresent", "Never"}) {
		t.Errorf("imagePullPolicy enum = %v", got)
	}
	if got := spec["replicas"].(Schema)["type"]; got != "integer" {
		t.Errorf("replicas type = %v", got)
	}
	if got := defs["ObjectMeta"]["properties"].(Schema)["creationTimestamp"].(Schema)["format"]; got != "date-time" {
		t.Errorf("creationTimestamp format = %v", got)
	}
}

func TestManifestDocumentIsJSON(t *testing.T) {
	data, err := json.Marshal(ManifestDocument())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "#/components/") || !strings.Contains(string(data), `"$ref":"#/$defs/Service"`) {
		t.Errorf("refs point to the wrong place: %.300s", data)
	}
}

func TestRecursiveAndAnonymousTypes(t *testing.T) {
	type node struct {
		Name     string  `json:"name"`
		Children []*node `json:"children,omitempty"`
		Inline   struct {
			A int `json:"a"`
		} `json:"inline"`
		Skip   string `json:"-"`
		hidden string
	}
	g := NewGenerator("#/$defs/")
	ref := g.For(reflect.TypeFor[node]())
	if ref["$ref"] != "#/$defs/node" {
		t.Fatalf("ref = %v", ref)
	}
	props := g.Defs()["node"]["properties"].(Schema)
	if props["children"].(Schema)["items"].(Schema)["$ref"] != "#/$defs/node" {
		t.Errorf("recursive ref = %v", props["children"])
	}
	if _, ok := props["inline"].(Schema)["properties"].(Schema)["a"]; !ok {
		t.Errorf("inline struct = %v", props["inline"])
	}
	if _, ok := props["Skip"]; ok || len(props) != 3 {
		t.Errorf("properties = %v", keys(props))
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
