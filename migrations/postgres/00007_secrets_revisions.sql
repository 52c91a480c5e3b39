-- Secrets and revisions.
--
-- A secret is a resource like a volume (same columns, same triggers, so its
-- changes are NOTIFYed), whose values are sealed by the API before they are
-- written (see api/secret.go): a spec with plaintext data is refused here
-- too, so no bug and no raw write can store it in the clear.
--
-- A revision is one immutable, numbered template of a service. Revisions
-- belong to the service's row (its uid, not its name): removing the row
-- takes them along, and a service re-created under the same name starts
-- again at revision 1.

-- +goose Up
CREATE TABLE panelx.secrets (
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
    UNIQUE (project, name),
    CONSTRAINT secrets_sealed_only CHECK (COALESCE(spec -> 'data', '{}') IN ('{}', 'null'))
);

CREATE TRIGGER before_write BEFORE INSERT OR UPDATE ON panelx.secrets
    FOR EACH ROW EXECUTE FUNCTION panelx.before_write();
CREATE TRIGGER notify_change AFTER INSERT OR UPDATE OR DELETE ON panelx.secrets
    FOR EACH ROW EXECUTE FUNCTION panelx.notify_change('Secret');

-- project and service repeat the service row's key (which never changes)
-- so a revision reads on its own.
CREATE TABLE panelx.revisions (
    service_uid     uuid        NOT NULL REFERENCES panelx.services (uid) ON DELETE CASCADE,
    project         text        NOT NULL,
    service         text        NOT NULL,
    number          bigint      NOT NULL CHECK (number > 0),
    template_hash   text        NOT NULL,
    spec            jsonb       NOT NULL DEFAULT '{}',
    image_id        text        NOT NULL DEFAULT '',
    image_digest    text        NOT NULL DEFAULT '',
    secret_versions jsonb       NOT NULL DEFAULT '{}',
    cause           jsonb       NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    ready_at        timestamptz,
    PRIMARY KEY (service_uid, number)
);

-- A revision is immutable: only ready_at may be set, once.
-- +goose StatementBegin
CREATE FUNCTION panelx.revision_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (to_jsonb(NEW) - 'ready_at') IS DISTINCT FROM (to_jsonb(OLD) - 'ready_at')
       OR (OLD.ready_at IS NOT NULL AND NEW.ready_at IS DISTINCT FROM OLD.ready_at) THEN
        RAISE EXCEPTION 'a revision cannot change, except to be marked ready once'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER revision_guard BEFORE UPDATE ON panelx.revisions
    FOR EACH ROW EXECUTE FUNCTION panelx.revision_guard();

-- +goose Down
DROP TABLE panelx.revisions;
DROP FUNCTION panelx.revision_guard();
DROP TABLE panelx.secrets;
