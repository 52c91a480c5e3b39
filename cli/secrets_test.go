package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/client"
)

// value is what no output and no error may show.
const value = "hunter2-$HOME-\\n-value"

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSecretValues(t *testing.T) {
	file := writeTemp(t, "password", value+"\n")
	env := writeTemp(t, "app.env", "# comment\n\nexport TOKEN=\""+value+"\"\r\n  PLAIN = a=b \nSINGLE='x'\nEMPTY=\nQUOTE=\"\n")
	got, err := secretValues([]string{"user=shop", "eq=a=b"}, []string{"pw=" + file, file, "in=-"}, []string{env}, strings.NewReader("from stdin"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"user": "shop", "eq": "a=b", "pw": value + "\n", "password": value + "\n", "in": "from stdin",
		"TOKEN": value, "PLAIN": " a=b ", "SINGLE": "x", "EMPTY": "", "QUOTE": `"`}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}

	bad := writeTemp(t, "bad.env", "OK=1\n"+value+"\n")
	for _, c := range []struct {
		name                string
		literals, files, ef []string
		want                string
	}{
		{"a literal without =", []string{value}, nil, nil, "--from-literal #1: want KEY=VALUE"},
		{"an empty key", []string{"=" + value}, nil, nil, "empty key"},
		{"a key twice", []string{"pw=" + value}, []string{"pw=" + file}, nil, `key "pw" given twice`},
		{"stdin twice", nil, []string{"a=-", "b=-"}, nil, "can be read once"},
		{"stdin without a key", nil, []string{"-"}, nil, "give the key"},
		{"a missing file", nil, []string{"k=/nonexistent/file"}, nil, "/nonexistent/file"},
		{"an env file line that is no pair", nil, nil, []string{bad}, "line 2: want KEY=VALUE"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := secretValues(c.literals, c.files, c.ef, strings.NewReader(""))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error shows the value: %v", err)
			}
		})
	}
}

func TestEnvValue(t *testing.T) {
	for in, want := range map[string]string{"plain $x \\ 'q'": "plain $x \\ 'q'", "two\nlines": `"two\nlines"`, "tab\there": `"tab\there"`, "": ""} {
		if got := envValue(in); got != want {
			t.Errorf("envValue(%q) = %q, want %q", in, got, want)
		}
	}
}

// fakeSecrets is a server's secrets collection of project shop.
type fakeSecrets struct {
	mu     sync.Mutex
	stored map[string]*api.Secret
	values map[string]map[string]string
	rotate string
}

func (f *fakeSecrets) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	const coll = "/api/v1/projects/shop/secrets"
	name, rest, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, coll), "/"), "/")
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/api/v1/admin/secret-key/rotate":
		f.rotate = r.URL.RawQuery
		writeJSONBody(w, http.StatusOK, client.RotateReport{KeyID: "k2", Retired: []string{"k1"}, Secrets: 3})
	case !strings.HasPrefix(r.URL.Path, coll):
		http.NotFound(w, r)
	case r.Method == http.MethodPost && name == "", r.Method == http.MethodPut && name != "":
		var in api.Secret
		data, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(data, &in); err != nil || r.Header.Get("Content-Type") != "application/json" {
			writeJSONBody(w, http.StatusBadRequest, api.Problem{Detail: "bad body"})
			return
		}
		cur := f.stored[in.Metadata.Name]
		switch {
		case r.Method == http.MethodPost && cur != nil:
			writeJSONBody(w, http.StatusConflict, api.Problem{Detail: "secret exists"})
			return
		case r.Method == http.MethodPut && cur == nil:
			writeJSONBody(w, http.StatusNotFound, api.Problem{Detail: "no secret"})
			return
		}
		out := in
		out.Spec = api.SecretSpec{Version: 1}
		for k := range in.Spec.Data {
			out.Spec.Keys = append(out.Spec.Keys, k)
		}
		slices.Sort(out.Spec.Keys)
		if cur != nil {
			out.Spec.Version = cur.Spec.Version
			if !reflect.DeepEqual(f.values[in.Metadata.Name], in.Spec.Data) {
				out.Spec.Version++
			}
		}
		f.stored[in.Metadata.Name], f.values[in.Metadata.Name] = &out, in.Spec.Data
		writeJSONBody(w, http.StatusOK, &out)
	case r.Method == http.MethodGet && f.stored[name] == nil:
		writeJSONBody(w, http.StatusNotFound, api.Problem{Detail: "secret not found"})
	case r.Method == http.MethodGet && rest == "data":
		writeJSONBody(w, http.StatusOK, client.SecretData{Kind: "SecretData", Version: f.stored[name].Spec.Version, Data: f.values[name]})
	case r.Method == http.MethodGet && rest == "":
		writeJSONBody(w, http.StatusOK, f.stored[name])
	default:
		http.NotFound(w, r)
	}
}

