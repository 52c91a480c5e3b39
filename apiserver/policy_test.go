package apiserver_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/panelx/panelx/apiserver/policy"
)

type specCase struct {
	name     string
	kind     string // services or volumes
	spec     map[string]any
	field    string // one of the refused fields
	socket   bool   // refused for administrators too
	adminsOK bool   // allowed for administrators (when !socket)
}

var specCases = []specCase{
	{name: "privileged", kind: "services", spec: map[string]any{"privileged": true}, field: "spec.privileged"},
	{name: "host network", kind: "services", spec: map[string]any{"networkMode": "host"}, field: "spec.networkMode"},
	{name: "host pid", kind: "services", spec: map[string]any{"pidMode": "host"}, field: "spec.pidMode"},
	{name: "host ipc", kind: "services", spec: map[string]any{"ipcMode": "host"}, field: "spec.ipcMode"},
	{name: "host uts", kind: "services", spec: map[string]any{"utsMode": "host"}, field: "spec.utsMode"},
	{name: "capability", kind: "services", spec: map[string]any{"capAdd": []string{"SYS_ADMIN"}}, field: "spec.capAdd[0]"},
	{name: "device", kind: "services", spec: map[string]any{"devices": []string{"/dev/sda:/dev/xvda:rwm"}}, field: "spec.devices[0]"},
	{name: "sysctl", kind: "services", spec: map[string]any{"sysctls": map[string]string{"net.ipv4.ip_forward": "1"}}, field: "spec.sysctls[net.ipv4.ip_forward]"},
	{name: "security option", kind: "services", spec: map[string]any{"securityOpt": []string{"apparmor=unconfined"}}, field: "spec.securityOpt[0]"},
	{name: "bind mount", kind: "services", spec: map[string]any{"volumes": []any{map[string]any{"hostPath": "/etc", "mountPath": "/host-etc"}}}, field: "spec.volumes[0].hostPath"},
	{name: "privileged port", kind: "services", spec: map[string]any{"ports": []any{map[string]any{"containerPort": 80, "hostPort": 80}}}, field: "spec.ports[0].hostPort"},
	{name: "docker socket", kind: "services", spec: map[string]any{"volumes": []any{map[string]any{"hostPath": "/var/run/docker.sock", "mountPath": "/var/run/docker.sock"}}}, field: "spec.volumes[0].hostPath", socket: true},
	{name: "the host's root", kind: "services", spec: map[string]any{"volumes": []any{map[string]any{"hostPath": "/", "mountPath": "/host"}}}, field: "spec.volumes[0].hostPath", socket: true},
	{name: "device through /proc", kind: "services", spec: map[string]any{"devices": []string{"/proc/self/fd/3:/dev/x"}}, field: "spec.devices[0]", socket: true},
	{name: "bind volume", kind: "volumes", spec: map[string]any{"driverOpts": map[string]string{"type": "none", "o": "bind", "device": "/srv/data"}}, field: "spec.driverOpts[o]"},
	{name: "device volume", kind: "volumes", spec: map[string]any{"driverOpts": map[string]string{"device": "/srv/data"}}, field: "spec.driverOpts[device]"},
	{name: "rbind option", kind: "volumes", spec: map[string]any{"driverOpts": map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=10m,rbind"}}, field: "spec.driverOpts[o]"},
	{name: "volume plugin", kind: "volumes", spec: map[string]any{"driver": "local-persist"}, field: "spec.driver"},
	{name: "bind volume of /run", kind: "volumes", spec: map[string]any{"driverOpts": map[string]string{"type": "none", "o": "bind", "device": "/run"}}, field: "spec.driverOpts[device]", socket: true},
}

func manifest(kind, name string, spec map[string]any) map[string]any {
	full := map[string]any{}
	if kind == "services" {
		full["image"] = "nginx:1.27"
	}
	for k, v := range spec {
		full[k] = v
	}
	return map[string]any{"metadata": map[string]any{"name": name}, "spec": full}
}

func toYAML(t *testing.T, v any) string {
	t.Helper()
	data, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestSpecPolicyEveryWay: each refusal of the spec policy through each way
// a spec reaches the API — POST as JSON, POST as YAML, PUT, merge PATCH —
// is a 422 naming the field for a non-administrator; administrators get
// what the configuration allows, never the Docker socket.
func TestSpecPolicyEveryWay(t *testing.T) {
	e := newEnv(t)
	user, admin := e.jwtFor("user"), e.jwtFor(adminUser)
	e.project(t, user, "shop")
	e.member(t, user, "shop", adminUser, "editor")
	n := 0
	for _, tc := range specCases {
		for _, who := range []string{"user", "admin"} {
			tok := user
			wantRefused := true
			if who == "admin" {
				tok, wantRefused = admin, tc.socket
			}
			ways := []struct {
				name string
				send func(name string) *response
			}{
				{"POST JSON", func(name string) *response {
					return e.do(t, req{method: "POST", path: "/api/v1/projects/shop/" + tc.kind, token: tok, body: manifest(tc.kind, name, tc.spec)})
				}},
				{"POST YAML", func(name string) *response {
					return e.do(t, req{method: "POST", path: "/api/v1/projects/shop/" + tc.kind, token: tok, body: toYAML(t, manifest(tc.kind, name, tc.spec)),
						header: map[string]string{"Content-Type": "application/yaml"}})
				}},
				{"PUT", func(name string) *response {
					e.must(t, http.StatusCreated, req{method: "POST", path: "/api/v1/projects/shop/" + tc.kind, token: tok, body: manifest(tc.kind, name, nil)})
					return e.do(t, req{method: "PUT", path: "/api/v1/projects/shop/" + tc.kind + "/" + name, token: tok, body: manifest(tc.kind, name, tc.spec)})
				}},
				{"PATCH", func(name string) *response {
					e.must(t, http.StatusCreated, req{method: "POST", path: "/api/v1/projects/shop/" + tc.kind, token: tok, body: manifest(tc.kind, name, nil)})
					patch, _ := json.Marshal(map[string]any{"spec": tc.spec})
					return e.do(t, req{method: "PATCH", path: "/api/v1/projects/shop/" + tc.kind + "/" + name, token: tok, body: string(patch)})
				}},
			}
			for _, way := range ways {
				n++
				r := way.send(fmt.Sprintf("x%d", n))
				switch {
				case wantRefused && r.Status != http.StatusUnprocessableEntity:
					t.Errorf("%s, %s as %s: %d, want 422\n%s", tc.name, way.name, who, r.Status, r.Body)
				case wantRefused:
					r.problem(t)
					if !slices.Contains(r.fields(), tc.field) {
						t.Errorf("%s, %s as %s: errors %v do not name %s", tc.name, way.name, who, r.fields(), tc.field)
					}
				case r.Status != http.StatusCreated && r.Status != http.StatusOK:
					t.Errorf("%s, %s as %s: %d, want it allowed\n%s", tc.name, way.name, who, r.Status, r.Body)
				default:
					// Gone again, so the next way may publish the same host port.
					e.must(t, http.StatusAccepted, req{method: "DELETE", path: fmt.Sprintf("/api/v1/projects/shop/%s/x%d", tc.kind, n), token: tok})
				}
			}
		}
	}
}

// TestHostSettingsGuardTheWholeObject: once an administrator gave a service
// host access, a non-administrator cannot change it at all — not even its
// labels — or they could swap the image of a privileged container. They
// can still delete it.
func TestHostSettingsGuardTheWholeObject(t *testing.T) {
	e := newEnv(t)
	owner, admin := e.jwtFor("owner"), e.jwtFor(adminUser)
	e.project(t, owner, "shop")
	e.member(t, owner, "shop", adminUser, "editor")
	e.must(t, http.StatusCreated, req{method: "POST", path: "/api/v1/projects/shop/services", token: admin,
		body: manifest("services", "agent", map[string]any{"privileged": true})})
	e.must(t, http.StatusCreated, req{method: "POST", path: "/api/v1/projects/shop/volumes", token: admin,
		body: manifest("volumes", "host-data", map[string]any{"driverOpts": map[string]string{"type": "none", "o": "bind", "device": "/srv/data"}})})
	for _, path := range []string{"/api/v1/projects/shop/services/agent", "/api/v1/projects/shop/volumes/host-data"} {
		r := e.do(t, req{method: "PATCH", path: path, token: owner, body: `{"metadata": {"labels": {"team": "a"}}}`})
		if r.Status != http.StatusUnprocessableEntity {
			t.Errorf("label patch of %s by the owner: %d %s", path, r.Status, r.Body)
		}
		e.must(t, http.StatusOK, req{method: "PATCH", path: path, token: admin, body: `{"metadata": {"labels": {"team": "a"}}}`})
	}
	e.must(t, http.StatusAccepted, req{method: "DELETE", path: "/api/v1/projects/shop/services/agent", token: owner})
}

// TestPolicyConfiguration: the switches change the outcome.
func TestPolicyConfiguration(t *testing.T) {
	locked := policy.DefaultConfig()
	locked.AdminHostAccess = false
	locked.HostPorts = policy.PortRanges{{From: 8000, To: 8999}}
	e := newEnv(t, withPolicy(locked))
	admin, user := e.jwtFor(adminUser), e.jwtFor("user")
	e.project(t, admin, "ops")
	e.member(t, admin, "ops", "user", "editor")
	r := e.do(t, req{method: "POST", path: "/api/v1/projects/ops/services", token: admin, body: manifest("services", "a", map[string]any{"privileged": true})})
	if r.Status != http.StatusUnprocessableEntity || !strings.Contains(string(r.Body), "PANELX_ADMIN_ALLOW_HOST_ACCESS") {
		t.Errorf("privileged by an admin with host access off: %d %s", r.Status, r.Body)
	}
	port := func(p int) map[string]any {
		return map[string]any{"ports": []any{map[string]any{"containerPort": 80, "hostPort": p}}}
	}
	e.must(t, http.StatusCreated, req{method: "POST", path: "/api/v1/projects/ops/services", token: user, body: manifest("services", "b", port(8080))})
	e.must(t, http.StatusUnprocessableEntity, req{method: "POST", path: "/api/v1/projects/ops/services", token: user, body: manifest("services", "c", port(9000))})

	socket := policy.DefaultConfig()
	socket.DockerSocket = true
	e2 := newEnv(t, withPolicy(socket))
	admin2 := e2.jwtFor(adminUser)
	e2.project(t, admin2, "ops")
	e2.must(t, http.StatusCreated, req{method: "POST", path: "/api/v1/projects/ops/services", token: admin2,
		body: manifest("services", "portainer", map[string]any{"volumes": []any{map[string]any{"hostPath": "/var/run/docker.sock", "mountPath": "/var/run/docker.sock"}}})})
	e2.member(t, admin2, "ops", "someone", "owner")
	e2.must(t, http.StatusUnprocessableEntity, req{method: "POST", path: "/api/v1/projects/ops/services", token: e2.jwtFor("someone"),
		body: manifest("services", "portainer2", map[string]any{"volumes": []any{map[string]any{"hostPath": "/var/run/docker.sock", "mountPath": "/var/run/docker.sock"}}})})
}
