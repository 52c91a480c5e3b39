package apply_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/apply"
	"github.com/panelx/panelx/internal/testenv"
	"github.com/panelx/panelx/store"
	"github.com/panelx/panelx/store/postgres"
	"github.com/panelx/panelx/store/sqlite"
)

const manifests = `
apiVersion: panelx.dev/v1
kind: Project
metadata: {name: shop}
spec: {domain: shop.example.com}
---
apiVersion: panelx.dev/v1
kind: Volume
metadata: {project: shop, name: data}
---
apiVersion: panelx.dev/v1
kind: Service
metadata: {project: shop, name: web, labels: {tier: front}}
spec:
  image: nginx:1.27
  env: [{name: LOG_LEVEL, value: info}]
  volumes: [{name: data, mountPath: /data}]
---
apiVersion: panelx.dev/v1
kind: Service
metadata: {project: shop, name: db}
spec: {image: postgres:16}
`

type backend struct {
	name string
	open func(t *testing.T) store.Store
}

func backends() []backend {
	return []backend{
		{"postgres", func(t *testing.T) store.Store {
			s, err := postgres.Open(context.Background(), testenv.NewDatabase(t), postgres.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Migrate(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Close)
			return s
		}},
		{"sqlite", func(t *testing.T) store.Store {
			s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "p.db"), sqlite.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Migrate(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Close)
			return s
		}},
	}
}

