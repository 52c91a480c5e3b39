package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/apply"
	"github.com/panelx/panelx/internal/testenv"
	"github.com/panelx/panelx/store"
	"github.com/panelx/panelx/store/postgres"
	"github.com/panelx/panelx/store/sqlite"
)

// TestExportFromSQLiteApplyIntoPostgres: what the embedded store holds,
// exported and applied into a PostgreSQL-backed server, has identical specs.
func TestExportFromSQLiteApplyIntoPostgres(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src, err := sqlite.Open(ctx, filepath.Join(dir, "panelx.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	objs, err := api.ParseManifests([]byte(`
apiVersion: panelx.dev/v1
kind: Project
metadata: {name: shop, labels: {team: a}}
spec: {domain: shop.example.com, displayName: "The shop"}
---
apiVersion: panelx.dev/v1
kind: Volume
metadata: {project: shop, name: data}
spec: {reclaimPolicy: Delete, driverOpts: {type: tmpfs, device: tmpfs}}
---
apiVersion: panelx.dev/v1
kind: Service
metadata: {project: shop, name: web, labels: {tier: front}, annotations: {note: "hello"}}
spec:
  image: nginx:1.27
  command: [nginx, -g, "daemon off;"]
  env: [{name: SECRET, value: "s3cr3t"}, {name: PORT, value: "8080"}]
  ports: [{containerPort: 80, hostPort: 18080}]
  volumes: [{name: data, mountPath: /data, readOnly: true}, {tmpfs: true, mountPath: /tmp}]
  resources: {cpus: "0.5", memory: 256Mi}
  healthcheck: {command: [/check], interval: 3s}
  restartPolicy: OnFailure
---
apiVersion: panelx.dev/v1
kind: Service
metadata: {project: shop, name: worker}
spec: {image: busybox, replicas: 3, dependsOn: [web]}
---
apiVersion: panelx.dev/v1
kind: Project
metadata: {name: blog}
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := apply.Apply(ctx, src, objs, apply.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Members().Put(ctx, store.Member{Project: "shop", UserID: "alice", Role: store.RoleOwner}); err != nil {
		t.Fatal(err)
	}
	if _, err := src.RegistryCredentials().Put(ctx, store.RegistryCredential{Project: "shop", Registry: "ghcr.io", Username: "u", Password: "never-exported"}); err != nil {
		t.Fatal(err)
	}
	before := specs(t, src)
	srcID, err := src.InstallationID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	src.Close()

	bin := buildPanelx(t)
	out, err := exec.Command(bin, "export", "--database-url", "", "--data-dir", dir).Output()
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	exported := string(out)
	for _, want := range []string{"members", "alice=owner", "ghcr.io", "kind: Service"} {
		if !strings.Contains(exported, want) {
			t.Errorf("export lacks %q:\n%s", want, exported)
		}
	}
	if strings.Contains(exported, "never-exported") || strings.Contains(exported, "status:") || strings.Contains(exported, "uid:") {
		t.Errorf("export carries what it must not:\n%s", exported)
	}

	// Into a PostgreSQL-backed server, through the CLI. Its controller stays
	// off: these images exist nowhere here, and nothing may leave loopback.
	dbURL := testenv.NewDatabase(t)
	if !strings.Contains(exported, "--adopt-installation "+srcID) {
		t.Errorf("the export does not say how to adopt installation %s", srcID)
	}
	if out, err := exec.Command(bin, "migrate", "--database-url", dbURL, "--adopt-installation", srcID).CombinedOutput(); err != nil {
		t.Fatalf("migrate --adopt-installation: %v\n%s", err, out)
	}
	_, base, _ := startServer(t, bin, "PANELX_DATABASE_URL="+dbURL, "PANELX_CONTROLLER=false", "PANELX_CONTAINER_METRICS=false")
	tok, err := exec.Command(bin, "token", "create", "--user", "bob", "--database-url", dbURL).Output()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "export.yaml")
	if err := os.WriteFile(file, out, 0o600); err != nil {
		t.Fatal(err)
	}
	applyCmd := exec.Command(bin, "apply", "-f", file, "--server", base, "--token", strings.TrimSpace(string(tok)))
	applyCmd.Env = append(os.Environ(), "PANELX_CONFIG="+filepath.Join(t.TempDir(), "c.json"))
	if out, err := applyCmd.CombinedOutput(); err != nil {
		t.Fatalf("apply the export: %v\n%s", err, out)
	}
	dst, err := postgres.Open(ctx, dbURL, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if id, err := dst.InstallationID(ctx); err != nil || id != srcID {
		t.Errorf("installation after adopting: %q %v, want %q", id, err, srcID)
	}
	if err := dst.AdoptInstallation(ctx, "another"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("a database with projects adopted another installation: %v", err)
	}
	after := specs(t, dst)
	if len(after) != len(before) {
		t.Fatalf("%d objects after the move, %d before", len(after), len(before))
	}
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s changed in the move:\n before %s\n after  %s", k, v, after[k])
		}
	}
}

// specs maps every object to the JSON of what a manifest carries.
func specs(t *testing.T, st store.Store) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	add := func(o api.Object) {
		m := o.GetMeta()
		// What users wrote; panelx.dev/ annotations say who wrote it where.
		var annots map[string]string
		for k, v := range m.Annotations {
			if !strings.HasPrefix(k, "panelx.dev/") {
				if annots == nil {
					annots = map[string]string{}
				}
				annots[k] = v
			}
		}
		data, err := json.Marshal(map[string]any{"labels": m.Labels, "annotations": annots, "spec": o.SpecPtr()})
		if err != nil {
			t.Fatal(err)
		}
		out[string(o.GetKind())+" "+api.KeyOf(o).String()] = string(data)
	}
	if err := store.Each(ctx, st.Projects(), store.ListOptions{}, func(p *api.Project) { add(p) }); err != nil {
		t.Fatal(err)
	}
	if err := store.Each(ctx, st.Services(), store.ListOptions{}, func(s *api.Service) { add(s) }); err != nil {
		t.Fatal(err)
	}
	if err := store.Each(ctx, st.Volumes(), store.ListOptions{}, func(v *api.Volume) { add(v) }); err != nil {
		t.Fatal(err)
	}
	return out
}
