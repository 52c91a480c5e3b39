// Package examples holds example projects; this test keeps them valid.
package examples

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/compose"
)

func TestExamplesAreValid(t *testing.T) {
	files, err := filepath.Glob("*/*.y*ml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(filepath.Base(f), "compose") {
				res, err := compose.Convert(context.Background(), compose.Input{Files: []compose.File{{Path: f}}, Env: map[string]string{}})
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Objects) == 0 {
					t.Fatal("no objects")
				}
				for _, u := range res.Unmapped {
					t.Logf("not mapped: %s: %s", u.Field, u.Detail)
				}
				return
			}
			if !strings.Contains(string(data), "yaml-language-server: $schema=") {
				t.Error("no yaml-language-server schema comment")
			}
			if _, err := api.ParseManifests(data); err != nil {
				t.Fatal(err)
			}
		})
	}
}
