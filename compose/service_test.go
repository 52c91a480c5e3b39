package compose

import (
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/panelx/panelx/api"
)

// mappingCase is one compose file whose service "web" must map to the
// defaulted spec of `image: nginx:1` changed by spec, with exactly the
// findings listed.
type mappingCase struct {
	name     string
	compose  string
	files    map[string]string // written to the working directory
	env      map[string]string
	spec     func(*api.ServiceSpec)
	labels   map[string]string
	findings []want
}

func runMappingCases(t *testing.T, cases []mappingCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := convertText(t, tc.compose, tc.files, tc.env)
			if err != nil {
				t.Fatalf("Convert: %v", err)
			}
			web := find[*api.Service](t, res, "web")
			wantSvc := &api.Service{Metadata: api.ObjectMeta{Name: "web", Project: "demo", Labels: tc.labels}, Spec: api.ServiceSpec{Image: "nginx:1"}}
			if tc.spec != nil {
				tc.spec(&wantSvc.Spec)
			}
			wantSvc.Default()
			if !reflect.DeepEqual(web, wantSvc) {
				got, _ := json.MarshalIndent(web, "", "  ")
				exp, _ := json.MarshalIndent(wantSvc, "", "  ")
				t.Errorf("service:\n%s\nwant:\n%s", got, exp)
			}
			checkFindings(t, res.Unmapped, tc.findings)
		})
	}
}

func TestMapCommandAndProcess(t *testing.T) {
	runMappingCases(t, []mappingCase{{
		name: "entrypoint is command, command is args",
		compose: `
services:
  web:
    image: nginx:1
    entrypoint: ["/docker-entrypoint.sh", "-v"]
    command: nginx -g "daemon off;"
    working_dir: /srv/www/
    user: "101:101"
`,
		spec: func(s *api.ServiceSpec) {
			s.Command = []string{"/docker-entrypoint.sh", "-v"}
			s.Args = []string{"nginx", "-g", "daemon off;"}
			s.WorkingDir = "/srv/www"
			s.User = "101:101"
		},
	}, {
		name:    "entrypoint as a string is split like a shell would, not run by one",
		compose: "services:\n  web:\n    image: nginx:1\n    entrypoint: /bin/run --flag 'two words'\n",
		spec:    func(s *api.ServiceSpec) { s.Command = []string{"/bin/run", "--flag", "two words"} },
	}, {
		name:    "empty entrypoint and command cannot clear the image's",
		compose: "services:\n  web:\n    image: nginx:1\n    entrypoint: []\n    command: []\n",
		findings: []want{
			{"services.web.command", "PanelX cannot clear the image's CMD"},
			{"services.web.entrypoint", "PanelX cannot clear the image's ENTRYPOINT"},
		},
	}})
}

func TestMapEnvironment(t *testing.T) {
	runMappingCases(t, []mappingCase{{
		name: "mapping form, sorted, empty value kept",
		compose: `
services:
  web:
    image: nginx:1
    environment:
      ZED: "1"
      ALPHA: "true"
      EMPTY: ""
`,
		spec: func(s *api.ServiceSpec) {
			s.Env = []api.EnvVar{{Name: "ALPHA", Value: "true"}, {Name: "EMPTY"}, {Name: "ZED", Value: "1"}}
		},
	}, {
		name: "list form; a name alone takes its value from the environment or is reported",
		compose: `
services:
  web:
    image: nginx:1
    environment:
      - B=2=two
      - FROM_ENV
      - MISSING
`,
		env: map[string]string{"FROM_ENV": "outside"},
		spec: func(s *api.ServiceSpec) {
			s.Env = []api.EnvVar{{Name: "B", Value: "2=two"}, {Name: "FROM_ENV", Value: "outside"}}
		},
		findings: []want{{"services.web.environment.MISSING", "has no value and MISSING is not set in the environment"}},
	}, {
		name: "env_file merged, environment wins",
		compose: `
services:
  web:
    image: nginx:1
    env_file: [app.env, {path: optional.env, required: false}]
    environment:
      SHARED: from-environment
`,
		files: map[string]string{"app.env": "# comment\nFROM_FILE=1\nSHARED=from-file\nQUOTED=\"a b\"\n"},
		spec: func(s *api.ServiceSpec) {
			s.Env = []api.EnvVar{{Name: "FROM_FILE", Value: "1"}, {Name: "QUOTED", Value: "a b"}, {Name: "SHARED", Value: "from-environment"}}
		},
	}})
}

