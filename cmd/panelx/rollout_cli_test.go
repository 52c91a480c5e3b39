package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/panelx/panelx/cli"
	"github.com/panelx/panelx/internal/testenv"
	"github.com/panelx/panelx/internal/testimage"
	"github.com/panelx/panelx/reconcile"
	"github.com/panelx/panelx/store/postgres"
)

// secretCLIEnv is a cliEnv whose server has a master key and names alice
// a server administrator, and which checks that no secret value shows in
// what a command prints.
type secretCLIEnv struct {
	*cliEnv
	logs    *syncLog
	keyFile string
	token   string
	// values must never appear in a command's output (but that of
	// get --show-values) nor in the server's log.
	values []string
}

func newSecretCLIEnv(t *testing.T) *secretCLIEnv {
	t.Helper()
	docker := testenv.Docker(t)
	dbURL := testenv.NewDatabase(t)
	bin := buildPanelx(t)
	keyFile := filepath.Join(t.TempDir(), "secret.key")
	if out, err := exec.Command(bin, "secrets", "init-key", keyFile).CombinedOutput(); err != nil {
		t.Fatalf("secrets init-key: %v\n%s", err, out)
	}
	// As in newCLIEnv: remove the installation's Docker objects after the
	// server has stopped.
	var instance string
	t.Cleanup(func() {
		if instance != "" {
			testenv.RemoveLabelled(docker, reconcile.LabelInstance+"="+instance)
		}
	})
	_, base, logs := startServer(t, bin, "PANELX_DATABASE_URL="+dbURL, "PANELX_PULL_INTERVAL=2s",
		"PANELX_SECRET_KEY_FILE="+keyFile, "PANELX_ADMIN_USERS=alice")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", logs)
		}
	})
	st, err := postgres.Open(context.Background(), dbURL, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	instance, err = st.InstallationID(context.Background())
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "token", "create", "--user", "alice", "--database-url", dbURL).Output()
	if err != nil {
		t.Fatalf("token create: %v", err)
	}
	token := strings.TrimSpace(string(out))
	cfg := filepath.Join(t.TempDir(), "config.json")
	e := &cliEnv{t: t, bin: bin, base: base, env: []string{"PANELX_SERVER=" + base, "PANELX_TOKEN=" + token, "PANELX_CONFIG=" + cfg}}
	return &secretCLIEnv{cliEnv: e, logs: logs, keyFile: keyFile, token: token}
}

// check fails the test when out shows a secret value.
func (e *secretCLIEnv) check(args []string, out string) {
	e.t.Helper()
	for _, v := range e.values {
		if strings.Contains(out, v) {
			e.t.Errorf("panelx %s printed a secret value:\n%s", strings.Join(args, " "), out)
		}
	}
}

// run runs a command and checks its output shows no value.
func (e *secretCLIEnv) run(args ...string) (string, int) {
	e.t.Helper()
	out, code := e.cliEnv.run("", args...)
	e.check(args, out)
	return out, code
}

