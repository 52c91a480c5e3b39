package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/migrations"
	"github.com/panelx/panelx/store"
	"github.com/panelx/panelx/store/storetest"
)

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newStore opens a migrated store on a fresh file; the caller closes it.
func newStore(t testing.TB) *Store {
	t.Helper()
	return openMigrated(t, filepath.Join(t.TempDir(), "panelx.db"))
}

func openMigrated(t testing.TB, path string) *Store {
	t.Helper()
	ctx := ctxFor(t)
	s, err := Open(ctx, path, Options{})
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

func TestMigrateAndReady(t *testing.T) {
	ctx := ctxFor(t)
	s, err := Open(ctx, filepath.Join(t.TempDir(), "panelx.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ready(ctx); err == nil || !strings.Contains(err.Error(), "panelx migrate") {
		t.Errorf("Ready before migrating = %v, want an error naming `panelx migrate`", err)
	}
	applied, err := s.Migrate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := fs.ReadDir(migrations.Sqlite(), ".")
	if err != nil {
		t.Fatal(err)
	}
	var want []int64
	for i := range entries {
		want = append(want, int64(i+1))
	}
	if !slices.Equal(applied, want) {
		t.Errorf("first Migrate applied %v, want %v (every migration file)", applied, want)
	}
	if applied, err = s.Migrate(ctx); err != nil || len(applied) != 0 {
		t.Errorf("second Migrate = %v, %v; want nothing applied", applied, err)
	}
	if err := s.Ready(ctx); err != nil {
		t.Errorf("Ready after migrating: %v", err)
	}
	pragmas := []struct {
		conn   string
		db     querier
		pragma string
		want   string
	}{
		{"writer", s.wdb, "journal_mode", "wal"},
		{"reader", s.rdb, "journal_mode", "wal"},
		{"writer", s.wdb, "synchronous", "2"}, // FULL
		{"writer", s.wdb, "foreign_keys", "1"},
		{"reader", s.rdb, "foreign_keys", "1"},
		{"reader", s.rdb, "query_only", "1"},
		{"writer", s.wdb, "busy_timeout", "5000"},
	}
	for _, p := range pragmas {
		var got string
		if err := p.db.QueryRowContext(ctx, "PRAGMA "+p.pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != p.want {
			t.Errorf("%s: PRAGMA %s = %s, want %s", p.conn, p.pragma, got, p.want)
		}
	}
	s.Close()
	if err := s.Ready(ctx); err == nil {
		t.Error("Ready after Close = nil")
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := ctxFor(t)
	dir := t.TempDir()
	tests := []struct {
		name, path, want string
	}{
		{"missing directory", filepath.Join(dir, "nope", "panelx.db"), "no such file or directory"},
		{"question mark", filepath.Join(dir, "a?b.db"), "must not contain '?'"},
		{"empty", "", "no file name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(ctx, tt.path, Options{})
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q) succeeded", tt.path)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open(%q) = %v, want it to say %q", tt.path, err, tt.want)
			}
		})
	}
}

func TestFileIsPrivateAndDataSurvivesReopen(t *testing.T) {
	ctx := ctxFor(t)
	path := filepath.Join(t.TempDir(), "panelx.db")
	s := openMigrated(t, path)
	p, err := s.Projects().Create(ctx, storetest.Project("shop"))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(f)
		if errors.Is(err, os.ErrNotExist) {
			continue // checkpointed and removed on close
		}
		if err != nil {
			t.Fatal(err)
		}
		if mode := fi.Mode().Perm(); mode&0o077 != 0 {
			t.Errorf("%s has mode %v; it holds secrets and must be private", f, mode)
		}
	}
	s = openMigrated(t, path)
	defer s.Close()
	got, err := s.Projects().Get(ctx, api.KeyOf(p))
	if err != nil || got.Metadata.UID != p.Metadata.UID {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
	// The counter goes on where it was: no resource version is reused.
	again, err := s.Projects().Create(ctx, storetest.Project("blog"))
	if err != nil {
		t.Fatal(err)
	}
	if rv(t, again) <= rv(t, p) {
		t.Errorf("resourceVersion %s after reopen is not above %s", again.Metadata.ResourceVersion, p.Metadata.ResourceVersion)
	}
}