func TestMapPorts(t *testing.T) {
	tcp, udp := api.ProtocolTCP, api.ProtocolUDP
	runMappingCases(t, []mappingCase{{
		name: "short syntax",
		compose: `
services:
  web:
    image: nginx:1
    ports:
      - "8080:80"
      - "127.0.0.1:5353:53/udp"
      - "[::1]:8443:443"
`,
		spec: func(s *api.ServiceSpec) {
			s.Ports = []api.Port{
				{ContainerPort: 80, HostPort: 8080, Protocol: tcp},
				{ContainerPort: 53, HostPort: 5353, HostIP: "127.0.0.1", Protocol: udp},
				{ContainerPort: 443, HostPort: 8443, HostIP: "::1", Protocol: tcp},
			}
		},
	}, {
		name:    "a range maps port by port",
		compose: "services:\n  web:\n    image: nginx:1\n    ports: [\"8000-8002:9000-9002\"]\n",
		spec: func(s *api.ServiceSpec) {
			s.Ports = []api.Port{
				{ContainerPort: 9000, HostPort: 8000, Protocol: tcp},
				{ContainerPort: 9001, HostPort: 8001, Protocol: tcp},
				{ContainerPort: 9002, HostPort: 8002, Protocol: tcp},
			}
		},
	}, {
		name:    "container port only: no host port",
		compose: "services:\n  web:\n    image: nginx:1\n    ports: [\"80\", 81]\n",
		spec: func(s *api.ServiceSpec) {
			s.Ports = []api.Port{{ContainerPort: 80, Protocol: tcp}, {ContainerPort: 81, Protocol: tcp}}
		},
		findings: []want{{"services.web.ports[0]", "PanelX publishes none"}, {"services.web.ports[1]", "PanelX publishes none"}},
	}, {
		name: "long syntax, host mode",
		compose: `
services:
  web:
    image: nginx:1
    ports:
      - target: 80
        published: "8080"
        host_ip: 10.0.0.5
        protocol: tcp
        mode: host
      - target: 9000
        published: 9000
        name: metrics
        app_protocol: http
`,
		spec: func(s *api.ServiceSpec) {
			s.Ports = []api.Port{{ContainerPort: 80, HostPort: 8080, HostIP: "10.0.0.5", Protocol: tcp}, {ContainerPort: 9000, HostPort: 9000, Protocol: tcp}}
		},
		findings: []want{
			{"services.web.ports[1].app_protocol", "does not use the application protocol"},
			{"services.web.ports[1].name", "PanelX has no equivalent"},
		},
	}, {
		name:     "a host range for one container port takes its first port",
		compose:  "services:\n  web:\n    image: nginx:1\n    ports: [\"7000-7005:80\"]\n",
		spec:     func(s *api.ServiceSpec) { s.Ports = []api.Port{{ContainerPort: 80, HostPort: 7000, Protocol: tcp}} },
		findings: []want{{"services.web.ports[0].published", "host port range 7000-7005 for one container port: PanelX publishes a fixed port, 7000"}},
	}, {
		name:     "a host IP without a host port",
		compose:  "services:\n  web:\n    image: nginx:1\n    ports: [\"127.0.0.1::80\"]\n",
		spec:     func(s *api.ServiceSpec) { s.Ports = []api.Port{{ContainerPort: 80, Protocol: tcp}} },
		findings: []want{{"services.web.ports[0]", "host IP 127.0.0.1 without a host port"}},
	}, {
		name:     "sctp is not mapped",
		compose:  "services:\n  web:\n    image: nginx:1\n    ports: [\"9000:9000/sctp\"]\n",
		findings: []want{{"services.web.ports[0].protocol", "tcp and udp ports only: port 9000/sctp not imported"}},
	}, {
		name:    "expose adds container ports, once",
		compose: "services:\n  web:\n    image: nginx:1\n    ports: [\"8080:80\"]\n    expose: [\"80\", 3000, \"4000-4001/udp\", \"bad\"]\n",
		spec: func(s *api.ServiceSpec) {
			s.Ports = []api.Port{
				{ContainerPort: 80, HostPort: 8080, Protocol: tcp},
				{ContainerPort: 3000, Protocol: tcp},
				{ContainerPort: 4000, Protocol: udp},
				{ContainerPort: 4001, Protocol: udp},
			}
		},
		findings: []want{{"services.web.expose[3]", `"bad" is not a port`}},
	}})
}

