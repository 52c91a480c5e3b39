package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/panelx/panelx/api"
	"github.com/panelx/panelx/internal/testenv/pgserver"
	"github.com/panelx/panelx/store"
	"github.com/panelx/panelx/store/postgres"
)

// supabaseStubs stands up the parts of a Supabase database the profile
// relies on, as Supabase defines them: the API roles, auth.uid() and
// auth.jwt() reading the claims PostgREST sets, auth.users, and the
// supabase_realtime publication.
const supabaseStubs = `
CREATE ROLE anon NOLOGIN NOINHERIT;
CREATE ROLE authenticated NOLOGIN NOINHERIT;
CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
CREATE ROLE authenticator LOGIN NOINHERIT;
GRANT anon, authenticated, service_role TO authenticator;
CREATE SCHEMA auth;
CREATE TABLE auth.users (id uuid PRIMARY KEY, email text);
CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
  SELECT coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),
                  (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'))::uuid
$$;
CREATE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT coalesce(nullif(current_setting('request.jwt.claims', true), ''), '{}')::jsonb
$$;
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;
CREATE PUBLICATION supabase_realtime;
`

const (
	aliceID = "0b2a7a0e-6a5b-4c36-9d2c-7e9d2f1a0001"
	bobID   = "0b2a7a0e-6a5b-4c36-9d2c-7e9d2f1a0002"
)

