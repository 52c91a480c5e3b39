package main

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/internal/testimage"
)

// TestComposeLocalBuildIsUploaded: `panelx apply -f compose.yaml` of a
// service whose build: context is a directory of this machine uploads
// that directory (without what its .dockerignore leaves out) and the
// server builds it FROM an image of a private registry, with the project's
// registry credential; an unchanged context is not sent again and builds
// nothing; a changed one rolls out; one over the server's limit is refused
// with the limit named.
func TestComposeLocalBuildIsUploaded(t *testing.T) {
	t.Parallel()
	const limit = 4 << 20
	e := newSealedCLIEnv(t, fmt.Sprintf("PANELX_MAX_BUILD_CONTEXT=%d", limit))
	const password = "reg-pass-7c1d9e"
	reg := testimage.StartRegistry(t, testimage.RegistryOptions{Username: "builder", Password: password})
	base := reg.Push(t, uniqueName("upload")+"/base:1", testimage.Image(t, testimage.ImageOptions{}))
	project, port := uniqueName("upload"), freeTCPPort(t)

	dir := t.TempDir()
	app := filepath.Join(dir, "app")
	if err := os.MkdirAll(app, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(app, "Dockerfile"), "FROM "+base+"\nARG FLAVOUR\nCOPY . /data/\n")
	writeFile(t, filepath.Join(app, ".dockerignore"), "local-only.txt\n")
	writeFile(t, filepath.Join(app, "version.txt"), "v1")
	writeFile(t, filepath.Join(app, "local-only.txt"), "not for the server")
	compose := filepath.Join(dir, "compose.yaml")
	writeFile(t, compose, fmt.Sprintf(`name: %s
services:
  web:
    build:
      context: ./app
      args: {FLAVOUR: plain}
    ports: ["127.0.0.1:%d:8080"]
    environment: {DATA_DIR: /data}
`, project, port))

	// The project and its registry credential come first: the base image
	// is private.
	e.mustRun("apply", "-f", e.write("project.yaml", "apiVersion: panelx.dev/v1\nkind: Project\nmetadata: {name: "+project+"}\n"))
	req, _ := http.NewRequest("PUT", e.base+"/api/v1/projects/"+project+"/registry-credentials/"+reg.Host(),
		strings.NewReader(fmt.Sprintf(`{"username": "builder", "password": %q}`, password)))
	req.Header.Set("Authorization", "Bearer "+e.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("put the registry credential: %s", resp.Status)
	}

	out := e.mustRun("apply", "-f", compose, "--wait", "--timeout", "180s")
	if !strings.Contains(out, "uploaded") {
		t.Errorf("apply did not say it uploaded the context:\n%s", out)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/files/", port)
	if got := httpBody(t, url+"version.txt"); got != "v1" {
		t.Fatalf("the built service serves %q", got)
	}
	if code := httpStatus(t, url+"local-only.txt"); code != http.StatusNotFound {
		t.Errorf("a file .dockerignore leaves out reached the image: GET answered %d", code)
	}
	svc := e.service(project, "web")
	first := svc.Status.Build
	if first == nil || first.Phase != api.BuildSucceeded || svc.Spec.Build.Upload == nil ||
		!strings.Contains(first.Image, strings.TrimPrefix(svc.Spec.Build.Upload.Digest, "sha256:")[:12]) {
		t.Fatalf("build after the first apply: %+v, spec %+v", first, svc.Spec.Build)
	}

	// Unchanged: nothing uploaded, nothing built.
	out = e.mustRun("apply", "-f", compose)
	if !strings.Contains(out, "unchanged") || strings.Contains(out, "uploaded") || strings.Contains(out, "configured") {
		t.Errorf("a second apply of the same directory:\n%s", out)
	}
	if b := e.service(project, "web").Status.Build; b.Request != first.Request || b.Image != first.Image {
		t.Errorf("an unchanged context built again: %+v, was %+v", b, first)
	}

	// Changed: uploaded and rolled out.
	writeFile(t, filepath.Join(app, "version.txt"), "v2")
	e.mustRun("apply", "-f", compose, "--wait", "--timeout", "180s")
	waitBody(t, url+"version.txt", "v2")

	// The registry password is in no log line and no event.
	for _, args := range [][]string{{"logs", "web", "-p", project, "--build"}, {"events", "-p", project}} {
		if out := e.mustRun(args...); strings.Contains(out, password) {
			t.Errorf("panelx %s shows the registry password:\n%s", strings.Join(args, " "), out)
		}
	}
	if strings.Contains(e.logs.String(), password) {
		t.Error("the server logged the registry password")
	}

	// Over the limit: refused, the limit named, the service untouched.
	big := make([]byte, limit+1)
	rand.Read(big)
	if err := os.WriteFile(filepath.Join(app, "big.bin"), big, 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := e.run("", "apply", "-f", compose)
	if code == 0 || !strings.Contains(out, "413") || !strings.Contains(out, fmt.Sprint(limit)) {
		t.Errorf("an apply over the limit: exit %d\n%s", code, out)
	}
	if got := httpBody(t, url+"version.txt"); got != "v2" {
		t.Errorf("after a refused upload the service serves %q", got)
	}
	e.mustRun("delete", "project", project, "--wait", "--timeout", "90s")
}

func httpStatus(t testing.TB, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
