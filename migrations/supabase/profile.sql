-- The Supabase profile of PanelX's schema: what a dashboard signed in to
-- Supabase (supabase-js, under the user's own JWT) may read, and what
-- Realtime publishes. Applied by `panelx migrate --supabase` (or a server
-- with PANELX_SUPABASE=true) after the numbered migrations, every time:
-- each statement leaves the same state however often it runs.
--
-- The browser reads the resource tables themselves, under RLS, through
-- column grants that leave out everything that may hold a secret: a
-- service's spec (env values), a volume's spec (driver options such as a
-- CIFS password), annotations. Secrets, API tokens, registry credentials,
-- revisions (spec snapshots), certificates and the edge's tables get no
-- grant at all. Writes go through PanelX's API only: no write grant.

DO $$
BEGIN
  IF to_regprocedure('auth.uid()') IS NULL
     OR NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated')
     OR NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN
    RAISE EXCEPTION 'not a Supabase database: auth.uid() or the roles authenticated and anon are missing';
  END IF;
END
$$;

-- The membership check, in a schema the API does not expose. SECURITY
-- DEFINER reads project_members without its own policy (no recursion);
-- the empty search_path keeps a caller's objects out of it.
CREATE SCHEMA IF NOT EXISTS panelx_private;
REVOKE ALL ON SCHEMA panelx_private FROM PUBLIC;
GRANT USAGE ON SCHEMA panelx_private TO authenticated;

CREATE OR REPLACE FUNCTION panelx_private.is_member(p_project text)
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = ''
AS $fn$
  SELECT EXISTS (
    SELECT 1 FROM panelx.project_members m
    WHERE m.project = p_project AND m.user_id = (SELECT auth.uid())::text
  )
$fn$;
REVOKE ALL ON FUNCTION panelx_private.is_member(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION panelx_private.is_member(text) TO authenticated;

-- Grants: from nothing, every time (revoking a table's privileges revokes
-- its column privileges too).
GRANT USAGE ON SCHEMA panelx TO authenticated;
REVOKE ALL ON SCHEMA panelx FROM anon;
REVOKE ALL ON ALL TABLES IN SCHEMA panelx FROM anon, authenticated;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA panelx FROM anon, authenticated;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA panelx FROM anon, authenticated;

GRANT SELECT (uid, name, labels, spec, status, generation, resource_version, created_at, deletion_timestamp)
  ON panelx.projects TO authenticated;
GRANT SELECT (uid, project, name, labels, status, generation, resource_version, created_at, deletion_timestamp)
  ON panelx.services TO authenticated;
GRANT SELECT (uid, project, name, labels, status, generation, resource_version, created_at, deletion_timestamp)
  ON panelx.volumes TO authenticated;
GRANT SELECT ON panelx.events TO authenticated;
GRANT SELECT ON panelx.project_members TO authenticated;

-- Row level security: a row is visible to the members of its project
-- (a project's own row by its name, the others by their project column).
DO $$
DECLARE
  t record;
BEGIN
  FOR t IN SELECT * FROM (VALUES ('projects', 'name'), ('services', 'project'), ('volumes', 'project'),
                                 ('events', 'project'), ('project_members', 'project')) AS v(name, col)
  LOOP
    EXECUTE format('ALTER TABLE panelx.%I ENABLE ROW LEVEL SECURITY', t.name);
    EXECUTE format('DROP POLICY IF EXISTS panelx_members_read ON panelx.%I', t.name);
    EXECUTE format('CREATE POLICY panelx_members_read ON panelx.%I FOR SELECT TO authenticated '
                   'USING ((SELECT panelx_private.is_member(%I)))', t.name, t.col);
  END LOOP;
END
$$;

-- Realtime: the same tables, with column lists that match the grants, so
-- a spec never even reaches the publication. (Re-added each time so that
-- a changed column list applies.)
DO $$
DECLARE
  t record;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'supabase_realtime') THEN
    RAISE NOTICE 'no supabase_realtime publication: Realtime will not see PanelX''s tables';
    RETURN;
  END IF;
  FOR t IN SELECT * FROM (VALUES
      ('projects', '(uid, name, labels, spec, status, generation, resource_version, created_at, deletion_timestamp)'),
      ('services', '(uid, project, name, labels, status, generation, resource_version, created_at, deletion_timestamp)'),
      ('volumes', '(uid, project, name, labels, status, generation, resource_version, created_at, deletion_timestamp)'),
      ('events', ''),
      ('project_members', '')) AS v(name, cols)
  LOOP
    IF EXISTS (SELECT 1 FROM pg_publication_tables
               WHERE pubname = 'supabase_realtime' AND schemaname = 'panelx' AND tablename = t.name) THEN
      EXECUTE format('ALTER PUBLICATION supabase_realtime DROP TABLE panelx.%I', t.name);
    END IF;
    EXECUTE format('ALTER PUBLICATION supabase_realtime ADD TABLE panelx.%I %s', t.name, t.cols);
  END LOOP;
END
$$;
