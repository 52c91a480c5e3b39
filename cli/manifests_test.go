package cli

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/panelx/panelx/api"
)

// TestApplyErrorNamesTheFile: the server numbers the documents of the
// joined stream; the CLI says which file and which document of it.
func TestApplyErrorNamesTheFile(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSONBody(w, http.StatusUnprocessableEntity, api.Problem{Title: "Unprocessable Entity", Status: 422,
			Detail: "2 documents are invalid",
			Errors: []*api.FieldError{
				{Field: "[1].spec.replicas", Type: api.ErrInvalid, Detail: "must be 0 to 100"},
				{Field: "[3].spec.image", Type: api.ErrRequired, Detail: "required"},
			}})
	}))
	defer srv.Close()
	dir := t.TempDir()
	doc := func(name string) string {
		return "apiVersion: panelx.dev/v1\nkind: Service\nmetadata: {project: p, name: " + name + "}\nspec: {image: x}\n"
	}
	for name, content := range map[string]string{
		"a.yaml": doc("one") + "---\n" + doc("two"),
		"b.yaml": doc("three") + "---\n" + doc("four"),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, err := runCLI(t, srv.URL, "", "apply", "-f", dir)
	if err == nil {
		t.Fatalf("apply succeeded:\n%s", out)
	}
	for _, want := range []string{
		filepath.Join(dir, "a.yaml") + ", document 2: spec.replicas",
		filepath.Join(dir, "b.yaml") + ", document 2: spec.image",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
}
