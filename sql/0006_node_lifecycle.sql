-- A node's token dying (rotated, or the node deleted) wakes the polls waiting with it, on every
-- instance, so they end with auth_required instead of serving the next change to an old token.
CREATE FUNCTION hp_notify_node_token() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('hp_nodes_' || left(md5(TG_TABLE_SCHEMA), 16), 'k:' || OLD.id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER nodes_token_notify
    AFTER UPDATE OF token_hash OR DELETE ON nodes
    FOR EACH ROW EXECUTE FUNCTION hp_notify_node_token();

-- The next site number of deleted nodes, so a node id added again never hands out a number an
-- earlier tenant had (and with it that tenant's folder on the server).
CREATE TABLE retired_nodes (
    id         integer PRIMARY KEY,
    next_site  integer NOT NULL
);
