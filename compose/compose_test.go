package compose

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/panelx/panelx/api"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// ---- helpers ----

// convertText converts one compose document given as text, in a fresh
// working directory holding files, with env as the whole environment.
func convertText(t *testing.T, src string, files map[string]string, env map[string]string) (*Result, error) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if env == nil {
		env = map[string]string{}
	}
	return Convert(context.Background(), Input{
		Files:       []File{{Path: filepath.Join(dir, "compose.yaml"), Content: []byte(src)}},
		ProjectName: "demo",
		Env:         env,
	})
}

func mustConvert(t *testing.T, src string) *Result {
	t.Helper()
	res, err := convertText(t, src, nil, nil)
	if err != nil {
		t.Fatalf("Convert: %v", err)
	}
	return res
}

func find[T api.Object](t *testing.T, res *Result, name string) T {
	t.Helper()
	for _, obj := range res.Objects {
		if o, ok := obj.(T); ok && obj.GetMeta().Name == name {
			return o
		}
	}
	var zero T
	t.Fatalf("no %T named %q in %v", zero, name, names(res.Objects))
	return zero
}

func names(objs []api.Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, string(o.GetKind())+"/"+o.GetMeta().Name)
	}
	return out
}

// want is an expected finding: the exact field and a part of the detail.
type want struct{ field, detail string }

func checkFindings(t *testing.T, got []Finding, wants []want) {
	t.Helper()
	ok := len(got) == len(wants)
	for i := 0; ok && i < len(got); i++ {
		ok = got[i].Field == wants[i].field && strings.Contains(got[i].Detail, wants[i].detail)
	}
	if ok {
		return
	}
	var b strings.Builder
	for _, f := range got {
		b.WriteString("\n  " + f.String())
	}
	t.Errorf("findings:%s\nwant %d: %v", b.String(), len(wants), wants)
}

func ptr[T any](v T) *T { return &v }

// ---- the realistic file ----

func TestThreeServices(t *testing.T) {
	res, err := Convert(context.Background(), Input{
		Files: []File{{Path: "testdata/three/docker-compose.yml"}},
		Env:   map[string]string{"DB_PASSWORD": "s3cret"},
	})
	if err != nil {
		t.Fatalf("Convert: %v", err)
	}
	if got, want := names(res.Objects), []string{"Project/shop", "Volume/db-data", "Service/api", "Service/db", "Service/web"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("objects %v, want %v", got, want)
	}
	for _, obj := range res.Objects {
		if errs := obj.Validate(); len(errs) > 0 {
			t.Errorf("%s %s invalid: %v", obj.GetKind(), obj.GetMeta().Name, errs)
		}
	}

	api_ := find[*api.Service](t, res, "api")
	if got := api_.Spec.Env; !reflect.DeepEqual(got, []api.EnvVar{
		{Name: "CACHE_TTL", Value: "60s"},
		{Name: "DATABASE_URL", Value: "postgres://shop:s3cret@db:5432/shop"},
		{Name: "FEATURE_FLAGS", Value: "checkout,search"},
		{Name: "LOG_LEVEL", Value: "info"},
	}) {
		t.Errorf("api env (env_file merged, sorted) = %v", got)
	}
	if got := api_.Spec.DependsOn; !reflect.DeepEqual(got, []string{"db"}) {
		t.Errorf("api dependsOn = %v", got)
	}
	web := find[*api.Service](t, res, "web")
	if got := web.Spec.DependsOn; !reflect.DeepEqual(got, []string{"api"}) {
		t.Errorf("web dependsOn = %v", got)
	}
	db := find[*api.Service](t, res, "db")
	if got := db.Spec.Volumes; !reflect.DeepEqual(got, []api.VolumeMount{{Name: "db-data", MountPath: "/var/lib/postgresql/data"}}) {
		t.Errorf("db volumes = %v", got)
	}

	checkFindings(t, res.Unmapped, []want{
		{"services.api.healthcheck.test", "image needs /bin/sh"},
		{"services.web.restart", "no unless-stopped"},
		{"volumes.db_data", `the volume is named "db-data"`},
	})

	// The whole output, reviewed once and kept: any change to the mapping
	// or the YAML shows up here.
	var out bytes.Buffer
	if err := WriteYAML(&out, res.Objects, res.Unmapped...); err != nil {
		t.Fatal(err)
	}
	golden := "testdata/three/panelx.yaml"
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wantOut, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./compose -update to create it)", err)
	}
	if out.String() != string(wantOut) {
		t.Errorf("WriteYAML output differs from %s:\n%s", golden, out.String())
	}
	roundTrip(t, out.Bytes(), res.Objects)
}

