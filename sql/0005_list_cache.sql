-- Instances cache pages of get_node_list; these notifications (same channel) tell every instance
-- when nodes or grants change. Domain pages are invalidated by the node revision notifications.

CREATE FUNCTION hp_notify_nodes_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('hp_nodes_' || left(md5(TG_TABLE_SCHEMA), 16), 'g:');
    RETURN NULL;
END
$$;

CREATE TRIGGER nodes_change_notify
    AFTER INSERT OR DELETE OR UPDATE OF id, name, address, public ON nodes
    FOR EACH STATEMENT EXECUTE FUNCTION hp_notify_nodes_change();

CREATE TRIGGER node_grants_change_notify
    AFTER INSERT OR DELETE OR UPDATE ON node_grants
    FOR EACH STATEMENT EXECUTE FUNCTION hp_notify_nodes_change();