func TestCreateSecret(t *testing.T) {
	f := &fakeSecrets{stored: map[string]*api.Secret{}, values: map[string]map[string]string{}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	run := func(stdin string, args ...string) (string, error) {
		t.Helper()
		out, err := runCLI(t, srv.URL, stdin, args...)
		if strings.Contains(out, "hunter2") || (err != nil && strings.Contains(err.Error(), "hunter2")) {
			t.Errorf("panelx %s showed the value: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out, err
	}

	out, err := run("", "create", "secret", "db", "-p", "shop", "--from-literal", "password="+value, "--from-literal", "old=1")
	if err != nil || out != "secret/shop/db created (keys: old, password; version 1)\n" {
		t.Errorf("create: %v\n%s", err, out)
	}
	f.stored["db"].Metadata.Labels = map[string]string{"tier": "db"}
	if _, err := run("", "create", "secret", "db", "-p", "shop", "--from-literal", "password=x"); err == nil || !strings.Contains(err.Error(), "--update") {
		t.Errorf("create of an existing secret: %v", err)
	}
	out, err = run(value+"2", "create", "secret", "db", "-p", "shop", "--from-file", "password=-", "--update")
	if err != nil || out != "secret/shop/db replaced (keys: password; version 1 → 2; removed: old)\n" {
		t.Errorf("create --update: %v\n%s", err, out)
	}
	if got := f.stored["db"].Metadata.Labels["tier"]; got != "db" {
		t.Errorf("the labels went with --update: %v", f.stored["db"].Metadata.Labels)
	}
	out, err = run(value+"2", "create", "secret", "db", "-p", "shop", "--from-file", "password=-", "--update")
	if err != nil || out != "secret/shop/db unchanged (keys: password; version 2)\n" {
		t.Errorf("create --update with the same values: %v\n%s", err, out)
	}
	out, err = run("", "create", "secret", "fresh", "-p", "shop", "--from-literal", "k=v", "--update")
	if err != nil || !strings.Contains(out, "secret/shop/fresh created") {
		t.Errorf("create --update of a new secret: %v\n%s", err, out)
	}
	if _, err := run("", "create", "secret", "none", "-p", "shop"); err == nil || !strings.Contains(err.Error(), "no values") {
		t.Errorf("create without values: %v", err)
	}
	if _, err := run("", "create", "secret", "db", "--from-literal", "k=v"); err == nil || !strings.Contains(err.Error(), "-p PROJECT") {
		t.Errorf("create without a project: %v", err)
	}

	// get shows keys; --show-values the values, a multi-line one quoted.
	out, err = run("", "get", "secret", "db", "-p", "shop")
	if err != nil || !strings.Contains(out, "KEYS") || !strings.Contains(out, "password") {
		t.Errorf("get secret: %v\n%s", err, out)
	}
	f.values["db"] = map[string]string{"password": "s3cret", "cert": "line 1\nline 2"}
	out, err = runCLI(t, srv.URL, "", "get", "secret", "db", "-p", "shop", "--show-values")
	if err != nil || out != "cert=\"line 1\\nline 2\"\npassword=s3cret\n" {
		t.Errorf("get --show-values: %v\n%q", err, out)
	}
	out, err = runCLI(t, srv.URL, "", "get", "secret", "db", "-p", "shop", "--show-values", "-o", "json")
	var d client.SecretData
	if err != nil || json.Unmarshal([]byte(out), &d) != nil || d.Data["cert"] != "line 1\nline 2" {
		t.Errorf("get --show-values -o json: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"get", "secrets", "-p", "shop", "--show-values"}, {"get", "service", "web", "-p", "shop", "--show-values"}} {
		if _, err := runCLI(t, srv.URL, "", args...); err == nil || !strings.Contains(err.Error(), "one secret") {
			t.Errorf("%v: %v", args, err)
		}
	}
}

func TestSecretsRotateKey(t *testing.T) {
	f := &fakeSecrets{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	out, err := runCLI(t, srv.URL, "", "secrets", "rotate-key")
	if err != nil || !strings.Contains(out, "the active master key is now k2\nre-sealed 3 secret(s) and 0 registry credential(s)\nretired from the key file: k1\n") {
		t.Errorf("rotate-key: %v\n%s", err, out)
	}
	if _, err := runCLI(t, srv.URL, "", "secrets", "rotate-key", "--keep-old"); err != nil || f.rotate != "keepOld=true" {
		t.Errorf("rotate-key --keep-old: %v, query %q", err, f.rotate)
	}
}
