package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/panelx/panelx/internal/testenv"
	"github.com/panelx/panelx/internal/testimage"
	"github.com/panelx/panelx/naming"
)

// TestComposeNetworksIsolate applies three Compose files with several
// networks for real and has services try to reach each other: a service
// reaches another only over a network both join — by name, by alias, and
// (for the first file) not even by the other's IP address. Deleting the
// project removes every network it had.
func TestComposeNetworksIsolate(t *testing.T) {
	t.Parallel()
	e := newCLIEnv(t)
	docker := testenv.Docker(t)
	reg := testimage.StartRegistry(t, testimage.RegistryOptions{})
	img := reg.Push(t, uniqueName("nets")+"/app:1", testimage.Image(t, testimage.ImageOptions{Version: "1"}))

	type reach struct {
		from, to string // service with a published port; host name or "ip:<service>"
		want     string // the ROLE it answers, or "" when it must not be reached
	}
	files := []struct {
		name    string
		compose string // %[1]s project, %[2]s image, %[3]d… the published ports of probes
		probes  []string
		checks  []reach
	}{{
		name: "tiers",
		compose: `name: %[1]s
services:
  proxy:
    image: %[2]s
    ports: ["127.0.0.1:%[3]d:8080"]
    networks: [front]
  app:
    image: %[2]s
    environment: {ROLE: app}
    ports: ["127.0.0.1:%[4]d:8080"]
    networks: [front, back]
  db:
    image: %[2]s
    environment: {ROLE: db}
    networks:
      back: {aliases: [database]}
networks:
  front: {}
  back: {}
`,
		probes: []string{"proxy", "app"},
		checks: []reach{
			{"proxy", "app", "app"}, {"app", "db", "db"}, {"app", "database", "db"},
			{"proxy", "db", ""}, {"proxy", "database", ""}, {"proxy", "ip:db", ""},
		},
	}, {
		name: "two stacks",
		compose: `name: %[1]s
services:
  a1:
    image: %[2]s
    ports: ["127.0.0.1:%[3]d:8080"]
    networks: [net-a]
  a2:
    image: %[2]s
    environment: {ROLE: a2}
    networks: [net-a]
  b1:
    image: %[2]s
    ports: ["127.0.0.1:%[4]d:8080"]
    networks: [net_b]
  b2:
    image: %[2]s
    environment: {ROLE: b2}
    networks: [net_b]
networks:
  net-a: {}
  net_b: {}
`,
		probes: []string{"a1", "b1"},
		checks: []reach{{"a1", "a2", "a2"}, {"b1", "b2", "b2"}, {"a1", "b2", ""}, {"b1", "a2", ""}},
	}, {
		name: "default and private",
		compose: `name: %[1]s
services:
  web:
    image: %[2]s
    ports: ["127.0.0.1:%[3]d:8080"]
  cache:
    image: %[2]s
    environment: {ROLE: cache}
    ports: ["127.0.0.1:%[4]d:8080"]
    networks: [default, private]
  db:
    image: %[2]s
    environment: {ROLE: db}
    networks: [private]
networks:
  private: {}
`,
		probes: []string{"web", "cache"},
		checks: []reach{{"web", "cache", "cache"}, {"cache", "db", "db"}, {"web", "db", ""}},
	}}
	for _, f := range files {
		project := uniqueName("nets")
		args := []any{project, img}
		ports := map[string]int{}
		for _, probe := range f.probes {
			ports[probe] = freeTCPPort(t)
			args = append(args, ports[probe])
		}
		file := e.write("compose.yaml", fmt.Sprintf(f.compose, args...))
		e.mustRun("apply", "-f", file, "--wait", "--timeout", "120s")
		for _, c := range f.checks {
			to := c.to
			if ip, ok := strings.CutPrefix(to, "ip:"); ok {
				to = containerIP(t, docker, project, ip)
			}
			url := fmt.Sprintf("http://127.0.0.1:%d/fetch?url=http://%s:8080/env/ROLE", ports[c.from], to)
			if c.want != "" {
				if got := httpBody(t, url); got != c.want {
					t.Errorf("%s: %s → %s answered %q, want %q", f.name, c.from, c.to, got, c.want)
				}
				continue
			}
			if code, body := httpGet(t, url); code == http.StatusOK {
				t.Errorf("%s: %s reached %s, which shares no network with it: %q", f.name, c.from, c.to, body)
			}
		}
		e.mustRun("delete", "project", project, "--wait", "--timeout", "90s")
		left, err := docker.NetworkList(context.Background(), network.ListOptions{
			Filters: filters.NewArgs(filters.Arg("label", naming.LabelProject+"="+project))})
		if err != nil {
			t.Fatal(err)
		}
		if len(left) > 0 {
			t.Errorf("%s: networks left after the project was deleted: %+v", f.name, left)
		}
	}
}

// httpGet is one GET: its status code and body.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// containerIP is the address of a service's first replica on its first
// network.
func containerIP(t *testing.T, docker *client.Client, project, service string) string {
	t.Helper()
	c, err := docker.ContainerInspect(context.Background(), naming.ContainerName(project, service, 0))
	if err != nil {
		t.Fatal(err)
	}
	for _, ep := range c.NetworkSettings.Networks {
		if ep.IPAddress != "" {
			return ep.IPAddress
		}
	}
	t.Fatalf("%s has no IP address", service)
	return ""
}
