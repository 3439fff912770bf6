-- get_changes {wait} (#20): a committed change wakes the polls waiting for it on every instance,
-- through the channel the node revisions use. One notification per owner a statement wrote
-- changes for ('f:' || user id; 'f:' for admins-only changes); PostgreSQL folds repeats within a
-- transaction and sends them at commit, so a rolled-back change wakes nobody.
CREATE FUNCTION hp_changes_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('hp_nodes_' || left(md5(TG_TABLE_SCHEMA), 16), 'f:' || coalesce(u::text, ''))
       FROM (SELECT DISTINCT user_id FROM new_rows) s (u);
    RETURN NULL;
END
$$;
CREATE TRIGGER changes_notify AFTER INSERT ON changes
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION hp_changes_notify();