func parse(t *testing.T, src string) []api.Object {
	t.Helper()
	objs, err := api.ParseManifests([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func summary(rs []apply.Result) string {
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%s %s/%s %s", r.Action, r.Kind, r.Project, r.Name))
	}
	return strings.Join(out, "\n")
}

func TestApply(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			st := b.open(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()

			// Dry run: creates reported, nothing written.
			rs, err := apply.Apply(ctx, st, parse(t, manifests), apply.Options{DryRun: true})
			if err != nil {
				t.Fatal(err)
			}
			want := "created Project/ shop\ncreated Volume/shop data\ncreated Service/shop web\ncreated Service/shop db"
			if got := summary(rs); got != want {
				t.Errorf("dry run:\n%s\nwant:\n%s", got, want)
			}
			if _, err := st.Projects().Get(ctx, api.Key{Name: "shop"}); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("a dry run wrote the project: %v", err)
			}

			// Apply creates.
			owners := 0
			opts := apply.Options{OnCreateProject: func(ctx context.Context, r store.Repo, p *api.Project) error {
				owners++
				_, err := r.Members().Put(ctx, store.Member{Project: p.Metadata.Name, UserID: "alice", Role: store.RoleOwner})
				return err
			}}
			rs, err = apply.Apply(ctx, st, parse(t, manifests), opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := summary(rs); got != want {
				t.Errorf("apply:\n%s\nwant:\n%s", got, want)
			}
			if owners != 1 {
				t.Errorf("OnCreateProject ran %d times", owners)
			}
			web, err := st.Services().Get(ctx, api.Key{Project: "shop", Name: "web"})
			if err != nil || web.Spec.Env[0].Value != "info" || web.Metadata.Labels["tier"] != "front" {
				t.Fatalf("web after apply: %+v, %v", web, err)
			}

			// Re-apply: unchanged, no generation or resourceVersion change.
			rs, err = apply.Apply(ctx, st, parse(t, manifests), apply.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := summary(rs); !strings.Contains(got, "unchanged Service/shop web") || strings.Contains(got, "created") || strings.Contains(got, "configured") {
				t.Errorf("re-apply:\n%s", got)
			}
			again, _ := st.Services().Get(ctx, api.Key{Project: "shop", Name: "web"})
			if again.Metadata.Generation != web.Metadata.Generation || again.Metadata.ResourceVersion != web.Metadata.ResourceVersion {
				t.Errorf("re-apply wrote: generation %d→%d, rv %s→%s", web.Metadata.Generation, again.Metadata.Generation,
					web.Metadata.ResourceVersion, again.Metadata.ResourceVersion)
			}

			// One edited field: only that service is configured, with a diff.
			edited := strings.Replace(manifests, "value: info", "value: debug", 1)
			rs, err = apply.Apply(ctx, st, parse(t, edited), apply.Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				wantAction := apply.Unchanged
				if r.Name == "web" {
					wantAction = apply.Configured
					if r.Diff != `~ spec.env[LOG_LEVEL].value: "info" → "debug"` {
						t.Errorf("diff = %q", r.Diff)
					}
					if r.Generation != web.Metadata.Generation+1 {
						t.Errorf("generation after edit = %d", r.Generation)
					}
				}
				if r.Action != wantAction {
					t.Errorf("%s %s: %s, want %s", r.Kind, r.Name, r.Action, wantAction)
				}
			}

			// Prune removes the service dropped from the set; volumes stay
			// unless asked.
			withoutDB := edited[:strings.LastIndex(edited, "---")]
			withoutVolume := strings.Replace(withoutDB, "kind: Volume\nmetadata: {project: shop, name: data}", "kind: Project\nmetadata: {name: other}", 1)
			rs, err = apply.Apply(ctx, st, parse(t, withoutVolume), apply.Options{Prune: true, DryRun: true})
			if err != nil {
				t.Fatal(err)
			}
			if got := summary(rs); !strings.Contains(got, "pruned Service/shop db") || strings.Contains(got, "pruned Volume") {
				t.Errorf("dry-run prune:\n%s", got)
			}
			if db, _ := st.Services().Get(ctx, api.Key{Project: "shop", Name: "db"}); db.Metadata.DeletionTimestamp != nil {
				t.Error("a dry-run prune deleted db")
			}
			if _, err := apply.Apply(ctx, st, parse(t, withoutVolume), apply.Options{Prune: true, PruneVolumes: true}); err != nil {
				t.Fatal(err)
			}
			db, _ := st.Services().Get(ctx, api.Key{Project: "shop", Name: "db"})
			vol, _ := st.Volumes().Get(ctx, api.Key{Project: "shop", Name: "data"})
			if db.Metadata.DeletionTimestamp == nil || vol.Metadata.DeletionTimestamp == nil {
				t.Errorf("prune: db deleting %v, data deleting %v", db.Metadata.DeletionTimestamp, vol.Metadata.DeletionTimestamp)
			}
		})
	}
}

// TestApplyIsAllOrNothing: a failure at the last document — a refused
// check, or a service in a project that does not exist — leaves nothing
// written.
func TestApplyIsAllOrNothing(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			st := b.open(t)
			ctx := context.Background()
			bad := manifests + "---\napiVersion: panelx.dev/v1\nkind: Service\nmetadata: {project: nowhere, name: x}\nspec: {image: x}\n"
			_, err := apply.Apply(ctx, st, parse(t, bad), apply.Options{})
			var aerr *apply.Error
			if !errors.As(err, &aerr) || aerr.Index != 4 || !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("error = %v, want document 4 not found", err)
			}
			refuse := errors.New("refused")
			_, err = apply.Apply(ctx, st, parse(t, manifests), apply.Options{Check: func(ctx context.Context, obj, existing api.Object) error {
				if obj.GetMeta().Name == "db" {
					return refuse
				}
				return nil
			}})
			if !errors.Is(err, refuse) {
				t.Fatalf("error = %v, want the refusal", err)
			}
			if _, err := st.Projects().Get(ctx, api.Key{Name: "shop"}); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("a failed apply left the project: %v", err)
			}
			dup := manifests + "---\napiVersion: panelx.dev/v1\nkind: Service\nmetadata: {project: shop, name: db}\nspec: {image: y}\n"
			if _, err := apply.Apply(ctx, st, parse(t, dup), apply.Options{}); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("a set naming one object twice: %v", err)
			}
		})
	}
}

func TestDiff(t *testing.T) {
	objs := parse(t, manifests)
	web := objs[2].(*api.Service)
	changed := api.Clone(web)
	changed.Spec.Env = append([]api.EnvVar{{Name: "A", Value: "1"}}, changed.Spec.Env...)
	changed.Spec.Image = "nginx:1.28"
	delete(changed.Metadata.Labels, "tier")
	got := apply.Diff(web, changed)
	want := `- metadata.labels.tier: "front"
+ spec.env[A].value: "1"
~ spec.image: "nginx:1.27" → "nginx:1.28"`
	if got != want {
		t.Errorf("diff:\n%s\nwant:\n%s", got, want)
	}
	if d := apply.Diff(web, api.Clone(web)); d != "" {
		t.Errorf("diff of equal objects = %q", d)
	}
}
