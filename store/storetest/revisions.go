package storetest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/store"
)

// Revision returns a revision with the template hash given and the rest
// filled in, as the controller records one.
func Revision(hash string) api.Revision {
	return api.Revision{
		TemplateHash:   hash,
		Spec:           api.ServiceSpec{Image: "nginx:" + hash, Env: []api.EnvVar{{Name: "A", Value: hash}}},
		ImageID:        "sha256:" + hash,
		ImageDigest:    "nginx@sha256:" + hash,
		SecretVersions: map[string]int64{"db": 3},
		Cause:          api.RevisionCause{By: "alice", Fields: []string{"image"}, Message: "deploy " + hash},
	}
}

// A uid no row has.
const missingUID = "00000000-0000-4000-8000-000000000000"

func revisionNumbers(revs []api.Revision) []int64 {
	var out []int64
	for _, r := range revs {
		out = append(out, r.Number)
	}
	return out
}

func wantNumbers(t *testing.T, s store.Store, key api.Key, want ...int64) {
	t.Helper()
	if got := revisionNumbers(must(s.Revisions().List(ctxFor(t), key))(t)); !slices.Equal(got, want) {
		t.Errorf("revisions of %s = %v, want %v", key, got, want)
	}
}

// testRevisionsRecord: numbering, deduplication by template hash and
// pruning, step by step.
func testRevisionsRecord(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	must(s.Projects().Create(ctx, Project("shop")))(t)
	svc := must(s.Services().Create(ctx, Service("shop", "web", "nginx")))(t)
	key := api.KeyOf(svc)
	steps := []struct {
		hash        string
		keep        int
		wantNumber  int64
		wantCreated bool
		wantList    []int64
	}{
		{"a", 10, 1, true, []int64{1}},
		{"a", 10, 1, false, []int64{1}},
		{"b", 10, 2, true, []int64{2, 1}},
		// Back to an older template: a new revision all the same.
		{"a", 10, 3, true, []int64{3, 2, 1}},
		{"c", 2, 4, true, []int64{4, 3}},
		{"d", 0, 5, true, []int64{5}}, // keep at least 1
		{"d", 0, 5, false, []int64{5}},
		{"e", 3, 6, true, []int64{6, 5}},
		{"e", 1, 6, false, []int64{6}}, // a smaller keep prunes even without a new revision
	}
	for i, st := range steps {
		before := time.Now().Add(-time.Minute) // clocks of database and test may differ a little
		rev := Revision(st.hash)
		rev.Project, rev.Service = "wrong", "wrong" // taken from the service row
		out, created, err := s.Revisions().Record(ctx, svc.Metadata.UID, rev, st.keep)
		if err != nil {
			t.Fatalf("step %d (%s): %v", i, st.hash, err)
		}
		if out.Number != st.wantNumber || created != st.wantCreated || out.TemplateHash != st.hash {
			t.Errorf("step %d (%s): number %d created %v hash %s, want %d %v", i, st.hash, out.Number, created, out.TemplateHash, st.wantNumber, st.wantCreated)
		}
		if out.Project != "shop" || out.Service != "web" {
			t.Errorf("step %d: service %s/%s, want shop/web", i, out.Project, out.Service)
		}
		if created && (out.CreatedAt.Before(before) || out.CreatedAt.After(time.Now().Add(time.Minute))) {
			t.Errorf("step %d: CreatedAt = %v, want about now", i, out.CreatedAt)
		}
		wantNumbers(t, s, key, st.wantList...)
	}

	// Everything comes back as recorded.
	want := Revision("e")
	got := must(s.Revisions().Get(ctx, key, 6))(t)
	if got.Spec.Image != want.Spec.Image || !slices.Equal(got.Spec.Env, want.Spec.Env) || got.ImageID != want.ImageID ||
		got.ImageDigest != want.ImageDigest || !maps.Equal(got.SecretVersions, want.SecretVersions) ||
		got.Cause.By != want.Cause.By || !slices.Equal(got.Cause.Fields, want.Cause.Fields) || got.Cause.Message != want.Cause.Message ||
		got.ReadyAt != nil || got.CreatedAt.IsZero() {
		t.Errorf("Get = %+v, want %+v", got, want)
	}
	if latest := must(s.Revisions().Latest(ctx, key))(t); latest.Number != 6 || !latest.CreatedAt.Equal(got.CreatedAt) {
		t.Errorf("Latest = %d created %v, want 6 created %v", latest.Number, latest.CreatedAt, got.CreatedAt)
	}

	// A time the caller sets is kept; no secrets is nil.
	at := time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)
	rev := Revision("f")
	rev.CreatedAt, rev.SecretVersions = at, nil
	out, _ := must2(s.Revisions().Record(ctx, svc.Metadata.UID, rev, 10))(t)
	if !out.CreatedAt.Equal(at) || out.SecretVersions != nil {
		t.Errorf("CreatedAt = %v, SecretVersions = %v; want %v and nil", out.CreatedAt, out.SecretVersions, at)
	}
	if got := must(s.Revisions().Get(ctx, key, out.Number))(t); !got.CreatedAt.Equal(at) {
		t.Errorf("stored CreatedAt = %v, want %v", got.CreatedAt, at)
	}

	// Each service numbers its own.
	other := must(s.Services().Create(ctx, Service("shop", "api", "nginx")))(t)
	if out, _ := must2(s.Revisions().Record(ctx, other.Metadata.UID, Revision("a"), 10))(t); out.Number != 1 {
		t.Errorf("first revision of another service = %d, want 1", out.Number)
	}
	wantNumbers(t, s, key, 7, 6)
	wantNumbers(t, s, api.KeyOf(other), 1)
}

