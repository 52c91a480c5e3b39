-- A project always keeps an owner. The API checks this too, but two
-- concurrent demotions of the last two owners could each see the other
-- owner still there; this deferred trigger locks the project row and
-- checks again at commit, so the second of them fails.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION panelx.keep_an_owner() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    p text := OLD.project;
BEGIN
    -- Serialise with other membership changes of the project; a project
    -- that is gone (or going) needs no owner.
    PERFORM 1 FROM panelx.projects WHERE name = p AND deletion_timestamp IS NULL FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM panelx.project_members WHERE project = p AND role = 'owner') THEN
        RAISE EXCEPTION 'project % must keep at least one owner', p;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE CONSTRAINT TRIGGER keep_an_owner AFTER UPDATE OR DELETE ON panelx.project_members
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (OLD.role = 'owner') EXECUTE FUNCTION panelx.keep_an_owner();

-- +goose Down
DROP TRIGGER keep_an_owner ON panelx.project_members;
DROP FUNCTION panelx.keep_an_owner();
