package api

import (
	"strings"
	"testing"
)

func TestDidYouMean(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"one letter missing", "spec: {image: nginx, replcas: 2}", `unknown field "replcas"; did you mean "replicas"?`},
		{"another case", "spec: {image: nginx, ports: [{containerport: 80}]}", `unknown field "containerport"; did you mean "containerPort"?`},
		{"two letters swapped", "spec: {image: nginx, heatlhcheck: {command: [x]}}", `did you mean "healthcheck"?`},
		{"nothing close", "spec: {image: nginx, flavour: vanilla}", `unknown field "flavour"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseManifests([]byte("apiVersion: panelx.dev/v1\nkind: Service\nmetadata: {project: p, name: web}\n" + tt.doc + "\n"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to say %s", err, tt.want)
			}
			if tt.name == "nothing close" && strings.Contains(err.Error(), "did you mean") {
				t.Errorf("a suggestion for a field nothing is close to: %v", err)
			}
		})
	}
}

func TestEditDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"a", "", 1}, {"replicas", "replcas", 1}, {"kitten", "sitting", 3}, {"image", "imgae", 2}} {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
