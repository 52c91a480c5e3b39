package reconcile

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/panelx/panelx/api"
)

const testInstance = "test-instance"

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func testService(mutate func(*api.Service)) *api.Service {
	s := &api.Service{
		Metadata: api.ObjectMeta{Project: "shop", Name: "web", Generation: 1, UID: "svc-uid"},
		Spec: api.ServiceSpec{
			Image:   "127.0.0.1:5000/shop/web:1",
			Env:     []api.EnvVar{{Name: "LOG_LEVEL", Value: "info"}},
			Volumes: []api.VolumeMount{{Name: "data", MountPath: "/data"}},
		},
	}
	if mutate != nil {
		mutate(s)
	}
	s.Default()
	return s
}

func testVolume() *api.Volume {
	v := &api.Volume{Metadata: api.ObjectMeta{Project: "shop", Name: "data"}}
	v.Default()
	return v
}

func testProject() *api.Project {
	p := &api.Project{Metadata: api.ObjectMeta{Name: "shop"}}
	p.Default()
	return p
}

// container builds an observed container of the service as it would be
// created from svc (with image imageID), in the given state.
func ctr(svc *api.Service, index int, imageID, state string, mutate ...func(*Container)) Container {
	spec := BuildContainerSpec(testInstance, svc, index, imageID, nil)
	c, _ := ContainerFromLabels(spec.Labels)
	c.ID = "id-" + spec.Name + "-" + spec.Hash()[:4]
	c.Name = spec.Name
	c.ImageID = imageID
	c.State = state
	c.Networks = []string{"net1"}
	for _, m := range mutate {
		m(&c)
	}
	return c
}

// baseInput is a service whose network, volume and image all exist.
func baseInput(svc *api.Service, cs ...Container) ServiceInput {
	return ServiceInput{
		Instance:      testInstance,
		Key:           api.Key{Project: "shop", Name: "web"},
		Project:       testProject(),
		Service:       svc,
		Volumes:       map[string]*api.Volume{"data": testVolume()},
		Image:         ImageState{Image: Image{Ref: svc.Spec.Image, ID: "sha256:img1", PulledAt: t0}, AttemptedAt: t0},
		Network:       &Network{ID: "net1", Name: "panelx-shop", Project: "shop", Network: "default"},
		Networks:      map[string]Network{"panelx-shop": {ID: "net1", Name: "panelx-shop", Project: "shop", Network: "default"}},
		DockerVolumes: map[string]Volume{"panelx-shop-data": {Name: "panelx-shop-data", Project: "shop", Volume: "data"}},
		Containers:    cs,
		Now:           t0.Add(10 * time.Second),
		PullInterval:  time.Minute,
	}
}

func tmpName(svc *api.Service, index int, imageID string) string {
	spec := BuildContainerSpec(testInstance, svc, index, imageID, nil)
	return tempContainerName("shop", "web", index, spec.Hash())
}