func TestMapVolumes(t *testing.T) {
	runMappingCases(t, []mappingCase{{
		name: "named, read-only, tmpfs",
		compose: `
services:
  web:
    image: nginx:1
    volumes:
      - data:/data
      - type: volume
        source: data
        target: /ro
        read_only: true
      - type: tmpfs
        target: /scratch
    tmpfs: [/run, "/cache:size=64m,mode=1777"]
volumes:
  data: {}
`,
		spec: func(s *api.ServiceSpec) {
			s.Volumes = []api.VolumeMount{
				{Name: "data", MountPath: "/data"},
				{Name: "data", MountPath: "/ro", ReadOnly: true},
				{Tmpfs: true, MountPath: "/scratch"},
				{Tmpfs: true, MountPath: "/run"},
				{Tmpfs: true, MountPath: "/cache"},
			}
		},
		findings: []want{{"services.web.tmpfs[1]", `options "size=64m,mode=1777" not imported`}},
	}, {
		name:    "anonymous volume becomes a Volume",
		compose: "services:\n  web:\n    image: nginx:1\n    volumes: [/var/cache/nginx]\n",
		spec: func(s *api.ServiceSpec) {
			s.Volumes = []api.VolumeMount{{Name: "web-1", MountPath: "/var/cache/nginx"}}
		},
		findings: []want{{"services.web.volumes[0]", `anonymous volume at /var/cache/nginx: imported as the Volume "web-1"`}},
	}, {
		// Never dropped silently: a hostPath, which the server's spec policy
		// allows administrators only (the socket only when allowed).
		name: "binds become hostPath",
		compose: `
services:
  web:
    image: nginx:1
    volumes:
      - /srv/site/:/usr/share/nginx/html:ro
      - /var/run/docker.sock:/var/run/docker.sock
      - type: bind
        source: /var/lib/postgresql/data
        target: /data
`,
		spec: func(s *api.ServiceSpec) {
			s.Volumes = []api.VolumeMount{
				{HostPath: "/srv/site", MountPath: "/usr/share/nginx/html", ReadOnly: true},
				{HostPath: "/var/run/docker.sock", MountPath: "/var/run/docker.sock"},
				{HostPath: "/var/lib/postgresql/data", MountPath: "/data"},
			}
		},
		findings: []want{
			// The short syntax asks Docker to create a missing source.
			{"services.web.volumes[0]", "the host path /srv/site is mounted as it is: PanelX does not create it when it is missing"},
			{"services.web.volumes[1]", "the host path /var/run/docker.sock is mounted as it is"},
		},
	}, {
		name: "volume options and tmpfs size are reported",
		compose: `
services:
  web:
    image: nginx:1
    volumes:
      - type: volume
        source: data
        target: /data
        volume: {nocopy: true, subpath: sub}
      - type: tmpfs
        target: /t
        tmpfs: {size: 1048576}
      - type: npipe
        source: \\.\pipe\docker_engine
        target: \\.\pipe\docker_engine
volumes:
  data: {}
`,
		spec: func(s *api.ServiceSpec) {
			s.Volumes = []api.VolumeMount{{Name: "data", MountPath: "/data"}, {Tmpfs: true, MountPath: "/t"}}
		},
		findings: []want{
			{"services.web.volumes[0].volume.nocopy", "lets Docker copy"},
			{"services.web.volumes[0].volume.subpath", "mounts whole volumes"},
			{"services.web.volumes[1].tmpfs", "size and mode not imported"},
			{"services.web.volumes[2]", `volume type "npipe" is not supported`},
		},
	}})
}

func TestMapTopLevelVolumes(t *testing.T) {
	res := mustConvert(t, `
services:
  web:
    image: nginx:1
    volumes: ["data:/data", "old:/old"]
volumes:
  data:
    driver: local
    driver_opts: {type: nfs, o: "addr=10.0.0.1,rw", device: ":/export"}
    labels: {tier: gold, "Bad Key": x}
  old:
    name: legacy_volume
`)
	data := find[*api.Volume](t, res, "data")
	wantVol := &api.Volume{
		Metadata: api.ObjectMeta{Name: "data", Project: "demo", Labels: map[string]string{"tier": "gold"}},
		Spec:     api.VolumeSpec{Driver: "local", DriverOpts: map[string]string{"type": "nfs", "o": "addr=10.0.0.1,rw", "device": ":/export"}},
	}
	wantVol.Default()
	if !reflect.DeepEqual(data, wantVol) {
		t.Errorf("volume %+v, want %+v", data, wantVol)
	}
	find[*api.Volume](t, res, "old")
	checkFindings(t, res.Unmapped, []want{
		{"volumes.data.labels[Bad Key]", "compose volume labels are Docker volume labels"},
		{"volumes.old.name", `the Docker volume "legacy_volume" is not used`},
	})
}

