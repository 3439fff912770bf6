-- DNS zones served live by PowerDNS (generic PostgreSQL backend). Nodes may serve `dns` and
-- gain public addresses; a user claims zones like site and mail domains; records are kept per
-- zone; PowerDNS reads the `dns_*` views below (the queries `hostplane dns-config` writes name
-- them), where hostplane adds its managed records: SOA and NS from the DNS nodes, and A/AAAA for
-- every active site domain in the zone, pointing at its node. Lock order: zones and
-- zone_records come after every other table (their serial is bumped by triggers at the end of
-- a change).

ALTER TABLE nodes DROP CONSTRAINT IF EXISTS nodes_kinds_check;
ALTER TABLE nodes ADD CONSTRAINT nodes_kinds_check
    CHECK (cardinality(kinds) > 0 AND kinds <@ ARRAY['web', 'mail', 'dns']);
ALTER TABLE nodes ADD COLUMN ipv4 inet CHECK (family(ipv4) = 4),
                  ADD COLUMN ipv6 inet CHECK (family(ipv6) = 6);
CREATE INDEX nodes_dns ON nodes (id) WHERE 'dns' = ANY (kinds);

CREATE TABLE zones (
    -- PowerDNS's domain_id.
    id          serial PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (name = lower(name)),
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The SOA serial: moves with every change of the zone's records, managed ones included.
    serial      bigint NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX zones_user ON zones (user_id, name);
CREATE INDEX zones_reverse ON zones (reverse(name) COLLATE "C");

CREATE TABLE zone_records (
    id          bigserial PRIMARY KEY,
    zone_id     integer NOT NULL REFERENCES zones (id) ON DELETE CASCADE,
    -- Absolute, lowercase, without the final dot.
    name        text NOT NULL CHECK (name = lower(name)),
    type        text NOT NULL CHECK (type IN ('A', 'AAAA', 'CNAME', 'MX', 'TXT', 'SRV', 'CAA', 'NS')),
    -- As PowerDNS stores it (TXT as quoted strings of at most 255 bytes each).
    content     text NOT NULL,
    ttl         integer NOT NULL CHECK (ttl BETWEEN 60 AND 604800),
    prio        integer NOT NULL DEFAULT 0 CHECK (prio BETWEEN 0 AND 65535),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX zone_records_zone ON zone_records (zone_id, name, type);
-- The same record twice is one record (content hashed: a TXT record may be long).
CREATE UNIQUE INDEX zone_records_unique ON zone_records (zone_id, name, type, md5(content));
CREATE INDEX zone_records_name ON zone_records (name, type);

-- Every parent of a name and the name itself: 'a.b.c' -> {a.b.c, b.c, c}.
CREATE FUNCTION hp_suffixes(name text) RETURNS text[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT array_agg(array_to_string((string_to_array($1, '.'))[i:], '.') ORDER BY i)
      FROM generate_series(1, cardinality(string_to_array($1, '.'))) i
$$;

-- The zone a host name belongs to: the longest zone name that is the name or one of its parents.
CREATE FUNCTION hp_zone_of(name text) RETURNS integer
    LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
    SELECT z.id FROM zones z WHERE z.name = ANY (hp_suffixes($1))
     ORDER BY length(z.name) DESC LIMIT 1
$$;

-- The SOA serial moves with every change: of the zone's own records, of the site domains in it,
-- of the nodes they point at, and of the DNS nodes (every zone's SOA and NS).
CREATE FUNCTION hp_zone_records_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE zones SET serial = serial + 1
     WHERE id IN (SELECT zone_id FROM changed_rows);
    RETURN NULL;
END
$$;
CREATE TRIGGER zone_records_inserted AFTER INSERT ON zone_records
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION hp_zone_records_changed();
CREATE TRIGGER zone_records_updated AFTER UPDATE ON zone_records
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION hp_zone_records_changed();
CREATE TRIGGER zone_records_deleted AFTER DELETE ON zone_records
    REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION hp_zone_records_changed();

CREATE FUNCTION hp_domains_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE zones SET serial = serial + 1
     WHERE name IN (SELECT unnest(hp_suffixes(c.name)) FROM changed_rows c);
    RETURN NULL;
END
$$;
CREATE TRIGGER domains_dns_inserted AFTER INSERT ON domains
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION hp_domains_changed();
CREATE TRIGGER domains_dns_updated AFTER UPDATE ON domains
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION hp_domains_changed();
CREATE TRIGGER domains_dns_deleted AFTER DELETE ON domains
    REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION hp_domains_changed();

CREATE FUNCTION hp_nodes_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (TG_OP <> 'UPDATE' AND 'dns' = ANY (CASE TG_OP WHEN 'DELETE' THEN OLD.kinds ELSE NEW.kinds END))
       OR (TG_OP = 'UPDATE' AND ('dns' = ANY (OLD.kinds) OR 'dns' = ANY (NEW.kinds))
           AND (OLD.name, OLD.kinds, OLD.ipv4, OLD.ipv6) IS DISTINCT FROM (NEW.name, NEW.kinds, NEW.ipv4, NEW.ipv6)) THEN
        UPDATE zones SET serial = serial + 1;
    ELSIF TG_OP = 'UPDATE' AND (OLD.ipv4, OLD.ipv6) IS DISTINCT FROM (NEW.ipv4, NEW.ipv6) THEN
        UPDATE zones SET serial = serial + 1
         WHERE id IN (SELECT hp_zone_of(d.name) FROM domains d WHERE d.node_id = NEW.id);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER nodes_dns_changed AFTER INSERT OR UPDATE OR DELETE ON nodes
    FOR EACH ROW EXECUTE FUNCTION hp_nodes_changed();

-- What PowerDNS reads. Column names and types are those of its generic SQL schema.
CREATE VIEW dns_domains AS
    SELECT z.id, z.name, NULL::text AS master, NULL::integer AS last_check,
           NULL::bigint AS notified_serial, 'NATIVE'::text AS type, NULL::text AS options,
           NULL::text AS catalog, NULL::text AS account
      FROM zones z;

CREATE VIEW dns_records AS
    -- SOA: the first DNS node is the primary name server.
    SELECT concat_ws(' ',
                     coalesce((SELECT n.name FROM nodes n WHERE 'dns' = ANY (n.kinds) ORDER BY n.id LIMIT 1),
                              'localhost'),
                     'hostmaster.' || z.name, z.serial, 10800, 3600, 604800, 300) AS content,
           3600 AS ttl, 0 AS prio, 'SOA'::text AS type, z.id AS domain_id, false AS disabled,
           z.name, true AS auth, NULL::text AS ordername
      FROM zones z
    UNION ALL
    -- NS: every DNS node.
    SELECT n.name, 3600, 0, 'NS', z.id, false, z.name, true, NULL
      FROM zones z CROSS JOIN nodes n
     WHERE 'dns' = ANY (n.kinds)
    UNION ALL
    -- A and AAAA of every active site domain of the zone's owner in the zone (managed ones win
    -- over a customer's record of the same name).
    SELECT host(a.ip), 300, 0, a.type, z.id, false, d.name, true, NULL
      FROM domains d
      -- The most specific zone the name lies in (written out, not hp_zone_of: PowerDNS's role
      -- may read this view, not the zones table a function would read with its rights).
      JOIN LATERAL (SELECT best.id FROM zones best WHERE best.name = ANY (hp_suffixes(d.name))
                     ORDER BY length(best.name) DESC LIMIT 1) inner_zone ON true
      JOIN zones z ON z.id = inner_zone.id AND z.user_id = d.user_id
                      -- The zone's names, as a range of reversed names an index serves (listing).
                      AND reverse(d.name) COLLATE "C" >= reverse(z.name) COLLATE "C"
                      AND reverse(d.name) COLLATE "C" < (reverse(z.name) || '/') COLLATE "C"
      JOIN nodes n ON n.id = d.node_id
     CROSS JOIN LATERAL (VALUES ('A'::text, n.ipv4), ('AAAA'::text, n.ipv6)) a (type, ip)
     WHERE d.status = 'active' AND a.ip IS NOT NULL
    UNION ALL
    -- The zone owner's own records, but none where a managed address record stands.
    SELECT r.content, r.ttl, r.prio, r.type, r.zone_id, false, r.name, true, NULL
      FROM zone_records r
      JOIN zones z ON z.id = r.zone_id
     WHERE NOT (r.type IN ('A', 'AAAA', 'CNAME')
                AND EXISTS (SELECT 1 FROM domains d
                             WHERE d.name = r.name AND d.user_id = z.user_id AND d.status = 'active'));

-- PowerDNS asks for these; hostplane keeps none.
CREATE VIEW dns_domainmetadata AS
    SELECT NULL::integer AS domain_id, NULL::text AS kind, NULL::text AS content WHERE false;
CREATE VIEW dns_cryptokeys AS
    SELECT NULL::integer AS id, NULL::integer AS domain_id, NULL::integer AS flags,
           false AS active, false AS published, NULL::text AS content WHERE false;
CREATE VIEW dns_comments AS
    SELECT NULL::integer AS domain_id, NULL::text AS name, NULL::text AS type,
           NULL::integer AS modified_at, NULL::text AS account, NULL::text AS comment WHERE false;
CREATE VIEW dns_tsigkeys AS
    SELECT NULL::text AS name, NULL::text AS algorithm, NULL::text AS secret WHERE false;
