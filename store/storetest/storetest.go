// Package storetest is the conformance suite every store backend must pass:
// CRUD, optimistic concurrency, generation rules, two-phase delete,
// pagination and label selectors, members, events, transactions, the
// change feed with its resync marker, the edge's tables, secrets (sealed
// only) and service revisions.
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/store"
)

// Factory returns a new, empty, migrated store for one test. The store is
// closed by the suite.
type Factory func(t *testing.T) store.Store

// Run runs the whole suite against a backend.
func Run(t *testing.T, newStore Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"CreateGetList", testCreateGetList},
		{"BackupRuns", testBackupRuns},
		{"MoveRuns", testMoveRuns},
		{"GetIfChanged", testGetIfChanged},
		{"CreateErrors", testCreateErrors},
		{"GenerationRules", testGenerationRules},
		{"OptimisticConcurrency", testOptimisticConcurrency},
		{"ConcurrentUpdatersOneWinnerPerRound", testConcurrentUpdatersOneWinner},
		{"ConcurrentRetryingUpdatersLoseNothing", testConcurrentRetryingUpdaters},
		{"TwoPhaseDelete", testTwoPhaseDelete},
		{"ProjectDeleteCascades", testProjectDeleteCascades},
		{"ListPaginationAndSelectors", testListPagination},
		{"Members", testMembers},
		{"Events", testEvents},
		{"TransactionsAreAllOrNothing", testTransactions},
		{"APITokens", testTokens},
		{"RegistryCredentials", testRegistryCredentials},
		{"InstallationID", testInstallationID},
		{"WatchDeliversChangesInOrder", testWatch},
		{"WatchSlowConsumerGetsResync", testWatchSlowConsumer},
		{"HostnameClaims", testHostnameClaims},
		{"EdgeReports", testEdgeReports},
		{"Certificates", testCertificates},
		{"Secrets", testSecrets},
		{"SecretsRefusePlaintext", testSecretsRefusePlaintext},
		{"SecretWatch", testSecretWatch},
		{"RevisionsRecord", testRevisionsRecord},
		{"RevisionsMissing", testRevisionsMissing},
		{"RevisionsMarkReady", testRevisionsMarkReady},
		{"RevisionsGoWithTheServiceRow", testRevisionsGoWithTheServiceRow},
		{"RevisionsInTx", testRevisionsInTx},
		{"RevisionsConcurrentRecord", testRevisionsConcurrentRecord},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			t.Cleanup(s.Close)
			tt.fn(t, s)
		})
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Project returns a defaulted project.
func Project(name string) *api.Project {
	p := &api.Project{Metadata: api.ObjectMeta{Name: name}}
	p.Default()
	return p
}

// Service returns a defaulted service.
func Service(project, name, image string) *api.Service {
	s := &api.Service{Metadata: api.ObjectMeta{Project: project, Name: name}, Spec: api.ServiceSpec{Image: image}}
	s.Default()
	return s
}

// Volume returns a defaulted volume.
func Volume(project, name string) *api.Volume {
	v := &api.Volume{Metadata: api.ObjectMeta{Project: project, Name: name}}
	v.Default()
	return v
}

