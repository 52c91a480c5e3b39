package api

import (
	"reflect"
	"strings"
	"testing"
)

func TestMarshalYAMLRoundTrips(t *testing.T) {
	objs, err := ParseManifests([]byte(goodService + "---\napiVersion: panelx.dev/v1\nkind: Project\nmetadata: {name: shop}\nspec: {domain: \"123.example.com\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := MarshalYAMLStream(objs)
	if err != nil {
		t.Fatal(err)
	}
	text := string(out)
	if !strings.HasPrefix(text, "apiVersion: panelx.dev/v1\nkind: Service\nmetadata:") {
		t.Errorf("field order lost:\n%s", text)
	}
	if strings.Contains(text, "{") {
		t.Errorf("flow style left in the output:\n%s", text)
	}
	if !strings.Contains(text, `value: "8080"`) {
		t.Errorf("a numeric-looking string is not quoted:\n%s", text)
	}
	back, err := ParseManifests(out)
	if err != nil {
		t.Fatalf("the output does not parse back: %v\n%s", err, text)
	}
	if !reflect.DeepEqual(back, objs) {
		t.Errorf("round trip changed the objects:\n%s", text)
	}
}
