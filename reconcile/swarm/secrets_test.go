package swarm

import (
	"maps"
	"regexp"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/swarm"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/reconcile"
)

// swarmkit's rule for the names of secrets and configs.
var swarmSecretName = regexp.MustCompile(`^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$`)

// TestSecretName: a secret's name is the service's and a digest that
// follows the file's reference; it stays within Swarm's rules however long
// the project and service names are, and services whose cut names agree
// still get names of their own.
func TestSecretName(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("p", 63)
	for _, c := range []struct {
		name             string
		project, service string
	}{
		{"short", "shop", "web"},
		{"longest", long, strings.Repeat("s", 63)},
		{"cut at a dash", strings.Repeat("a", 50), "b-c"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := secretName(c.project, c.service, "secret:db/password@d1")
			if len(a) > maxSecretName || !swarmSecretName.MatchString(a) {
				t.Errorf("name %q: %d characters, or not a valid Swarm name", a, len(a))
			}
			if !strings.HasPrefix(a, "panelx-") {
				t.Errorf("name %q does not begin with panelx-", a)
			}
			if b := secretName(c.project, c.service, "secret:db/password@d1"); b != a {
				t.Errorf("the same file is named %q, then %q", a, b)
			}
			if b := secretName(c.project, c.service, "secret:db/password@d2"); b == a {
				t.Errorf("a new value keeps the name %q: the service would not roll", a)
			}
			if b := secretName(c.project, c.service+"x", "secret:db/password@d1"); b == a {
				t.Errorf("another service shares the name %q", a)
			}
		})
	}
	if got := secretName("shop", "web", "secret:db/password@d1"); !regexp.MustCompile(`^panelx-shop-web-[0-9a-f]{12}$`).MatchString(got) {
		t.Errorf("name %q, want panelx-shop-web-<12 hex digits>", got)
	}
}

// TestSecretFiles: each file of a workload becomes a secret with the
// workload's owner labels and the file's path as target; the secrets
// Swarm cannot hold are refused with the path, never the value.
func TestSecretFiles(t *testing.T) {
	t.Parallel()
	svc := &api.Service{Metadata: api.ObjectMeta{Project: "shop", Name: "web", Generation: 1}, Spec: api.ServiceSpec{
		Image: "nginx",
		Volumes: []api.VolumeMount{
			{MountPath: "/run/secrets/z", Secret: &api.SecretKeySelector{Name: "db", Key: "password"}},
			{MountPath: "/etc/app/token", Secret: &api.SecretKeySelector{Name: "api", Key: "token"}},
		},
	}}
	svc.Default()
	secrets := func(password string) reconcile.Secrets {
		return reconcile.Secrets{
			"db":  {Version: 1, Values: map[string]string{"password": password}, Digests: map[string]string{"password": "d-" + password}},
			"api": {Version: 1, Values: map[string]string{"token": "t0ken"}, Digests: map[string]string{"token": "dt"}},
		}
	}
	ws := reconcile.BuildWorkloadSpec("inst1", svc, "sha256:img1", secrets("hunter2"))
	files, err := secretFiles(ws)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[0].target != "/etc/app/token" || files[1].target != "/run/secrets/z" ||
		string(files[0].data) != "t0ken" || string(files[1].data) != "hunter2" {
		t.Fatalf("files %+v", files)
	}
	want := map[string]string{reconcile.LabelManaged: "true", reconcile.LabelInstance: "inst1",
		reconcile.LabelProject: "shop", reconcile.LabelService: "web"}
	for _, f := range files {
		if !maps.Equal(f.labels, want) {
			t.Errorf("%s: labels %v, want %v", f.target, f.labels, want)
		}
		if strings.Contains(f.name, "hunter2") || strings.Contains(f.name, "t0ken") {
			t.Errorf("name %s holds the value", f.name)
		}
	}
	again, _ := secretFiles(reconcile.BuildWorkloadSpec("inst1", svc, "sha256:img1", secrets("hunter3")))
	if again[0].name != files[0].name || again[1].name == files[1].name {
		t.Errorf("a new password: names %s, %s → %s, %s; want only the second changed", files[0].name, files[1].name, again[0].name, again[1].name)
	}

	for _, c := range []struct {
		name    string
		file    reconcile.File
		wantErr string
	}{
		{"empty", reconcile.File{Path: "/a", Ref: "secret:db/k@d"}, "secret file /a is empty"},
		{"too large", reconcile.File{Path: "/a", Ref: "secret:db/k@d", Content: []byte(strings.Repeat("s3cr3t", maxSecretSize/6+1))}, "secret file /a is 512004 bytes"},
		{"no digest", reconcile.File{Path: "/a", Ref: "secret:db/k@", Content: []byte("s3cr3t")}, "secret file /a: no digest"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ws := ws
			ws.Template.Files = []reconcile.File{c.file}
			_, err := secretFiles(ws)
			if err == nil || !strings.Contains(err.Error(), c.wantErr) || strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error %v, want %q and no value", err, c.wantErr)
			}
		})
	}
}

