package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/internal/testenv"
	"github.com/panelx/panelx/store"
	"github.com/panelx/panelx/store/postgres"
	"github.com/panelx/panelx/store/storetest"
)

// newStore opens a migrated store on a fresh database.
func newStore(t testing.TB) *postgres.Store {
	t.Helper()
	url := testenv.NewDatabase(t)
	return openMigrated(t, url)
}

func openMigrated(t testing.TB, url string) *postgres.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	if _, err := s.Migrate(ctx); err != nil {
		s.Close()
		t.Fatalf("migrate: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return newStore(t) })
}

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// expect reads changes until one matches, failing after a timeout. It
// returns the changes seen before the match.
func expect(t *testing.T, ch <-chan store.Change, match func(store.Change) bool) []store.Change {
	t.Helper()
	var seen []store.Change
	for {
		c := storetest.Next(t, ch, 15*time.Second)
		if match(c) {
			return seen
		}
		seen = append(seen, c)
	}
}

// TestWatchSeesRawSQLInCommitOrder writes straight in SQL, as a Supabase
// dashboard would, from other connections, in two transactions that commit
// in the opposite order from the one they started in.
func TestWatchSeesRawSQLInCommitOrder(t *testing.T) {
	s := newStore(t)
	defer s.Close()
	ctx := ctxFor(t)
	ch, _ := s.Watch(ctx)
	expect(t, ch, func(c store.Change) bool { return c.Type == store.ChangeResync })

	pool := s.Pool()
	if _, err := pool.Exec(ctx, `INSERT INTO panelx.projects (name, spec) VALUES ('shop', '{}')`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO panelx.services (project, name, spec) VALUES
		('shop', 'a', '{"image":"nginx:1","replicas":1}'), ('shop', 'b', '{"image":"nginx:1","replicas":1}')`); err != nil {
		t.Fatal(err)
	}
	first, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Rollback(ctx)
	if _, err := first.Exec(ctx, `UPDATE panelx.services SET spec = jsonb_set(spec, '{image}', '"nginx:2"') WHERE name = 'a'`); err != nil {
		t.Fatal(err)
	}
	second, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Rollback(ctx)
	if _, err := second.Exec(ctx, `UPDATE panelx.services SET status = '{"phase":"Running"}' WHERE name = 'b'`); err != nil {
		t.Fatal(err)
	}
	if err := second.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := first.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `DELETE FROM panelx.projects WHERE name = 'shop'`); err != nil {
		t.Fatal(err)
	}

	type got struct {
		typ          store.ChangeType
		kind, key    string
		spec, status bool
	}
	wants := []got{
		{store.ChangeUpsert, "Project", "shop", true, false},
		{store.ChangeUpsert, "Service", "shop/a", true, false},
		{store.ChangeUpsert, "Service", "shop/b", true, false},
		{store.ChangeUpsert, "Service", "shop/b", false, true}, // committed first
		{store.ChangeUpsert, "Service", "shop/a", true, false},
	}
	var gots []got
	for range wants {
		c := storetest.Next(t, ch, 15*time.Second)
		gots = append(gots, got{c.Type, string(c.Kind), c.Key.String(), c.SpecChanged, c.StatusChanged})
	}
	for i, w := range wants {
		if gots[i] != w {
			t.Errorf("change %d = %+v, want %+v", i, gots[i], w)
		}
	}
	// Deleting the project row cascades to its services; the three removals
	// come from one statement, in an order PostgreSQL chooses.
	removed := map[string]bool{}
	for range 3 {
		c := storetest.Next(t, ch, 15*time.Second)
		if c.Type != store.ChangeRemoved {
			t.Errorf("change after the delete = %+v, want a removal", c)
		}
		removed[string(c.Kind)+" "+c.Key.String()] = true
	}
	if !removed["Project shop"] || !removed["Service shop/a"] || !removed["Service shop/b"] {
		t.Errorf("removals = %v", removed)
	}
}

// TestRawSQLFollowsGenerationRules: the triggers keep generation and
// resource_version even for writes that bypass PanelX.
func TestRawSQLFollowsGenerationRules(t *testing.T) {
	s := newStore(t)
	defer s.Close()
	ctx := ctxFor(t)
	pool := s.Pool()
	steps := []struct {
		sql     string
		wantGen int64
	}{
		{`INSERT INTO panelx.projects (name, generation, resource_version) VALUES ('p', 99, 99)`, 1},
		{`UPDATE panelx.projects SET spec = '{"domain":"a.example"}' WHERE name = 'p'`, 2},
		{`UPDATE panelx.projects SET status = '{"phase":"Ready"}', generation = 50 WHERE name = 'p'`, 2},
		{`UPDATE panelx.projects SET labels = '{"a":"b"}' WHERE name = 'p'`, 2},
		{`UPDATE panelx.projects SET spec = '{"domain":"b.example"}', deletion_timestamp = now() WHERE name = 'p'`, 3},
		{`UPDATE panelx.projects SET deletion_timestamp = NULL WHERE name = 'p'`, 3},
	}
	var lastRV int64
	for _, st := range steps {
		if _, err := pool.Exec(ctx, st.sql); err != nil {
			t.Fatalf("%s: %v", st.sql, err)
		}
		var gen, rv int64
		var deleting bool
		if err := pool.QueryRow(ctx, `SELECT generation, resource_version, deletion_timestamp IS NOT NULL FROM panelx.projects WHERE name = 'p'`).Scan(&gen, &rv, &deleting); err != nil {
			t.Fatal(err)
		}
		if gen != st.wantGen {
			t.Errorf("%s: generation = %d, want %d", st.sql, gen, st.wantGen)
		}
		if rv <= lastRV || rv == 99 {
			t.Errorf("%s: resource_version = %d after %d", st.sql, rv, lastRV)
		}
		lastRV = rv
	}
	var deleting bool
	if err := pool.QueryRow(ctx, `SELECT deletion_timestamp IS NOT NULL FROM panelx.projects WHERE name = 'p'`).Scan(&deleting); err != nil || !deleting {
		t.Errorf("deletion was undone by raw SQL (deleting=%v, err=%v)", deleting, err)
	}
	if _, err := pool.Exec(ctx, `UPDATE panelx.projects SET name = 'q' WHERE name = 'p'`); err == nil {
		t.Error("renaming a project in SQL succeeded")
	}
}

// TestWatchSurvivesTerminatedConnection kills the LISTEN connection from the
// server side; the watcher must get a resync marker and then new changes.
func TestWatchSurvivesTerminatedConnection(t *testing.T) {
	s := newStore(t)
	defer s.Close()
	ctx := ctxFor(t)
	ch, _ := s.Watch(ctx)
	expect(t, ch, func(c store.Change) bool { return c.Type == store.ChangeResync })
	for round := 0; round < 2; round++ {
		var killed int
		err := s.Pool().QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = 'panelx-watch'`).Scan(&killed)
		if err != nil || killed != 1 {
			t.Fatalf("round %d: terminated %d listener connections (err %v), want 1", round, killed, err)
		}
		expect(t, ch, func(c store.Change) bool { return c.Type == store.ChangeResync })
		name := []string{"after-kill", "after-second-kill"}[round]
		if _, err := s.Projects().Create(ctx, storetest.Project(name)); err != nil {
			t.Fatal(err)
		}
		expect(t, ch, func(c store.Change) bool { return c.Kind == "Project" && c.Key.Name == name })
	}
}