// must(f())(t) fails the test when f returned an error.
func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func wantErr(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

func testCreateGetList(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	p := Project("shop")
	p.Metadata.Labels = map[string]string{"team": "a"}
	p.Spec.Domain = "shop.example.com"
	p.Status.Phase = api.PhaseReady // ignored on create
	created := must(s.Projects().Create(ctx, p))(t)
	m := created.Metadata
	if m.UID == "" || m.Generation != 1 || m.ResourceVersion == "" || m.CreationTimestamp.IsZero() || m.DeletionTimestamp != nil {
		t.Errorf("server-set metadata not set: %+v", m)
	}
	if created.Status.Phase != "" {
		t.Errorf("create stored status %+v; status is written only through UpdateStatus", created.Status)
	}
	got := must(s.Projects().Get(ctx, api.Key{Name: "shop"}))(t)
	if got.Spec.Domain != "shop.example.com" || got.Metadata.Labels["team"] != "a" || got.Metadata.UID != m.UID {
		t.Errorf("Get = %+v", got)
	}
	if got.APIVersion != api.APIVersion || got.Kind != api.KindProject {
		t.Errorf("TypeMeta = %+v", got.TypeMeta)
	}

	svc := Service("shop", "web", "nginx:1")
	svc.Spec.Env = []api.EnvVar{{Name: "A", Value: "1"}}
	must(s.Services().Create(ctx, svc))(t)
	must(s.Volumes().Create(ctx, Volume("shop", "data")))(t)
	gotSvc := must(s.Services().Get(ctx, api.Key{Project: "shop", Name: "web"}))(t)
	if gotSvc.Spec.Image != "nginx:1" || gotSvc.Spec.Env[0].Value != "1" || gotSvc.Spec.ReplicaCount() != 1 || gotSvc.Metadata.Project != "shop" {
		t.Errorf("Get service = %+v", gotSvc)
	}
	vols := must(s.Volumes().List(ctx, store.ListOptions{Project: "shop"}))(t)
	if len(vols.Items) != 1 || vols.Items[0].Spec.ReclaimPolicy != api.ReclaimRetain {
		t.Errorf("List volumes = %+v", vols.Items)
	}
	_, err := s.Services().Get(ctx, api.Key{Project: "shop", Name: "nope"})
	wantErr(t, err, store.ErrNotFound, "get missing service")
	_, err = s.Services().Get(ctx, api.Key{Project: "other", Name: "web"})
	wantErr(t, err, store.ErrNotFound, "get service of another project")
}

// testGetIfChanged: a reader holding the current version gets no object;
// any write (spec or status), or a new object under the same name, reads.
func testGetIfChanged(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	must(s.Projects().Create(ctx, Project("shop")))(t)
	key := api.Key{Project: "shop", Name: "web"}
	held := must(s.Services().Create(ctx, Service("shop", "web", "nginx:1")))(t).Metadata

	check := func(what, uid, rv string, wantChanged bool, wantImage string) {
		t.Helper()
		obj, changed, err := s.Services().GetIfChanged(ctx, key, uid, rv)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if changed != wantChanged {
			t.Fatalf("%s: changed = %v, want %v", what, changed, wantChanged)
		}
		if !changed {
			if obj != nil {
				t.Fatalf("%s: unchanged, yet an object came back: %+v", what, obj)
			}
			return
		}
		if obj.Spec.Image != wantImage || obj.Metadata.UID == "" {
			t.Fatalf("%s: got %+v, want image %s", what, obj, wantImage)
		}
	}
	check("current version", held.UID, held.ResourceVersion, false, "")
	check("no version held", "", "", true, "nginx:1")
	check("other uid", "00000000-0000-0000-0000-000000000000", held.ResourceVersion, true, "nginx:1")

	cur := must(s.Services().Get(ctx, key))(t)
	cur.Spec.Image = "nginx:2"
	updated := must(s.Services().Update(ctx, cur))(t)
	check("after a spec write", held.UID, held.ResourceVersion, true, "nginx:2")
	check("the new version", held.UID, updated.Metadata.ResourceVersion, false, "")

	updated.Status.Phase = api.PhaseReady
	status := must(s.Services().UpdateStatus(ctx, updated))(t)
	check("after a status write", held.UID, updated.Metadata.ResourceVersion, true, "nginx:2")

	// Gone and made again under the same name: another uid.
	must(s.Services().Delete(ctx, key, store.DeleteOptions{}))(t)
	if err := s.Services().Remove(ctx, key, held.UID); err != nil {
		t.Fatal(err)
	}
	_, _, err := s.Services().GetIfChanged(ctx, key, held.UID, status.Metadata.ResourceVersion)
	wantErr(t, err, store.ErrNotFound, "GetIfChanged of a removed service")
	must(s.Services().Create(ctx, Service("shop", "web", "nginx:3")))(t)
	check("recreated", held.UID, status.Metadata.ResourceVersion, true, "nginx:3")
}

func testCreateErrors(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	must(s.Projects().Create(ctx, Project("shop")))(t)
	_, err := s.Projects().Create(ctx, Project("shop"))
	wantErr(t, err, store.ErrAlreadyExists, "duplicate project")
	_, err = s.Services().Create(ctx, Service("missing", "web", "nginx"))
	wantErr(t, err, store.ErrNotFound, "service in a missing project")
	must(s.Services().Create(ctx, Service("shop", "web", "nginx")))(t)
	_, err = s.Services().Create(ctx, Service("shop", "web", "nginx"))
	wantErr(t, err, store.ErrAlreadyExists, "duplicate service")
	_, err = s.Volumes().Create(ctx, Volume("missing", "data"))
	wantErr(t, err, store.ErrNotFound, "volume in a missing project")
}

func testGenerationRules(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	must(s.Projects().Create(ctx, Project("shop")))(t)
	svc := must(s.Services().Create(ctx, Service("shop", "web", "nginx:1")))(t)
	rv := func(o api.Object) int64 {
		n, err := strconv.ParseInt(o.GetMeta().ResourceVersion, 10, 64)
		if err != nil {
			t.Fatalf("resourceVersion %q is not a number", o.GetMeta().ResourceVersion)
		}
		return n
	}
	steps := []struct {
		name    string
		write   func(cur *api.Service) (*api.Service, error)
		wantGen int64
	}{
		{"spec change bumps generation", func(cur *api.Service) (*api.Service, error) {
			cur.Spec.Image = "nginx:2"
			return s.Services().Update(ctx, cur)
		}, 2},
		{"same spec keeps generation", func(cur *api.Service) (*api.Service, error) {
			return s.Services().Update(ctx, cur)
		}, 2},
		{"label change keeps generation", func(cur *api.Service) (*api.Service, error) {
			cur.Metadata.Labels = map[string]string{"tier": "front"}
			return s.Services().Update(ctx, cur)
		}, 2},
		{"status write keeps generation", func(cur *api.Service) (*api.Service, error) {
			cur.Status = api.ServiceStatus{ObservedGeneration: 2, Phase: api.PhaseRunning, ReadyReplicas: 1}
			cur.Spec.Image = "ignored:3" // UpdateStatus must not write spec
			return s.Services().UpdateStatus(ctx, cur)
		}, 2},
		{"update does not write status", func(cur *api.Service) (*api.Service, error) {
			cur.Status = api.ServiceStatus{}
			cur.Spec.Env = []api.EnvVar{{Name: "X", Value: "y"}}
			return s.Services().Update(ctx, cur)
		}, 3},
	}
	cur := svc
	for _, st := range steps {
		before := rv(cur)
		next, err := st.write(api.Clone(cur))
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if next.Metadata.Generation != st.wantGen {
			t.Errorf("%s: generation = %d, want %d", st.name, next.Metadata.Generation, st.wantGen)
		}
		if rv(next) <= before {
			t.Errorf("%s: resourceVersion %d did not rise above %d", st.name, rv(next), before)
		}
		cur = next
	}
	final := must(s.Services().Get(ctx, api.KeyOf(svc)))(t)
	if final.Spec.Image != "nginx:2" || final.Status.Phase != api.PhaseRunning || final.Status.ObservedGeneration != 2 || final.Metadata.Labels["tier"] != "front" {
		t.Errorf("final object = spec %+v status %+v labels %v", final.Spec, final.Status, final.Metadata.Labels)
	}
}

func testOptimisticConcurrency(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	must(s.Projects().Create(ctx, Project("shop")))(t)
	v1 := must(s.Services().Create(ctx, Service("shop", "web", "nginx:1")))(t)
	a, b := api.Clone(v1), api.Clone(v1)
	a.Spec.Image = "nginx:2"
	must(s.Services().Update(ctx, a))(t)
	b.Spec.Image = "nginx:3"
	_, err := s.Services().Update(ctx, b)
	wantErr(t, err, store.ErrConflict, "update with stale resourceVersion")
	_, err = s.Services().UpdateStatus(ctx, b)
	wantErr(t, err, store.ErrConflict, "status update with stale resourceVersion")
	_, err = s.Services().Delete(ctx, api.KeyOf(b), store.DeleteOptions{ResourceVersion: b.Metadata.ResourceVersion})
	wantErr(t, err, store.ErrConflict, "delete with stale resourceVersion")
	bad := api.Clone(b)
	bad.Metadata.ResourceVersion = "not-a-number"
	_, err = s.Services().Update(ctx, bad)
	wantErr(t, err, store.ErrConflict, "update with garbage resourceVersion")
	otherUID := api.Clone(b)
	otherUID.Metadata.ResourceVersion = ""
	otherUID.Metadata.UID = "00000000-0000-0000-0000-000000000000"
	_, err = s.Services().Update(ctx, otherUID)
	wantErr(t, err, store.ErrConflict, "update with another uid")
	// No resourceVersion and no uid: an unconditional write.
	b.Metadata.ResourceVersion, b.Metadata.UID = "", ""
	got := must(s.Services().Update(ctx, b))(t)
	if got.Spec.Image != "nginx:3" {
		t.Errorf("unconditional update: image = %s", got.Spec.Image)
	}
	missing := Service("shop", "nope", "x")
	_, err = s.Services().Update(ctx, missing)
	wantErr(t, err, store.ErrNotFound, "update of a missing object")
}

// testConcurrentUpdatersOneWinner: 50 writers race with the same
// resourceVersion, round after round: exactly one wins each round, the
// others get ErrConflict, and the winner's write is what is stored.
func testConcurrentUpdatersOneWinner(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	const writers, rounds = 50, 5
	must(s.Projects().Create(ctx, Project("shop")))(t)
	cur := must(s.Services().Create(ctx, Service("shop", "web", "nginx:1")))(t)
	for round := 0; round < rounds; round++ {
		var wins, conflicts atomic.Int32
		var winner atomic.Value
		var wg sync.WaitGroup
		start := make(chan struct{})
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				mine := api.Clone(cur)
				mine.Spec.Env = []api.EnvVar{{Name: "WRITER", Value: fmt.Sprintf("%d-%d", round, w)}}
				<-start
				out, err := s.Services().Update(ctx, mine)
				switch {
				case err == nil:
					wins.Add(1)
					winner.Store(out)
				case errors.Is(err, store.ErrConflict):
					conflicts.Add(1)
				default:
					t.Errorf("round %d writer %d: %v", round, w, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if wins.Load() != 1 || conflicts.Load() != writers-1 {
			t.Fatalf("round %d: %d wins and %d conflicts, want 1 and %d", round, wins.Load(), conflicts.Load(), writers-1)
		}
		won := winner.Load().(*api.Service)
		stored := must(s.Services().Get(ctx, api.KeyOf(cur)))(t)
		if stored.Spec.Env[0].Value != won.Spec.Env[0].Value || stored.Metadata.ResourceVersion != won.Metadata.ResourceVersion {
			t.Fatalf("round %d: stored %v, but the winner wrote %v", round, stored.Spec.Env, won.Spec.Env)
		}
		cur = stored
	}
}

// testConcurrentRetryingUpdaters: 50 writers each add one env var with a
// read-modify-write loop that retries on conflict; all 50 must survive.
func testConcurrentRetryingUpdaters(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	const writers = 50
	must(s.Projects().Create(ctx, Project("shop")))(t)
	key := api.KeyOf(must(s.Services().Create(ctx, Service("shop", "web", "nginx:1")))(t))
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for attempt := 0; attempt < 1000; attempt++ {
				cur, err := s.Services().Get(ctx, key)
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				cur.Spec.Env = append(cur.Spec.Env, api.EnvVar{Name: fmt.Sprintf("W%02d", w), Value: "x"})
				_, err = s.Services().Update(ctx, cur)
				if err == nil {
					return
				}
				if !errors.Is(err, store.ErrConflict) {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
			t.Errorf("writer %d never got through", w)
		}()
	}
	wg.Wait()
	final := must(s.Services().Get(ctx, key))(t)
	if len(final.Spec.Env) != writers {
		t.Fatalf("%d env vars stored, want %d: updates were lost", len(final.Spec.Env), writers)
	}
	if final.Metadata.Generation != writers+1 {
		t.Errorf("generation = %d, want %d", final.Metadata.Generation, writers+1)
	}
}

func testTwoPhaseDelete(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	must(s.Projects().Create(ctx, Project("shop")))(t)
	svc := must(s.Services().Create(ctx, Service("shop", "web", "nginx")))(t)
	key := api.KeyOf(svc)
	marked := must(s.Services().Delete(ctx, key, store.DeleteOptions{ResourceVersion: svc.Metadata.ResourceVersion}))(t)
	if marked.Metadata.DeletionTimestamp == nil {
		t.Fatal("Delete did not set deletionTimestamp")
	}
	got := must(s.Services().Get(ctx, key))(t)
	if got.Metadata.DeletionTimestamp == nil {
		t.Fatal("a deleted object must stay readable until removed")
	}
	again := must(s.Services().Delete(ctx, key, store.DeleteOptions{}))(t)
	if !again.Metadata.DeletionTimestamp.Equal(*marked.Metadata.DeletionTimestamp) {
		t.Errorf("a second delete moved deletionTimestamp from %v to %v", marked.Metadata.DeletionTimestamp, again.Metadata.DeletionTimestamp)
	}
	// Clearing deletionTimestamp through an update is not possible.
	undo := api.Clone(got)
	undo.Metadata.DeletionTimestamp = nil
	undo.Metadata.ResourceVersion = ""
	after := must(s.Services().Update(ctx, undo))(t)
	if after.Metadata.DeletionTimestamp == nil {
		t.Error("an update cleared deletionTimestamp")
	}
	err := s.Services().Remove(ctx, key, "00000000-0000-0000-0000-000000000000")
	wantErr(t, err, store.ErrNotFound, "remove with a stale uid")
	if err := s.Services().Remove(ctx, key, svc.Metadata.UID); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	_, err = s.Services().Get(ctx, key)
	wantErr(t, err, store.ErrNotFound, "get after remove")
	err = s.Services().Remove(ctx, key, svc.Metadata.UID)
	wantErr(t, err, store.ErrNotFound, "remove twice")

	live := must(s.Services().Create(ctx, Service("shop", "web", "nginx")))(t)
	if live.Metadata.UID == svc.Metadata.UID {
		t.Error("a re-created object reused the old uid")
	}
	err = s.Services().Remove(ctx, api.KeyOf(live), live.Metadata.UID)
	wantErr(t, err, store.ErrConflict, "remove of an object not marked for deletion")
	_, err = s.Services().Delete(ctx, api.Key{Project: "shop", Name: "nope"}, store.DeleteOptions{})
	wantErr(t, err, store.ErrNotFound, "delete of a missing object")
}

func testProjectDeleteCascades(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	p := must(s.Projects().Create(ctx, Project("shop")))(t)
	must(s.Projects().Create(ctx, Project("other")))(t)
	for _, name := range []string{"web", "db"} {
		must(s.Services().Create(ctx, Service("shop", name, "nginx")))(t)
	}
	must(s.Services().Create(ctx, Service("other", "web", "nginx")))(t)
	must(s.Volumes().Create(ctx, Volume("shop", "data")))(t)
	must(s.Members().Put(ctx, store.Member{Project: "shop", UserID: "u1", Role: store.RoleOwner}))(t)
	if err := s.Events().Record(ctx, store.Event{Project: "shop", Kind: api.KindService, Name: "web", Type: store.EventNormal, Reason: "Created", Message: "m"}); err != nil {
		t.Fatal(err)
	}

	marked := must(s.Projects().Delete(ctx, api.KeyOf(p), store.DeleteOptions{PurgeVolumes: true}))(t)
	if marked.Metadata.DeletionTimestamp == nil || marked.Metadata.Annotations[api.AnnotationPurgeVolumes] != "true" {
		t.Fatalf("project delete: metadata = %+v", marked.Metadata)
	}
	svcs := must(s.Services().List(ctx, store.ListOptions{Project: "shop"}))(t)
	for _, svc := range svcs.Items {
		if svc.Metadata.DeletionTimestamp == nil {
			t.Errorf("service %s of a deleting project is not marked", svc.Metadata.Name)
		}
	}
	if other := must(s.Services().Get(ctx, api.Key{Project: "other", Name: "web"}))(t); other.Metadata.DeletionTimestamp != nil {
		t.Error("a service of another project was marked")
	}
	_, err := s.Services().Create(ctx, Service("shop", "new", "nginx"))
	wantErr(t, err, store.ErrConflict, "create in a deleting project")

	if err := s.Projects().Remove(ctx, api.KeyOf(p), p.Metadata.UID); err != nil {
		t.Fatalf("remove project: %v", err)
	}
	if left := must(s.Services().List(ctx, store.ListOptions{Project: "shop"}))(t); len(left.Items) != 0 {
		t.Errorf("%d services outlived their project", len(left.Items))
	}
	if left := must(s.Volumes().List(ctx, store.ListOptions{Project: "shop"}))(t); len(left.Items) != 0 {
		t.Errorf("%d volume rows outlived their project", len(left.Items))
	}
	if m := must(s.Members().List(ctx, "shop"))(t); len(m) != 0 {
		t.Errorf("members outlived their project: %+v", m)
	}
	if ev := must(s.Events().List(ctx, "shop", store.EventFilter{}))(t); len(ev) != 0 {
		t.Errorf("events outlived their project: %+v", ev)
	}
	if got := must(s.Services().List(ctx, store.ListOptions{}))(t); len(got.Items) != 1 {
		t.Errorf("other project's services: %d, want 1", len(got.Items))
	}
}

func testListPagination(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	for _, p := range []string{"a", "b"} {
		must(s.Projects().Create(ctx, Project(p)))(t)
		for i := 0; i < 5; i++ {
			svc := Service(p, fmt.Sprintf("svc-%d", i), "nginx")
			svc.Metadata.Labels = map[string]string{"parity": []string{"even", "odd"}[i%2]}
			if i == 0 {
				svc.Metadata.Labels["first"] = "yes"
			}
			must(s.Services().Create(ctx, svc))(t)
		}
	}
	names := func(items []*api.Service) []string {
		var out []string
		for _, it := range items {
			out = append(out, api.KeyOf(it).String())
		}
		return out
	}
	var all []string
	opts := store.ListOptions{Limit: 3}
	for page := 0; ; page++ {
		l := must(s.Services().List(ctx, opts))(t)
		if page > 10 {
			t.Fatal("pagination does not end")
		}
		if len(l.Items) > 3 {
			t.Fatalf("page of %d items, limit 3", len(l.Items))
		}
		if l.ResourceVersion == "" {
			t.Error("list has no resourceVersion")
		}
		all = append(all, names(l.Items)...)
		if l.Continue == "" {
			break
		}
		opts.Continue = l.Continue
	}
	want := []string{"a/svc-0", "a/svc-1", "a/svc-2", "a/svc-3", "a/svc-4", "b/svc-0", "b/svc-1", "b/svc-2", "b/svc-3", "b/svc-4"}
	if !slices.Equal(all, want) {
		t.Errorf("paged list = %v, want %v", all, want)
	}
	_, err := s.Services().List(ctx, store.ListOptions{Continue: "!!garbage"})
	wantErr(t, err, store.ErrInvalid, "list with a bad continue token")

	selTests := []struct {
		sel      string
		projects []string
		want     []string
	}{
		{"parity=even", []string{"a"}, []string{"a/svc-0", "a/svc-2", "a/svc-4"}},
		{"parity!=even,!first", []string{"b"}, []string{"b/svc-1", "b/svc-3"}},
		{"first", nil, []string{"a/svc-0", "b/svc-0"}},
		{"parity in (odd),first notin (no)", []string{"a"}, []string{"a/svc-1", "a/svc-3"}},
		{"", []string{}, nil},
	}
	for _, st := range selTests {
		sel, err := api.ParseSelector(st.sel)
		if err != nil {
			t.Fatal(err)
		}
		l := must(s.Services().List(ctx, store.ListOptions{Selector: sel, Projects: st.projects}))(t)
		if got := names(l.Items); !slices.Equal(got, st.want) {
			t.Errorf("selector %q projects %v: got %v, want %v", st.sel, st.projects, got, st.want)
		}
	}
	projects := must(s.Projects().List(ctx, store.ListOptions{Projects: []string{"b", "zzz"}}))(t)
	if len(projects.Items) != 1 || projects.Items[0].Metadata.Name != "b" {
		t.Errorf("projects restricted to [b zzz] = %v", projects.Items)
	}
}

func testMembers(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	must(s.Projects().Create(ctx, Project("shop")))(t)
	must(s.Projects().Create(ctx, Project("blog")))(t)
	must(s.Members().Put(ctx, store.Member{Project: "shop", UserID: "alice", Role: store.RoleOwner}))(t)
	must(s.Members().Put(ctx, store.Member{Project: "shop", UserID: "bob", Role: store.RoleViewer}))(t)
	must(s.Members().Put(ctx, store.Member{Project: "blog", UserID: "bob", Role: store.RoleEditor}))(t)
	m := must(s.Members().Put(ctx, store.Member{Project: "shop", UserID: "bob", Role: store.RoleAdmin}))(t)
	if m.Role != store.RoleAdmin || m.CreatedAt.IsZero() {
		t.Errorf("Put returned %+v", m)
	}
	got := must(s.Members().Get(ctx, "shop", "bob"))(t)
	if got.Role != store.RoleAdmin {
		t.Errorf("role after change = %s", got.Role)
	}
	_, err := s.Members().Get(ctx, "shop", "carol")
	wantErr(t, err, store.ErrNotFound, "get non-member")
	list := must(s.Members().List(ctx, "shop"))(t)
	if len(list) != 2 || list[0].UserID != "alice" || list[1].UserID != "bob" {
		t.Errorf("List = %+v", list)
	}
	of := must(s.Members().ProjectsOf(ctx, "bob"))(t)
	if len(of) != 2 || of[0].Project != "blog" || of[1].Project != "shop" {
		t.Errorf("ProjectsOf(bob) = %+v", of)
	}
	_, err = s.Members().Put(ctx, store.Member{Project: "shop", UserID: "x", Role: "god"})
	wantErr(t, err, store.ErrInvalid, "put with a bad role")
	_, err = s.Members().Put(ctx, store.Member{Project: "missing", UserID: "x", Role: store.RoleViewer})
	wantErr(t, err, store.ErrNotFound, "put in a missing project")
	if err := s.Members().Delete(ctx, "shop", "bob"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.Members().Delete(ctx, "shop", "bob"), store.ErrNotFound, "delete twice")
}

func testEvents(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	must(s.Projects().Create(ctx, Project("shop")))(t)
	ev := store.Event{Project: "shop", Kind: api.KindService, Name: "web", Type: store.EventWarning, Reason: "PullFailed", Message: "manifest unknown"}
	for i := 0; i < 3; i++ {
		if err := s.Events().Record(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	other := ev
	other.Type, other.Reason, other.Message = store.EventNormal, "Started", "replica 0 started"
	if err := s.Events().Record(ctx, other); err != nil {
		t.Fatal(err)
	}
	vol := store.Event{Project: "shop", Kind: api.KindVolume, Name: "data", Type: store.EventNormal, Reason: "Created", Message: "volume created"}
	if err := s.Events().Record(ctx, vol); err != nil {
		t.Fatal(err)
	}
	list := must(s.Events().List(ctx, "shop", store.EventFilter{Kind: api.KindService, Name: "web"}))(t)
	if len(list) != 2 {
		t.Fatalf("events of web = %+v, want 2", list)
	}
	var pull store.Event
	for _, e := range list {
		if e.Reason == "PullFailed" {
			pull = e
		}
	}
	if pull.Count != 3 || pull.LastTimestamp.Before(pull.FirstTimestamp) || pull.Type != store.EventWarning {
		t.Errorf("repeated event = %+v, want count 3", pull)
	}
	if all := must(s.Events().List(ctx, "shop", store.EventFilter{}))(t); len(all) != 3 {
		t.Errorf("all events = %d, want 3", len(all))
	}
	if one := must(s.Events().List(ctx, "shop", store.EventFilter{Limit: 1}))(t); len(one) != 1 {
		t.Errorf("limit 1 gave %d", len(one))
	}
	wantErr(t, s.Events().Record(ctx, store.Event{Project: "shop", Kind: api.KindService, Name: "w", Type: "Bad", Reason: "r"}), store.ErrInvalid, "event with a bad type")
}

func testTransactions(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	boom := errors.New("boom")
	err := s.InTx(ctx, func(r store.Repo) error {
		if _, err := r.Projects().Create(ctx, Project("shop")); err != nil {
			return err
		}
		if _, err := r.Services().Create(ctx, Service("shop", "web", "nginx")); err != nil {
			return err
		}
		return boom
	})
	wantErr(t, err, boom, "InTx returns fn's error")
	_, err = s.Projects().Get(ctx, api.Key{Name: "shop"})
	wantErr(t, err, store.ErrNotFound, "project written in a rolled-back transaction")

	err = s.InTx(ctx, func(r store.Repo) error {
		if _, err := r.Projects().Create(ctx, Project("shop")); err != nil {
			return err
		}
		_, err := r.Services().Create(ctx, Service("shop", "web", "nginx"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	must(s.Services().Get(ctx, api.Key{Project: "shop", Name: "web"}))(t)
}

// Next returns the next change, failing the test after a timeout.
func Next(t *testing.T, ch <-chan store.Change, timeout time.Duration) store.Change {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return c
	case <-time.After(timeout):
		t.Fatalf("no change within %v", timeout)
	}
	panic("unreachable")
}

func testWatch(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	ch, err := s.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := Next(t, ch, 10*time.Second); c.Type != store.ChangeResync {
		t.Fatalf("first change = %+v, want a resync marker", c)
	}
	p := must(s.Projects().Create(ctx, Project("shop")))(t)
	svc := must(s.Services().Create(ctx, Service("shop", "web", "nginx:1")))(t)
	svc.Spec.Image = "nginx:2"
	svc = must(s.Services().Update(ctx, svc))(t)
	svc.Status.Phase = api.PhaseRunning
	svc = must(s.Services().UpdateStatus(ctx, svc))(t)
	must(s.Services().Delete(ctx, api.KeyOf(svc), store.DeleteOptions{}))(t)
	if err := s.Services().Remove(ctx, api.KeyOf(svc), svc.Metadata.UID); err != nil {
		t.Fatal(err)
	}
	type want struct {
		typ                    store.ChangeType
		kind                   api.Kind
		key                    string
		spec, status, deleting bool
	}
	wants := []want{
		{store.ChangeUpsert, api.KindProject, "shop", true, false, false},
		{store.ChangeUpsert, api.KindService, "shop/web", true, false, false},
		{store.ChangeUpsert, api.KindService, "shop/web", true, false, false},
		{store.ChangeUpsert, api.KindService, "shop/web", false, true, false},
		{store.ChangeUpsert, api.KindService, "shop/web", false, false, true},
		{store.ChangeRemoved, api.KindService, "shop/web", false, false, false},
	}
	var lastRV int64
	for i, w := range wants {
		c := Next(t, ch, 10*time.Second)
		got := want{c.Type, c.Kind, c.Key.String(), c.SpecChanged, c.StatusChanged, c.Deleting}
		if got != w {
			t.Fatalf("change %d = %+v, want %+v", i, got, w)
		}
		if c.ResourceVersion <= lastRV && c.Type != store.ChangeRemoved {
			t.Errorf("change %d: resourceVersion %d after %d", i, c.ResourceVersion, lastRV)
		}
		lastRV = c.ResourceVersion
		if c.Kind == api.KindProject && c.UID != p.Metadata.UID {
			t.Errorf("change %d: uid %s, want %s", i, c.UID, p.Metadata.UID)
		}
		if c.CommittedAt.IsZero() || time.Since(c.CommittedAt) > time.Minute {
			t.Errorf("change %d: CommittedAt = %v", i, c.CommittedAt)
		}
	}

	// A second watcher gets its own resync marker and the same changes.
	ch2, err := s.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := Next(t, ch2, 10*time.Second); c.Type != store.ChangeResync {
		t.Fatalf("second watcher's first change = %+v", c)
	}
	must(s.Volumes().Create(ctx, Volume("shop", "data")))(t)
	for _, c := range []<-chan store.Change{ch, ch2} {
		if got := Next(t, c, 10*time.Second); got.Kind != api.KindVolume || got.Key.String() != "shop/data" {
			t.Errorf("volume change = %+v", got)
		}
	}

	// Ending the context closes the channel.
	wctx, cancel := context.WithCancel(ctx)
	ch3, _ := s.Watch(wctx)
	Next(t, ch3, 10*time.Second)
	cancel()
	select {
	case _, ok := <-ch3:
		for ok {
			_, ok = <-ch3
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch channel not closed after its context ended")
	}
}

// testWatchSlowConsumer: a watcher that reads nothing must not hold up
// writers, and when it reads again it gets a resync marker, not a stale
// backlog of unbounded size.
func testWatchSlowConsumer(t *testing.T, s store.Store) {
	// Thousands of writes: generous on a loaded machine under -race.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ch, err := s.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := Next(t, ch, 10*time.Second); c.Type != store.ChangeResync {
		t.Fatalf("first change = %+v", c)
	}
	// A second, attentive watcher tells when the feed has delivered all.
	sentinel, err := s.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	must(s.Projects().Create(ctx, Project("shop")))(t)
	svc := must(s.Services().Create(ctx, Service("shop", "web", "nginx")))(t)
	// Far more writes than any watch queue holds, none of them read.
	const writes = store.DefaultWatchQueue + 500
	start := time.Now()
	err = s.InTx(ctx, func(r store.Repo) error {
		for i := 0; i < writes; i++ {
			svc.Status.ReadyReplicas = int32(i)
			svc.Metadata.ResourceVersion = ""
			if _, err := r.Services().UpdateStatus(ctx, svc); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d writes with a stalled watcher took %v", writes, time.Since(start))
	must(s.Projects().Create(ctx, Project("last")))(t)
	for {
		if c := Next(t, sentinel, 30*time.Second); c.Kind == api.KindProject && c.Key.Name == "last" {
			break
		}
	}
	// Drain: a resync marker must arrive, and well before `writes` items.
	deadline := time.After(30 * time.Second)
	for n := 0; ; n++ {
		select {
		case c := <-ch:
			if c.Type == store.ChangeResync {
				if n >= writes {
					t.Errorf("resync after %d items", n)
				}
				return
			}
		case <-deadline:
			t.Fatalf("no resync marker after %d items", n)
		}
	}
}

func testTokens(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	must(s.Projects().Create(ctx, Project("shop")))(t)
	hash := func(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	a := must(s.Tokens().Create(ctx, store.APIToken{UserID: "alice", Name: "ci", Prefix: "pnx_aaaa", Hash: hash("a"), Project: "shop", ExpiresAt: &exp}))(t)
	if a.ID == "" || a.CreatedAt.IsZero() || a.Project != "shop" || a.ExpiresAt == nil || !a.ExpiresAt.Equal(exp) {
		t.Errorf("created token = %+v", a)
	}
	must(s.Tokens().Create(ctx, store.APIToken{UserID: "alice", Name: "laptop", Prefix: "pnx_bbbb", Hash: hash("b")}))(t)
	must(s.Tokens().Create(ctx, store.APIToken{UserID: "bob", Name: "x", Prefix: "pnx_cccc", Hash: hash("c")}))(t)
	_, err := s.Tokens().Create(ctx, store.APIToken{UserID: "bob", Name: "dup", Prefix: "pnx_aaaa", Hash: hash("a")})
	wantErr(t, err, store.ErrAlreadyExists, "token with a hash in use")

	got := must(s.Tokens().GetByHash(ctx, hash("a")))(t)
	if got.ID != a.ID || got.UserID != "alice" || !bytes.Equal(got.Hash, hash("a")) {
		t.Errorf("GetByHash = %+v", got)
	}
	_, err = s.Tokens().GetByHash(ctx, hash("nope"))
	wantErr(t, err, store.ErrNotFound, "unknown hash")
	if list := must(s.Tokens().List(ctx, "alice"))(t); len(list) != 2 {
		t.Errorf("alice's tokens = %+v", list)
	}
	used := time.Now().UTC().Truncate(time.Microsecond)
	if err := s.Tokens().Touch(ctx, a.ID, used); err != nil {
		t.Fatal(err)
	}
	if got := must(s.Tokens().GetByHash(ctx, hash("a")))(t); got.LastUsedAt == nil || !got.LastUsedAt.Equal(used) {
		t.Errorf("LastUsedAt = %v, want %v", got.LastUsedAt, used)
	}
	wantErr(t, s.Tokens().Delete(ctx, "bob", a.ID), store.ErrNotFound, "revoke another user's token")
	if err := s.Tokens().Delete(ctx, "alice", a.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.Tokens().GetByHash(ctx, hash("a"))
	wantErr(t, err, store.ErrNotFound, "revoked token")
	// A project-scoped token goes with its project.
	scoped := must(s.Tokens().Create(ctx, store.APIToken{UserID: "carol", Name: "p", Prefix: "pnx_dddd", Hash: hash("d"), Project: "shop"}))(t)
	p := must(s.Projects().Delete(ctx, api.Key{Name: "shop"}, store.DeleteOptions{}))(t)
	if err := s.Projects().Remove(ctx, api.Key{Name: "shop"}, p.Metadata.UID); err != nil {
		t.Fatal(err)
	}
	_, err = s.Tokens().GetByHash(ctx, scoped.Hash)
	wantErr(t, err, store.ErrNotFound, "token of a removed project")
}

func testRegistryCredentials(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	must(s.Projects().Create(ctx, Project("shop")))(t)
	must(s.Projects().Create(ctx, Project("blog")))(t)
	put := must(s.RegistryCredentials().Put(ctx, store.RegistryCredential{Project: "shop", Registry: "registry.example.com", Username: "u", Password: "p1"}))(t)
	if put.Password != "" || put.CreatedAt.IsZero() {
		t.Errorf("Put returned %+v; the password must not come back", put)
	}
	must(s.RegistryCredentials().Put(ctx, store.RegistryCredential{Project: "shop", Registry: "registry.example.com", Username: "u2", Password: "p2"}))(t)
	got := must(s.RegistryCredentials().Get(ctx, "shop", "registry.example.com"))(t)
	if got.Username != "u2" || got.Password != "p2" {
		t.Errorf("Get after replace = %+v", got)
	}
	_, err := s.RegistryCredentials().Get(ctx, "blog", "registry.example.com")
	wantErr(t, err, store.ErrNotFound, "another project's credentials")
	list := must(s.RegistryCredentials().List(ctx, "shop"))(t)
	if len(list) != 1 || list[0].Password != "" || list[0].Username != "u2" {
		t.Errorf("List = %+v", list)
	}
	_, err = s.RegistryCredentials().Put(ctx, store.RegistryCredential{Project: "missing", Registry: "r", Username: "u", Password: "p"})
	wantErr(t, err, store.ErrNotFound, "credentials of a missing project")
	if err := s.RegistryCredentials().Delete(ctx, "shop", "registry.example.com"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.RegistryCredentials().Delete(ctx, "shop", "registry.example.com"), store.ErrNotFound, "delete twice")
}

func testInstallationID(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	a := must(s.InstallationID(ctx))(t)
	b := must(s.InstallationID(ctx))(t)
	if len(a) < 16 || a != b {
		t.Errorf("InstallationID = %q then %q, want one stable ID", a, b)
	}
}