func TestPlanService(t *testing.T) {
	v1 := testService(nil)
	v2 := testService(func(s *api.Service) { s.Spec.Env[0].Value = "debug" })
	withPort := func(s *api.Service) { s.Spec.Ports = []api.Port{{ContainerPort: 8080, HostPort: 18080}} }
	v1p, v2p := testService(withPort), testService(func(s *api.Service) { withPort(s); s.Spec.Env[0].Value = "debug" })
	three := testService(func(s *api.Service) { r := int32(3); s.Spec.Replicas = &r })
	one := v1
	running := "running"

	tests := []struct {
		name string
		in   ServiceInput
		want string
	}{
		{
			name: "new service on an empty host",
			in: func() ServiceInput {
				in := baseInput(v1)
				in.Network, in.Networks, in.DockerVolumes = nil, nil, nil
				return in
			}(),
			want: `0 create-network panelx-shop (network missing)
1 create-volume panelx-shop-data (volume missing)
2 create-container panelx-shop-web-0 (replica 0 missing) after 0,1
3 start-container panelx-shop-web-0 (replica 0 missing) after 2
wait: replica 0 starting
`,
		},
		{
			name: "image not present is pulled before anything else",
			in: func() ServiceInput {
				in := baseInput(v1)
				in.Image = ImageState{Image: Image{Ref: v1.Spec.Image}}
				return in
			}(),
			want: "0 pull-image 127.0.0.1:5000/shop/web:1 (image not present)\n",
		},
		{
			name: "pullPolicy Never and no image",
			in: func() ServiceInput {
				in := baseInput(testService(func(s *api.Service) { s.Spec.ImagePullPolicy = api.PullNever }))
				in.Image = ImageState{}
				return in
			}(),
			want: "blocked: ImageNotPresent: image 127.0.0.1:5000/shop/web:1 is not present and imagePullPolicy is Never\n",
		},
		{
			name: "a failed pull waits out its backoff",
			in: func() ServiceInput {
				in := baseInput(v1)
				in.Image = ImageState{Image: Image{Ref: v1.Spec.Image, PullError: "manifest unknown"}, AttemptedAt: t0.Add(8 * time.Second), Failures: 2}
				return in
			}(),
			want: "blocked: PullFailed: pull 127.0.0.1:5000/shop/web:1: manifest unknown\n",
		},
		{
			name: "after the backoff it pulls again",
			in: func() ServiceInput {
				in := baseInput(v1)
				in.Image = ImageState{Image: Image{Ref: v1.Spec.Image, PullError: "manifest unknown"}, AttemptedAt: t0, Failures: 1}
				return in
			}(),
			want: "0 pull-image 127.0.0.1:5000/shop/web:1 (image not present)\n",
		},
		{
			name: "pullPolicy Always checks the registry once per interval",
			in: func() ServiceInput {
				in := baseInput(testService(func(s *api.Service) { s.Spec.ImagePullPolicy = api.PullAlways }))
				in.Now = t0.Add(2 * time.Minute)
				return in
			}(),
			want: "0 pull-image 127.0.0.1:5000/shop/web:1 (pullPolicy Always: check the registry for a newer image)\n",
		},
		{
			name: "converged: nothing to do",
			in:   baseInput(v1, ctr(v1, 0, "sha256:img1", running)),
			want: "",
		},
		{
			name: "env change without host port: start the replacement first",
			in:   baseInput(v2, ctr(v1, 0, "sha256:img1", running)),
			want: "0 create-container " + tmpName(v2, 0, "sha256:img1") + " (spec changed: env LOG_LEVEL)\n" +
				"1 start-container " + tmpName(v2, 0, "sha256:img1") + " (spec changed: env LOG_LEVEL) after 0\n" +
				"wait: replica 0 starting\n",
		},
		{
			name: "replacement running but not healthy yet: the old one keeps serving",
			in: func() ServiceInput {
				newC := ctr(v2, 0, "sha256:img1", running, func(c *Container) { c.Name = tmpName(v2, 0, "sha256:img1"); c.Health = "starting" })
				return baseInput(v2, ctr(v1, 0, "sha256:img1", running), newC)
			}(),
			want: "wait: replica 0 not ready yet\n",
		},
		{
			name: "replacement ready: retire the old one, then take its name",
			in: func() ServiceInput {
				newC := ctr(v2, 0, "sha256:img1", running, func(c *Container) { c.Name = tmpName(v2, 0, "sha256:img1") })
				return baseInput(v2, ctr(v1, 0, "sha256:img1", running), newC)
			}(),
			want: "0 stop-container panelx-shop-web-0 (replaced by " + tmpName(v2, 0, "sha256:img1") + " (env LOG_LEVEL))\n" +
				"1 remove-container panelx-shop-web-0 (replaced by " + tmpName(v2, 0, "sha256:img1") + " (env LOG_LEVEL)) after 0\n" +
				"2 rename-container " + tmpName(v2, 0, "sha256:img1") + " -> panelx-shop-web-0 (replica 0 replacement is ready) after 1\n",
		},
		{
			name: "a container that lost the project network is replaced",
			in:   baseInput(v1, ctr(v1, 0, "sha256:img1", running, func(c *Container) { c.Networks = []string{"old-net"} })),
			want: "0 create-container " + tmpName(v1, 0, "sha256:img1") + " (not attached to network panelx-shop)\n" +
				"1 start-container " + tmpName(v1, 0, "sha256:img1") + " (not attached to network panelx-shop) after 0\n" +
				"wait: replica 0 starting\n",
		},
		{
			name: "a new image ID recreates",
			in:   baseInput(v1, ctr(v1, 0, "sha256:old", running)),
			want: "0 create-container " + tmpName(v1, 0, "sha256:img1") + " (spec changed: image)\n" +
				"1 start-container " + tmpName(v1, 0, "sha256:img1") + " (spec changed: image) after 0\n" +
				"wait: replica 0 starting\n",
		},
		{
			name: "host port: stop the old one first",
			in:   baseInput(v2p, ctr(v1p, 0, "sha256:img1", running)),
			want: `0 stop-container panelx-shop-web-0 (spec changed: env LOG_LEVEL)
1 remove-container panelx-shop-web-0 (spec changed: env LOG_LEVEL) after 0
2 create-container panelx-shop-web-0 (spec changed: env LOG_LEVEL) after 1
3 start-container panelx-shop-web-0 (spec changed: env LOG_LEVEL) after 2
wait: replica 0 starting
`,
		},
		{
			name: "scale 1 to 3",
			in:   baseInput(three, ctr(three, 0, "sha256:img1", running)),
			want: `0 create-container panelx-shop-web-1 (replica 1 missing)
1 start-container panelx-shop-web-1 (replica 1 missing) after 0
2 create-container panelx-shop-web-2 (replica 2 missing)
3 start-container panelx-shop-web-2 (replica 2 missing) after 2
wait: replica 1 starting; replica 2 starting
`,
		},
		{
			name: "scale 3 to 1 removes the highest replicas",
			in: baseInput(one, ctr(one, 0, "sha256:img1", running),
				ctr(three, 1, "sha256:img1", running), ctr(three, 2, "sha256:img1", "exited")),
			want: `0 retire-container panelx-shop-web-2 (scale down: replica 2 is above the desired 1)
1 retire-container panelx-shop-web-1 (scale down: replica 1 is above the desired 1)
`,
		},
		{
			name: "stopped behind PanelX's back is started again",
			in:   baseInput(v1, ctr(v1, 0, "sha256:img1", "exited", func(c *Container) { c.ExitCode = 143 })),
			want: "0 start-container panelx-shop-web-0 (replica 0 stopped (exit code 143))\nwait: replica 0 starting\n",
		},
		{
			name: "restartPolicy Never leaves an exited container alone",
			in: func() ServiceInput {
				never := testService(func(s *api.Service) { s.Spec.RestartPolicy = api.RestartNever })
				return baseInput(never, ctr(never, 0, "sha256:img1", "exited"))
			}(),
			want: "",
		},
		{
			name: "a dead container is moved aside and removed; the replica is created meanwhile",
			in:   baseInput(v1, ctr(v1, 0, "sha256:img1", "dead")),
			want: `0 rename-container panelx-shop-web-0 -> panelx-shop-web-0-dead-id-panelx-sh (the engine left it dead: free its name)
1 remove-container panelx-shop-web-0-dead-id-panelx-sh (the engine left it dead) after 0
2 create-container panelx-shop-web-0 (replica 0 missing) after 0
3 start-container panelx-shop-web-0 (replica 0 missing) after 2
wait: replica 0 starting
`,
		},
		{
			name: "a dead old container does not hold back the replacement taking the final name",
			in: baseInput(v2, ctr(v1, 0, "sha256:img1", "dead"),
				ctr(v2, 0, "sha256:img1", running, func(c *Container) { c.Name = tmpName(v2, 0, "sha256:img1") })),
			want: `0 rename-container panelx-shop-web-0 -> panelx-shop-web-0-dead-id-panelx-sh (the engine left it dead: free its name)
1 remove-container panelx-shop-web-0-dead-id-panelx-sh (the engine left it dead) after 0
2 rename-container ` + tmpName(v2, 0, "sha256:img1") + ` -> panelx-shop-web-0 (replica 0 replacement is ready) after 0
`,
		},
		{
			name: "a dead container whose removal failed waits out its backoff",
			in: func() ServiceInput {
				dead := ctr(v1, 0, "sha256:img1", "dead", func(c *Container) { c.Name = "panelx-shop-web-0-dead-id-panelx-sh" })
				in := baseInput(v1, dead, ctr(v1, 0, "sha256:img1", running, func(c *Container) { c.ID = "live" }))
				in.RemoveFailures = map[string]Failure{dead.ID: {Count: 2, Err: "device or resource busy", At: in.Now.Add(-20 * time.Second)}}
				return in
			}(),
			want: "",
		},
		{
			name: "after the backoff the dead container is removed again",
			in: func() ServiceInput {
				dead := ctr(v1, 0, "sha256:img1", "dead", func(c *Container) { c.Name = "panelx-shop-web-0-dead-id-panelx-sh" })
				in := baseInput(v1, dead, ctr(v1, 0, "sha256:img1", running, func(c *Container) { c.ID = "live" }))
				in.RemoveFailures = map[string]Failure{dead.ID: {Count: 1, Err: "device or resource busy", At: in.Now.Add(-31 * time.Second)}}
				return in
			}(),
			want: "0 remove-container panelx-shop-web-0-dead-id-panelx-sh (the engine left it dead)\n",
		},
		{
			name: "two current containers for one replica: keep the final name",
			in: baseInput(v1, ctr(v1, 0, "sha256:img1", running),
				ctr(v1, 0, "sha256:img1", running, func(c *Container) { c.ID = "dup"; c.Name = "panelx-shop-web-0-dup" })),
			want: `0 retire-container panelx-shop-web-0-dup (duplicate of replica 0)
`,
		},
		{
			name: "service deleted: stop and remove everything",
			in: func() ServiceInput {
				del := testService(func(s *api.Service) { s.Metadata.DeletionTimestamp = &t0 })
				return baseInput(del, ctr(v1, 0, "sha256:img1", running))
			}(),
			want: `0 retire-container panelx-shop-web-0 (service deleted)
`,
		},
		{
			name: "service deleted: a container being retired is left alone, and the row stays",
			in: func() ServiceInput {
				del := testService(func(s *api.Service) { s.Metadata.DeletionTimestamp = &t0 })
				return baseInput(del, ctr(v1, 0, "sha256:img1", running, func(c *Container) { c.Retiring = true }))
			}(),
			want: "wait: panelx-shop-web-0 is being stopped and removed\n",
		},
		{
			name: "service deleted and nothing left: finalize",
			in:   baseInput(testService(func(s *api.Service) { s.Metadata.DeletionTimestamp = &t0 })),
			want: "finalize\n",
		},
		{
			name: "orphan containers of a vanished service are removed",
			in: func() ServiceInput {
				in := baseInput(v1, ctr(v1, 0, "sha256:img1", "exited"))
				in.Service = nil
				return in
			}(),
			want: "0 retire-container panelx-shop-web-0 (orphan: service no longer exists)\n",
		},
		{
			name: "an undeclared volume blocks",
			in: func() ServiceInput {
				in := baseInput(v1)
				in.Volumes = nil
				return in
			}(),
			want: "blocked: VolumeNotDeclared: spec.volumes[0]: volume \"data\" is not declared in project \"shop\" (or is being deleted)\n",
		},
		{
			name: "dependsOn waits for the dependency",
			in: func() ServiceInput {
				in := baseInput(testService(func(s *api.Service) { s.Spec.DependsOn = []string{"db"} }))
				in.Ready = map[string]bool{"db": false}
				return in
			}(),
			want: "wait: replica 0 waits for db to be ready\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := PlanService(tt.in)
			if s := got.String(); s != tt.want {
				t.Errorf("plan:\n%s\nwant:\n%s", s, tt.want)
			}
			checkDAG(t, got)
		})
	}
}