// TestSecretsInUse: a service's secrets are in use, and so are those of its
// previous spec while Swarm may still roll back to it; then they are not.
func TestSecretsInUse(t *testing.T) {
	t.Parallel()
	spec := func(ids ...string) *swarm.ServiceSpec {
		cs := &swarm.ContainerSpec{}
		for _, id := range ids {
			cs.Secrets = append(cs.Secrets, &swarm.SecretReference{SecretID: id})
		}
		return &swarm.ServiceSpec{TaskTemplate: swarm.TaskSpec{ContainerSpec: cs}}
	}
	updated := func(state swarm.UpdateState, cur, prev *swarm.ServiceSpec) swarm.Service {
		s := swarm.Service{Spec: *cur, PreviousSpec: prev}
		if state != "" {
			s.UpdateStatus = &swarm.UpdateStatus{State: state}
		}
		return s
	}
	for _, c := range []struct {
		name     string
		svcs     []swarm.Service
		want     []string
		wantHeld bool
	}{
		{"none", nil, nil, false},
		{"created", []swarm.Service{{Spec: *spec("a")}}, []string{"a"}, false},
		{"no container spec", []swarm.Service{{}}, nil, false},
		{"update sent, not begun", []swarm.Service{updated("", spec("b"), spec("a"))}, []string{"a", "b"}, true},
		{"updating", []swarm.Service{updated(swarm.UpdateStateUpdating, spec("b"), spec("a"))}, []string{"a", "b"}, true},
		{"rolling back", []swarm.Service{updated(swarm.UpdateStateRollbackStarted, spec("a"), spec("b"))}, []string{"a", "b"}, true},
		{"update paused", []swarm.Service{updated(swarm.UpdateStatePaused, spec("b"), spec("a"))}, []string{"a", "b"}, true},
		{"updated", []swarm.Service{updated(swarm.UpdateStateCompleted, spec("b"), spec("a"))}, []string{"b"}, false},
		{"rolled back", []swarm.Service{updated(swarm.UpdateStateRollbackCompleted, spec("a"), spec("b"))}, []string{"a"}, false},
		{"scaled: the same secrets", []swarm.Service{updated("", spec("a"), spec("a"))}, []string{"a"}, false},
		{"shared by two services", []swarm.Service{
			updated(swarm.UpdateStateCompleted, spec("b"), spec("a")),
			{Spec: *spec("a", "c")},
		}, []string{"a", "b", "c"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			ids, held := secretsInUse(c.svcs)
			var got []string
			for id := range ids {
				got = append(got, id)
			}
			if !sameSet(got, c.want) || held != c.wantHeld {
				t.Errorf("in use %v, held %v; want %v, %v", got, held, c.want, c.wantHeld)
			}
		})
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]bool{}
	for _, x := range a {
		seen[x] = true
	}
	for _, x := range b {
		if !seen[x] {
			return false
		}
	}
	return true
}
