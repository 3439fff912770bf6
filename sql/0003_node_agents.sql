-- Node agents: a token per node (stored hashed), what the node reported applying, and a
-- notification on every revision bump so waiting agents wake up, on every instance.

ALTER TABLE nodes
    ADD COLUMN token_hash        bytea UNIQUE,
    ADD COLUMN applied_revision  bigint NOT NULL DEFAULT 0,
    -- The last revision the node failed to apply, and its message (cleared by a later success).
    ADD COLUMN error_revision    bigint,
    ADD COLUMN last_error        text,
    ADD COLUMN last_seen         timestamptz;

-- The channel is derived from the table's schema, so schemas sharing one database (tests, or
-- separate installations) do not wake each other. hostplane computes the same name at start.
CREATE FUNCTION hp_notify_node_revision() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('hp_nodes_' || left(md5(TG_TABLE_SCHEMA), 16), NEW.id::text || ':' || NEW.revision::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER nodes_revision_notify
    AFTER UPDATE OF revision ON nodes
    FOR EACH ROW WHEN (NEW.revision IS DISTINCT FROM OLD.revision)
    EXECUTE FUNCTION hp_notify_node_revision();
