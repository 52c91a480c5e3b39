package api

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

const goodService = `
apiVersion: panelx.dev/v1
kind: Service
metadata:
  project: shop
  name: web
  labels: {tier: front}
spec:
  image: 127.0.0.1:5000/shop/web:1.4
  command: ["/web"]
  env:
    - {name: LOG_LEVEL, value: info}
    - {name: PORT, value: 8080}
  ports: [{containerPort: 8080, hostPort: 18080}]
  replicas: 1
  volumes: [{name: data, mountPath: /var/lib/data}]
  resources: {cpus: 0.5, memory: 256Mi}
  healthcheck: {command: ["/web", "-check"], interval: 5s}
`

func TestParseManifestsGoodService(t *testing.T) {
	objs, err := ParseManifests([]byte(goodService))
	if err != nil {
		t.Fatalf("ParseManifests: %v", err)
	}
	if len(objs) != 1 {
		t.Fatalf("got %d objects, want 1", len(objs))
	}
	svc, ok := objs[0].(*Service)
	if !ok {
		t.Fatalf("got %T, want *Service", objs[0])
	}
	want := ServiceSpec{
		Image:           "127.0.0.1:5000/shop/web:1.4",
		ImagePullPolicy: PullIfNotPresent,
		Command:         []string{"/web"},
		Env:             []EnvVar{{Name: "LOG_LEVEL", Value: "info"}, {Name: "PORT", Value: "8080"}},
		Ports:           []Port{{ContainerPort: 8080, HostPort: 18080, Protocol: ProtocolTCP}},
		Replicas:        ptr(int32(1)),
		Volumes:         []VolumeMount{{Name: "data", MountPath: "/var/lib/data"}},
		Resources:       Resources{CPUs: "0.5", Memory: "256Mi"},
		Healthcheck: &Healthcheck{
			Command:  []string{"/web", "-check"},
			Interval: Duration{5 * time.Second},
			Timeout:  Duration{DefaultHealthTimeout},
			Retries:  DefaultHealthRetries,
		},
		RestartPolicy: RestartAlways,
		Rollout:       RolloutSpec{ProgressDeadline: Duration{DefaultProgressDeadline}, RevisionHistoryLimit: DefaultRevisionHistoryLimit},
	}
	if !reflect.DeepEqual(svc.Spec, want) {
		t.Errorf("spec:\n got %+v\nwant %+v", svc.Spec, want)
	}
	if svc.Metadata.Labels["tier"] != "front" || svc.Metadata.Project != "shop" {
		t.Errorf("metadata = %+v", svc.Metadata)
	}
}

func ptr[T any](v T) *T { return &v }

// fieldsOf returns "path type" for every error, sorted.
func fieldsOf(t *testing.T, err error) []string {
	t.Helper()
	var out []string
	var merr *ManifestError
	var list ErrorList
	switch {
	case errors.As(err, &merr):
		list = merr.FieldErrors(len(merr.Documents) > 1 || merr.Documents[0].Index > 0)
	case errors.As(err, &list):
	default:
		t.Fatalf("error %T is neither ManifestError nor ErrorList: %v", err, err)
	}
	for _, fe := range list {
		out = append(out, fe.Field+" "+string(fe.Type))
	}
	slices.Sort(out)
	return out
}

