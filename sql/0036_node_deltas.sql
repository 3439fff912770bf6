-- Incremental node state: which of a node's sites changed at which revision, so `node_sync`
-- with `delta` can answer only those (and the ids of sites removed) instead of the whole state.
--
-- One row per site ever seen on a node: `revision` is the node revision that last changed the
-- site (its row, its domains, its domains' certificates); `deleted` marks a tombstone, a site
-- that is gone. Tombstones are purged after a while; `nodes.delta_floor` is then raised to the
-- newest revision purged, and a `since` below it gets the full state again.
--
-- Maintained by triggers, so no code path can forget it: statement triggers on `sites` and
-- `domains` (and a row trigger on certificates' chains) mark the touched sites with a NULL
-- revision, and a deferred trigger stamps each mark at commit with the node's revision as the
-- transaction leaves it. A change bumps its node's revision under the node's row lock in the
-- same transaction, in whatever order its statements run, so the stamp is the revision that
-- carries the change. Nothing outside the transaction ever sees a NULL revision.

ALTER TABLE nodes ADD COLUMN delta_floor bigint NOT NULL DEFAULT 0;

CREATE TABLE site_changes (
    node_id    integer NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    site_num   integer NOT NULL,
    revision   bigint,
    deleted    boolean NOT NULL DEFAULT false,
    changed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (node_id, site_num)
);
-- A delta reads a node's changes above `since` by this index: its cost follows the changes, not
-- the node's size.
CREATE INDEX site_changes_revision ON site_changes (node_id, revision);
-- The janitor finds old tombstones by this one.
CREATE INDEX site_changes_tombstones ON site_changes (changed_at) WHERE deleted;

-- What exists today counts as changed at the site's own revision; no tombstones of sites deleted
-- before are known, so every older `since` gets the full state.
INSERT INTO site_changes (node_id, site_num, revision)
SELECT node_id, site_num, revision FROM sites;
UPDATE nodes SET delta_floor = revision;

-- Marks the sites a statement on `sites` or `domains` touched (both before and after an update).
CREATE FUNCTION hp_mark_site_changes() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO site_changes AS c (node_id, site_num, revision)
        SELECT DISTINCT node_id, site_num, NULL::bigint FROM new_rows
        ON CONFLICT (node_id, site_num) DO UPDATE SET revision = NULL
         WHERE c.revision IS NOT NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO site_changes AS c (node_id, site_num, revision)
        SELECT DISTINCT o.node_id, o.site_num, NULL::bigint FROM old_rows o
         WHERE EXISTS (SELECT 1 FROM nodes n WHERE n.id = o.node_id)
        ON CONFLICT (node_id, site_num) DO UPDATE SET revision = NULL
         WHERE c.revision IS NOT NULL;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER sites_mark_insert AFTER INSERT ON sites
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION hp_mark_site_changes();
CREATE TRIGGER sites_mark_update AFTER UPDATE ON sites
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hp_mark_site_changes();
CREATE TRIGGER sites_mark_delete AFTER DELETE ON sites
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION hp_mark_site_changes();
CREATE TRIGGER domains_mark_insert AFTER INSERT ON domains
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION hp_mark_site_changes();
CREATE TRIGGER domains_mark_update AFTER UPDATE ON domains
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hp_mark_site_changes();
CREATE TRIGGER domains_mark_delete AFTER DELETE ON domains
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION hp_mark_site_changes();

-- A site domain's certificate (or key) that comes or changes re-renders its site. Row level:
-- the lease updates certificate rows often, and only these columns matter.
CREATE FUNCTION hp_mark_certificate_site() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO site_changes AS c (node_id, site_num, revision)
    SELECT d.node_id, d.site_num, NULL::bigint FROM domains d WHERE d.name = NEW.domain
    ON CONFLICT (node_id, site_num) DO UPDATE SET revision = NULL
     WHERE c.revision IS NOT NULL;
    RETURN NULL;
END $$;

CREATE TRIGGER certificates_mark_site AFTER INSERT OR UPDATE OF cert_pem, key_sealed ON certificates
    FOR EACH ROW WHEN (NEW.node_id IS NULL) EXECUTE FUNCTION hp_mark_certificate_site();

-- At commit: the mark gets the node's revision, and becomes a tombstone when the site is gone.
CREATE FUNCTION hp_stamp_site_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE site_changes c
       SET revision = n.revision,
           deleted = NOT EXISTS (SELECT 1 FROM sites s
                                  WHERE s.node_id = c.node_id AND s.site_num = c.site_num),
           changed_at = now()
      FROM nodes n
     WHERE c.node_id = NEW.node_id AND c.site_num = NEW.site_num AND c.revision IS NULL
       AND n.id = c.node_id;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER site_changes_stamp AFTER INSERT OR UPDATE ON site_changes
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.revision IS NULL) EXECUTE FUNCTION hp_stamp_site_change();