// must2(f())(t) is must for functions with two results.
func must2[A, B any](a A, b B, err error) func(t *testing.T) (A, B) {
	return func(t *testing.T) (A, B) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	}
}

// testRevisionsMissing: what is not there is ErrNotFound (List: empty).
func testRevisionsMissing(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	must(s.Projects().Create(ctx, Project("shop")))(t)
	svc := must(s.Services().Create(ctx, Service("shop", "web", "nginx")))(t)
	key := api.KeyOf(svc)
	_, err := s.Revisions().Latest(ctx, key)
	wantErr(t, err, store.ErrNotFound, "latest of a service without revisions")
	must2(s.Revisions().Record(ctx, svc.Metadata.UID, Revision("a"), 10))(t)

	missing := api.Key{Project: "shop", Name: "nope"}
	tests := []struct {
		name string
		err  error
	}{
		{"record for a uid no row has", errOf2(s.Revisions().Record(ctx, missingUID, Revision("a"), 10))},
		{"record for a malformed uid", errOf2(s.Revisions().Record(ctx, "nope", Revision("a"), 10))},
		{"get of a missing number", errOf(s.Revisions().Get(ctx, key, 2))},
		{"get of a missing service", errOf(s.Revisions().Get(ctx, missing, 1))},
		{"get of a service of another project", errOf(s.Revisions().Get(ctx, api.Key{Project: "other", Name: "web"}, 1))},
		{"latest of a missing service", errOf(s.Revisions().Latest(ctx, missing))},
		{"mark ready a missing number", s.Revisions().MarkReady(ctx, key, 2, time.Now())},
		{"mark ready of a missing service", s.Revisions().MarkReady(ctx, missing, 1, time.Now())},
	}
	for _, tt := range tests {
		wantErr(t, tt.err, store.ErrNotFound, tt.name)
	}
	if list := must(s.Revisions().List(ctx, missing))(t); len(list) != 0 {
		t.Errorf("revisions of a missing service = %v", list)
	}
	wantNumbers(t, s, key, 1)
}

// errOf and errOf2 keep only the error of a call, to collect errors in a
// table.
func errOf[T any](_ T, err error) error          { return err }
func errOf2[A, B any](_ A, _ B, err error) error { return err }

