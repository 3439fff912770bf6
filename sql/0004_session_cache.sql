-- Each instance caches live sessions in memory; these notifications (on the same channel as node
-- revisions) tell every instance when a session ends or its user changes, so none trusts a stale one.

CREATE FUNCTION hp_notify_session_end() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('hp_nodes_' || left(md5(TG_TABLE_SCHEMA), 16), 's:' || encode(OLD.token_hash, 'hex'));
    RETURN NULL;
END
$$;

CREATE TRIGGER sessions_end_notify
    AFTER DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION hp_notify_session_end();

CREATE FUNCTION hp_notify_user_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('hp_nodes_' || left(md5(TG_TABLE_SCHEMA), 16), 'u:' || NEW.id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER users_change_notify
    AFTER UPDATE OF role, disabled, login ON users
    FOR EACH ROW WHEN (OLD.role IS DISTINCT FROM NEW.role
                       OR OLD.disabled IS DISTINCT FROM NEW.disabled
                       OR OLD.login IS DISTINCT FROM NEW.login)
    EXECUTE FUNCTION hp_notify_user_change();
