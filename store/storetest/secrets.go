package storetest

import (
	"bytes"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/store"
)

// Secret returns a defaulted secret as the API stores it: keys, version
// and sealed data, no plaintext. The sealed bytes are made up; the store
// never opens them.
func Secret(project, name string) *api.Secret {
	s := &api.Secret{Metadata: api.ObjectMeta{Project: project, Name: name}, Spec: api.SecretSpec{
		Keys:    []string{"password", "user"},
		Version: 1,
		Sealed: &api.Sealed{KeyID: "k1", DataKey: []byte{0, 1, 2, 0xff}, Data: []byte("sealed\x00bytes"),
			Digests: map[string]string{"password": "d1", "user": "d2"}},
	}}
	s.Default()
	return s
}

func secretNames(items []*api.Secret) []string {
	var out []string
	for _, it := range items {
		out = append(out, api.KeyOf(it).String())
	}
	return out
}

// testSecrets: a secret is a project's resource like a volume, and only
// ever stored sealed.
func testSecrets(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	p := must(s.Projects().Create(ctx, Project("shop")))(t)
	must(s.Projects().Create(ctx, Project("other")))(t)

	in := Secret("shop", "db")
	in.Metadata.Labels = map[string]string{"tier": "data"}
	created := must(s.Secrets().Create(ctx, in))(t)
	if m := created.Metadata; m.UID == "" || m.Generation != 1 || m.ResourceVersion == "" || m.Project != "shop" {
		t.Errorf("server-set metadata not set: %+v", m)
	}
	got := must(s.Secrets().Get(ctx, api.KeyOf(in)))(t)
	if got.Kind != api.KindSecret || got.Metadata.Labels["tier"] != "data" || got.Spec.Version != 1 ||
		!slices.Equal(got.Spec.Keys, in.Spec.Keys) || got.Spec.Sealed == nil {
		t.Fatalf("Get = %+v", got)
	}
	if sl := got.Spec.Sealed; sl.KeyID != "k1" || !bytes.Equal(sl.DataKey, in.Spec.Sealed.DataKey) ||
		!bytes.Equal(sl.Data, in.Spec.Sealed.Data) || !maps.Equal(sl.Digests, in.Spec.Sealed.Digests) {
		t.Errorf("sealed data did not round-trip: %+v", sl)
	}
	// An empty (not nil) data map holds no value.
	empty := Secret("shop", "empty")
	empty.Spec.Data = map[string]string{}
	must(s.Secrets().Create(ctx, empty))(t)

	_, err := s.Secrets().Create(ctx, Secret("shop", "db"))
	wantErr(t, err, store.ErrAlreadyExists, "duplicate secret")
	_, err = s.Secrets().Create(ctx, Secret("missing", "db"))
	wantErr(t, err, store.ErrNotFound, "secret in a missing project")

	// Version 2: a spec change.
	next := api.Clone(got)
	next.Spec.Version = 2
	next.Spec.Sealed.Data = []byte("other sealed bytes")
	updated := must(s.Secrets().Update(ctx, next))(t)
	if updated.Metadata.Generation != 2 || updated.Spec.Version != 2 {
		t.Errorf("update: generation %d version %d, want 2 and 2", updated.Metadata.Generation, updated.Spec.Version)
	}
	_, err = s.Secrets().Update(ctx, next)
	wantErr(t, err, store.ErrConflict, "update with a stale resourceVersion")
	// Nothing to observe, but the generic status write works and keeps the
	// generation.
	st := must(s.Secrets().UpdateStatus(ctx, updated))(t)
	if st.Metadata.Generation != 2 {
		t.Errorf("status write: generation %d, want 2", st.Metadata.Generation)
	}

	must(s.Secrets().Create(ctx, Secret("other", "db")))(t)
	must(s.Secrets().Create(ctx, Secret("shop", "api")))(t)
	if l := must(s.Secrets().List(ctx, store.ListOptions{Project: "shop"}))(t); !slices.Equal(secretNames(l.Items),
		[]string{"shop/api", "shop/db", "shop/empty"}) || l.ResourceVersion == "" {
		t.Errorf("secrets of shop = %v (resourceVersion %q)", secretNames(l.Items), l.ResourceVersion)
	}
	sel, _ := api.ParseSelector("tier=data")
	if l := must(s.Secrets().List(ctx, store.ListOptions{Selector: sel, Limit: 1}))(t); !slices.Equal(secretNames(l.Items), []string{"shop/db"}) {
		t.Errorf("secrets with tier=data = %v", secretNames(l.Items))
	}
	if l := must(s.Secrets().List(ctx, store.ListOptions{Projects: []string{"other"}}))(t); !slices.Equal(secretNames(l.Items), []string{"other/db"}) {
		t.Errorf("secrets restricted to [other] = %v", secretNames(l.Items))
	}

	// Two-phase delete, as every kind.
	gone := must(s.Secrets().Get(ctx, api.Key{Project: "shop", Name: "api"}))(t)
	marked := must(s.Secrets().Delete(ctx, api.KeyOf(gone), store.DeleteOptions{}))(t)
	if marked.Metadata.DeletionTimestamp == nil {
		t.Error("Delete did not mark the secret")
	}
	if err := s.Secrets().Remove(ctx, api.KeyOf(gone), gone.Metadata.UID); err != nil {
		t.Fatal(err)
	}
	_, err = s.Secrets().Get(ctx, api.KeyOf(gone))
	wantErr(t, err, store.ErrNotFound, "get after remove")

	// In a transaction, as the API writes a secret with its event.
	err = s.InTx(ctx, func(r store.Repo) error {
		_, err := r.Secrets().Create(ctx, Secret("shop", "tx"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	must(s.Secrets().Get(ctx, api.Key{Project: "shop", Name: "tx"}))(t)

	// A project's secrets go with its row; another project's stay.
	must(s.Projects().Delete(ctx, api.KeyOf(p), store.DeleteOptions{}))(t)
	_, err = s.Secrets().Create(ctx, Secret("shop", "late"))
	wantErr(t, err, store.ErrConflict, "create in a deleting project")
	if err := s.Projects().Remove(ctx, api.KeyOf(p), p.Metadata.UID); err != nil {
		t.Fatal(err)
	}
	if l := must(s.Secrets().List(ctx, store.ListOptions{}))(t); !slices.Equal(secretNames(l.Items), []string{"other/db"}) {
		t.Errorf("secrets after removing shop = %v, want only other/db", secretNames(l.Items))
	}
}

// testSecretsRefusePlaintext: whatever path a bug takes, values in
// spec.data never reach the database.
func testSecretsRefusePlaintext(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	must(s.Projects().Create(ctx, Project("shop")))(t)
	plain := Secret("shop", "db")
	plain.Spec.Data = map[string]string{"password": "hunter2"}
	_, err := s.Secrets().Create(ctx, plain)
	wantErr(t, err, store.ErrInvalid, "create with plaintext")
	_, err = s.Secrets().Get(ctx, api.KeyOf(plain))
	wantErr(t, err, store.ErrNotFound, "get after a refused create")

	stored := must(s.Secrets().Create(ctx, Secret("shop", "db")))(t)
	tests := []struct {
		name  string
		write func(sec *api.Secret) error
	}{
		{"update", func(sec *api.Secret) error { _, err := s.Secrets().Update(ctx, sec); return err }},
		{"update in a transaction", func(sec *api.Secret) error {
			return s.InTx(ctx, func(r store.Repo) error { _, err := r.Secrets().Update(ctx, sec); return err })
		}},
		{"create in a transaction", func(sec *api.Secret) error {
			sec = api.Clone(sec)
			sec.Metadata.Name = "tx"
			return s.InTx(ctx, func(r store.Repo) error { _, err := r.Secrets().Create(ctx, sec); return err })
		}},
	}
	for _, tt := range tests {
		sec := api.Clone(stored)
		sec.Spec.Data = map[string]string{"password": "hunter2"}
		sec.Spec.Version = 2
		wantErr(t, tt.write(sec), store.ErrInvalid, tt.name+" with plaintext")
	}
	if got := must(s.Secrets().Get(ctx, api.KeyOf(stored)))(t); got.Spec.Data != nil || got.Spec.Version != 1 ||
		got.Metadata.ResourceVersion != stored.Metadata.ResourceVersion {
		t.Errorf("a refused write changed the secret: %+v", got.Spec)
	}
	_, err = s.Secrets().Get(ctx, api.Key{Project: "shop", Name: "tx"})
	wantErr(t, err, store.ErrNotFound, "get after a refused create in a transaction")
}

// testSecretWatch: secret changes are in the feed, the removal a
// project's row takes along included.
func testSecretWatch(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	ch, err := s.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := Next(t, ch, 10*time.Second); c.Type != store.ChangeResync {
		t.Fatalf("first change = %+v, want a resync marker", c)
	}
	p := must(s.Projects().Create(ctx, Project("shop")))(t)
	sec := must(s.Secrets().Create(ctx, Secret("shop", "db")))(t)
	sec.Spec.Version = 2
	sec = must(s.Secrets().Update(ctx, sec))(t)
	sec.Metadata.Labels = map[string]string{"a": "b"}
	sec = must(s.Secrets().Update(ctx, sec))(t)
	must(s.Secrets().Delete(ctx, api.KeyOf(sec), store.DeleteOptions{}))(t)
	if err := s.Secrets().Remove(ctx, api.KeyOf(sec), sec.Metadata.UID); err != nil {
		t.Fatal(err)
	}
	kept := must(s.Secrets().Create(ctx, Secret("shop", "api")))(t)
	must(s.Projects().Delete(ctx, api.KeyOf(p), store.DeleteOptions{}))(t)
	if err := s.Projects().Remove(ctx, api.KeyOf(p), p.Metadata.UID); err != nil {
		t.Fatal(err)
	}
	type want struct {
		typ            store.ChangeType
		kind           api.Kind
		key            string
		spec, deleting bool
	}
	wants := []want{
		{store.ChangeUpsert, api.KindProject, "shop", true, false},
		{store.ChangeUpsert, api.KindSecret, "shop/db", true, false},
		{store.ChangeUpsert, api.KindSecret, "shop/db", true, false},
		{store.ChangeUpsert, api.KindSecret, "shop/db", false, false},
		{store.ChangeUpsert, api.KindSecret, "shop/db", false, true},
		{store.ChangeRemoved, api.KindSecret, "shop/db", false, false},
		{store.ChangeUpsert, api.KindSecret, "shop/api", true, false},
		{store.ChangeUpsert, api.KindProject, "shop", false, true},
	}
	for i, w := range wants {
		c := Next(t, ch, 10*time.Second)
		if got := (want{c.Type, c.Kind, c.Key.String(), c.SpecChanged, c.Deleting}); got != w {
			t.Fatalf("change %d = %+v, want %+v", i, got, w)
		}
		if c.Kind == api.KindSecret && c.Key.Name == "db" && c.UID != sec.Metadata.UID {
			t.Errorf("change %d: uid %s, want %s", i, c.UID, sec.Metadata.UID)
		}
	}
	// The removals of one statement come in an order the backend chooses.
	removed := map[string]string{}
	for range 2 {
		c := Next(t, ch, 10*time.Second)
		if c.Type != store.ChangeRemoved {
			t.Fatalf("change after the project's removal = %+v, want a removal", c)
		}
		removed[string(c.Kind)+" "+c.Key.String()] = c.UID
	}
	if removed["Secret shop/api"] != kept.Metadata.UID || removed["Project shop"] != p.Metadata.UID {
		t.Errorf("removals = %v", removed)
	}
}