func TestMigrateIsIdempotentAndSafeConcurrently(t *testing.T) {
	url := testenv.NewDatabase(t)
	ctx := ctxFor(t)
	stores := make([]*postgres.Store, 4)
	for i := range stores {
		s, err := postgres.Open(ctx, url, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores[i] = s
	}
	if err := stores[0].Ready(ctx); err == nil {
		t.Error("Ready succeeded on an unmigrated database")
	}
	type result struct {
		applied []int64
		err     error
	}
	results := make(chan result, len(stores))
	for _, s := range stores {
		go func() {
			applied, err := s.Migrate(ctx)
			results <- result{applied, err}
		}()
	}
	total := 0
	for range stores {
		r := <-results
		if r.err != nil {
			t.Fatalf("concurrent migrate: %v", r.err)
		}
		total += len(r.applied)
	}
	var sources int
	if err := stores[0].Pool().QueryRow(ctx, `SELECT count(*) FROM panelx.goose_db_version WHERE version_id > 0`).Scan(&sources); err != nil {
		t.Fatal(err)
	}
	if total != sources || total == 0 {
		t.Errorf("migrations applied %d times across servers; %d recorded", total, sources)
	}
	again, err := stores[1].Migrate(ctx)
	if err != nil || len(again) != 0 {
		t.Errorf("second migrate applied %v (err %v), want nothing", again, err)
	}
	if err := stores[2].Ready(ctx); err != nil {
		t.Errorf("Ready after migrate: %v", err)
	}
}

func TestOpenFailsClearly(t *testing.T) {
	ctx := ctxFor(t)
	_, err := postgres.Open(ctx, "postgres://panelx:secret-password@127.0.0.1:1/x?connect_timeout=2", postgres.Options{})
	if err == nil {
		t.Fatal("Open succeeded against a closed port")
	}
	_, err = postgres.Open(ctx, "postgres://u:secret-password@[bad", postgres.Options{})
	if err == nil {
		t.Fatal("Open accepted a malformed URL")
	}
	if msg := err.Error(); strings.Contains(msg, "secret-password") {
		t.Errorf("error leaks the password: %s", msg)
	}
}

// TestProjectKeepsAnOwner: two transactions that each demote one of the
// last two owners cannot both commit.
func TestProjectKeepsAnOwner(t *testing.T) {
	s := newStore(t)
	defer s.Close()
	ctx := ctxFor(t)
	if _, err := s.Projects().Create(ctx, storetest.Project("shop")); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob"} {
		if _, err := s.Members().Put(ctx, store.Member{Project: "shop", UserID: u, Role: store.RoleOwner}); err != nil {
			t.Fatal(err)
		}
	}
	// Both transactions read two owners, then demote one each.
	start := make(chan struct{})
	errs := make(chan error, 2)
	for _, u := range []string{"alice", "bob"} {
		go func() {
			errs <- s.InTx(ctx, func(r store.Repo) error {
				if list, err := r.Members().List(ctx, "shop"); err != nil || len(list) != 2 {
					return fmt.Errorf("list: %v %v", list, err)
				}
				<-start
				_, err := r.Members().Put(ctx, store.Member{Project: "shop", UserID: u, Role: store.RoleViewer})
				return err
			})
		}()
	}
	close(start)
	var failed int
	for range 2 {
		if err := <-errs; err != nil {
			if !errors.Is(err, store.ErrConflict) {
				t.Errorf("unexpected error: %v", err)
			}
			failed++
		}
	}
	if failed != 1 {
		t.Fatalf("%d of the two demotions failed, want exactly 1", failed)
	}
	owners := 0
	list, _ := s.Members().List(ctx, "shop")
	for _, m := range list {
		if m.Role == store.RoleOwner {
			owners++
		}
	}
	if owners != 1 {
		t.Errorf("%d owners left, want 1", owners)
	}
	// A project on its way out needs no owner.
	p, _ := s.Projects().Delete(ctx, api.Key{Name: "shop"}, store.DeleteOptions{})
	if err := s.Projects().Remove(ctx, api.Key{Name: "shop"}, p.Metadata.UID); err != nil {
		t.Fatalf("removing a project with its owner: %v", err)
	}
}