func (e *secretCLIEnv) mustRun(args ...string) string {
	e.t.Helper()
	out, code := e.run(args...)
	if code != 0 {
		e.t.Fatalf("panelx %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// mustContain fails unless out contains every one of wants.
func mustContain(t *testing.T, what, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("%s: no %q in\n%s", what, w, out)
		}
	}
}

// waitBody polls url until it answers want.
func waitBody(t *testing.T, url, want string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := httpBody(t, url)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s = %q, want %q", url, got, want)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// TestRolloutSecretsCLI: secrets created from literals, a file and an env
// file, and in manifests; get shows keys and versions, never values (no
// command prints one, but get --show-values, nor does the server log
// one); a service takes a value through valueFrom and becomes Ready;
// rollout status, history after env and secret changes, undo, status
// --watch; master key rotation; delete.
func TestRolloutSecretsCLI(t *testing.T) {
	e := newSecretCLIEnv(t)
	reg := testimage.StartRegistry(t, testimage.RegistryOptions{})
	img := reg.Push(t, "shop/web:1", testimage.Image(t, testimage.ImageOptions{Version: "1"}))
	project := uniqueName("vault")
	port := freeTCPPort(t)
	password, password2, token, token2 := uniqueName("pw-one"), uniqueName("pw-two"), uniqueName("tok-one"), uniqueName("tok-two")
	e.values = []string{password, password2, token, token2}

	e.mustRun("apply", "-f", e.write("project.yaml", fmt.Sprintf("apiVersion: panelx.dev/v1\nkind: Project\nmetadata: {name: %s}\n", project)))

	// create secret from literals; without --update an existing one stays.
	out := e.mustRun("create", "secret", "db", "-p", project, "--from-literal", "password="+password, "--from-literal", "user=shop")
	mustContain(t, "create secret", out, "secret/"+project+"/db created", "password, user", "version 1")
	out, code := e.run("create", "secret", "db", "-p", project, "--from-literal", "password="+password2)
	if code == 0 || !strings.Contains(out, "--update") {
		t.Errorf("create of an existing secret without --update: exit %d\n%s", code, out)
	}

	// get: keys and version, never values, in every format.
	out = e.mustRun("get", "secrets", "-p", project)
	mustContain(t, "get secrets", out, "KEYS", "VERSION", "db", "password,user")
	if !regexp.MustCompile(`(?m)^db\s+password,user\s+1\s`).MatchString(out) {
		t.Errorf("get secrets: want the row db, password,user, 1:\n%s", out)
	}
	mustContain(t, "get secret -o yaml", e.mustRun("get", "secret", "db", "-p", project, "-o", "yaml"), "kind: Secret", "- password", "version: 1")
	mustContain(t, "get secret -o json", e.mustRun("get", "secret", "db", "-p", project, "-o", "json"), `"keys"`)
	// The owner may read the values back: the one command that prints them.
	out, code = e.cliEnv.run("", "get", "secret", "db", "-p", project, "--show-values")
	if code != 0 || !strings.Contains(out, "password="+password+"\n") || !strings.Contains(out, "user=shop\n") {
		t.Errorf("get secret --show-values: exit %d\n%s", code, out)
	}
	if out, code := e.run("get", "secrets", "-p", project, "--show-values"); code == 0 {
		t.Errorf("get secrets --show-values without a name: exit 0\n%s", out)
	}

	// A Secret in manifests: apply and diff name its keys, not its values;
	// applying the same values again changes nothing.
	apiSecret := func(value string) string {
		return e.write("api-secret.yaml", fmt.Sprintf("apiVersion: panelx.dev/v1\nkind: Secret\nmetadata: {project: %s, name: api}\nspec:\n  data: {token: %q}\n", project, value))
	}
	out = e.mustRun("apply", "-f", apiSecret(token), "--wait", "--timeout", "30s")
	mustContain(t, "apply of a secret", out, "secret/"+project+"/api created")
	if out, code := e.run("diff", "-f", apiSecret(token)); code != 0 {
		t.Errorf("diff of the same secret values: exit %d\n%s", code, out)
	}
	if out, code := e.run("diff", "-f", apiSecret(token2)); code != 1 {
		t.Errorf("diff of a new secret value: exit %d\n%s", code, out)
	}
	mustContain(t, "get secret api", e.mustRun("get", "secret", "api", "-p", project), "token")

	// A service takes the password through valueFrom and becomes Ready.
	service := func(greeting string) string {
		return e.write("web.yaml", fmt.Sprintf(`apiVersion: panelx.dev/v1
kind: Service
metadata: {project: %s, name: web}
spec:
  image: %s
  env:
  - {name: GREETING, value: %s}
  - name: DB_PASSWORD
    valueFrom: {secretKeyRef: {name: db, key: password}}
  ports: [{containerPort: 8080, hostPort: %d, hostIP: 127.0.0.1}]
  healthcheck: {command: [/testapp, -check], interval: 1s}
`, project, img, greeting, port))
	}
	envURL := func(name string) string { return fmt.Sprintf("http://127.0.0.1:%d/env/%s", port, name) }
	out = e.mustRun("apply", "-f", service("hello"), "--wait", "--timeout", "90s")
	mustContain(t, "apply of the service", out, "service/"+project+"/web created", "ready")
	if got := httpBody(t, envURL("DB_PASSWORD")); got != password {
		t.Fatalf("DB_PASSWORD in the container = %q, want the secret's value", got)
	}
	out = e.mustRun("rollout", "status", "web", "-p", project)
	mustContain(t, "rollout status", out, "revision 1 rolled out", "1/1 replicas ready")
	mustContain(t, "get services", e.mustRun("get", "services", "-p", project), "web", "1/1")

	// An env change: revision 2; status --watch follows it to the end.
	e.mustRun("apply", "-f", service("bonjour"))
	out = e.mustRun("rollout", "status", "web", "-p", project, "--watch", "--timeout", "90s")
	mustContain(t, "rollout status --watch", out, "revision 2 rolled out")
	waitBody(t, envURL("GREETING"), "bonjour")
	out = e.mustRun("rollout", "history", "web", "-p", project)
	mustContain(t, "rollout history", out, "REVISION", "CHANGE", "IMAGE", "2 (current)", "env GREETING", "alice", "first revision", "@sha256:")
	if !regexp.MustCompile(`(?m)^1\s`).MatchString(out) {
		t.Errorf("rollout history: no revision 1:\n%s", out)
	}
	out = e.mustRun("rollout", "history", "web", "-p", project, "--revision", "1")
	mustContain(t, "rollout history --revision 1", out, "Revision:", "db (version 1)", "secretKeyRef", "value: hello", "first revision", "@sha256:")

	// undo goes back to revision 1's template, as revision 3.
	out = e.mustRun("rollout", "undo", "web", "-p", project)
	mustContain(t, "rollout undo", out, "service/"+project+"/web rolled back to revision 1 (image ", "@sha256:")
	out = e.mustRun("rollout", "status", "web", "-p", project, "-w", "--timeout", "90s")
	mustContain(t, "rollout status after undo", out, "revision 3 rolled out")
	waitBody(t, envURL("GREETING"), "hello")
	out = e.mustRun("rollout", "history", "web", "-p", project)
	mustContain(t, "rollout history after undo", out, "3 (current)", "rollback to revision 1")
	out, code = e.run("rollout", "undo", "web", "-p", project, "--to-revision", "99")
	if code == 0 || !strings.Contains(out, "404") {
		t.Errorf("undo to a revision that does not exist: exit %d\n%s", code, out)
	}

	// New values from an env file (PUT: every key given again): version 2,
	// and the service rolls out with them as revision 4.
	envFile := e.write("db.env", fmt.Sprintf("# the database\nexport password=%q\nuser=shop\n", password2))
	out = e.mustRun("create", "secret", "db", "-p", project, "--from-env-file", envFile, "--update")
	mustContain(t, "create secret --update", out, "secret/"+project+"/db replaced", "version 1 → 2")
	out = e.mustRun("create", "secret", "db", "-p", project, "--from-env-file", envFile, "--update")
	mustContain(t, "create secret --update with the same values", out, "unchanged", "version 2")
	waitBody(t, envURL("DB_PASSWORD"), password2)
	e.mustRun("rollout", "status", "web", "-p", project, "-w", "--timeout", "90s")
	out = e.mustRun("rollout", "history", "web", "-p", project)
	mustContain(t, "rollout history after a secret change", out, "4 (current)", "secret db (version 1 → 2)")

	// Master key rotation (the command cmd/panelx mounts under `secrets`):
	// the values survive, nothing restarts.
	var rot bytes.Buffer
	rotate := cli.SecretsRotateKeyCmd()
	rotate.SetArgs([]string{"--server", e.base, "--token", e.token})
	rotate.SetOut(&rot)
	rotate.SetErr(&rot)
	if err := rotate.ExecuteContext(t.Context()); err != nil {
		t.Fatalf("secrets rotate-key: %v\n%s", err, rot.String())
	}
	e.check([]string{"secrets", "rotate-key"}, rot.String())
	mustContain(t, "secrets rotate-key", rot.String(), "the active master key is now", "re-sealed 2 secret(s)", "retired from the key file")
	out, code = e.cliEnv.run("", "get", "secret", "db", "-p", project, "--show-values")
	if code != 0 || !strings.Contains(out, "password="+password2+"\n") {
		t.Errorf("get secret --show-values after the rotation: exit %d\n%s", code, out)
	}
	out = e.mustRun("rollout", "status", "web", "-p", project)
	mustContain(t, "rollout status after the rotation", out, "revision 4 rolled out")

	// A revision that never becomes ready: status --watch fails at the
	// progress deadline, saying why.
	bad := e.write("bad.yaml", fmt.Sprintf(`apiVersion: panelx.dev/v1
kind: Service
metadata: {project: %s, name: bad}
spec:
  image: %s
  healthcheck: {command: [/testapp, -no-such-flag], interval: 1s}
  rollout: {progressDeadline: 10s}
`, project, img))
	e.mustRun("apply", "-f", bad)
	start := time.Now()
	out, code = e.run("rollout", "status", "bad", "-p", project, "--watch", "--timeout", "90s")
	if code != 1 || !strings.Contains(out, "did not become ready within 10s") {
		t.Errorf("rollout status --watch of a revision past its deadline: exit %d\n%s", code, out)
	}
	if d := time.Since(start); d > 60*time.Second {
		t.Errorf("the failure took %v", d)
	}
	if out, code := e.run("rollout", "status", "bad", "-p", project); code != 1 || !strings.Contains(out, "failed") {
		t.Errorf("rollout status of a failed rollout: exit %d\n%s", code, out)
	}

	// delete through the generic command.
	mustContain(t, "delete secret", e.mustRun("delete", "secret", "api", "-p", project), "secret/"+project+"/api deleted")
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, code := e.run("get", "secret", "api", "-p", project)
		if code != 0 && strings.Contains(out, "404") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("secret still there after delete:\n%s", out)
		}
		time.Sleep(300 * time.Millisecond)
	}
	e.mustRun("delete", "project", project)

	for _, v := range e.values {
		if strings.Contains(e.logs.String(), v) {
			t.Errorf("the server log shows a secret value")
		}
	}
}