func TestParseManifestsReportsEveryError(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{
			name: "unknown fields at every depth",
			doc: `{"apiVersion":"panelx.dev/v1","kind":"Service","metadata":{"project":"p","name":"web","nmae":"x"},
			       "spec":{"image":"nginx:1","replica":2,"ports":[{"containerPort":80,"hostPrt":8080}]},"extra":1}`,
			want: []string{"extra UnknownField", "metadata.nmae UnknownField", "spec.ports[0].hostPrt UnknownField", "spec.replica UnknownField"},
		},
		{
			name: "the issue's bad manifest: unknown field, bad name, port 70000, relative mount",
			doc: `
apiVersion: panelx.dev/v1
kind: Service
metadata: {project: shop, name: Web_1}
spec:
  image: nginx:1
  ports: [{containerPort: 70000}]
  volumes: [{name: data, mountPath: var/lib}]
`,
			want: []string{"metadata.name Invalid", "spec.ports[0].containerPort Invalid", "spec.volumes[0].mountPath Invalid"},
		},
		{
			name: "wrong types",
			doc: `
apiVersion: panelx.dev/v1
kind: Service
metadata: {project: shop, name: web, labels: [a]}
spec:
  image: [nginx]
  replicas: "2"
  privileged: "yes"
  env: {A: b}
`,
			want: []string{"metadata.labels TypeMismatch", "spec.env TypeMismatch", "spec.image TypeMismatch", "spec.privileged TypeMismatch", "spec.replicas TypeMismatch"},
		},
		{
			name: "values out of range",
			doc: `
apiVersion: panelx.dev/v1
kind: Service
metadata: {project: shop, name: web}
spec:
  image: "nginx::1"
  replicas: 101
  imagePullPolicy: Sometimes
  restartPolicy: Forever
  env: [{name: "1BAD", value: x}, {name: OK, value: a}, {name: OK, value: b}]
  ports:
    - {containerPort: 0, hostPort: 8080, hostIP: not-an-ip}
    - {containerPort: 81, hostPort: 8080}
    - {containerPort: 82, protocol: sctp}
  volumes:
    - {name: data, mountPath: /a/../b}
    - {mountPath: /c}
    - {name: data, hostPath: /srv, mountPath: /d}
  resources: {cpus: "-1", memory: 1Ki}
  healthcheck: {command: [], interval: 1ns}
  dependsOn: [web, db, db]
`,
			want: []string{
				"spec.dependsOn[0] Invalid", "spec.dependsOn[2] Duplicate",
				"spec.env[0].name Invalid", "spec.env[2].name Duplicate",
				"spec.healthcheck.command Required", "spec.healthcheck.interval Invalid",
				"spec.image Invalid", "spec.imagePullPolicy NotSupported",
				"spec.ports[0].containerPort Invalid", "spec.ports[0].hostIP Invalid", "spec.ports[0].hostPort Invalid", "spec.ports[2].protocol NotSupported",
				"spec.ports[1].hostPort Duplicate", "spec.ports[1].hostPort Invalid",
				"spec.replicas Invalid",
				"spec.resources.cpus Invalid", "spec.resources.memory Invalid",
				"spec.restartPolicy NotSupported",
				"spec.volumes[0].mountPath Invalid", "spec.volumes[1] Invalid", "spec.volumes[2] Invalid",
			},
		},
		{
			name: "missing essentials",
			doc:  `{"apiVersion":"panelx.dev/v1","kind":"Service","metadata":{},"spec":{}}`,
			want: []string{"metadata.name Required", "metadata.project Required", "spec.image Required"},
		},
		{
			name: "wrong apiVersion and kind",
			doc:  "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n",
			want: []string{"apiVersion NotSupported", "kind NotSupported"},
		},
		{
			name: "duplicate YAML key",
			doc:  "apiVersion: panelx.dev/v1\nkind: Project\nmetadata: {name: a}\nmetadata: {name: b}\n",
			want: []string{" Invalid"},
		},
		{
			name: "duplicate JSON key",
			doc:  `{"apiVersion":"panelx.dev/v1","kind":"Project","kind":"Project","metadata":{"name":"a"}}`,
			want: []string{" Invalid"},
		},
		{
			name: "volume and project rules",
			doc: `
apiVersion: panelx.dev/v1
kind: Volume
metadata: {project: shop, name: data}
spec: {reclaimPolicy: Maybe, driver: "bad driver"}
---
apiVersion: panelx.dev/v1
kind: Project
metadata: {name: shop, project: other, labels: {"-bad": ok, good: "not ok!"}}
spec: {domain: "shop..example"}
`,
			want: []string{"[0].spec.driver Invalid", "[0].spec.reclaimPolicy NotSupported",
				"[1].metadata.labels[-bad] Invalid", "[1].metadata.labels[good] Invalid", "[1].metadata.project Forbidden", "[1].spec.domain Invalid"},
		},
		{
			name: "host settings syntax",
			doc: `
apiVersion: panelx.dev/v1
kind: Service
metadata: {project: shop, name: web}
spec:
  image: nginx
  networkMode: container:x
  pidMode: private
  capAdd: [net_admin]
  devices: [dev/sda]
  sysctls: {"Bad Key": "1"}
`,
			want: []string{"spec.capAdd[0] Invalid", "spec.devices[0] Invalid", "spec.networkMode NotSupported", "spec.pidMode NotSupported", "spec.sysctls[Bad Key] Invalid"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseManifests([]byte(tt.doc))
			if err == nil {
				t.Fatal("ParseManifests succeeded, want errors")
			}
			got := fieldsOf(t, err)
			want := slices.Clone(tt.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("errors:\n got %q\nwant %q\nmessage: %v", got, want, err)
			}
		})
	}
}