// TestExternalVolume: an external volume holds data PanelX cannot adopt:
// the file is refused, saying how to go on; asked to, it becomes a new,
// empty Volume, reported.
func TestExternalVolume(t *testing.T) {
	const src = `
services:
  db:
    image: postgres:16
    volumes: ["pgdata:/var/lib/postgresql/data"]
volumes:
  pgdata:
    external: true
`
	// By default the existing volume is mounted as it is, and no Volume
	// (which PanelX would own, and could remove) stands for it.
	adopted, err := convertText(t, src+"    name: legacy_pgdata\n", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	db := find[*api.Service](t, adopted, "db")
	if want := []api.VolumeMount{{DockerVolume: "legacy_pgdata", MountPath: "/var/lib/postgresql/data"}}; !reflect.DeepEqual(db.Spec.Volumes, want) {
		t.Errorf("mounts %+v, want %+v", db.Spec.Volumes, want)
	}
	for _, obj := range adopted.Objects {
		if obj.GetKind() == api.KindVolume {
			t.Errorf("an external volume became a Volume: %+v", obj)
		}
	}
	checkFindings(t, adopted.Unmapped, nil)
	res, err := Convert(context.Background(), Input{Files: []File{{Path: filepath.Join(t.TempDir(), "compose.yaml"), Content: []byte(src)}},
		ProjectName: "demo", Env: map[string]string{}, EmptyExternalVolumes: true})
	if err != nil {
		t.Fatal(err)
	}
	find[*api.Volume](t, res, "pgdata")
	checkFindings(t, res.Unmapped, []want{{"volumes.pgdata.external", `the existing Docker volume "pgdata" is not used; a new, empty Volume "pgdata" is created`}})
}

func TestMapDependsOn(t *testing.T) {
	runMappingCases(t, []mappingCase{{
		name: "short and long form, started and healthy",
		compose: `
services:
  web:
    image: nginx:1
    depends_on:
      db: {condition: service_healthy}
      cache: {condition: service_started}
  db: {image: "postgres:16"}
  cache: {image: "redis:7"}
`,
		spec: func(s *api.ServiceSpec) { s.DependsOn = []string{"cache", "db"} },
	}, {
		name: "other conditions and options are reported",
		compose: `
services:
  web:
    image: nginx:1
    depends_on:
      migrate: {condition: service_completed_successfully}
      db: {condition: service_started, restart: true}
  migrate: {image: "app:1"}
  db: {image: "postgres:16"}
`,
		spec: func(s *api.ServiceSpec) { s.DependsOn = []string{"db"} },
		findings: []want{
			{"services.web.depends_on.db.restart", "does not restart a service when a dependency restarts"},
			{"services.web.depends_on.migrate.condition", "PanelX has no run-to-completion services"},
		},
	}, {
		name: "a dependency that is not imported is dropped",
		compose: `
services:
  web:
    image: nginx:1
    depends_on: [builder]
  builder:
    build: .
`,
		findings: []want{
			{"services.builder.build", "which the server cannot see"},
			{"services.web.depends_on.builder", "builder is not imported (it has only a build from a local directory): dependency dropped"},
		},
	}})
}

func TestMapHealthcheck(t *testing.T) {
	hc := func(cmd ...string) func(*api.ServiceSpec) {
		return func(s *api.ServiceSpec) { s.Healthcheck = &api.Healthcheck{Command: cmd} }
	}
	svc := func(h string) string { return "services:\n  web:\n    image: nginx:1\n    healthcheck:\n" + h }
	runMappingCases(t, []mappingCase{{
		name:    "CMD is the exec form",
		compose: svc("      test: [\"CMD\", \"curl\", \"-f\", \"http://localhost/\"]\n"),
		spec:    hc("curl", "-f", "http://localhost/"),
	}, {
		name:     "CMD-SHELL runs through /bin/sh",
		compose:  svc("      test: [\"CMD-SHELL\", \"curl -f localhost || exit 1\"]\n"),
		spec:     hc("/bin/sh", "-c", "curl -f localhost || exit 1"),
		findings: []want{{"services.web.healthcheck.test", "the image needs /bin/sh"}},
	}, {
		name:     "a string is the shell form",
		compose:  svc("      test: pg_isready\n"),
		spec:     hc("/bin/sh", "-c", "pg_isready"),
		findings: []want{{"services.web.healthcheck.test", "the image needs /bin/sh"}},
	}, {
		name:    "timings and retries",
		compose: svc("      test: [\"CMD\", \"true\"]\n      interval: 1m30s\n      timeout: 2s\n      start_period: 40s\n      retries: 7\n      start_interval: 1s\n"),
		spec: func(s *api.ServiceSpec) {
			s.Healthcheck = &api.Healthcheck{
				Command:     []string{"true"},
				Interval:    api.Duration{Duration: 90 * time.Second},
				Timeout:     api.Duration{Duration: 2 * time.Second},
				StartPeriod: api.Duration{Duration: 40 * time.Second},
				Retries:     7,
			}
		},
		findings: []want{{"services.web.healthcheck.start_interval", "PanelX has no start interval"}},
	}, {
		name:     "too many retries",
		compose:  svc("      test: [\"CMD\", \"true\"]\n      retries: 1000\n"),
		spec:     func(s *api.ServiceSpec) { s.Healthcheck = &api.Healthcheck{Command: []string{"true"}, Retries: 100} },
		findings: []want{{"services.web.healthcheck.retries", "at most 100 retries"}},
	}, {
		name:     "disable",
		compose:  svc("      disable: true\n"),
		findings: []want{{"services.web.healthcheck", "cannot switch off the image's own HEALTHCHECK"}},
	}, {
		name:     "NONE",
		compose:  svc("      test: [\"NONE\"]\n"),
		findings: []want{{"services.web.healthcheck", "cannot switch off the image's own HEALTHCHECK"}},
	}, {
		name:     "timings without a test",
		compose:  svc("      interval: 3s\n"),
		findings: []want{{"services.web.healthcheck.test", "no test: PanelX needs the command"}},
	}})
}

func TestMapReplicas(t *testing.T) {
	replicas := func(n int32) func(*api.ServiceSpec) { return func(s *api.ServiceSpec) { s.Replicas = &n } }
	runMappingCases(t, []mappingCase{{
		name:    "deploy.replicas",
		compose: "services:\n  web:\n    image: nginx:1\n    deploy: {replicas: 3}\n",
		spec:    replicas(3),
	}, {
		name:    "scale",
		compose: "services:\n  web:\n    image: nginx:1\n    scale: 2\n",
		spec:    replicas(2),
	}, {
		name:    "zero",
		compose: "services:\n  web:\n    image: nginx:1\n    deploy: {replicas: 0}\n",
		spec:    replicas(0),
	}, {
		name:    "a host port limits to one replica",
		compose: "services:\n  web:\n    image: nginx:1\n    ports: [\"8080:80\"]\n    deploy: {replicas: 3}\n",
		spec: func(s *api.ServiceSpec) {
			s.Replicas = ptr[int32](1)
			s.Ports = []api.Port{{ContainerPort: 80, HostPort: 8080, Protocol: api.ProtocolTCP}}
		},
		findings: []want{{"services.web.deploy.replicas", "3 replicas cannot all publish the same host port: imported with replicas 1"}},
	}, {
		name:    "a host port with scale",
		compose: "services:\n  web:\n    image: nginx:1\n    ports: [\"8080:80\"]\n    scale: 2\n",
		spec: func(s *api.ServiceSpec) {
			s.Ports = []api.Port{{ContainerPort: 80, HostPort: 8080, Protocol: api.ProtocolTCP}}
		},
		findings: []want{{"services.web.scale", "2 replicas cannot all publish"}},
	}, {
		name: "swarm settings are reported",
		compose: `
services:
  web:
    image: nginx:1
    deploy:
      replicas: 2
      endpoint_mode: dnsrr
      placement: {constraints: ["node.role == manager"]}
      update_config: {parallelism: 1, order: start-first}
`,
		spec: replicas(2),
		findings: []want{
			{"services.web.deploy.endpoint_mode", "no swarm endpoint modes"},
			{"services.web.deploy.placement", "on one Docker host"},
			{"services.web.deploy.update_config", "replaces containers one by one"},
		},
	}, {
		name:     "global mode",
		compose:  "services:\n  web:\n    image: nginx:1\n    deploy: {mode: global}\n",
		findings: []want{{"services.web.deploy.mode", "global mode imported as 1 replica(s)"}},
	}})
}

func TestMapRestart(t *testing.T) {
	tests := []struct {
		compose  string
		want     api.RestartPolicy
		findings []want
	}{
		{"restart: \"no\"", api.RestartNever, nil},
		{"restart: always", api.RestartAlways, nil},
		{"restart: on-failure", api.RestartOnFailure, nil},
		{"restart: on-failure:3", api.RestartOnFailure, []want{{"services.web.restart", "does not limit restart attempts: imported as OnFailure without the limit of 3"}}},
		{"restart: unless-stopped", api.RestartAlways, []want{{"services.web.restart", "PanelX has no unless-stopped: imported as Always"}}},
		{"deploy: {restart_policy: {condition: none}}", api.RestartNever, nil},
		{"deploy: {restart_policy: {condition: on-failure, max_attempts: 5, delay: 5s}}", api.RestartOnFailure, []want{
			{"services.web.deploy.restart_policy.delay", "PanelX has no equivalent"},
			{"services.web.deploy.restart_policy.max_attempts", "PanelX has no equivalent"},
		}},
		{"deploy: {restart_policy: {condition: any}}", api.RestartAlways, nil},
		{"restart: \"no\"\n    deploy: {restart_policy: {condition: on-failure}}", api.RestartOnFailure, []want{{"services.web.restart", "overridden by deploy.restart_policy (OnFailure)"}}},
	}
	var cases []mappingCase
	for _, tt := range tests {
		cases = append(cases, mappingCase{
			name:     tt.compose,
			compose:  "services:\n  web:\n    image: nginx:1\n    " + tt.compose + "\n",
			spec:     func(s *api.ServiceSpec) { s.RestartPolicy = tt.want },
			findings: tt.findings,
		})
	}
	runMappingCases(t, cases)
}

func TestMapLabels(t *testing.T) {
	runMappingCases(t, []mappingCase{{
		name: "valid labels become metadata.labels, others are reported",
		compose: `
services:
  web:
    image: nginx:1
    labels:
      app: shop
      com.example/tier: frontend
      traefik.http.routers.web.rule: Host(` + "`shop.example.com`" + `)
      "bad key!": x
    deploy:
      labels:
        team: payments
        app: from-deploy
`,
		labels: map[string]string{"app": "shop", "com.example/tier": "frontend", "team": "payments"},
		findings: []want{
			{"services.web.labels.app", `overrides "from-deploy" from deploy.labels`},
			{"services.web.labels[bad key!]", "compose labels are container labels"},
			{"services.web.labels[traefik.http.routers.web.rule]", "a label value must be at most 63 characters"},
		},
	}, {
		name:    "list form",
		compose: "services:\n  web:\n    image: nginx:1\n    labels: [\"a=1\", \"b=two\"]\n",
		labels:  map[string]string{"a": "1", "b": "two"},
	}})
}

func TestMapResources(t *testing.T) {
	res := func(cpus, mem string) func(*api.ServiceSpec) {
		return func(s *api.ServiceSpec) {
			s.Resources = api.Resources{CPUs: api.Quantity(cpus), Memory: api.Quantity(mem)}
		}
	}
	runMappingCases(t, []mappingCase{{
		name:    "cpus and mem_limit",
		compose: "services:\n  web:\n    image: nginx:1\n    cpus: 0.25\n    mem_limit: 512m\n",
		spec:    res("0.25", "512Mi"),
	}, {
		name:    "memory that is not whole MiB stays in bytes",
		compose: "services:\n  web:\n    image: nginx:1\n    mem_limit: 10000000\n",
		spec:    res("", "10000000"),
	}, {
		name:    "deploy limits",
		compose: "services:\n  web:\n    image: nginx:1\n    deploy:\n      resources:\n        limits: {cpus: \"2\", memory: 1G, pids: 100}\n        reservations: {memory: 64M}\n",
		spec:    res("2", "1024Mi"),
		findings: []want{
			{"services.web.deploy.resources.limits.pids", "PanelX has no equivalent"},
			{"services.web.deploy.resources.reservations", "limits only, not reservations"},
		},
	}, {
		name:    "below the minimums",
		compose: "services:\n  web:\n    image: nginx:1\n    cpus: 0.001\n    mem_limit: 1m\n",
		findings: []want{
			{"services.web.cpus", "0.001 CPUs is below PanelX's minimum of 0.01"},
			{"services.web.mem_limit", "1048576 bytes is below Docker's minimum of 6Mi"},
		},
	}})
}

func TestMapHostSettings(t *testing.T) {
	runMappingCases(t, []mappingCase{{
		name: "mapped for the API's policy to judge",
		compose: `
services:
  web:
    image: nginx:1
    privileged: true
    cap_add: [NET_ADMIN]
    cap_drop: [ALL]
    devices: ["/dev/fuse", "/dev/sda:/dev/xvda:r"]
    sysctls: ["net.core.somaxconn=1024"]
    security_opt: ["no-new-privileges:true"]
    network_mode: host
    pid: host
    ipc: shareable
    uts: host
`,
		spec: func(s *api.ServiceSpec) {
			s.Privileged = true
			s.CapAdd = []string{"NET_ADMIN"}
			s.CapDrop = []string{"ALL"}
			s.Devices = []string{"/dev/fuse:/dev/fuse:rwm", "/dev/sda:/dev/xvda:r"}
			s.Sysctls = map[string]string{"net.core.somaxconn": "1024"}
			s.SecurityOpt = []string{"no-new-privileges:true"}
			s.NetworkMode = "host"
			s.PIDMode = "host"
			s.IPCMode = "shareable"
			s.UTSMode = "host"
		},
	}, {
		name:    "network_mode none",
		compose: "services:\n  web:\n    image: nginx:1\n    network_mode: none\n",
		spec:    func(s *api.ServiceSpec) { s.NetworkMode = "none" },
	}, {
		name: "another container's namespaces are not mapped",
		compose: `
services:
  web:
    image: nginx:1
    network_mode: "service:vpn"
    ipc: "service:vpn"
    pid: "container:abc"
  vpn: {image: "wireguard:1"}
`,
		spec: func(s *api.ServiceSpec) { s.DependsOn = []string{"vpn"} },
		findings: []want{
			// compose-go makes web depend on vpn, restarting with it.
			{"services.web.depends_on.vpn.restart", "does not restart a service when a dependency restarts"},
			{"services.web.ipc", `"service:vpn": PanelX supports host, private, shareable only`},
			{"services.web.network_mode", "cannot share another container's network"},
			{"services.web.pid", `"container:abc": PanelX supports host only`},
		},
	}, {
		name:     "bridge",
		compose:  "services:\n  web:\n    image: nginx:1\n    network_mode: bridge\n",
		findings: []want{{"services.web.network_mode", `"bridge": PanelX attaches services to the project network`}},
	}})
}

func TestMapPullPolicy(t *testing.T) {
	tests := []struct {
		policy   string
		want     api.PullPolicy
		findings []want
	}{
		{"always", api.PullAlways, nil},
		{"never", api.PullNever, nil},
		{"missing", api.PullIfNotPresent, nil},
		{"if_not_present", api.PullIfNotPresent, nil},
		{"build", api.PullIfNotPresent, []want{{"services.web.pull_policy", "does not build images"}}},
		{"daily", api.PullAlways, []want{{"services.web.pull_policy", `"daily": PanelX looks for a moved tag every PANELX_PULL_INTERVAL`}}},
	}
	var cases []mappingCase
	for _, tt := range tests {
		cases = append(cases, mappingCase{
			name:     tt.policy,
			compose:  "services:\n  web:\n    image: nginx:1\n    pull_policy: " + tt.policy + "\n",
			spec:     func(s *api.ServiceSpec) { s.ImagePullPolicy = tt.want },
			findings: tt.findings,
		})
	}
	runMappingCases(t, cases)
}

// A build from a git context becomes spec.build; Compose's #ref:dir
// fragment gives the ref and the context directory.
func TestBuildMapping(t *testing.T) {
	runMappingCases(t, []mappingCase{{
		name: "git context",
		compose: `
services:
  web:
    image: shop/web:dev
    build:
      context: https://git.example.com/shop/web.git#main:services/web
      dockerfile: Dockerfile.prod
      target: runtime
      args: {VERSION: "1.4"}
`,
		spec: func(s *api.ServiceSpec) {
			s.Image = ""
			s.ImagePullPolicy = ""
			s.Build = &api.BuildSpec{Git: api.GitSource{URL: "https://git.example.com/shop/web.git", Ref: "main", Dir: "services/web"},
				Dockerfile: "Dockerfile.prod", Target: "runtime", Args: map[string]string{"VERSION": "1.4"}}
		},
		findings: []want{
			{"services.web.image", "PanelX tags what it builds itself"},
		},
	}})
}

// Compose secrets become Secrets of the project, read from their file or
// the environment, mounted as read-only files where Compose puts them.
func TestSecretsMapping(t *testing.T) {
	const src = `
services:
  web:
    image: nginx:1
    secrets:
      - db_password
      - source: api.key
        target: api
      - {source: tls, target: /etc/tls/key.pem, mode: 0400}
      - vault
secrets:
  db_password: {file: ./db_password.txt}
  api.key: {environment: API_KEY}
  tls: {file: ./key.pem}
  vault: {external: true}
`
	res, err := convertText(t, src, map[string]string{"db_password.txt": "s3cret\n", "key.pem": "-----KEY-----"}, map[string]string{"API_KEY": "k-123"})
	if err != nil {
		t.Fatal(err)
	}
	web := find[*api.Service](t, res, "web")
	sel := func(name, key string) *api.SecretKeySelector { return &api.SecretKeySelector{Name: name, Key: key} }
	wantMounts := []api.VolumeMount{
		{Secret: sel("db-password", "db_password"), MountPath: "/run/secrets/db_password", ReadOnly: true},
		{Secret: sel("api-key", "api.key"), MountPath: "/run/secrets/api", ReadOnly: true},
		{Secret: sel("tls", "tls"), MountPath: "/etc/tls/key.pem", ReadOnly: true},
		{Secret: sel("vault", "vault"), MountPath: "/run/secrets/vault", ReadOnly: true},
	}
	if !reflect.DeepEqual(web.Spec.Volumes, wantMounts) {
		t.Errorf("mounts:\n%+v\nwant\n%+v", web.Spec.Volumes, wantMounts)
	}
	values := map[string]map[string]string{}
	for _, obj := range res.Objects {
		if s, ok := obj.(*api.Secret); ok {
			values[s.Metadata.Name] = s.Spec.Data
		}
	}
	wantValues := map[string]map[string]string{
		"db-password": {"db_password": "s3cret\n"}, "api-key": {"api.key": "k-123"}, "tls": {"tls": "-----KEY-----"},
	}
	if !reflect.DeepEqual(values, wantValues) {
		t.Errorf("secrets %v, want %v", values, wantValues)
	}
	checkFindings(t, res.Unmapped, []want{
		{"secrets.vault.external", `Secret "vault" of the project, key "vault", which must exist`},
		{"services.web.secrets[2]", "uid, gid and mode not imported"},
	})

	if _, err := convertText(t, src, nil, map[string]string{"API_KEY": "k"}); err == nil || !strings.Contains(err.Error(), "secrets.db_password.file") {
		t.Errorf("a missing secret file: %v", err)
	}
}

// Compose networks become project networks a service joins only when it
// names them, with their aliases; what PanelX's networks do not do is said.
func TestNetworksMapping(t *testing.T) {
	runMappingCases(t, []mappingCase{{
		name: "networks by priority, aliases on all",
		compose: `
services:
  web:
    image: nginx:1
    networks:
      back_end: {aliases: [api]}
      front: {priority: 10, aliases: [api]}
networks:
  front: {}
  back_end: {driver: bridge}
`,
		spec: func(s *api.ServiceSpec) { s.Networks, s.Aliases = []string{"front", "back-end"}, []string{"api"} },
		findings: []want{
			{"networks.back_end", `the network is named "back-end"`},
		},
	}, {
		name: "aliases on one network only",
		compose: `
services:
  web:
    image: nginx:1
    networks:
      back: {aliases: [db]}
      front: {}
networks:
  front: {}
  back: {}
`,
		spec: func(s *api.ServiceSpec) { s.Networks, s.Aliases = []string{"back", "front"}, []string{"db"} },
		findings: []want{
			{"services.web.networks.front", "the same aliases on each of its networks: here db"},
		},
	}, {
		name: "external, internal, overlay",
		compose: `
services:
  web:
    image: nginx:1
    networks: [proxy, private, swarm]
networks:
  proxy: {external: true}
  private: {internal: true}
  swarm: {driver: overlay}
`,
		spec: func(s *api.ServiceSpec) { s.Networks = []string{"private", "proxy", "swarm"} },
		findings: []want{
			{"networks.private.internal", "are not internal"},
			{"networks.proxy.external", `join a project network "proxy" instead`},
			{"networks.swarm.driver", `driver "overlay" not imported`},
		},
	}})
}

// Fields this package does not map are reported at their compose path,
// including those it never names.
func TestUnmappedFields(t *testing.T) {
	runMappingCases(t, []mappingCase{{
		name: "service fields",
		compose: `
services:
  web:
    image: nginx:1
    build: .
    container_name: shop-web
    extra_hosts: ["host.docker.internal:host-gateway"]
    dns: 1.1.1.1
    logging: {driver: json-file}
    ulimits: {nofile: 65536, nproc: 512}
    stop_signal: SIGQUIT
    oom_score_adj: 100
    shm_size: 1g
    init: false
    configs: [conf]
    networks: [default, back]
    x-team: web
configs:
  conf: {file: ./nginx.conf}
networks:
  back: {}
`,
		findings: []want{
			{"configs.conf", "PanelX has no configs"},
			{"services.web.build", "is a directory of this machine, which the server cannot see"},
			{"services.web.configs", "PanelX has no configs"},
			{"services.web.container_name", "PanelX names containers itself"},
			{"services.web.dns", "Docker's DNS"},
			{"services.web.extra_hosts[host.docker.internal]", "no extra /etc/hosts entries"},
			{"services.web.init", "does not inject an init process"},
			{"services.web.logging", "logging configuration"},
			{"services.web.oom_score_adj", "PanelX has no equivalent setting: not imported"},
			{"services.web.shm_size", "mount a tmpfs at /dev/shm"},
			{"services.web.stop_signal", "SIGTERM"},
			{"services.web.ulimits.nofile", "no ulimits setting"},
			{"services.web.ulimits.nproc", "no ulimits setting"},
			{"services.web.x-team", "extension field"},
		},
		spec: func(s *api.ServiceSpec) { // container_name still answers, on both networks
			s.Aliases, s.Networks = []string{"shop-web"}, []string{"back", "default"}
		},
	}, {
		name: "default network options, version, extensions",
		compose: `
services:
  web:
    image: nginx:1
    networks:
      default:
        aliases: [www]
        ipv4_address: 172.20.0.5
networks:
  default:
    driver: bridge
    ipam: {config: [{subnet: 172.20.0.0/16}]}
x-defaults: &defaults
  restart: always
version: "3.8"
`,
		spec: func(s *api.ServiceSpec) { s.Aliases = []string{"www"} }, // the default network's aliases are kept
		findings: []want{
			{"networks.default.ipam", "PanelX has no equivalent"},
			{"services.web.networks.default.ipv4_address", "PanelX has no equivalent"},
			{"version", "obsolete"},
			{"x-defaults", "extension field"},
		},
	}})
}

func TestUnmappedTopLevelSections(t *testing.T) {
	res := mustConvert(t, `
services:
  web:
    image: nginx:1
jobs:
  backup:
    image: restic/restic:0.17
    triggers:
      schedule: ["0 3 * * *"]
models:
  llm:
    model: ai/smollm2
`)
	if got := names(res.Objects); !reflect.DeepEqual(got, []string{"Project/demo", "Service/web"}) {
		t.Errorf("objects %v", got)
	}
	checkFindings(t, res.Unmapped, []want{
		{"jobs.backup", "not run-to-completion jobs: not imported"},
		{"models.llm", "PanelX does not run AI models"},
	})
}

func TestServiceWithBuildOnlyIsNotImported(t *testing.T) {
	res := mustConvert(t, "services:\n  app:\n    build: {context: ., dockerfile: Dockerfile.prod}\n  web:\n    image: nginx:1\n")
	if got := names(res.Objects); !reflect.DeepEqual(got, []string{"Project/demo", "Service/web"}) {
		t.Errorf("objects %v", got)
	}
	checkFindings(t, res.Unmapped, []want{{"services.app.build", "make it a git URL (https://…/repo.git#branch:dir), or build and push the image and set image (the service was not imported)"}})
}

func TestConversionErrors(t *testing.T) {
	tests := []struct{ name, compose, want string }{
		{"too many replicas", "services:\n  web:\n    image: nginx:1\n    deploy: {replicas: 101}\n", "services.web.deploy.replicas: 101 replicas is more than PanelX's maximum of 100"},
		{"invalid image", "services:\n  web:\n    image: \"nginx:${TAG}:x\"\n", "Service web as converted is invalid: spec.image"},
		{"relative working_dir", "services:\n  web:\n    image: nginx:1\n    working_dir: app\n", "spec.workingDir"},
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

// TestDropBindMounts: with DropBindMounts each bind is left out and
// reported, the socket with its own warning.
func TestDropBindMounts(t *testing.T) {
	res, err := Convert(context.Background(), Input{
		Files: []File{{Path: filepath.Join(t.TempDir(), "compose.yaml"), Content: []byte(`
services:
  web:
    image: nginx:1
    volumes:
      - /srv/site:/usr/share/nginx/html:ro
      - /var/run/docker.sock:/var/run/docker.sock
`)}},
		ProjectName: "demo", Env: map[string]string{}, DropBindMounts: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if web := find[*api.Service](t, res, "web"); len(web.Spec.Volumes) != 0 {
		t.Errorf("volumes %+v, want none", web.Spec.Volumes)
	}
	checkFindings(t, res.Unmapped, []want{
		{"services.web.volumes[0]", "host bind mount dropped (--drop-bind-mounts): /srv/site at /usr/share/nginx/html"},
		{"services.web.volumes[1]", "the Docker socket gives the container root on the host"},
	})
}