// TestSupabaseProfile: under a user's JWT as PostgREST sets it, a member
// reads their project, its services' status and events — and nothing
// secret; a stranger and anon read nothing; nobody writes; Realtime's
// publication carries a status change but never a spec.
func TestSupabaseProfile(t *testing.T) {
	srv := pgserver.Start(t, "wal_level=logical")
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, supabaseStubs); err != nil {
		t.Fatalf("supabase stubs: %v", err)
	}
	st, err := postgres.Open(ctx, srv.URL(), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // idempotent
		if err := st.ApplySupabaseProfile(ctx); err != nil {
			t.Fatalf("apply #%d: %v", i+1, err)
		}
	}

	// alice's shop, with a service whose spec holds a secret value; bob's blog.
	mustDo := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	for _, p := range []struct{ name, owner string }{{"shop", aliceID}, {"blog", bobID}} {
		_, err := st.Projects().Create(ctx, &api.Project{Metadata: api.ObjectMeta{Name: p.name}})
		mustDo("create project", err)
		_, err = st.Members().Put(ctx, store.Member{Project: p.name, UserID: p.owner, Role: store.RoleOwner})
		mustDo("add owner", err)
	}
	web, err := st.Services().Create(ctx, &api.Service{Metadata: api.ObjectMeta{Project: "shop", Name: "web"},
		Spec: api.ServiceSpec{Image: "nginx:1", Env: []api.EnvVar{{Name: "DB_PASSWORD", Value: "s3cr3t-in-spec"}}}})
	mustDo("create service", err)
	mustDo("record event", st.Events().Record(ctx, store.Event{Project: "shop", Kind: api.KindService, Name: "web", Type: store.EventNormal, Reason: "Started", Message: "replica 0 started"}))
	mustDo("record blog event", st.Events().Record(ctx, store.Event{Project: "blog", Kind: api.KindProject, Name: "blog", Type: store.EventNormal, Reason: "Created", Message: "hello"}))

	// as runs query as role with the JWT claims of sub, as PostgREST does:
	// SET LOCAL ROLE and request.jwt.claims inside a transaction.
	as := func(role, sub, query string) ([]string, error) {
		t.Helper()
		tx, err := admin.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx) //nolint:errcheck // read only
		claims, _ := json.Marshal(map[string]string{"sub": sub, "role": role})
		if _, err := tx.Exec(ctx, `SELECT set_config('request.jwt.claims', $1, true)`, string(claims)); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "SET LOCAL ROLE "+role); err != nil {
			t.Fatal(err)
		}
		rows, err := tx.Query(ctx, query)
		if err != nil {
			return nil, err
		}
		var out []string
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				return nil, err
			}
			out = append(out, fmt.Sprint(vals...))
		}
		slices.Sort(out)
		return out, rows.Err()
	}
	want := func(who, role, sub, query string, rows ...string) {
		t.Helper()
		got, err := as(role, sub, query)
		if err != nil {
			t.Errorf("%s: %s: %v", who, query, err)
			return
		}
		if !slices.Equal(got, rows) {
			t.Errorf("%s: %s = %q, want %q", who, query, got, rows)
		}
	}
	refused := func(who, role, sub, query string) {
		t.Helper()
		if got, err := as(role, sub, query); err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("%s: %s = %q, %v; want permission denied", who, query, got, err)
		}
	}

	want("alice", "authenticated", aliceID, `SELECT name FROM panelx.projects`, "shop")
	want("alice", "authenticated", aliceID, `SELECT project || '/' || name FROM panelx.services`, "shop/web")
	want("alice", "authenticated", aliceID, `SELECT reason FROM panelx.events`, "Started")
	want("alice", "authenticated", aliceID, `SELECT role FROM panelx.project_members`, "owner")
	want("bob", "authenticated", bobID, `SELECT name FROM panelx.projects`, "blog")
	want("bob", "authenticated", bobID, `SELECT name FROM panelx.services`)
	want("bob", "authenticated", bobID, `SELECT reason FROM panelx.events`, "Created")
	want("a stranger", "authenticated", "0b2a7a0e-6a5b-4c36-9d2c-7e9d2f1a0003", `SELECT name FROM panelx.projects`)
	refused("anon", "anon", "", `SELECT name FROM panelx.projects`)
	for _, q := range []string{
		`SELECT spec FROM panelx.services`, `SELECT annotations FROM panelx.services`, `SELECT spec FROM panelx.volumes`,
		`SELECT * FROM panelx.secrets`, `SELECT * FROM panelx.api_tokens`, `SELECT * FROM panelx.registry_credentials`,
		`SELECT * FROM panelx.revisions`, `SELECT * FROM panelx.tls_certificates`, `SELECT * FROM panelx.certmagic_data`,
		// Writes go through PanelX's API only.
		`INSERT INTO panelx.projects (name) VALUES ('mine')`, `UPDATE panelx.services SET status = '{}'`,
		`DELETE FROM panelx.events`, `INSERT INTO panelx.project_members (project, user_id, role) VALUES ('blog', '` + aliceID + `', 'owner')`,
	} {
		refused("alice", "authenticated", aliceID, q)
	}

	// Realtime: a status change is published, the spec never is (pgoutput,
	// the plugin of logical replication, honours the publication's column
	// lists).
	if _, err := admin.Exec(ctx, `SELECT pg_create_logical_replication_slot('panelx_test', 'pgoutput')`); err != nil {
		t.Fatal(err)
	}
	defer admin.Exec(ctx, `SELECT pg_drop_replication_slot('panelx_test')`) //nolint:errcheck // the server goes with the test
	web.Status.Phase = api.PhaseReady
	web.Status.ReadyReplicas = 1
	_, err = st.Services().UpdateStatus(ctx, web)
	mustDo("update status", err)
	var changes []byte
	rows, err := admin.Query(ctx, `SELECT data FROM pg_logical_slot_peek_binary_changes('panelx_test', NULL, NULL,
		'proto_version', '1', 'publication_names', 'supabase_realtime')`)
	mustDo("read the slot", err)
	for rows.Next() {
		var b []byte
		mustDo("scan", rows.Scan(&b))
		changes = append(changes, b...)
	}
	mustDo("rows", rows.Err())
	if !strings.Contains(string(changes), `"phase": "Ready"`) && !strings.Contains(string(changes), `"phase":"Ready"`) {
		t.Errorf("the status change was not published (%d bytes read)", len(changes))
	}
	if strings.Contains(string(changes), "s3cr3t-in-spec") {
		t.Error("the publication carried the service's spec")
	}
}