// checkDAG: every dependency points backwards, so the plan is acyclic and
// the printed order is a valid execution order.
func checkDAG(t *testing.T, p Plan) {
	t.Helper()
	for i, op := range p.Ops {
		for _, a := range op.After {
			if a < 0 || a >= i {
				t.Errorf("op %d depends on %d", i, a)
			}
		}
	}
}

// TestPlanServiceConverges simulates execution: applying each plan to the
// observed state and planning again must reach an empty plan, from every
// starting point, without ever having two containers with the final name.
func TestPlanServiceConverges(t *testing.T) {
	v1 := testService(nil)
	v2 := testService(func(s *api.Service) { s.Spec.Env[0].Value = "debug"; r := int32(2); s.Spec.Replicas = &r })
	starts := map[string]ServiceInput{
		"empty host":   baseInput(v2),
		"old version":  baseInput(v2, ctr(v1, 0, "sha256:img1", "running")),
		"mixed states": baseInput(v2, ctr(v1, 0, "sha256:img1", "exited"), ctr(v2, 1, "sha256:img1", "created"), ctr(v1, 5, "sha256:img1", "running")),
	}
	for name, in := range starts {
		t.Run(name, func(t *testing.T) {
			for round := 0; round < 10; round++ {
				p := PlanService(in)
				if p.Empty() {
					if len(in.Containers) != 2 {
						t.Fatalf("converged with %d containers, want 2", len(in.Containers))
					}
					return
				}
				in.Containers = simulate(t, in.Containers, p)
			}
			t.Fatalf("no convergence after 10 rounds; last state %+v", in.Containers)
		})
	}
}