// TestSecretsAndRevisionsInRawSQL: the schema keeps plaintext out of
// secrets and revisions immutable, even for writes that bypass PanelX, and
// the foreign key removes a service's revision rows with it.
func TestSecretsAndRevisionsInRawSQL(t *testing.T) {
	s := newStore(t)
	defer s.Close()
	ctx := ctxFor(t)
	pool := s.Pool()
	p, _ := s.Projects().Create(ctx, storetest.Project("shop"))
	web, _ := s.Services().Create(ctx, storetest.Service("shop", "web", "nginx"))
	db, _ := s.Services().Create(ctx, storetest.Service("shop", "db", "postgres"))
	for _, svc := range []*api.Service{web, db} {
		for _, h := range []string{"a", "b"} {
			if _, _, err := s.Revisions().Record(ctx, svc.Metadata.UID, storetest.Revision(h), 10); err != nil {
				t.Fatal(err)
			}
		}
	}
	refused := []string{
		`INSERT INTO panelx.secrets (project, name, spec) VALUES ('shop', 'db', '{"data":{"k":"v"}}')`,
		`INSERT INTO panelx.secrets (project, name, spec) VALUES ('shop', 'db', '{"data":"v"}')`,
		`UPDATE panelx.revisions SET template_hash = 'x'`,
		`UPDATE panelx.revisions SET number = number + 10`,
		`UPDATE panelx.revisions SET spec = '{"image":"evil"}'`,
		`UPDATE panelx.revisions SET created_at = now() - interval '1 day'`,
	}
	for _, stmt := range refused {
		_, err := pool.Exec(ctx, stmt)
		if err == nil {
			t.Errorf("%s: succeeded", stmt)
		} else if !errors.Is(postgres.MapErr(err, "raw"), store.ErrInvalid) {
			t.Errorf("%s: %v, want it mapped to ErrInvalid", stmt, err)
		}
	}
	for _, stmt := range []string{
		`INSERT INTO panelx.secrets (project, name, spec) VALUES ('shop', 'a', '{"data":{}}')`,
		`INSERT INTO panelx.secrets (project, name, spec) VALUES ('shop', 'b', '{"data":null,"keys":["k"]}')`,
		`UPDATE panelx.revisions SET ready_at = '2025-01-01T00:00:00Z'`,
		`UPDATE panelx.revisions SET ready_at = '2025-01-01T00:00:00Z'`, // the same value again
	} {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			t.Errorf("%s: %v", stmt, err)
		}
	}
	if _, err := pool.Exec(ctx, `UPDATE panelx.revisions SET ready_at = now()`); err == nil {
		t.Error("a revision's ready time changed a second time")
	}

	count := func(cond string, args ...any) int {
		t.Helper()
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM panelx.revisions WHERE `+cond, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	s.Services().Delete(ctx, api.KeyOf(web), store.DeleteOptions{})
	if err := s.Services().Remove(ctx, api.KeyOf(web), web.Metadata.UID); err != nil {
		t.Fatal(err)
	}
	if n := count(`service_uid = $1::uuid`, web.Metadata.UID); n != 0 {
		t.Errorf("%d revision rows outlived their service", n)
	}
	if n := count(`service_uid = $1::uuid`, db.Metadata.UID); n != 2 {
		t.Errorf("the other service has %d revision rows, want 2", n)
	}
	s.Projects().Delete(ctx, api.KeyOf(p), store.DeleteOptions{})
	if err := s.Projects().Remove(ctx, api.KeyOf(p), p.Metadata.UID); err != nil {
		t.Fatal(err)
	}
	if n := count(`true`); n != 0 {
		t.Errorf("%d revision rows outlived their project", n)
	}
}
