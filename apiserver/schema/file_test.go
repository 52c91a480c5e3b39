package schema_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/panelx/panelx/apiserver/schema"
)

var update = flag.Bool("update", false, "rewrite schema/panelx.schema.json")

// schemaFile is the copy of the manifests' schema kept in the repository
// for editors (examples point their yaml-language-server comment at it).
var schemaFile = filepath.Join("..", "..", "schema", "panelx.schema.json")

// TestSchemaFileIsCurrent fails when the Go types changed and the file did
// not follow: run `go test ./apiserver/schema -update`.
func TestSchemaFileIsCurrent(t *testing.T) {
	want, err := json.MarshalIndent(schema.ManifestDocument(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	if *update {
		if err := os.WriteFile(schemaFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatalf("%v (create it with `go test ./apiserver/schema -update`)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is out of date: run `go test ./apiserver/schema -update`", schemaFile)
	}
}