// testRevisionsMarkReady: ReadyAt is set once; a later call keeps it.
func testRevisionsMarkReady(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	must(s.Projects().Create(ctx, Project("shop")))(t)
	svc := must(s.Services().Create(ctx, Service("shop", "web", "nginx")))(t)
	key := api.KeyOf(svc)
	for _, h := range []string{"a", "b"} {
		must2(s.Revisions().Record(ctx, svc.Metadata.UID, Revision(h), 10))(t)
	}
	first := time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC)
	for i, at := range []time.Time{first, first.Add(time.Hour)} {
		if err := s.Revisions().MarkReady(ctx, key, 1, at); err != nil {
			t.Fatalf("mark ready %d: %v", i, err)
		}
		if got := must(s.Revisions().Get(ctx, key, 1))(t); got.ReadyAt == nil || !got.ReadyAt.Equal(first) {
			t.Errorf("after mark %d: ReadyAt = %v, want %v", i, got.ReadyAt, first)
		}
	}
	if got := must(s.Revisions().Get(ctx, key, 2))(t); got.ReadyAt != nil {
		t.Errorf("revision 2 is ready at %v; only 1 was marked", got.ReadyAt)
	}
	// A zero time means now.
	before := time.Now().Add(-time.Minute)
	if err := s.Revisions().MarkReady(ctx, key, 2, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got := must(s.Revisions().Get(ctx, key, 2))(t); got.ReadyAt == nil || got.ReadyAt.Before(before) {
		t.Errorf("marked with a zero time: ReadyAt = %v, want about now", got.ReadyAt)
	}
	// The mark is visible through List and Latest too, and a recorded
	// duplicate keeps it.
	if list := must(s.Revisions().List(ctx, key))(t); len(list) != 2 || list[1].ReadyAt == nil || !list[1].ReadyAt.Equal(first) {
		t.Errorf("List = %+v", list)
	}
	if out, created := must2(s.Revisions().Record(ctx, svc.Metadata.UID, Revision("b"), 10))(t); created || out.ReadyAt == nil {
		t.Errorf("duplicate of the ready newest: created %v ReadyAt %v", created, out.ReadyAt)
	}
}

// testRevisionsGoWithTheServiceRow: removing a service (or its project)
// removes its revisions; a new service of the same name starts afresh.
func testRevisionsGoWithTheServiceRow(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	p := must(s.Projects().Create(ctx, Project("shop")))(t)
	svc := must(s.Services().Create(ctx, Service("shop", "web", "nginx")))(t)
	key := api.KeyOf(svc)
	for _, h := range []string{"a", "b", "c"} {
		must2(s.Revisions().Record(ctx, svc.Metadata.UID, Revision(h), 10))(t)
	}
	// Marked for deletion is still there: the controller may still record.
	must(s.Services().Delete(ctx, key, store.DeleteOptions{}))(t)
	wantNumbers(t, s, key, 3, 2, 1)
	if err := s.Services().Remove(ctx, key, svc.Metadata.UID); err != nil {
		t.Fatal(err)
	}
	wantNumbers(t, s, key)
	_, err := s.Revisions().Latest(ctx, key)
	wantErr(t, err, store.ErrNotFound, "latest of a removed service")
	_, _, err = s.Revisions().Record(ctx, svc.Metadata.UID, Revision("d"), 10)
	wantErr(t, err, store.ErrNotFound, "record for a removed service row")

	again := must(s.Services().Create(ctx, Service("shop", "web", "nginx")))(t)
	out, created := must2(s.Revisions().Record(ctx, again.Metadata.UID, Revision("c"), 10))(t)
	if out.Number != 1 || !created {
		t.Errorf("first revision of the re-created service = %d (created %v), want a new revision 1", out.Number, created)
	}
	wantNumbers(t, s, key, 1)

	must(s.Projects().Delete(ctx, api.KeyOf(p), store.DeleteOptions{}))(t)
	if err := s.Projects().Remove(ctx, api.KeyOf(p), p.Metadata.UID); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.Revisions().Record(ctx, again.Metadata.UID, Revision("d"), 10)
	wantErr(t, err, store.ErrNotFound, "record for a service of a removed project")
	must(s.Projects().Create(ctx, Project("shop")))(t)
	must(s.Services().Create(ctx, Service("shop", "web", "nginx")))(t)
	wantNumbers(t, s, key)
}