// ---- names ----

func TestProjectName(t *testing.T) {
	parent := t.TempDir()
	tests := []struct {
		name     string
		dir      string // working directory under parent
		override string
		compose  string
		env      map[string]string
		want     string
		findings []want
	}{
		{name: "override wins", dir: "d", override: "billing", compose: "name: shop\n", want: "billing"},
		{name: "compose name", dir: "d", compose: "name: shop\n", want: "shop"},
		{name: "compose name interpolated", dir: "d", compose: "name: ${ENV}-shop\n", env: map[string]string{"ENV": "prod"}, want: "prod-shop"},
		{name: "directory name", dir: "storefront", want: "storefront"},
		{name: "override normalised", dir: "d", override: "My_App", want: "my-app",
			findings: []want{{"name", `"My_App" (from the given project name) is not a DNS-1123 label: the project is named "my-app"`}}},
		{name: "compose name normalised", dir: "d", compose: "name: Shop.Front\n", want: "shop-front",
			findings: []want{{"name", `"Shop.Front" (from name:)`}}},
		{name: "directory name normalised", dir: "My Project", want: "my-project",
			findings: []want{{"name", `"My Project" (from the directory name)`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(parent, tt.dir)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			env := tt.env
			if env == nil {
				env = map[string]string{}
			}
			src := tt.compose + "services:\n  web:\n    image: nginx:1\n"
			res, err := Convert(context.Background(), Input{
				Files:       []File{{Path: filepath.Join(dir, "compose.yaml"), Content: []byte(src)}},
				ProjectName: tt.override,
				Env:         env,
			})
			if err != nil {
				t.Fatalf("Convert: %v", err)
			}
			if got := res.Objects[0].GetMeta().Name; got != tt.want {
				t.Errorf("project %q, want %q", got, tt.want)
			}
			if got := find[*api.Service](t, res, "web").Metadata.Project; got != tt.want {
				t.Errorf("service's project %q, want %q", got, tt.want)
			}
			checkFindings(t, res.Unmapped, tt.findings)
		})
	}
}

func TestProjectNameWithoutLetters(t *testing.T) {
	_, err := Convert(context.Background(), Input{
		Files:       []File{{Content: []byte("services:\n  web:\n    image: nginx:1\n")}},
		ProjectName: "___",
		Env:         map[string]string{},
	})
	if err == nil || !strings.Contains(err.Error(), "project name from the given project name") {
		t.Fatalf("err = %v, want a project name error", err)
	}
}

func TestNameNormalisation(t *testing.T) {
	res := mustConvert(t, `
services:
  Web_App:
    image: nginx:1
    depends_on: [api.v2]
    volumes: ["Shared_Data:/data"]
  api.v2:
    image: nginx:1
volumes:
  Shared_Data:
`)
	web := find[*api.Service](t, res, "web-app")
	if !reflect.DeepEqual(web.Spec.DependsOn, []string{"api-v2"}) {
		t.Errorf("dependsOn %v does not follow the rename", web.Spec.DependsOn)
	}
	if want := []api.VolumeMount{{Name: "shared-data", MountPath: "/data"}}; !reflect.DeepEqual(web.Spec.Volumes, want) {
		t.Errorf("volumes %v do not follow the rename", web.Spec.Volumes)
	}
	find[*api.Volume](t, res, "shared-data")
	checkFindings(t, res.Unmapped, []want{
		{"services.Web_App", `the service is named "web-app"`},
		{"services[api.v2]", `the service is named "api-v2"`},
		{"volumes.Shared_Data", `the volume is named "shared-data"`},
	})
}

func TestNameCollisions(t *testing.T) {
	tests := []struct{ name, compose, want string }{
		{"services", "services:\n  my_app:\n    image: a:1\n  my-app:\n    image: b:1\n", `services "my-app" and "my_app" both become "my-app"`},
		{"volumes", "services:\n  web:\n    image: a:1\nvolumes:\n  Data: {}\n  data: {}\n", `volumes "Data" and "data" both become "data"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := convertText(t, tt.compose, nil, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestAnonymousVolumeNamesAvoidTakenOnes(t *testing.T) {
	res := mustConvert(t, `
services:
  web:
    image: nginx:1
    volumes: ["/cache", "web-1:/named", "/tmp/x"]
volumes:
  web-1:
`)
	web := find[*api.Service](t, res, "web")
	want := []api.VolumeMount{{Name: "web-2", MountPath: "/cache"}, {Name: "web-1", MountPath: "/named"}, {Name: "web-3", MountPath: "/tmp/x"}}
	if !reflect.DeepEqual(web.Spec.Volumes, want) {
		t.Errorf("volumes %v, want %v", web.Spec.Volumes, want)
	}
	if got := names(res.Objects); !reflect.DeepEqual(got, []string{"Project/demo", "Volume/web-1", "Volume/web-2", "Volume/web-3", "Service/web"}) {
		t.Errorf("objects %v", got)
	}
}

// ---- interpolation ----

func TestInterpolation(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		image    string
		value    string // of the environment variable V
		findings []want
	}{
		{name: "defaults when unset", env: map[string]string{}, image: "nginx:1", value: "fallback",
			findings: []want{{"${UNSET}", "variable is not set: an empty string was substituted"}}},
		{name: "custom environment", env: map[string]string{"TAG": "2", "UNSET": "now set", "V": "given"}, image: "nginx:2", value: "given"},
		{name: "empty counts as unset for :-", env: map[string]string{"TAG": "", "UNSET": ""}, image: "nginx:1", value: "fallback"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := convertText(t, `
services:
  web:
    image: nginx:${TAG:-1}
    environment:
      V: ${V:-fallback}
      U: "[${UNSET}]"
      DOLLAR: "$$HOME"
`, nil, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			web := find[*api.Service](t, res, "web")
			if web.Spec.Image != tt.image {
				t.Errorf("image %q, want %q", web.Spec.Image, tt.image)
			}
			env := envMap(web.Spec.Env)
			if env["V"] != tt.value || env["DOLLAR"] != "$HOME" || env["U"] != "["+tt.env["UNSET"]+"]" {
				t.Errorf("env %v", env)
			}
			checkFindings(t, res.Unmapped, tt.findings)
		})
	}
}

func envMap(env []api.EnvVar) map[string]string {
	m := map[string]string{}
	for _, e := range env {
		m[e.Name] = e.Value
	}
	return m
}

func TestInterpolationRequiredVariable(t *testing.T) {
	_, err := convertText(t, "services:\n  web:\n    image: nginx:${TAG:?set TAG to the release}\n", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "set TAG to the release") {
		t.Fatalf("err = %v, want the required variable's message", err)
	}
}

// Interpolation is ${…} substitution only, and string commands are split
// into words (go-shellwords, whose backtick execution is off), never run.
func TestNothingIsExecuted(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "executed")
	touch := "touch " + marker
	res, err := convertText(t, `
services:
  web:
    image: nginx:1
    entrypoint: "/bin/echo `+"`"+touch+"`"+`"
    command: "$(`+touch+`)"
    environment:
      A: "$(`+touch+`)"
      B: "`+"`"+touch+"`"+`"
`, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s exists: converting executed a command", marker)
	}
	web := find[*api.Service](t, res, "web")
	env := envMap(web.Spec.Env)
	if env["A"] != "$("+touch+")" || env["B"] != "`"+touch+"`" {
		t.Errorf("env %v, want the text unchanged", env)
	}
	if !reflect.DeepEqual(web.Spec.Command, []string{"/bin/echo", "`" + touch + "`"}) || !reflect.DeepEqual(web.Spec.Args, []string{"$(" + touch + ")"}) {
		t.Errorf("command %q, args %q: want the words unchanged", web.Spec.Command, web.Spec.Args)
	}
}

// Without Input.Env, the process environment applies over WorkingDir/.env.
func TestProcessEnvironmentAndDotEnv(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte("FROM_DOTENV=dot\nBOTH=dot\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BOTH", "process")
	t.Setenv("ONLY_PROCESS", "process")
	src := []byte("services:\n  web:\n    image: nginx:1\n    environment:\n      A: ${FROM_DOTENV}\n      B: ${BOTH}\n      C: ${ONLY_PROCESS}\n")

	res, err := Convert(context.Background(), Input{Files: []File{{Content: src}}, WorkingDir: dir, ProjectName: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	if env := envMap(find[*api.Service](t, res, "web").Spec.Env); env["A"] != "dot" || env["B"] != "process" || env["C"] != "process" {
		t.Errorf("default environment: %v", env)
	}

	// An explicit environment is used exactly: no process variables, no .env.
	res, err = Convert(context.Background(), Input{Files: []File{{Content: src}}, WorkingDir: dir, ProjectName: "demo", Env: map[string]string{"BOTH": "given"}})
	if err != nil {
		t.Fatal(err)
	}
	if env := envMap(find[*api.Service](t, res, "web").Spec.Env); env["A"] != "" || env["B"] != "given" || env["C"] != "" {
		t.Errorf("explicit environment: %v", env)
	}
}

// ---- files ----

func TestMergedFiles(t *testing.T) {
	res, err := Convert(context.Background(), Input{
		Files: []File{
			{Content: []byte("services:\n  web:\n    image: nginx:1\n    environment: {A: base, B: base}\n")},
			{Content: []byte("services:\n  web:\n    environment: {B: override}\n    ports: [\"80:80\"]\n")},
		},
		ProjectName: "demo",
		Env:         map[string]string{},
	})
	if err != nil {
		t.Fatal(err)
	}
	web := find[*api.Service](t, res, "web")
	if env := envMap(web.Spec.Env); env["A"] != "base" || env["B"] != "override" {
		t.Errorf("env %v", env)
	}
	if want := []api.Port{{ContainerPort: 80, HostPort: 80, Protocol: api.ProtocolTCP}}; !reflect.DeepEqual(web.Spec.Ports, want) {
		t.Errorf("ports %v", web.Spec.Ports)
	}
}

func TestProfiles(t *testing.T) {
	src := `
services:
  web:
    image: nginx:1
    depends_on:
      debug: {condition: service_started, required: false}
  debug:
    image: busybox:1
    profiles: [debug]
`
	res := mustConvert(t, src)
	if got := names(res.Objects); !reflect.DeepEqual(got, []string{"Project/demo", "Service/web"}) {
		t.Errorf("objects %v", got)
	}
	checkFindings(t, res.Unmapped, []want{
		{"services.debug", "in profile(s) debug, none of them active: not imported"},
		{"services.web.depends_on.debug", "debug is not imported (its profile is not active): dependency dropped"},
	})

	res, err := Convert(context.Background(), Input{Files: []File{{Content: []byte(src)}}, ProjectName: "demo", Env: map[string]string{}, Profiles: []string{"debug"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := find[*api.Service](t, res, "web").Spec.DependsOn; !reflect.DeepEqual(got, []string{"debug"}) {
		t.Errorf("dependsOn %v", got)
	}
	checkFindings(t, res.Unmapped, []want{{"services.debug.profiles", "PanelX has no profiles"}})
}

// ---- errors ----

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"bad-yaml.yml", []string{"bad-yaml.yml", "yaml", "line 3"}},
		{"unknown-top-level.yml", []string{"unknown-top-level.yml", "additional properties 'servers' not allowed"}},
		{"unknown-service-field.yml", []string{"services.web.imagee", `unknown field "imagee"`}},
		{"missing-env-file.yml", []string{"missing.env", "not found"}},
		{"undefined-volume.yml", []string{`service "web" refers to undefined volume data`}},
		{"no-image.yml", []string{`service "web" has neither an image nor a build context`}},
		{"does-not-exist.yml", []string{"read", "does-not-exist.yml", "no such file"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := Convert(context.Background(), Input{
				Files:       []File{{Path: filepath.Join("testdata/errors", tt.file)}},
				ProjectName: "demo",
				Env:         map[string]string{},
			})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestInputErrors(t *testing.T) {
	tests := []struct {
		name string
		in   Input
		want string
	}{
		{"no files", Input{}, "no compose file given"},
		{"file without path or content", Input{Files: []File{{}}}, "neither a path nor content"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Convert(context.Background(), tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Convert(ctx, Input{Files: []File{{Content: []byte("services:\n  web:\n    image: nginx:1\n")}}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestStopGracePeriod: stop_grace_period becomes stopGracePeriod; one
// beyond PanelX's bound is capped and reported.
func TestStopGracePeriod(t *testing.T) {
	res := mustConvert(t, `
services:
  web:
    image: nginx
    stop_grace_period: 45s
  db:
    image: postgres
    stop_grace_period: 2h
`)
	if got := find[*api.Service](t, res, "web").Spec.StopGracePeriod.Duration; got != 45*time.Second {
		t.Errorf("web: stopGracePeriod %v, want 45s", got)
	}
	if got := find[*api.Service](t, res, "db").Spec.StopGracePeriod.Duration; got != api.MaxStopGracePeriod {
		t.Errorf("db: stopGracePeriod %v, want %v", got, api.MaxStopGracePeriod)
	}
	checkFindings(t, res.Unmapped, []want{{"services.db.stop_grace_period", "more than PanelX allows"}})
}

// TestProfilesFromTheEnvironment: COMPOSE_PROFILES switches profiles on as
// in docker compose — from the environment given, or from .env.
func TestProfilesFromTheEnvironment(t *testing.T) {
	const src = `
services:
  web: {image: nginx:1}
  debug: {image: busybox:1, profiles: [debug]}
`
	names := func(res *Result) []string {
		var out []string
		for _, o := range res.Objects {
			if o.GetKind() == api.KindService {
				out = append(out, o.GetMeta().Name)
			}
		}
		return out
	}
	res, err := convertText(t, src, nil, map[string]string{"COMPOSE_PROFILES": "debug, other"})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(res); !slices.Equal(got, []string{"debug", "web"}) {
		t.Errorf("COMPOSE_PROFILES=debug: services %v", got)
	}

	t.Setenv("COMPOSE_PROFILES", "x")
	os.Unsetenv("COMPOSE_PROFILES") // restored after the test
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte("COMPOSE_PROFILES=debug\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err = Convert(context.Background(), Input{Files: []File{{Path: filepath.Join(dir, "compose.yaml"), Content: []byte(src)}}, ProjectName: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(res); !slices.Equal(got, []string{"debug", "web"}) {
		t.Errorf(".env COMPOSE_PROFILES=debug: services %v", got)
	}
}

// TestNothingImportedIsAnError: a file none of whose services can be
// imported fails, saying why, instead of creating an empty project.
func TestNothingImportedIsAnError(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"only profiles", "services:\n  a: {image: x:1, profiles: [dev]}\n  b: {image: x:1, profiles: [test, dev]}\n",
			"enable a profile with --profile or COMPOSE_PROFILES (dev, test)"},
		{"only builds", "services:\n  web: {build: .}\n", "web: it has only a build"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := convertText(t, tt.src, nil, nil)
			if err == nil || !strings.Contains(err.Error(), "no service could be imported") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one saying %q", err, tt.want)
			}
		})
	}
}

// TestUnsetVariableIsNamed: a spec made invalid by an unset variable says
// which variable.
func TestUnsetVariableIsNamed(t *testing.T) {
	_, err := convertText(t, "services:\n  web: {image: \"nginx:${TAG}\"}\n", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "${TAG}") || !strings.Contains(err.Error(), "not set") {
		t.Fatalf("err = %v, want it to name ${TAG}", err)
	}
	_, err = convertText(t, "services:\n  web: {image: \"nginx:${TAG:?set TAG in .env}\"}\n", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "TAG") || !strings.Contains(err.Error(), "set TAG in .env") {
		t.Fatalf("err = %v, want compose's required-variable message", err)
	}
}
