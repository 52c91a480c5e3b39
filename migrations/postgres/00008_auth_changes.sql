-- Memberships and API tokens on the change feed: every server caches
-- verified tokens and roles in memory and drops them when these notices
-- arrive (apiserver/authz/cache.go), so a revoked token or a removed member
-- stops working everywhere at once. Tokens notify on what authenticates
-- (not on last_used_at, written once a minute per token).

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION panelx.notify_auth_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r jsonb;
BEGIN
    IF TG_OP = 'DELETE' THEN
        r := to_jsonb(OLD);
    ELSE
        r := to_jsonb(NEW);
    END IF;
    PERFORM pg_notify('panelx_changes', jsonb_build_object(
        'op', lower(TG_OP),
        'kind', TG_ARGV[0],
        'project', CASE WHEN TG_ARGV[0] = 'Member' THEN r ->> 'project' ELSE '' END,
        'name', CASE WHEN TG_ARGV[0] = 'Member' THEN r ->> 'user_id' ELSE r ->> 'id' END,
        'ts', (extract(epoch FROM clock_timestamp()) * 1000000)::bigint)::text);
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER notify_auth_change AFTER INSERT OR UPDATE OR DELETE ON panelx.project_members
    FOR EACH ROW EXECUTE FUNCTION panelx.notify_auth_change('Member');
CREATE TRIGGER notify_auth_change AFTER INSERT OR DELETE OR UPDATE OF user_id, project, expires_at, hash ON panelx.api_tokens
    FOR EACH ROW EXECUTE FUNCTION panelx.notify_auth_change('APIToken');

-- +goose Down
DROP TRIGGER notify_auth_change ON panelx.api_tokens;
DROP TRIGGER notify_auth_change ON panelx.project_members;
DROP FUNCTION panelx.notify_auth_change();