// testRevisionsInTx: revisions are part of the transaction they are
// recorded in.
func testRevisionsInTx(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	must(s.Projects().Create(ctx, Project("shop")))(t)
	boom := errors.New("boom")
	err := s.InTx(ctx, func(r store.Repo) error {
		svc, err := r.Services().Create(ctx, Service("shop", "gone", "nginx"))
		if err != nil {
			return err
		}
		if _, _, err := r.Revisions().Record(ctx, svc.Metadata.UID, Revision("a"), 10); err != nil {
			return err
		}
		return boom
	})
	wantErr(t, err, boom, "InTx returns fn's error")

	var svc *api.Service
	err = s.InTx(ctx, func(r store.Repo) error {
		var err error
		if svc, err = r.Services().Create(ctx, Service("shop", "web", "nginx")); err != nil {
			return err
		}
		for _, h := range []string{"a", "b"} {
			if _, _, err := r.Revisions().Record(ctx, svc.Metadata.UID, Revision(h), 10); err != nil {
				return err
			}
		}
		// A failed call inside leaves the transaction usable.
		if _, _, err := r.Revisions().Record(ctx, missingUID, Revision("x"), 10); err == nil {
			return errors.New("record for a missing uid succeeded")
		}
		if err := r.Revisions().MarkReady(ctx, api.KeyOf(svc), 1, time.Now()); err != nil {
			return err
		}
		// The transaction reads its own writes.
		if latest, err := r.Revisions().Latest(ctx, api.KeyOf(svc)); err != nil || latest.Number != 2 {
			return fmt.Errorf("latest inside the transaction = %d, %v", latest.Number, err)
		}
		list, err := r.Revisions().List(ctx, api.KeyOf(svc))
		if err != nil || len(list) != 2 || list[1].ReadyAt == nil {
			return fmt.Errorf("list inside the transaction = %+v, %v", list, err)
		}
		_, err = r.Revisions().Get(ctx, api.KeyOf(svc), 1)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	wantNumbers(t, s, api.KeyOf(svc), 2, 1)
	wantNumbers(t, s, api.Key{Project: "shop", Name: "gone"})
}

// testRevisionsConcurrentRecord: racing recorders never take a number
// twice, and one template is recorded once.
func testRevisionsConcurrentRecord(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	const recorders = 8
	must(s.Projects().Create(ctx, Project("shop")))(t)
	svc := must(s.Services().Create(ctx, Service("shop", "web", "nginx")))(t)
	race := func(hash func(i int) string, wantCreated int) []api.Revision {
		t.Helper()
		out := make([]api.Revision, recorders)
		var created int
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range recorders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				rev, c, err := s.Revisions().Record(ctx, svc.Metadata.UID, Revision(hash(i)), 100)
				if err != nil {
					t.Errorf("recorder %d: %v", i, err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				out[i] = rev
				if c {
					created++
				}
			}()
		}
		close(start)
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		if created != wantCreated {
			t.Errorf("%d revisions created, want %d", created, wantCreated)
		}
		return out
	}

	distinct := race(func(i int) string { return fmt.Sprintf("h%d", i) }, recorders)
	numbers := revisionNumbers(distinct)
	slices.Sort(numbers)
	if !slices.Equal(numbers, []int64{1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Errorf("numbers of %d racing records = %v, want 1…8", recorders, numbers)
	}
	for _, rev := range distinct {
		if got := must(s.Revisions().Get(ctx, api.KeyOf(svc), rev.Number))(t); got.TemplateHash != rev.TemplateHash {
			t.Errorf("revision %d holds %s, but %s was recorded as it", rev.Number, got.TemplateHash, rev.TemplateHash)
		}
	}
	wantNumbers(t, s, api.KeyOf(svc), 8, 7, 6, 5, 4, 3, 2, 1)

	same := race(func(int) string { return "same" }, 1)
	for _, rev := range same {
		if rev.Number != 9 {
			t.Errorf("racing records of one template: revision %d, want all 9", rev.Number)
		}
	}
	wantNumbers(t, s, api.KeyOf(svc), 9, 8, 7, 6, 5, 4, 3, 2, 1)
}