func TestParseManifestsStreams(t *testing.T) {
	tests := []struct {
		name  string
		doc   string
		kinds []Kind
	}{
		{"yaml stream with empty documents", "---\napiVersion: panelx.dev/v1\nkind: Project\nmetadata: {name: a}\n---\n---\napiVersion: panelx.dev/v1\nkind: Volume\nmetadata: {name: v, project: a}\n", []Kind{KindProject, KindVolume}},
		{"json array", `[{"apiVersion":"panelx.dev/v1","kind":"Project","metadata":{"name":"a"}},{"apiVersion":"panelx.dev/v1","kind":"Service","metadata":{"name":"s","project":"a"},"spec":{"image":"x"}}]`, []Kind{KindProject, KindService}},
		{"concatenated json", `{"apiVersion":"panelx.dev/v1","kind":"Project","metadata":{"name":"a"}} {"apiVersion":"panelx.dev/v1","kind":"Project","metadata":{"name":"b"}}`, []Kind{KindProject, KindProject}},
		{"yaml flow mapping", `{apiVersion: panelx.dev/v1, kind: Project, metadata: {name: a}}`, []Kind{KindProject}},
		{"json with tabs and BOM", "\ufeff{\n\t\"apiVersion\": \"panelx.dev/v1\",\n\t\"kind\": \"Project\",\n\t\"metadata\": {\"name\": \"a\"}\n}", []Kind{KindProject}},
		{"yaml anchors", "apiVersion: panelx.dev/v1\nkind: Service\nmetadata: {name: s, project: a, labels: &l {x: y}}\nspec: {image: x, command: &c [a, b], args: *c}\n", []Kind{KindService}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := ParseManifests([]byte(tt.doc))
			if err != nil {
				t.Fatalf("ParseManifests: %v", err)
			}
			var kinds []Kind
			for _, o := range objs {
				kinds = append(kinds, o.GetKind())
			}
			if !slices.Equal(kinds, tt.kinds) {
				t.Errorf("kinds = %v, want %v", kinds, tt.kinds)
			}
		})
	}
}

func TestParseManifestsRejectsHostileInput(t *testing.T) {
	bomb := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	for i, prev := 0, "a"; i < 8; i++ {
		name := string(rune('b' + i))
		bomb += name + ": &" + name + " [*" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + "]\n"
		prev = name
	}
	tests := map[string]string{
		"alias bomb":     bomb,
		"deep nesting":   strings.Repeat("[", 200) + strings.Repeat("]", 200),
		"deep yaml":      strings.Repeat("- ", 200) + "x",
		"not a map":      "just a string",
		"empty":          "",
		"merge key":      "apiVersion: panelx.dev/v1\nkind: Project\nbase: &b {name: a}\nmetadata:\n  <<: *b\n",
		"non-string key": "apiVersion: panelx.dev/v1\nkind: Project\nmetadata: {? [a] : b}\n",
	}
	for name, doc := range tests {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			if _, err := ParseManifests([]byte(doc)); err == nil {
				t.Fatal("ParseManifests succeeded, want an error")
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v; hostile input must be rejected cheaply", d)
			}
		})
	}
}

func TestDecodeObject(t *testing.T) {
	obj, err := DecodeObject([]byte(`{"metadata":{"name":"web","project":"shop"},"spec":{"image":"nginx"}}`), KindService)
	if err != nil {
		t.Fatalf("DecodeObject: %v", err)
	}
	svc := obj.(*Service)
	if svc.APIVersion != APIVersion || svc.Kind != KindService || svc.Spec.ImagePullPolicy != PullAlways || svc.Spec.ReplicaCount() != 1 {
		t.Errorf("defaults not applied: %+v", svc)
	}
	if _, err := DecodeObject([]byte(`{"kind":"Volume","metadata":{"name":"v","project":"p"}}`), KindService); err == nil {
		t.Error("DecodeObject accepted a Volume where a Service was asked for")
	}
}

// TestRoundTrip checks that what the server writes out decodes back to the
// same object, status and metadata included.
func TestRoundTrip(t *testing.T) {
	objs, err := ParseManifests([]byte(goodService))
	if err != nil {
		t.Fatal(err)
	}
	svc := objs[0].(*Service)
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	svc.Metadata.UID = "5a4c"
	svc.Metadata.Generation = 3
	svc.Metadata.ResourceVersion = "42"
	svc.Metadata.CreationTimestamp = now
	svc.Metadata.DeletionTimestamp = &now
	svc.Status = ServiceStatus{ObservedGeneration: 3, Phase: PhaseRunning, ReadyReplicas: 1,
		Conditions: []Condition{{Type: ConditionReady, Status: ConditionTrue, LastTransitionTime: now}},
		Replicas:   []ReplicaStatus{{Index: 0, ContainerID: "abc", State: "running", StartedAt: &now}}}
	data, err := json.Marshal(svc)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeObject(data, KindService)
	if err != nil {
		t.Fatalf("DecodeObject(%s): %v", data, err)
	}
	if !reflect.DeepEqual(back, svc) {
		t.Errorf("round trip changed the object:\n got %+v\nwant %+v", back, svc)
	}
}

