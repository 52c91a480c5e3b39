package compose

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/panelx/panelx/api"
)

// roundTrip checks that api.ParseManifests reads data back to objs.
func roundTrip(t *testing.T, data []byte, objs []api.Object) {
	t.Helper()
	back, err := api.ParseManifests(data)
	if err != nil {
		t.Fatalf("ParseManifests: %v\n%s", err, data)
	}
	if !reflect.DeepEqual(back, objs) {
		got, _ := json.MarshalIndent(back, "", "  ")
		want, _ := json.MarshalIndent(objs, "", "  ")
		t.Fatalf("round trip differs:\ngot  %s\nwant %s", got, want)
	}
}

func TestWriteYAMLRoundTrip(t *testing.T) {
	tricky := []string{
		"", "true", "False", "yes", "off", "y", "null", "~", "0.5", "1e3", "0x1F", "0o17", "12:30",
		"#not a comment", "a: b", "- item", "[x]", "{y}", "&anchor", "*alias", "!tag", "%", "@", "`",
		"multi\nline\n", "trailing newlines\n\n", "  leading spaces", "tab\there", "quote \" and '",
		"unicode ✓ 日本", "<<", "---", "...", "\\backslash",
	}
	var env []api.EnvVar
	for i, v := range tricky {
		env = append(env, api.EnvVar{Name: fmt.Sprintf("V%02d", i), Value: v})
	}
	svc := &api.Service{
		Metadata: api.ObjectMeta{Name: "web", Project: "demo", Labels: map[string]string{"b": "2", "a": "1", "example.com/x": "true"}},
		Spec: api.ServiceSpec{
			Image:       "nginx:1",
			Command:     []string{"/bin/sh", "-c", "echo 'hi' && exit 0"},
			Env:         env,
			Ports:       []api.Port{{ContainerPort: 80, HostPort: 8080, HostIP: "::1"}, {ContainerPort: 53, Protocol: api.ProtocolUDP}},
			Resources:   api.Resources{CPUs: "0.5", Memory: "512Mi"},
			Healthcheck: &api.Healthcheck{Command: []string{"true"}, Interval: api.Duration{Duration: 90 * time.Second}},
			Sysctls:     map[string]string{"net.core.somaxconn": "1024"},
			Volumes:     []api.VolumeMount{{Name: "data", MountPath: "/data", ReadOnly: true}, {Tmpfs: true, MountPath: "/tmp"}},
		},
	}
	vol := &api.Volume{Metadata: api.ObjectMeta{Name: "data", Project: "demo"}, Spec: api.VolumeSpec{DriverOpts: map[string]string{"o": "size=1g", "type": "tmpfs"}}}
	objs := []api.Object{&api.Project{Metadata: api.ObjectMeta{Name: "demo"}}, vol, svc}
	for _, o := range objs {
		o.Default()
	}
	var buf bytes.Buffer
	if err := WriteYAML(&buf, objs); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, buf.Bytes(), objs)
}

func TestWriteYAMLShape(t *testing.T) {
	svc := &api.Service{
		Metadata: api.ObjectMeta{Name: "web", Project: "demo", UID: "0b6c", ResourceVersion: "42", Generation: 3, CreationTimestamp: time.Unix(1, 0)},
		Spec:     api.ServiceSpec{Image: "nginx:1", Env: []api.EnvVar{{Name: "A", Value: "yes"}}},
		Status:   api.ServiceStatus{Phase: api.PhaseReady, ReadyReplicas: 1},
	}
	svc.Default()
	var buf bytes.Buffer
	findings := []Finding{
		{Field: "services.web.build", Detail: "PanelX runs images"},
		{Field: "${X}", Detail: "two\nlines"},
	}
	if err := WriteYAML(&buf, []api.Object{svc}, findings...); err != nil {
		t.Fatal(err)
	}
	want := `# Converted from compose. Not imported, or imported differently (2):
#   services.web.build: PanelX runs images
#   ${X}: two lines
---
apiVersion: panelx.dev/v1
kind: Service
metadata:
  name: web
  project: demo
spec:
  image: nginx:1
  imagePullPolicy: IfNotPresent
  env:
    - name: A
      value: "yes"
  replicas: 1
  restartPolicy: Always
  rollout:
    progressDeadline: 5m0s
    revisionHistoryLimit: 10
`
	if got := buf.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestWriteYAMLNoFindingsNoHeader(t *testing.T) {
	p := &api.Project{Metadata: api.ObjectMeta{Name: "demo"}}
	p.Default()
	var buf bytes.Buffer
	if err := WriteYAML(&buf, []api.Object{p}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), "---\napiVersion: panelx.dev/v1\nkind: Project\n") {
		t.Errorf("got:\n%s", buf.String())
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, bytes.ErrTooLarge }

func TestWriteYAMLReportsWriteErrors(t *testing.T) {
	p := &api.Project{Metadata: api.ObjectMeta{Name: "demo"}}
	p.Default()
	if err := WriteYAML(failingWriter{}, []api.Object{p}); err == nil {
		t.Fatal("no error from a failing writer")
	}
}