func rv(t *testing.T, o api.Object) int64 {
	t.Helper()
	n, err := strconv.ParseInt(o.GetMeta().ResourceVersion, 10, 64)
	if err != nil {
		t.Fatalf("resourceVersion %q: %v", o.GetMeta().ResourceVersion, err)
	}
	return n
}

// expectChanges reads len(want) changes (after the resync marker) and
// compares their type, kind, key and flags.
type wantChange struct {
	typ                    store.ChangeType
	kind                   api.Kind
	key                    string
	spec, status, deleting bool
}

func readChanges(t *testing.T, ch <-chan store.Change, n int) []wantChange {
	t.Helper()
	var got []wantChange
	for len(got) < n {
		c := storetest.Next(t, ch, 10*time.Second)
		if c.Type == store.ChangeResync {
			continue
		}
		got = append(got, wantChange{c.Type, c.Kind, c.Key.String(), c.SpecChanged, c.StatusChanged, c.Deleting})
	}
	return got
}

func TestProjectRemovalPublishesCascade(t *testing.T) {
	ctx := ctxFor(t)
	s := newStore(t)
	defer s.Close()
	p, _ := s.Projects().Create(ctx, storetest.Project("shop"))
	s.Services().Create(ctx, storetest.Service("shop", "web", "nginx"))
	s.Services().Create(ctx, storetest.Service("shop", "db", "postgres"))
	s.Volumes().Create(ctx, storetest.Volume("shop", "data"))
	s.Secrets().Create(ctx, storetest.Secret("shop", "db"))
	ch, _ := s.Watch(ctx)
	if c := storetest.Next(t, ch, 10*time.Second); c.Type != store.ChangeResync {
		t.Fatalf("first change = %+v", c)
	}
	if _, err := s.Projects().Delete(ctx, api.KeyOf(p), store.DeleteOptions{PurgeVolumes: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.Projects().Remove(ctx, api.KeyOf(p), p.Metadata.UID); err != nil {
		t.Fatal(err)
	}
	want := []wantChange{
		// The project is marked first, then its services, as in PostgreSQL.
		{store.ChangeUpsert, api.KindProject, "shop", false, false, true},
		{store.ChangeUpsert, api.KindService, "shop/db", false, false, true},
		{store.ChangeUpsert, api.KindService, "shop/web", false, false, true},
		// Removing the row takes its services, volumes and secrets along.
		{store.ChangeRemoved, api.KindService, "shop/db", false, false, false},
		{store.ChangeRemoved, api.KindService, "shop/web", false, false, false},
		{store.ChangeRemoved, api.KindVolume, "shop/data", false, false, false},
		{store.ChangeRemoved, api.KindSecret, "shop/db", false, false, false},
		{store.ChangeRemoved, api.KindProject, "shop", false, false, false},
	}
	if got := readChanges(t, ch, len(want)); !slices.Equal(got, want) {
		t.Errorf("changes:\n got %v\nwant %v", got, want)
	}
}

func TestDeleteAgainOnlyAddsPurge(t *testing.T) {
	ctx := ctxFor(t)
	s := newStore(t)
	defer s.Close()
	p, _ := s.Projects().Create(ctx, storetest.Project("shop"))
	first, err := s.Projects().Delete(ctx, api.KeyOf(p), store.DeleteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if first.Metadata.Annotations[api.AnnotationPurgeVolumes] != "" {
		t.Fatal("purge annotation set without being asked")
	}
	same, _ := s.Projects().Delete(ctx, api.KeyOf(p), store.DeleteOptions{})
	if same.Metadata.ResourceVersion != first.Metadata.ResourceVersion {
		t.Errorf("a repeated delete wrote the row (resourceVersion %s → %s)", first.Metadata.ResourceVersion, same.Metadata.ResourceVersion)
	}
	purged, err := s.Projects().Delete(ctx, api.KeyOf(p), store.DeleteOptions{PurgeVolumes: true})
	if err != nil {
		t.Fatal(err)
	}
	if purged.Metadata.Annotations[api.AnnotationPurgeVolumes] != "true" || rv(t, purged) <= rv(t, first) ||
		!purged.Metadata.DeletionTimestamp.Equal(*first.Metadata.DeletionTimestamp) {
		t.Errorf("delete with purge on a deleting project: %+v", purged.Metadata)
	}
}

func TestInTxPublishesOnlyCommittedWrites(t *testing.T) {
	ctx := ctxFor(t)
	s := newStore(t)
	defer s.Close()
	ch, _ := s.Watch(ctx)
	storetest.Next(t, ch, 10*time.Second) // resync
	boom := errors.New("boom")
	tests := []struct {
		name string
		fn   func(r store.Repo) error
		want []wantChange
	}{
		{"rolled back", func(r store.Repo) error {
			if _, err := r.Projects().Create(ctx, storetest.Project("gone")); err != nil {
				return err
			}
			return boom
		}, nil},
		{"failed write inside a committed transaction", func(r store.Repo) error {
			if _, err := r.Projects().Create(ctx, storetest.Project("shop")); err != nil {
				return err
			}
			// This one fails; the transaction goes on without it.
			if _, err := r.Services().Create(ctx, storetest.Service("missing", "web", "nginx")); !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("create in a missing project: %v", err)
			}
			_, err := r.Services().Create(ctx, storetest.Service("shop", "web", "nginx"))
			return err
		}, []wantChange{
			{store.ChangeUpsert, api.KindProject, "shop", true, false, false},
			{store.ChangeUpsert, api.KindService, "shop/web", true, false, false},
		}},
	}
	for _, tt := range tests {
		err := s.InTx(ctx, tt.fn)
		if tt.want == nil {
			if !errors.Is(err, boom) {
				t.Fatalf("%s: InTx = %v", tt.name, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := readChanges(t, ch, len(tt.want)); !slices.Equal(got, tt.want) {
			t.Errorf("%s: changes\n got %v\nwant %v", tt.name, got, tt.want)
		}
	}
	// Nothing of the rolled-back transaction was stored or sent.
	if _, err := s.Projects().Get(ctx, api.Key{Name: "gone"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("rolled-back project: %v", err)
	}
	if _, err := s.Projects().Create(ctx, storetest.Project("last")); err != nil {
		t.Fatal(err)
	}
	if got := readChanges(t, ch, 1); got[0].key != "last" {
		t.Errorf("after the transactions: %v, want only the change of last", got)
	}
}

// TestWatchOrderUnderConcurrentWriters: with writers racing, the feed still
// follows commit order, which with one counter is resource-version order.
func TestWatchOrderUnderConcurrentWriters(t *testing.T) {
	ctx := ctxFor(t)
	s := newStore(t)
	defer s.Close()
	s.Projects().Create(ctx, storetest.Project("shop"))
	ch, _ := s.Watch(ctx)
	storetest.Next(t, ch, 10*time.Second)
	const writers, each = 8, 25
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := s.Services().Create(ctx, storetest.Service("shop", fmt.Sprintf("w%d-%d", w, i), "nginx")); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	var last int64
	for i := 0; i < writers*each; i++ {
		c := storetest.Next(t, ch, 10*time.Second)
		if c.ResourceVersion <= last {
			t.Fatalf("change %d: resourceVersion %d after %d: not in commit order", i, c.ResourceVersion, last)
		}
		last = c.ResourceVersion
	}
}

func TestGenerationComparesSpecByValue(t *testing.T) {
	ctx := ctxFor(t)
	s := newStore(t)
	defer s.Close()
	s.Projects().Create(ctx, storetest.Project("shop"))
	svc, _ := s.Services().Create(ctx, storetest.Service("shop", "web", "nginx"))
	// Someone rewrote the spec by hand: same value, other key order and
	// spacing (a map marshals with sorted keys, a struct in field order).
	var spec map[string]any
	data, _ := json.Marshal(svc.Spec)
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatal(err)
	}
	rewritten, _ := json.MarshalIndent(spec, "", "   ")
	if string(rewritten) == string(data) {
		t.Fatal("the rewritten spec is the same text; the test proves nothing")
	}
	if _, err := s.wdb.ExecContext(ctx, `UPDATE services SET spec = ? WHERE uid = ?`, string(rewritten), svc.Metadata.UID); err != nil {
		t.Fatal(err)
	}
	svc.Metadata.ResourceVersion = ""
	got, err := s.Services().Update(ctx, svc)
	if err != nil {
		t.Fatal(err)
	}
	if got.Metadata.Generation != 1 {
		t.Errorf("generation = %d after writing an equal spec, want 1", got.Metadata.Generation)
	}
}

func TestGuardTriggersRefuseRawEdits(t *testing.T) {
	ctx := ctxFor(t)
	s := newStore(t)
	defer s.Close()
	s.Projects().Create(ctx, storetest.Project("shop"))
	svc, _ := s.Services().Create(ctx, storetest.Service("shop", "web", "nginx"))
	s.Services().Delete(ctx, api.KeyOf(svc), store.DeleteOptions{})
	for _, stmt := range []string{
		`UPDATE services SET uid = 'x'`,
		`UPDATE services SET name = 'other'`,
		`UPDATE services SET created_at = 0`,
		`UPDATE services SET deletion_timestamp = NULL`,
		`UPDATE projects SET name = 'other'`,
		`INSERT INTO services (uid, project, name, created_at) VALUES ('u', 'shop', 'Bad_Name', 0)`,
		`INSERT INTO services (uid, project, name, created_at) VALUES ('u', 'shop', '-x', 0)`,
		`INSERT INTO services (uid, project, name, created_at, labels) VALUES ('u', 'shop', 'ok', 0, '[]')`,
	} {
		if _, err := s.wdb.ExecContext(ctx, stmt); err == nil {
			t.Errorf("%s: succeeded", stmt)
		} else if mapped := mapErr(err, "raw"); !errors.Is(mapped, store.ErrInvalid) {
			t.Errorf("%s: %v, want it mapped to ErrInvalid", stmt, err)
		}
	}
	if _, err := s.wdb.ExecContext(ctx, `INSERT INTO services (uid, project, name, created_at) VALUES ('u', 'shop', 'a-0', 0)`); err != nil {
		t.Errorf("a valid raw insert failed: %v", err)
	}
}

func TestSelectorWithDottedKeys(t *testing.T) {
	ctx := ctxFor(t)
	s := newStore(t)
	defer s.Close()
	s.Projects().Create(ctx, storetest.Project("shop"))
	for name, labels := range map[string]map[string]string{
		"a": {"app.kubernetes.io/name": "web", `we"ird`: "1"},
		"b": {"app.kubernetes.io/name": "db"},
		"c": nil,
	} {
		svc := storetest.Service("shop", name, "nginx")
		svc.Metadata.Labels = labels
		if _, err := s.Services().Create(ctx, svc); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		sel  api.Selector
		want []string
	}{
		{api.Selector{{Key: "app.kubernetes.io/name", Op: api.OpEquals, Values: []string{"web"}}}, []string{"a"}},
		{api.Selector{{Key: "app.kubernetes.io/name", Op: api.OpNotIn, Values: []string{"web"}}}, []string{"b", "c"}},
		{api.Selector{{Key: "app.kubernetes.io/name", Op: api.OpIn, Values: []string{"web", "db"}}}, []string{"a", "b"}},
		{api.Selector{{Key: `we"ird`, Op: api.OpExists}}, []string{"a"}},
		{api.Selector{{Key: "app", Op: api.OpExists}}, nil},
		{api.Selector{{Key: "app.kubernetes.io/name", Op: api.OpNotExists}}, []string{"c"}},
	}
	for _, tt := range tests {
		l, err := s.Services().List(ctx, store.ListOptions{Selector: tt.sel})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, it := range l.Items {
			got = append(got, it.Metadata.Name)
			if !tt.sel.Matches(it.Metadata.Labels) {
				t.Errorf("%v: %s does not match in Go", tt.sel, it.Metadata.Name)
			}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%v: got %v, want %v", tt.sel, got, tt.want)
		}
	}
}

func TestCutMessage(t *testing.T) {
	long := strings.Repeat("a", maxEventMessage-4) + "ééé"
	tests := []struct {
		name, in string
	}{
		{"short", "hello"},
		{"exact", strings.Repeat("x", maxEventMessage)},
		{"long ascii", strings.Repeat("x", 5000)},
		{"multibyte at the cut", long},
	}
	for _, tt := range tests {
		got := cutMessage(tt.in)
		if len(got) > maxEventMessage || !utf8.ValidString(got) {
			t.Errorf("%s: cut to %d bytes, valid UTF-8 %v", tt.name, len(got), utf8.ValidString(got))
		}
		if len(tt.in) <= maxEventMessage && got != tt.in {
			t.Errorf("%s: a short message was changed", tt.name)
		}
	}
}

// countRows counts the rows of a table that match a condition.
func countRows(t *testing.T, s *Store, table, cond string, args ...any) int {
	t.Helper()
	var n int
	if err := s.rdb.QueryRowContext(ctxFor(t), `SELECT count(*) FROM `+table+` WHERE `+cond, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRevisionRowsGoWithTheirService: the foreign key removes the rows
// themselves (List, which reads through the current service row, would
// not show them either way).
func TestRevisionRowsGoWithTheirService(t *testing.T) {
	ctx := ctxFor(t)
	s := newStore(t)
	defer s.Close()
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
	s.Services().Delete(ctx, api.KeyOf(web), store.DeleteOptions{})
	if err := s.Services().Remove(ctx, api.KeyOf(web), web.Metadata.UID); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, s, "revisions", "service_uid = ?", web.Metadata.UID); n != 0 {
		t.Errorf("%d revision rows outlived their service", n)
	}
	if n := countRows(t, s, "revisions", "service_uid = ?", db.Metadata.UID); n != 2 {
		t.Errorf("the other service has %d revision rows, want 2", n)
	}
	s.Projects().Delete(ctx, api.KeyOf(p), store.DeleteOptions{})
	if err := s.Projects().Remove(ctx, api.KeyOf(p), p.Metadata.UID); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, s, "revisions", "1"); n != 0 {
		t.Errorf("%d revision rows outlived their project", n)
	}
}

// TestRawWritesCannotBreakSecretsOrRevisions: the schema refuses plaintext
// in a secret and any change of a revision but its first ready time.
func TestRawWritesCannotBreakSecretsOrRevisions(t *testing.T) {
	ctx := ctxFor(t)
	s := newStore(t)
	defer s.Close()
	s.Projects().Create(ctx, storetest.Project("shop"))
	svc, _ := s.Services().Create(ctx, storetest.Service("shop", "web", "nginx"))
	if _, _, err := s.Revisions().Record(ctx, svc.Metadata.UID, storetest.Revision("a"), 10); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`INSERT INTO secrets (uid, project, name, created_at, spec) VALUES ('u', 'shop', 'db', 0, '{"data":{"k":"v"}}')`,
		`INSERT INTO secrets (uid, project, name, created_at, spec) VALUES ('u', 'shop', 'db', 0, '{"data":"v"}')`,
		`UPDATE revisions SET template_hash = 'b'`,
		`UPDATE revisions SET number = 2`,
		`UPDATE revisions SET spec = '{"image":"evil"}'`,
		`UPDATE revisions SET created_at = 0`,
		`INSERT INTO revisions (service_uid, project, service, number, template_hash, created_at)
			VALUES ('no-such-service', 'shop', 'web', 1, 'x', 0)`,
	} {
		if _, err := s.wdb.ExecContext(ctx, stmt); err == nil {
			t.Errorf("%s: succeeded", stmt)
		}
	}
	for _, stmt := range []string{
		`INSERT INTO secrets (uid, project, name, created_at, spec) VALUES ('u1', 'shop', 'a', 0, '{"data":{}}')`,
		`INSERT INTO secrets (uid, project, name, created_at, spec) VALUES ('u2', 'shop', 'b', 0, '{"data":null,"keys":["k"]}')`,
		`UPDATE revisions SET ready_at = 5`,
		`UPDATE revisions SET ready_at = 5`, // the same value again
	} {
		if _, err := s.wdb.ExecContext(ctx, stmt); err != nil {
			t.Errorf("%s: %v", stmt, err)
		}
	}
	if _, err := s.wdb.ExecContext(ctx, `UPDATE revisions SET ready_at = 6`); err == nil {
		t.Error("a revision's ready time changed a second time")
	}
}

// TestMoveMigrationKeepsRuns: 00007 rebuilds backup_runs (SQLite cannot
// alter a CHECK); the runs recorded before it survive, with the one-Running
// index, and going down again drops only the moves.
func TestMoveMigrationKeepsRuns(t *testing.T) {
	ctx := ctxFor(t)
	path := filepath.Join(t.TempDir(), "panelx.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	db, err := openDB(ctx, path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, err := newProvider(db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 6); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Projects().Create(ctx, storetest.Project("shop")); err != nil {
		t.Fatal(err)
	}
	const restore = `{"backup":"b1","overwrite":true}`
	if _, err := db.ExecContext(ctx, `INSERT INTO backup_runs (id, project, volume, op, trigger, phase, created_at, bytes, sha256, restore, epoch)
		VALUES ('b1', 'shop', 'data', 'backup', 'schedule', 'Succeeded', 100, 42, 'ab', NULL, 3),
		       ('r1', 'shop', 'data', 'restore', 'manual', 'Running', 200, 0, '', ?, 4)`, restore); err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 7); err != nil {
		t.Fatalf("migrate to 7: %v", err)
	}
	runs := s.BackupRuns()
	b1, err := runs.Get(ctx, "shop", "b1")
	if err != nil || b1.Op != api.BackupOpBackup || b1.Bytes != 42 || b1.SHA256 != "ab" || b1.Epoch != 3 || b1.Restore != nil || b1.Move != nil {
		t.Fatalf("backup after the rebuild: %+v, %v", b1, err)
	}
	r1, err := runs.Get(ctx, "shop", "r1")
	if err != nil || r1.Phase != api.BackupRunning || r1.Restore == nil || r1.Restore.Backup != "b1" || !r1.Restore.Overwrite {
		t.Fatalf("restore after the rebuild: %+v, %v", r1, err)
	}
	// The indexes came back: r1 still keeps a move of the volume from running.
	if _, err := runs.Create(ctx, api.BackupRun{Project: "shop", Volume: "data", Op: api.BackupOpMove, Trigger: api.BackupManual,
		Phase: api.BackupRunning, Move: &api.MoveParams{Node: "n2"}}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("move running beside a restore after the rebuild: %v", err)
	}
	var idx int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'backup_runs'
		AND name IN ('backup_runs_by_volume', 'backup_runs_one_running', 'backup_runs_one_open_move')`).Scan(&idx); err != nil || idx != 3 {
		t.Fatalf("indexes of backup_runs: %d, %v", idx, err)
	}
	if _, err := runs.Create(ctx, api.BackupRun{Project: "shop", Volume: "logs", Op: api.BackupOpMove, Trigger: api.BackupManual,
		Phase: api.BackupPending, Move: &api.MoveParams{Node: "n2"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Down(ctx); err != nil {
		t.Fatalf("migrate down from 7: %v", err)
	}
	var ids []string
	rows, err := db.QueryContext(ctx, `SELECT id FROM backup_runs ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, []string{"b1", "r1"}) {
		t.Errorf("runs after going down: %v, want the backup and the restore", ids)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("migrate up again: %v", err)
	}
}