func TestSelector(t *testing.T) {
	labels := map[string]string{"tier": "front", "env": "prod", "canary": ""}
	tests := []struct {
		sel  string
		want bool
	}{
		{"", true},
		{"tier=front", true},
		{"tier==front", true},
		{"tier=back", false},
		{"env!=prod", false},
		{"missing!=x", true},
		{"canary", true},
		{"!canary", false},
		{"!legacy", true},
		{"env in (dev, prod)", true},
		{"env notin (dev,prod)", false},
		{"tier=front,env in (prod),!legacy", true},
	}
	for _, tt := range tests {
		sel, err := ParseSelector(tt.sel)
		if err != nil {
			t.Errorf("ParseSelector(%q): %v", tt.sel, err)
			continue
		}
		if got := sel.Matches(labels); got != tt.want {
			t.Errorf("%q.Matches = %v, want %v", tt.sel, got, tt.want)
		}
		if again, err := ParseSelector(sel.String()); err != nil || !reflect.DeepEqual(again, sel) {
			t.Errorf("%q: String() = %q does not parse back: %v", tt.sel, sel.String(), err)
		}
	}
	for _, bad := range []string{"a=b=c d", "=x", "x in a,b", ",", "k=v,", "-bad"} {
		if _, err := ParseSelector(bad); err == nil {
			t.Errorf("ParseSelector(%q) succeeded, want an error", bad)
		}
	}
}

func TestQuantities(t *testing.T) {
	cpus := map[Quantity]int64{"0.5": 500_000_000, "2": 2_000_000_000, "500m": 500_000_000, ".25": 250_000_000}
	for q, want := range cpus {
		if got, err := q.NanoCPUs(); err != nil || got != want {
			t.Errorf("%q.NanoCPUs() = %d, %v; want %d", q, got, err, want)
		}
	}
	mem := map[Quantity]int64{"256Mi": 256 << 20, "1Gi": 1 << 30, "500M": 500_000_000, "1048576": 1 << 20, "1.5Gi": 3 << 29}
	for q, want := range mem {
		if got, err := q.Bytes(); err != nil || got != want {
			t.Errorf("%q.Bytes() = %d, %v; want %d", q, got, err, want)
		}
	}
	for _, bad := range []Quantity{"", "1e3", "-1", "1.5 Gi", "0.0000000001", "99999999999999999999Ti"} {
		if _, err := bad.Bytes(); err == nil {
			t.Errorf("%q.Bytes() succeeded", bad)
		}
	}
	for _, bad := range []Quantity{"", "abc", "1.5m", "0.0000000001"} {
		if _, err := bad.NanoCPUs(); err == nil {
			t.Errorf("%q.NanoCPUs() succeeded", bad)
		}
	}
}

// FuzzParseManifests feeds arbitrary bytes to the decoder: it must never
// panic, and whatever it accepts must survive an encode/decode round trip.
func FuzzParseManifests(f *testing.F) {
	f.Add([]byte(goodService))
	f.Add([]byte(`{"apiVersion":"panelx.dev/v1","kind":"Project","metadata":{"name":"a"},"spec":{"domain":"a.example"}}`))
	f.Add([]byte("apiVersion: panelx.dev/v1\nkind: Volume\nmetadata: {name: v, project: p}\nspec: {driverOpts: {type: tmpfs}}\n"))
	f.Add([]byte(`[{"kind":"Service"},{}]`))
	f.Add([]byte("a: &a [x]\nb: *a\n"))
	f.Add([]byte("{\"apiVersion\":\"panelx.dev/v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"s\",\"project\":\"p\"},\"spec\":{\"image\":\"x\",\"replicas\":1e2}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := ParseManifests(data)
		if err != nil {
			return
		}
		for _, obj := range objs {
			out, err := json.Marshal(obj)
			if err != nil {
				t.Fatalf("marshal accepted object: %v", err)
			}
			back, err := DecodeObject(out, obj.GetKind())
			if err != nil {
				t.Fatalf("accepted object does not decode again: %v\n%s", err, out)
			}
			if !reflect.DeepEqual(back, obj) {
				t.Fatalf("round trip changed the object:\n%s", out)
			}
		}
	})
}
