package swarmtest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/controller"
	"github.com/panelx/panelx/internal/testenv"
	"github.com/panelx/panelx/reconcile"
	"github.com/panelx/panelx/seal"
	"github.com/panelx/panelx/store"
)

// TestSecretFilesAreSwarmSecrets: a secret file of a service on Swarm is a
// Swarm secret of the installation, read by the replica at its absolute
// path; a new value is a new Swarm secret and a rollout, after which the
// replica reads the new value and the old secret is removed; deleting the
// service removes its secrets.
func TestSecretFilesAreSwarmSecrets(t *testing.T) {
	tg := targetOn(t, true)
	cli := testenv.Docker(t)
	owned := filters.NewArgs(filters.Arg("label", reconcile.LabelInstance+"="+tg.Instance))
	// Runs before the target's cleanup: the services go first, or Swarm
	// refuses to remove their secrets.
	t.Cleanup(func() { removeSecretsOf(t, tg.Instance) })
	key, err := seal.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	kr := seal.NewKeyring(key)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	w := startController(t, ctx, tg, cli, func(o *controller.Options) { o.Keyring = kr })

	p := w.project()
	putSecret(t, w, kr, p, "api", map[string]string{"token": "first-value"})
	img := w.Registry.Push(t, "t"+w.Instance[len(w.Instance)-6:]+"/web:1", "1")
	port := secretFreePort(t)
	w.apply(p, "web", func(s *api.Service) {
		s.Spec.Image = img
		// /files/ reads under DATA_DIR: the file is outside /run/secrets,
		// at an absolute path of the service's choosing.
		s.Spec.Env = []api.EnvVar{{Name: "DATA_DIR", Value: "/etc/app"}}
		s.Spec.Ports = []api.Port{{ContainerPort: 8080, HostPort: port}}
		s.Spec.Volumes = []api.VolumeMount{{MountPath: "/etc/app/conf/token", Secret: &api.SecretKeySelector{Name: "api", Key: "token"}}}
	})
	svc := w.wait(p, "web", "Ready", reconcile.ServiceReady)
	if got := secretGet(t, port, "/files/conf/token", "first-value"); got != "first-value" {
		t.Fatalf("the replica reads %q, want first-value", got)
	}
	firstTask := svc.Status.Replicas[0].ContainerID

	// One Swarm secret of the installation, named and labelled after the
	// service, nothing of the value; the service names it with the path.
	name := reconcile.WorkloadName(p, "web")
	list, err := cli.SecretList(ctx, swarm.SecretListOptions{Filters: owned})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Fatalf("%d secrets of the installation, want 1: %+v", len(list), list)
	}
	first := list[0]
	if !strings.HasPrefix(first.Spec.Name, name+"-") || first.Spec.Labels[reconcile.LabelProject] != p ||
		first.Spec.Labels[reconcile.LabelService] != "web" || first.Spec.Labels[reconcile.LabelManaged] != "true" {
		t.Errorf("secret %s, labels %v", first.Spec.Name, first.Spec.Labels)
	}
	for k, v := range first.Spec.Labels {
		if strings.Contains(k+v+first.Spec.Name, "first-value") {
			t.Errorf("the secret's name or label %s holds the value", k)
		}
	}
	s, _, err := cli.ServiceInspectWithRaw(ctx, name, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	refs := s.Spec.TaskTemplate.ContainerSpec.Secrets
	if len(refs) != 1 || refs[0].SecretID != first.ID || refs[0].File == nil || refs[0].File.Name != "/etc/app/conf/token" ||
		refs[0].File.Mode != 0o444 || refs[0].File.UID != "0" || refs[0].File.GID != "0" {
		t.Errorf("the service's secrets: %+v", refs)
	}
	if strings.Contains(fmt.Sprint(s.Spec), "first-value") {
		t.Error("the service's spec holds the value")
	}

	// A new value: a new secret, a rollout, the new value in the replica.
	changed := time.Now()
	putSecret(t, w, kr, p, "api", map[string]string{"token": "second-value"})
	if got := secretGet(t, port, "/files/conf/token", "second-value"); got != "second-value" {
		t.Fatalf("after the change the replica reads %q, want second-value", got)
	}
	t.Logf("new value read %v after the change", time.Since(changed).Round(100*time.Millisecond))
	svc = w.wait(p, "web", "Ready on the new value", reconcile.ServiceReady)
	if svc.Status.Replicas[0].ContainerID == firstTask {
		t.Errorf("replica still task %s: the service did not roll", firstTask)
	}
	s, _, err = cli.ServiceInspectWithRaw(ctx, name, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	refs = s.Spec.TaskTemplate.ContainerSpec.Secrets
	if len(refs) != 1 || refs[0].SecretID == first.ID {
		t.Fatalf("after the change the service names %+v, want one secret other than %s", refs, first.ID)
	}
	second := refs[0].SecretID

	// The old secret goes once the rollout is done.
	secretsEventually(t, cli, owned, "only the new secret", func(ids []string) bool {
		return slices.Equal(ids, []string{second})
	})
	t.Logf("old secret removed %v after the change", time.Since(changed).Round(100*time.Millisecond))

	// Deleting the service removes its secret.
	if _, err := w.Store.Services().Delete(ctx, api.Key{Project: p, Name: "web"}, store.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	secretsEventually(t, cli, owned, "no secrets", func(ids []string) bool { return len(ids) == 0 })
	if _, _, err := cli.ServiceInspectWithRaw(ctx, name, swarm.ServiceInspectOptions{}); err == nil {
		t.Error("the service is still there")
	}
}

// putSecret creates or updates a secret of the project with these values,
// sealed as the API seals them (the data key kept: digests follow values).
func putSecret(t *testing.T, w *world, kr *seal.Keyring, project, name string, data map[string]string) {
	t.Helper()
	key := api.Key{Project: project, Name: name}
	cur, err := w.Store.Secrets().Get(w.ctx, key)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	var prev *api.Sealed
	var version int64
	if err == nil {
		prev, version = cur.Spec.Sealed, cur.Spec.Version
	}
	sealed, serr := kr.SealSecret(seal.SecretContext(project, name), data, prev)
	if serr != nil {
		t.Fatal(serr)
	}
	spec := api.SecretSpec{Keys: seal.Keys(data), Version: version + 1, Sealed: sealed}
	if err != nil {
		s := &api.Secret{Metadata: api.ObjectMeta{Project: project, Name: name}, Spec: spec}
		s.Default()
		if _, err := w.Store.Secrets().Create(w.ctx, s); err != nil {
			t.Fatal(err)
		}
		return
	}
	cur.Spec = spec
	if _, err := w.Store.Secrets().Update(w.ctx, cur); err != nil {
		t.Fatal(err)
	}
}

// secretGet fetches a path of the replica on its published port until it
// answers want (a rollout replaces the replica meanwhile), or two minutes
// have passed; it returns the last answer.
func secretGet(t *testing.T, port int32, path, want string) string {
	t.Helper()
	var last string
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
		if err != nil {
			last = err.Error()
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		last = string(body)
		if resp.StatusCode == http.StatusOK && last == want {
			break
		}
		last = fmt.Sprintf("%d %s", resp.StatusCode, body)
	}
	return last
}

// secretsEventually waits until the IDs of the installation's secrets
// satisfy cond.
func secretsEventually(t *testing.T, cli interface {
	SecretList(context.Context, swarm.SecretListOptions) ([]swarm.Secret, error)
}, owned filters.Args, what string, cond func([]string) bool) {
	t.Helper()
	var ids []string
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		list, err := cli.SecretList(context.Background(), swarm.SecretListOptions{Filters: owned})
		if err != nil {
			t.Fatal(err)
		}
		ids = ids[:0]
		for _, s := range list {
			ids = append(ids, s.ID)
		}
		if cond(ids) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: secrets %v", what, ids)
		}
	}
}

// removeSecretsOf removes what the test left of the installation on the
// swarm: its services, then its secrets (refused while a service names
// them, so tried again for a while).
func removeSecretsOf(t *testing.T, instance string) {
	cli := testenv.Docker(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := filters.NewArgs(filters.Arg("label", reconcile.LabelInstance+"="+instance))
	svcs, _ := cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: f})
	for _, s := range svcs {
		_ = cli.ServiceRemove(ctx, s.ID)
	}
	for ctx.Err() == nil {
		list, err := cli.SecretList(ctx, swarm.SecretListOptions{Filters: f})
		if err != nil || len(list) == 0 {
			return
		}
		for _, s := range list {
			if s.Spec.Labels[reconcile.LabelInstance] == instance {
				_ = cli.SecretRemove(ctx, s.ID)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// secretFreePort returns a TCP port free on 127.0.0.1 right now.
func secretFreePort(t *testing.T) int32 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return int32(l.Addr().(*net.TCPAddr).Port)
}
