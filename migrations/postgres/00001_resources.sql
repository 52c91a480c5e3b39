-- PanelX's desired state and status. Everything lives in the "panelx" schema,
-- which Supabase's PostgREST does not expose unless asked to.

-- +goose Up
CREATE SEQUENCE panelx.resource_version_seq;

CREATE TABLE panelx.projects (
    uid                uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name               text        NOT NULL UNIQUE
                                   CHECK (name ~ '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' AND length(name) <= 63),
    labels             jsonb       NOT NULL DEFAULT '{}',
    annotations        jsonb       NOT NULL DEFAULT '{}',
    spec               jsonb       NOT NULL DEFAULT '{}',
    status             jsonb       NOT NULL DEFAULT '{}',
    generation         bigint      NOT NULL DEFAULT 1,
    resource_version   bigint      NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL DEFAULT now(),
    deletion_timestamp timestamptz
);

CREATE TABLE panelx.services (
    uid                uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    project            text        NOT NULL REFERENCES panelx.projects (name) ON DELETE CASCADE,
    name               text        NOT NULL
                                   CHECK (name ~ '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' AND length(name) <= 63),
    labels             jsonb       NOT NULL DEFAULT '{}',
    annotations        jsonb       NOT NULL DEFAULT '{}',
    spec               jsonb       NOT NULL DEFAULT '{}',
    status             jsonb       NOT NULL DEFAULT '{}',
    generation         bigint      NOT NULL DEFAULT 1,
    resource_version   bigint      NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL DEFAULT now(),
    deletion_timestamp timestamptz,
    UNIQUE (project, name)
);

CREATE TABLE panelx.volumes (
    uid                uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    project            text        NOT NULL REFERENCES panelx.projects (name) ON DELETE CASCADE,
    name               text        NOT NULL
                                   CHECK (name ~ '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' AND length(name) <= 63),
    labels             jsonb       NOT NULL DEFAULT '{}',
    annotations        jsonb       NOT NULL DEFAULT '{}',
    spec               jsonb       NOT NULL DEFAULT '{}',
    status             jsonb       NOT NULL DEFAULT '{}',
    generation         bigint      NOT NULL DEFAULT 1,
    resource_version   bigint      NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL DEFAULT now(),
    deletion_timestamp timestamptz,
    UNIQUE (project, name)
);

CREATE TABLE panelx.project_members (
    project    text        NOT NULL REFERENCES panelx.projects (name) ON DELETE CASCADE,
    user_id    text        NOT NULL CHECK (user_id <> ''),
    role       text        NOT NULL CHECK (role IN ('owner', 'admin', 'editor', 'viewer')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project, user_id)
);
CREATE INDEX project_members_user ON panelx.project_members (user_id);

CREATE TABLE panelx.events (
    id              bigserial   PRIMARY KEY,
    project         text        NOT NULL REFERENCES panelx.projects (name) ON DELETE CASCADE,
    kind            text        NOT NULL,
    name            text        NOT NULL,
    type            text        NOT NULL CHECK (type IN ('Normal', 'Warning')),
    reason          text        NOT NULL,
    message         text        NOT NULL,
    count           integer     NOT NULL DEFAULT 1,
    first_timestamp timestamptz NOT NULL DEFAULT now(),
    last_timestamp  timestamptz NOT NULL DEFAULT now()
);
-- Repeats of an event raise its count (see store/postgres events.go).
CREATE UNIQUE INDEX events_dedup ON panelx.events (project, kind, name, type, reason, md5(message));
CREATE INDEX events_recent ON panelx.events (project, last_timestamp DESC);

-- Server-side bookkeeping on every write, so rows written straight in SQL
-- (a Supabase dashboard, supabase-js) follow the same rules as the API:
-- resource_version rises on every write, generation only on spec changes,
-- uid, name and creation time never change, and deletion cannot be undone.
-- +goose StatementBegin
CREATE FUNCTION panelx.before_write() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.resource_version := nextval('panelx.resource_version_seq');
    IF TG_OP = 'INSERT' THEN
        NEW.generation := 1;
        RETURN NEW;
    END IF;
    IF NEW.uid IS DISTINCT FROM OLD.uid OR NEW.name IS DISTINCT FROM OLD.name
       OR to_jsonb(NEW) -> 'project' IS DISTINCT FROM to_jsonb(OLD) -> 'project' THEN
        RAISE EXCEPTION 'uid, project and name of a PanelX resource cannot change'
            USING ERRCODE = 'check_violation';
    END IF;
    NEW.created_at := OLD.created_at;
    NEW.deletion_timestamp := COALESCE(OLD.deletion_timestamp, NEW.deletion_timestamp);
    IF NEW.spec IS DISTINCT FROM OLD.spec THEN
        NEW.generation := OLD.generation + 1;
    ELSE
        NEW.generation := OLD.generation;
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd

-- Every change becomes a small NOTIFY (far below the 8000-byte limit): which
-- object, its resource version, and what changed. Notifications are
-- delivered in commit order; listeners read the current row themselves.
-- +goose StatementBegin
CREATE FUNCTION panelx.notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r       jsonb;
    payload jsonb;
BEGIN
    IF TG_OP = 'DELETE' THEN
        r := to_jsonb(OLD);
        payload := jsonb_build_object('op', 'delete');
    ELSE
        r := to_jsonb(NEW);
        payload := jsonb_build_object(
            'op', lower(TG_OP),
            'spec', TG_OP = 'INSERT' OR NEW.spec IS DISTINCT FROM OLD.spec,
            'status', TG_OP = 'UPDATE' AND NEW.status IS DISTINCT FROM OLD.status,
            'deleting', NEW.deletion_timestamp IS NOT NULL
                    AND (TG_OP = 'INSERT' OR OLD.deletion_timestamp IS NULL));
    END IF;
    payload := payload || jsonb_build_object(
        'kind', TG_ARGV[0],
        'project', COALESCE(r ->> 'project', ''),
        'name', r ->> 'name',
        'uid', r ->> 'uid',
        'rv', (r ->> 'resource_version')::bigint,
        'ts', (extract(epoch FROM clock_timestamp()) * 1000000)::bigint);
    PERFORM pg_notify('panelx_changes', payload::text);
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER before_write BEFORE INSERT OR UPDATE ON panelx.projects
    FOR EACH ROW EXECUTE FUNCTION panelx.before_write();
CREATE TRIGGER before_write BEFORE INSERT OR UPDATE ON panelx.services
    FOR EACH ROW EXECUTE FUNCTION panelx.before_write();
CREATE TRIGGER before_write BEFORE INSERT OR UPDATE ON panelx.volumes
    FOR EACH ROW EXECUTE FUNCTION panelx.before_write();

CREATE TRIGGER notify_change AFTER INSERT OR UPDATE OR DELETE ON panelx.projects
    FOR EACH ROW EXECUTE FUNCTION panelx.notify_change('Project');
CREATE TRIGGER notify_change AFTER INSERT OR UPDATE OR DELETE ON panelx.services
    FOR EACH ROW EXECUTE FUNCTION panelx.notify_change('Service');
CREATE TRIGGER notify_change AFTER INSERT OR UPDATE OR DELETE ON panelx.volumes
    FOR EACH ROW EXECUTE FUNCTION panelx.notify_change('Volume');

-- +goose Down
DROP TABLE panelx.events;
DROP TABLE panelx.project_members;
DROP TABLE panelx.volumes;
DROP TABLE panelx.services;
DROP TABLE panelx.projects;
DROP FUNCTION panelx.notify_change();
DROP FUNCTION panelx.before_write();
DROP SEQUENCE panelx.resource_version_seq;
