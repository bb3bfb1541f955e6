-- The app caches which user a token belongs to (app/src/auth/access.rs). A token that is
-- revoked, deleted or moved must reach every replica's cache: notify `ahlt_auth` on commit.
-- Recording a use (`last_used_at`) changes nothing a cache holds and notifies nothing.
-- Users, roles and permissions live in the EAV tables, whose changes notify `ahlt_graph`.
CREATE FUNCTION ahlt_auth_notify_token() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ahlt_auth', 't:' || OLD.id);
    RETURN NULL;
END;
$$;

CREATE TRIGGER api_tokens_notify_auth
    AFTER UPDATE OF user_id, token_hash, revoked_at OR DELETE ON api_tokens
    FOR EACH ROW EXECUTE FUNCTION ahlt_auth_notify_token();
