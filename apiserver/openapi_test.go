package apiserver_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// TestOpenAPICoversEveryRoute walks chi's route tree: every method and
// route the server answers must be in the document, and the document must
// describe nothing the server does not answer.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	e := newEnv(t)
	r := e.must(t, http.StatusOK, req{method: "GET", path: "/api/v1/openapi.json"})
	var doc struct {
		OpenAPI    string                               `json:"openapi"`
		Paths      map[string]map[string]map[string]any `json:"paths"`
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(r.Body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi %q", doc.OpenAPI)
	}
	served := map[string]bool{}
	for _, rt := range walkRoutes(t, e) {
		method, route := strings.ToLower(rt[0]), rt[1]
		served[method+" "+route] = true
		op, ok := doc.Paths[route][method]
		if !ok {
			t.Errorf("%s %s is not in the OpenAPI document", rt[0], route)
			continue
		}
		if op["operationId"] == "" || op["responses"] == nil {
			t.Errorf("%s %s: incomplete operation %v", rt[0], route, op)
		}
		// Every path parameter is declared.
		for _, m := range regexp.MustCompile(`\{([^}]+)\}`).FindAllStringSubmatch(route, -1) {
			if !strings.Contains(string(mustJSON(t, op["parameters"])), `"name":"`+m[1]+`"`) {
				t.Errorf("%s %s: parameter %s not declared", rt[0], route, m[1])
			}
		}
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if !served[method+" "+path] {
				t.Errorf("the document describes %s %s, which is not served", method, path)
			}
		}
	}
	for _, name := range []string{"Project", "Service", "Volume", "ServiceList", "Problem", "FieldError", "Member", "APIToken"} {
		if doc.Components.Schemas[name] == nil {
			t.Errorf("no component schema %s", name)
		}
	}
	// Every $ref resolves.
	for _, ref := range regexp.MustCompile(`"\$ref":"#/components/schemas/([^"]+)"`).FindAllStringSubmatch(string(r.Body), -1) {
		if doc.Components.Schemas[ref[1]] == nil {
			t.Errorf("dangling $ref %s", ref[1])
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
