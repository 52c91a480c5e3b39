package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/panelx/panelx/internal/testimage"
)

// TestComposeImportLosesNothingSilently: through the real server, a bind
// mount is refused to a user who is not an administrator (with the way
// out), dropped only when asked; profiles come from --profile; a
// container_name and network aliases still answer; a file that imports no
// service fails.
func TestComposeImportLosesNothingSilently(t *testing.T) {
	e := newCLIEnv(t)
	project := uniqueName("stack")
	file := e.write("docker-compose.yml", fmt.Sprintf(`name: %s
services:
  db:
    image: postgres:16
    volumes: ["/srv/%[1]s/pgdata:/var/lib/postgresql/data"]
  debug:
    image: busybox:1
    profiles: [debug]
`, project))
	out, code := e.run("", "apply", "-f", file, "--dry-run")
	if code == 0 || !strings.Contains(out, "hostPath") || !strings.Contains(out, "--drop-bind-mounts") {
		t.Errorf("a bind mount applied by a user who is not an administrator: exit %d\n%s", code, out)
	}
	out = e.mustRun("apply", "-f", file, "--dry-run", "--drop-bind-mounts")
	if !strings.Contains(out, "host bind mount dropped") || !strings.Contains(out, "service/"+project+"/db created") {
		t.Errorf("apply --drop-bind-mounts:\n%s", out)
	}
	if strings.Contains(out, "service/"+project+"/debug") {
		t.Errorf("a service of a profile that is not enabled was applied:\n%s", out)
	}
	out = e.mustRun("apply", "-f", file, "--dry-run", "--drop-bind-mounts", "--profile", "debug")
	if !strings.Contains(out, "service/"+project+"/debug created") {
		t.Errorf("apply --profile debug:\n%s", out)
	}

	// An external volume is mounted as it is — which only administrators
	// may do — unless asked for a new, empty one.
	external := e.write("docker-compose.yml", fmt.Sprintf(`name: %s
services:
  db:
    image: postgres:16
    volumes: ["pgdata:/var/lib/postgresql/data"]
volumes:
  pgdata: {external: true}
`, project))
	out, code = e.run("", "apply", "-f", external, "--dry-run")
	if code == 0 || !strings.Contains(out, "dockerVolume") || !strings.Contains(out, "--empty-external-volumes") {
		t.Errorf("an external volume applied by a user who is not an administrator: exit %d\n%s", code, out)
	}
	out = e.mustRun("apply", "-f", external, "--dry-run", "--empty-external-volumes")
	if !strings.Contains(out, "volume/"+project+"/pgdata created") {
		t.Errorf("apply --empty-external-volumes:\n%s", out)
	}

	// container_name and the default network's aliases keep answering on
	// the project network.
	reg := testimage.StartRegistry(t, testimage.RegistryOptions{})
	img := reg.Push(t, "shop/web:1", testimage.Image(t, testimage.ImageOptions{Version: "1"}))
	named := uniqueName("named")
	webPort := freeTCPPort(t)
	namesFile := e.write("docker-compose.yml", fmt.Sprintf(`name: %s
services:
  web:
    image: %[2]s
    ports: ["127.0.0.1:%[3]d:8080"]
  api:
    image: %[2]s
    container_name: legacy-api
    environment: {ROLE: api}
    networks:
      default:
        aliases: [backend]
`, named, img, webPort))
	e.mustRun("apply", "-f", namesFile, "--wait", "--timeout", "120s")
	for _, name := range []string{"legacy-api", "backend", "api"} {
		url := fmt.Sprintf("http://127.0.0.1:%d/fetch?url=http://%s:8080/env/ROLE", webPort, name)
		if got := httpBody(t, url); got != "api" {
			t.Errorf("web → %s answered %q", name, got)
		}
	}
	e.mustRun("delete", "project", named, "--wait", "--timeout", "90s")

	only := e.write("compose.yaml", "services:\n  debug: {image: busybox:1, profiles: [debug]}\n")
	if out, code := e.run("", "apply", "-f", only, "--dry-run"); code == 0 || !strings.Contains(out, "no service could be imported") {
		t.Errorf("a file that imports nothing: exit %d\n%s", code, out)
	}
	if out, code := e.run("", "convert", "-f", only); code == 0 || !strings.Contains(out, "--profile") {
		t.Errorf("convert of a file that imports nothing: exit %d\n%s", code, out)
	}
}
