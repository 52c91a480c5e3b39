-- The edge: hostname claims, what edges report, certificate status, uploaded
-- certificates, and certmagic's shared storage (certificates, ACME account,
-- locks) so that several edges never order the same certificate twice.

-- +goose Up

-- A hostname belongs to one service on the whole server. The rows follow
-- the services' specs through triggers, so a service written straight in
-- SQL claims its hostnames like one written through the API.
CREATE TABLE panelx.hostnames (
    host    text NOT NULL PRIMARY KEY CHECK (host <> '' AND length(host) <= 253),
    project text NOT NULL,
    service text NOT NULL,
    FOREIGN KEY (project, service) REFERENCES panelx.services (project, name) ON DELETE CASCADE
);
CREATE INDEX hostnames_service ON panelx.hostnames (project, service);

-- claim_hostnames replaces the claims of one service with the hostnames
-- of its spec: each domain's host, or <service>.<project domain> for a
-- domain without one. A hostname another service holds is refused with the
-- shape of the primary key's own violation (so a race between two writers
-- reads the same): the other service is named only within its own project.
-- +goose StatementBegin
CREATE FUNCTION panelx.claim_hostnames(p_project text, p_service text, p_spec jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    pdomain text;
    h       text;
    holder  record;
BEGIN
    SELECT spec ->> 'domain' INTO pdomain FROM panelx.projects WHERE name = p_project;
    DELETE FROM panelx.hostnames WHERE project = p_project AND service = p_service;
    FOR h IN
        SELECT DISTINCT lower(CASE
                WHEN COALESCE(d ->> 'host', '') <> '' THEN d ->> 'host'
                WHEN COALESCE(pdomain, '') <> '' THEN p_service || '.' || pdomain
            END)
        FROM jsonb_array_elements(CASE WHEN jsonb_typeof(p_spec -> 'domains') = 'array'
                                       THEN p_spec -> 'domains' ELSE '[]'::jsonb END) AS d
    LOOP
        CONTINUE WHEN h IS NULL;
        SELECT project, service INTO holder FROM panelx.hostnames WHERE host = h;
        IF FOUND THEN
            RAISE EXCEPTION 'hostname % is already in use', h
                USING ERRCODE = 'unique_violation', CONSTRAINT = 'hostnames_pkey',
                      DETAIL = 'Key (host)=(' || h || ') already exists.',
                      HINT = CASE WHEN holder.project = p_project THEN holder.service ELSE '' END;
        END IF;
        INSERT INTO panelx.hostnames (host, project, service) VALUES (h, p_project, p_service);
    END LOOP;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION panelx.service_hostnames() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.spec -> 'domains' IS DISTINCT FROM OLD.spec -> 'domains' THEN
        PERFORM panelx.claim_hostnames(NEW.project, NEW.name, NEW.spec);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER service_hostnames AFTER INSERT OR UPDATE ON panelx.services
    FOR EACH ROW EXECUTE FUNCTION panelx.service_hostnames();

-- A project's new domain moves the default hostnames of its services.
-- +goose StatementBegin
CREATE FUNCTION panelx.project_hostnames() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    s record;
BEGIN
    IF NEW.spec ->> 'domain' IS DISTINCT FROM OLD.spec ->> 'domain' THEN
        FOR s IN SELECT name, spec FROM panelx.services WHERE project = NEW.name ORDER BY name LOOP
            PERFORM panelx.claim_hostnames(NEW.name, s.name, s.spec);
        END LOOP;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER project_hostnames AFTER UPDATE ON panelx.projects
    FOR EACH ROW EXECUTE FUNCTION panelx.project_hostnames();

-- touch_host_service tells the service that claims a hostname to look
-- again (its status shows the certificate): a change with no spec or
-- status flag, which watchers read as "re-read this object".
-- +goose StatementBegin
CREATE FUNCTION panelx.touch_host_service(h text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    s record;
BEGIN
    SELECT sv.project, sv.name, sv.uid, sv.resource_version INTO s
    FROM panelx.hostnames hn JOIN panelx.services sv ON sv.project = hn.project AND sv.name = hn.service
    WHERE hn.host = h;
    IF FOUND THEN
        PERFORM pg_notify('panelx_changes', jsonb_build_object(
            'op', 'touch', 'kind', 'Service', 'project', s.project, 'name', s.name, 'uid', s.uid,
            'rv', s.resource_version, 'spec', false, 'status', false, 'deleting', false,
            'ts', (extract(epoch FROM clock_timestamp()) * 1000000)::bigint)::text);
    END IF;
END
$$;
-- +goose StatementEnd

-- What each edge last reported: the replica addresses it routes to and
-- those it still drains. The controller stops a replica only once no live
-- edge sends it requests.
CREATE TABLE panelx.edges (
    id      text        PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9._-]{1,64}$'),
    name    text        NOT NULL CHECK (length(name) <= 253),
    report  jsonb       NOT NULL DEFAULT '{}',
    seen_at timestamptz NOT NULL DEFAULT now()
);

-- The certificate state of each hostname, as the edges report it.
CREATE TABLE panelx.certificate_status (
    host       text        PRIMARY KEY CHECK (host <> '' AND length(host) <= 253),
    status     jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Certificates users upload for a hostname of their project, served instead
-- of an ACME certificate. The private key is write-only through the API.
CREATE TABLE panelx.tls_certificates (
    host        text        PRIMARY KEY CHECK (host <> '' AND length(host) <= 253),
    project     text        NOT NULL REFERENCES panelx.projects (name) ON DELETE CASCADE,
    certificate text        NOT NULL,
    private_key text        NOT NULL,
    not_after   timestamptz NOT NULL,
    issuer      text        NOT NULL DEFAULT '',
    dns_names   jsonb       NOT NULL DEFAULT '[]',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tls_certificates_project ON panelx.tls_certificates (project);

-- +goose StatementBegin
CREATE FUNCTION panelx.touch_for_host() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM panelx.touch_host_service(OLD.host);
    ELSE
        PERFORM panelx.touch_host_service(NEW.host);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER touch_for_host AFTER INSERT OR UPDATE OR DELETE ON panelx.certificate_status
    FOR EACH ROW EXECUTE FUNCTION panelx.touch_for_host();
CREATE TRIGGER touch_for_host AFTER INSERT OR UPDATE OR DELETE ON panelx.tls_certificates
    FOR EACH ROW EXECUTE FUNCTION panelx.touch_for_host();

-- certmagic's storage (edge/certstore): keys are paths such as
-- certificates/<ca>/<host>/<host>.crt; locks expire so a crashed edge
-- never blocks the others for long.
CREATE TABLE panelx.certmagic_data (
    key      text        PRIMARY KEY,
    value    bytea       NOT NULL,
    modified timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE panelx.certmagic_locks (
    key     text        PRIMARY KEY,
    expires timestamptz NOT NULL
);

-- +goose Down
DROP TABLE panelx.certmagic_locks;
DROP TABLE panelx.certmagic_data;
DROP TRIGGER touch_for_host ON panelx.tls_certificates;
DROP TRIGGER touch_for_host ON panelx.certificate_status;
DROP TABLE panelx.tls_certificates;
DROP TABLE panelx.certificate_status;
DROP TABLE panelx.edges;
DROP FUNCTION panelx.touch_for_host();
DROP FUNCTION panelx.touch_host_service(text);
DROP TRIGGER project_hostnames ON panelx.projects;
DROP FUNCTION panelx.project_hostnames();
DROP TRIGGER service_hostnames ON panelx.services;
DROP FUNCTION panelx.service_hostnames();
DROP FUNCTION panelx.claim_hostnames(text, text, jsonb);
DROP TABLE panelx.hostnames;