// simulate applies a plan to containers the way Docker would, with every
// new container becoming ready at once.
func simulate(t *testing.T, cs []Container, p Plan) []Container {
	t.Helper()
	byID := func(ref string) int {
		for i, c := range cs {
			if c.ID == ref || c.Name == ref {
				return i
			}
		}
		t.Fatalf("no container %s", ref)
		return -1
	}
	for _, op := range p.Ops {
		switch op.Kind {
		case OpCreateContainer:
			for _, c := range cs {
				if c.Name == op.Container.Name {
					t.Fatalf("create %s: name in use", c.Name)
				}
			}
			c, _ := ContainerFromLabels(op.Container.Labels)
			c.ID, c.Name, c.State = "id-"+op.Container.Name, op.Container.Name, "created"
			c.Networks = []string{"net1"}
			cs = append(cs, c)
		case OpStartContainer:
			cs[byID(op.ref())].State = "running"
		case OpStopContainer:
			cs[byID(op.ref())].State = "exited"
		case OpRemoveContainer, OpRetireContainer:
			i := byID(op.ref())
			cs = append(cs[:i], cs[i+1:]...)
		case OpRenameContainer:
			cs[byID(op.ref())].Name = op.NewName
		}
	}
	return cs
}

func TestPlanProject(t *testing.T) {
	live := testProject()
	deleting := testProject()
	deleting.Metadata.DeletionTimestamp = &t0
	purging := testProject()
	purging.Metadata.DeletionTimestamp = &t0
	purging.Metadata.Annotations = map[string]string{api.AnnotationPurgeVolumes: "true"}
	net := &Network{ID: "n", Name: "panelx-shop", Project: "shop", Network: "default"}
	retain, del := testVolume(), testVolume()
	del.Metadata.Name = "cache"
	del.Spec.ReclaimPolicy = api.ReclaimDelete
	dvs := map[string]Volume{"panelx-shop-data": {Name: "panelx-shop-data"}, "panelx-shop-cache": {Name: "panelx-shop-cache"}}
	tests := []struct {
		name string
		in   ProjectInput
		want string
	}{
		{"live without network", ProjectInput{Name: "shop", Project: live}, "0 create-network panelx-shop (network missing)\n"},
		{"live and converged", ProjectInput{Name: "shop", Project: live, Networks: []Network{*net}}, ""},
		{"deleting waits for its services", ProjectInput{Name: "shop", Project: deleting, Networks: []Network{*net}, Services: []*api.Service{testService(nil)}},
			"wait: 1 service(s) and 0 container(s) of the project are being removed\n"},
		{"deleting keeps Retain volumes", ProjectInput{Name: "shop", Project: deleting, Networks: []Network{*net}, Volumes: []*api.Volume{retain, del}, DockerVolumes: dvs},
			"0 remove-volume panelx-shop-cache (project deleted; volume reclaimPolicy is Delete)\n1 remove-network panelx-shop (project deleted) after 0\n"},
		{"deleting with purge removes all volumes", ProjectInput{Name: "shop", Project: purging, Networks: []Network{*net}, Volumes: []*api.Volume{retain}, DockerVolumes: dvs},
			"0 remove-volume panelx-shop-data (project deleted with purge of volumes)\n1 remove-network panelx-shop (project deleted) after 0\n"},
		{"deleting and nothing left", ProjectInput{Name: "shop", Project: deleting, Volumes: []*api.Volume{retain}}, "finalize\n"},
		{"row gone: remove the network, never the data", ProjectInput{Name: "shop", Networks: []Network{*net}, DockerVolumes: dvs}, "0 remove-network panelx-shop (project deleted)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.Instance = testInstance
			if got := PlanProject(tt.in).String(); got != tt.want {
				t.Errorf("plan:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

// TestPlanNamedNetworks: a service that names networks gets each of them
// (labelled with its project name) and a container on all of them, the
// first one at creation; a container missing one is replaced.
func TestPlanNamedNetworks(t *testing.T) {
	svc := testService(func(s *api.Service) { s.Spec.Networks = []string{"front", "back"} })
	in := baseInput(svc)
	in.Network = nil
	plan := PlanService(in)
	var created []string
	for _, op := range plan.Ops {
		switch op.Kind {
		case OpCreateNetwork:
			created = append(created, op.Target+" "+op.Labels[LabelNetwork])
		case OpCreateContainer:
			if op.Container.Network != "panelx-shop_front" || !slices.Equal(op.Container.MoreNetworks, []string{"panelx-shop_back"}) {
				t.Errorf("container networks %q + %q", op.Container.Network, op.Container.MoreNetworks)
			}
		}
	}
	if want := []string{"panelx-shop_front front", "panelx-shop_back back"}; !slices.Equal(created, want) {
		t.Errorf("networks created %q, want %q", created, want)
	}

	// Both exist; a replica on only the first is not current.
	in.Networks["panelx-shop_front"] = Network{ID: "netF", Name: "panelx-shop_front", Project: "shop", Network: "front"}
	in.Networks["panelx-shop_back"] = Network{ID: "netB", Name: "panelx-shop_back", Project: "shop", Network: "back"}
	c := ctr(svc, 0, "sha256:img1", "running", func(c *Container) { c.Networks = []string{"netF"} })
	in.Containers = []Container{c}
	if got := PlanService(in).String(); !strings.Contains(got, "not attached to network") {
		t.Errorf("a replica missing a network is kept:\n%s", got)
	}
	c.Networks = []string{"netF", "netB"}
	in.Containers = []Container{c}
	if got := PlanService(in); slices.ContainsFunc(got.Ops, func(op Op) bool { return op.Kind == OpCreateContainer }) {
		t.Errorf("a replica on both networks is replaced:\n%s", got)
	}
}

// TestPlanDockerVolume: a mount of a Docker volume PanelX does not own
// waits while it does not exist — Docker would create it, empty — and
// mounts it by its own name once it does.
func TestPlanDockerVolume(t *testing.T) {
	svc := testService(func(s *api.Service) {
		s.Spec.Volumes = []api.VolumeMount{{DockerVolume: "legacy_pgdata", MountPath: "/var/lib/postgresql/data"}}
	})
	in := baseInput(svc)
	p := PlanService(in)
	if len(p.Ops) != 0 || p.BlockedReason != ReasonVolumeNotFound || !strings.Contains(p.Blocked, "legacy_pgdata") {
		t.Fatalf("missing volume: %s", p)
	}
	in.DockerVolumesFound = map[string]bool{"legacy_pgdata": true}
	p = PlanService(in)
	var mounts []Mount
	for _, op := range p.Ops {
		if op.Kind == OpCreateVolume {
			t.Errorf("PanelX creates a volume for a dockerVolume mount: %s", p)
		}
		if op.Kind == OpCreateContainer {
			mounts = op.Container.Mounts
		}
	}
	if want := []Mount{{Type: "volume", Source: "legacy_pgdata", Target: "/var/lib/postgresql/data"}}; !slices.Equal(mounts, want) {
		t.Errorf("mounts %+v, want %+v", mounts, want)
	}
}

// TestPlanProjectNetworks: a live project keeps its default network and
// the named ones a service joins, removes a named one nobody joins once no
// container is on it, and a deleted project removes all of them.
func TestPlanProjectNetworks(t *testing.T) {
	def := Network{ID: "n0", Name: "panelx-shop", Project: "shop", Network: "default"}
	back := Network{ID: "n1", Name: "panelx-shop_back", Project: "shop", Network: "back"}
	old := Network{ID: "n2", Name: "panelx-shop_old", Project: "shop", Network: "old"}
	joins := testService(func(s *api.Service) { s.Spec.Networks = []string{"back"} })
	deleting := testProject()
	deleting.Metadata.DeletionTimestamp = &t0
	tests := []struct {
		name string
		in   ProjectInput
		want string
	}{
		{"unused named network goes", ProjectInput{Project: testProject(), Services: []*api.Service{joins}, Networks: []Network{def, back, old}},
			"0 remove-network panelx-shop_old (no service joins network old)\n"},
		{"unused but a container is on it", ProjectInput{Project: testProject(), Services: []*api.Service{joins}, Networks: []Network{def, back, old},
			Containers: []Container{{ID: "c", Networks: []string{"n2"}}}}, ""},
		{"deleted project removes all", ProjectInput{Project: deleting, Networks: []Network{def, back}},
			"0 remove-network panelx-shop (project deleted)\n1 remove-network panelx-shop_back (project deleted)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.Instance, tt.in.Name = testInstance, "shop"
			if got := PlanProject(tt.in).String(); got != tt.want {
				t.Errorf("plan:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestPlanVolume(t *testing.T) {
	v := testVolume()
	gone := testVolume()
	gone.Metadata.DeletionTimestamp = &t0
	onNode1 := testVolume()
	onNode1.Status.Node = "px-node-1"
	dv := &Volume{Name: "panelx-shop-data"}
	key := api.Key{Project: "shop", Name: "data"}
	tests := []struct {
		name string
		in   VolumeInput
		want string
	}{
		{"missing", VolumeInput{Key: key, Volume: v, Project: testProject()}, "0 create-volume panelx-shop-data (volume missing)\n"},
		{"present", VolumeInput{Key: key, Volume: v, Project: testProject(), DockerVolume: dv}, ""},
		{"deleted and in use", VolumeInput{Key: key, Volume: gone, Project: testProject(), DockerVolume: dv, UsedBy: []string{"panelx-shop-web-0"}},
			"blocked: VolumeInUse: volume is still mounted by panelx-shop-web-0\n"},
		{"deleted", VolumeInput{Key: key, Volume: gone, Project: testProject(), DockerVolume: dv}, "0 remove-volume panelx-shop-data (volume deleted)\n"},
		{"deleted and gone", VolumeInput{Key: key, Volume: gone, Project: testProject()}, "finalize\n"},
		{"row vanished: the data stays", VolumeInput{Key: key, DockerVolume: dv}, ""},
		{"missing on the node it was seen on", VolumeInput{Key: key, Volume: onNode1, Project: testProject(), Node: "px-node-1"},
			"0 create-volume panelx-shop-data (volume missing)\n"},
		{"missing here, its data on another node: not created empty here", VolumeInput{Key: key, Volume: onNode1, Project: testProject(), Node: "px-node-2"}, ""},
		{"a stale copy here, its data on another node: left alone", VolumeInput{Key: key, Volume: onNode1, Project: testProject(), Node: "px-node-2", DockerVolume: dv}, ""},
		{"one engine: no node", VolumeInput{Key: key, Volume: onNode1, Project: testProject()}, "0 create-volume panelx-shop-data (volume missing)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.Instance = testInstance
			if got := PlanVolume(tt.in).String(); got != tt.want {
				t.Errorf("plan:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestSpecHashIgnoresWhatMustNotRecreate(t *testing.T) {
	base := testService(nil)
	same := []func(*api.Service){
		func(s *api.Service) { r := int32(5); s.Spec.Replicas = &r },
		func(s *api.Service) { s.Spec.ImagePullPolicy = api.PullAlways },
		func(s *api.Service) { s.Spec.DependsOn = []string{"db"} },
		func(s *api.Service) { s.Metadata.Generation = 9; s.Metadata.Labels = map[string]string{"a": "b"} },
	}
	different := []func(*api.Service){
		func(s *api.Service) { s.Spec.Env[0].Value = "x" },
		func(s *api.Service) { s.Spec.Args = []string{"-v"} },
		func(s *api.Service) { s.Spec.Resources.Memory = "64Mi" },
		func(s *api.Service) { s.Spec.Ports = []api.Port{{ContainerPort: 80}} },
		func(s *api.Service) { s.Spec.Healthcheck = &api.Healthcheck{Command: []string{"/check"}} },
		func(s *api.Service) { s.Spec.Volumes[0].ReadOnly = true },
	}
	h := func(mut func(*api.Service)) string {
		s := testService(mut)
		spec := BuildContainerSpec(testInstance, s, 0, "sha256:img1", nil)
		return spec.Hash()
	}
	want := BuildContainerSpec(testInstance, base, 0, "sha256:img1", nil)
	for i, m := range same {
		if h(m) != want.Hash() {
			t.Errorf("change %d recreates, but must not", i)
		}
	}
	for i, m := range different {
		if h(m) == want.Hash() {
			t.Errorf("change %d does not recreate", i)
		}
	}
	if other := BuildContainerSpec(testInstance, base, 0, "sha256:img2", nil); other.Hash() == want.Hash() {
		t.Error("a new image ID does not recreate")
	}
}

func TestServiceStatus(t *testing.T) {
	svc := testService(func(s *api.Service) { r := int32(2); s.Spec.Replicas = &r })
	img := ImageState{Image: Image{ID: "sha256:img1"}}
	cur := func(i int, state string, m ...func(*Container)) Container {
		return ctr(svc, i, "sha256:img1", state, m...)
	}
	tests := []struct {
		name      string
		cs        []Container
		plan      Plan
		err       error
		img       ImageState
		wantPhase api.Phase
		wantReady int32
		wantCond  string // "Ready=True Progressing=False Degraded=False"
		wantMsg   string // substring of the Degraded message
	}{
		{"all ready", []Container{cur(0, "running"), cur(1, "running")}, Plan{}, nil, img, api.PhaseRunning, 2, "Ready=True Progressing=False Degraded=False", ""},
		{"one starting", []Container{cur(0, "running"), cur(1, "running", func(c *Container) { c.Health = "starting" })}, Plan{Wait: "replica 1 not ready yet"}, nil, img, api.PhaseProgressing, 1, "Ready=False Progressing=True Degraded=False", ""},
		{"nothing yet", nil, Plan{Ops: []Op{{Kind: OpPullImage}}}, nil, ImageState{}, api.PhasePending, 0, "Ready=False Progressing=True Degraded=False", ""},
		{"pull failed", nil, Plan{Blocked: "pull x: manifest unknown", BlockedReason: ReasonPullFailed}, nil, ImageState{}, api.PhaseDegraded, 0, "Ready=False Progressing=False Degraded=True", "manifest unknown"},
		{"unhealthy", []Container{cur(0, "running", func(c *Container) { c.Health = "unhealthy" }), cur(1, "running")}, Plan{Wait: "x"}, nil, img, api.PhaseDegraded, 1, "Ready=False Progressing=True Degraded=True", "unhealthy"},
		{"crash loop", []Container{cur(0, "restarting", func(c *Container) { c.RestartCount = 4; c.ExitCode = 1 }), cur(1, "running")}, Plan{}, nil, img, api.PhaseDegraded, 1, "Ready=False Progressing=False Degraded=True", "keeps crashing"},
		{"docker error", []Container{cur(0, "running")}, Plan{}, errTest("create container: port is already allocated"), img, api.PhaseDegraded, 1, "Ready=False Progressing=False Degraded=True", "port is already allocated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := ComputeServiceStatus(ServiceStatusInput{Instance: testInstance, Service: svc, Containers: tt.cs, Image: tt.img, Plan: tt.plan, Err: tt.err, Now: t0})
			if st.Phase != tt.wantPhase || st.ReadyReplicas != tt.wantReady {
				t.Errorf("phase %s ready %d, want %s %d", st.Phase, st.ReadyReplicas, tt.wantPhase, tt.wantReady)
			}
			var conds []string
			for _, typ := range []string{api.ConditionReady, api.ConditionProgressing, api.ConditionDegraded} {
				c := api.FindCondition(st.Conditions, typ)
				conds = append(conds, typ+"="+string(c.Status))
			}
			if got := strings.Join(conds, " "); got != tt.wantCond {
				t.Errorf("conditions %s, want %s", got, tt.wantCond)
			}
			if d := api.FindCondition(st.Conditions, api.ConditionDegraded); !strings.Contains(d.Message, tt.wantMsg) {
				t.Errorf("Degraded message %q does not contain %q", d.Message, tt.wantMsg)
			}
			if st.ObservedGeneration != svc.Metadata.Generation || len(st.Replicas) != 2 {
				t.Errorf("observedGeneration %d, %d replica statuses", st.ObservedGeneration, len(st.Replicas))
			}
		})
	}
}

type errTest string

func (e errTest) Error() string { return string(e) }

// TestDeadContainerBackoff: a dead container the engine would not remove
// is tried again later — 30 s, then doubling up to 30 minutes — and the
// plan asks to be looked at again when the wait is over.
func TestDeadContainerBackoff(t *testing.T) {
	for failures, want := range map[int]time.Duration{1: 30 * time.Second, 2: time.Minute, 3: 2 * time.Minute, 7: 30 * time.Minute, 20: 30 * time.Minute} {
		if got := DeadRemoveBackoff(failures); got != want {
			t.Errorf("DeadRemoveBackoff(%d) = %s, want %s", failures, got, want)
		}
	}
	v1 := testService(nil)
	dead := ctr(v1, 0, "sha256:img1", "dead", func(c *Container) { c.Name = "panelx-shop-web-0-dead-id-panelx-sh" })
	in := baseInput(v1, dead, ctr(v1, 0, "sha256:img1", "running", func(c *Container) { c.ID = "live" }))
	in.RemoveFailures = map[string]Failure{dead.ID: {Count: 2, At: in.Now.Add(-20 * time.Second)}}
	if p := PlanService(in); !p.Empty() || p.RequeueAfter != 40*time.Second || p.Wait != "" {
		t.Errorf("plan %q requeue %s, want no ops, a recheck in 40s and nothing to wait for", p.String(), p.RequeueAfter)
	}
	st := ComputeServiceStatus(ServiceStatusInput{Instance: testInstance, Service: v1, Containers: in.Containers, Image: in.Image, Now: in.Now})
	if st.ReadyReplicas != 1 || st.Phase != api.PhaseRunning {
		t.Errorf("status with a dead leftover: %d ready, phase %s; want 1 ready and Running", st.ReadyReplicas, st.Phase)
	}
}

// TestStopGrace: every stop a plan makes carries the service's grace
// period (the default when it sets none).
func TestStopGrace(t *testing.T) {
	for _, c := range []struct {
		set  time.Duration
		want time.Duration
	}{{0, api.DefaultStopGracePeriod}, {45 * time.Second, 45 * time.Second}} {
		del := testService(func(s *api.Service) {
			s.Metadata.DeletionTimestamp = &t0
			s.Spec.StopGracePeriod = api.Duration{Duration: c.set}
		})
		p := PlanService(baseInput(del, ctr(del, 0, "sha256:img1", "running")))
		if len(p.Ops) != 1 || p.Ops[0].Kind != OpRetireContainer || p.Ops[0].Grace != c.want {
			t.Errorf("grace %v: plan %s, grace %v; want %v", c.set, p, p.Ops[0].Grace, c.want)
		}
	}
}
