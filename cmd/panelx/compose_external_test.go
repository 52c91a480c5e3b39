package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/volume"

	"github.com/panelx/panelx/internal/testenv"
	"github.com/panelx/panelx/internal/testimage"
	"github.com/panelx/panelx/naming"
)

// TestComposeExternalVolumeIsAdopted: an administrator's Compose file with
// an external: true volume mounts that very Docker volume. While it does
// not exist the service waits and says why, and nothing creates an empty
// one in its place; once it exists the service runs on it; deleting the
// project leaves it, data and all, for the next project that mounts it.
func TestComposeExternalVolumeIsAdopted(t *testing.T) {
	t.Parallel()
	e := newCLIEnv(t, "PANELX_ADMIN_USERS=alice")
	docker := testenv.Docker(t)
	ctx := context.Background()
	reg := testimage.StartRegistry(t, testimage.RegistryOptions{})
	img := reg.Push(t, uniqueName("ext")+"/app:1", testimage.Image(t, testimage.ImageOptions{Version: "1"}))
	legacy := uniqueName("legacy_pgdata")
	t.Cleanup(func() { _ = docker.VolumeRemove(context.Background(), legacy, true) })

	file := func(project string, port int) string {
		return e.write("compose.yaml", fmt.Sprintf(`name: %s
services:
  app:
    image: %s
    ports: ["127.0.0.1:%d:8080"]
    volumes: ["data:/data"]
volumes:
  data:
    external: true
    name: %s
`, project, img, port, legacy))
	}
	first, port := uniqueName("ext"), freeTCPPort(t)
	e.mustRun("apply", "-f", file(first, port))
	// Waiting, and saying why; no volume of that name appears.
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := e.mustRun("describe", "service", "app", "-p", first)
		if strings.Contains(out, "DockerVolumeNotFound") && strings.Contains(out, legacy) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the service does not say its volume is missing:\n%s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, err := docker.VolumeInspect(ctx, legacy); err == nil {
		t.Fatal("a Docker volume was created in place of the external one")
	}

	// It appears: the service runs on it.
	if _, err := docker.VolumeCreate(ctx, volume.CreateOptions{Name: legacy}); err != nil {
		t.Fatal(err)
	}
	// (PanelX sees no events of volumes it does not own: the service
	// looks again every few seconds, and is Degraded until then.)
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(time.Second) {
		out, code := e.run("", "apply", "-f", file(first, port), "--wait", "--timeout", "90s")
		if code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never Ready on the external volume:\n%s", out)
		}
	}
	put, err := http.NewRequest(http.MethodPut, fmt.Sprintf("http://127.0.0.1:%d/files/hello.txt", port), bytes.NewBufferString("kept"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(put)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	e.mustRun("delete", "project", first, "--wait", "--timeout", "90s")
	if _, err := docker.VolumeInspect(ctx, legacy); err != nil {
		t.Fatalf("deleting the project removed the external volume: %v", err)
	}

	// The next project finds the data.
	second, port2 := uniqueName("ext"), freeTCPPort(t)
	e.mustRun("apply", "-f", file(second, port2), "--wait", "--timeout", "90s")
	if got := httpBody(t, fmt.Sprintf("http://127.0.0.1:%d/files/hello.txt", port2)); got != "kept" {
		t.Errorf("the second project reads %q from the external volume", got)
	}
	e.mustRun("delete", "project", second, "--wait", "--timeout", "90s")
}

// TestComposeSecretsAsFiles: a Compose file's secrets become Secrets of
// the project (sealed by the server) and files in the service's
// containers at /run/secrets/<name>, never in its environment or labels; a
// new value applied rolls the service onto it.
func TestComposeSecretsAsFiles(t *testing.T) {
	t.Parallel()
	e := newSealedCLIEnv(t)
	docker := testenv.Docker(t)
	reg := testimage.StartRegistry(t, testimage.RegistryOptions{})
	img := reg.Push(t, uniqueName("sec")+"/app:1", testimage.Image(t, testimage.ImageOptions{Version: "1"}))
	project, port := uniqueName("sec"), freeTCPPort(t)
	file := e.write("compose.yaml", fmt.Sprintf(`name: %s
services:
  app:
    image: %s
    ports: ["127.0.0.1:%d:8080"]
    environment: {DATA_DIR: /run/secrets}
    secrets: [db_password]
secrets:
  db_password: {file: ./db_password.txt}
`, project, img, port))
	secretFile := filepath.Join(filepath.Dir(file), "db_password.txt")
	writeFile(t, secretFile, "first-value")
	e.mustRun("apply", "-f", file, "--wait", "--timeout", "90s")
	url := fmt.Sprintf("http://127.0.0.1:%d/files/db_password", port)
	if got := httpBody(t, url); got != "first-value" {
		t.Fatalf("the secret file holds %q", got)
	}
	c, err := docker.ContainerInspect(context.Background(), naming.ContainerName(project, "app", 0))
	if err != nil {
		t.Fatal(err)
	}
	if cfg := fmt.Sprint(c.Config.Env, c.Config.Labels); strings.Contains(cfg, "first-value") {
		t.Errorf("the secret's value is in the container's configuration: %s", cfg)
	}
	if out := e.mustRun("get", "secret", "db-password", "-p", project, "-o", "yaml"); strings.Contains(out, "first-value") {
		t.Errorf("the server returns the secret's value:\n%s", out)
	}

	writeFile(t, secretFile, "second-value")
	e.mustRun("apply", "-f", file, "--wait", "--timeout", "90s")
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if got := httpBody(t, url); got == "second-value" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the service never read the new value (still %q)", got)
		}
	}
	e.mustRun("delete", "project", project, "--wait", "--timeout", "90s")
}

func writeFile(t testing.TB, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
