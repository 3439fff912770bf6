-- Managed mail records in the zones (#18): every served mail domain (active, not disabled) of a
-- zone's owner lying in the zone (its most specific one) has the records of get_mail_dns served
-- there: MX, SPF, every kept DKIM key, DMARC, the autoconfig/autodiscover CNAMEs and the SRV
-- records. The customer's own records cannot shadow them (hp_mail_reserved below, the rule
-- add_record and set_record apply too), and the SOA serial moves with every change of them.
--
-- dns_records gains two columns PowerDNS does not read:
--   anchor     the name a record hangs from, the one its branch finds by an index: the record's
--              own name, the zone's for SOA/NS, the site or mail domain's for managed records.
--              It is the record's name or one of its parents, so the per-name queries that
--              `hostplane dns-config` writes add `anchor = any(hp_suffixes(name))`, which every
--              branch answers by an index however many mail domains there are (a name computed
--              as '_dmarc.' || d.name could only be found by scanning them all).
--   record_id  the zone_records id of the customer's records; NULL for the managed ones.

-- The DKIM keys in DNS are those kept in mail_dkim, not only those mail_dkim_states still shows:
-- a retired key drops out of mail_dkim_states by time alone, which moves no serial; kept in DNS
-- until the janitor deletes its row (sql-driven, src/purge.rs), its record goes with a serial
-- change, and what is served only ever changes with a row. get_mail_dns shows the same.
-- Written as one lateral subquery per mail domain (the records as in sql/0021), so that a query
-- for one domain, or a join on it, reads that domain's rows by index and nothing else.
CREATE OR REPLACE VIEW mail_dns_records AS
    SELECT d.name AS domain, r.name, r.type, r.content, r.prio, d.region
      FROM mail_domains d
     CROSS JOIN LATERAL (
        SELECT d.name AS name, 'MX'::text AS type, mx.host AS content, (10 * mx.rank)::integer AS prio
          FROM (SELECT n.name AS host, row_number() OVER (ORDER BY n.id) AS rank
                  FROM nodes n WHERE 'mail' = ANY (n.kinds) AND n.region = d.region) mx
        UNION ALL
        SELECT d.name, 'TXT',
               concat_ws(' ', 'v=spf1 mx',
                         (SELECT string_agg(hp_node_spf(to_jsonb(n)), ' ' ORDER BY n.id)
                            FROM nodes n WHERE 'mail' = ANY (n.kinds) AND n.region = d.region),
                         '-all'),
               0
        UNION ALL
        -- Every key kept: the active one, one published ahead of its activation, those retiring
        -- (until the janitor deletes them, 7 days after they were replaced).
        SELECT k.selector || '._domainkey.' || d.name, 'TXT', 'v=DKIM1; k=rsa; p=' || k.public_key, 0
          FROM mail_dkim k WHERE k.domain = d.name
        UNION ALL
        SELECT '_dmarc.' || d.name, 'TXT', 'v=DMARC1; p=quarantine; adkim=r; aspf=r', 0
        UNION ALL
        -- Client set-up: Thunderbird's autoconfig and Outlook's autodiscover names point at the
        -- first mail node; RFC 6186/8314 SRV records name every one.
        SELECT c.label || '.' || d.name, 'CNAME', mx.host, 0
          FROM (VALUES ('autoconfig'), ('autodiscover')) c (label)
         CROSS JOIN (SELECT n.name AS host FROM nodes n
                      WHERE 'mail' = ANY (n.kinds) AND n.region = d.region
                      ORDER BY n.id LIMIT 1) mx
        UNION ALL
        SELECT s.service || '._tcp.' || d.name, 'SRV', '1 ' || s.port || ' ' || mx.host,
               (10 * mx.rank)::integer
          FROM (VALUES ('_submission', 587), ('_submissions', 465), ('_imaps', 993)) s (service, port)
         CROSS JOIN (SELECT n.name AS host, row_number() OVER (ORDER BY n.id) AS rank
                       FROM nodes n WHERE 'mail' = ANY (n.kinds) AND n.region = d.region) mx
     ) r;

-- TXT text as PowerDNS stores it: quoted strings of at most 255 characters (the managed texts
-- are ASCII, so characters are bytes).
CREATE FUNCTION hp_dns_txt(value text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT string_agg('"' || replace(replace(substr($1, i, 255), '\', '\\'), '"', '\"') || '"', ' '
                      ORDER BY i)
      FROM generate_series(1, greatest(length($1), 1), 255) i
$$;

-- The shadowing rule: whether a customer's record (name, type, content as stored) stands where
-- the managed records of `mail_domain` (with its DKIM `selectors`) stand. At the mail domain's
-- own name: MX, CNAME, NS and an SPF TXT (`v=spf1`); other TXT (site verifications ...), A, AAAA
-- and CAA stay the customer's. At _dmarc, autoconfig, autodiscover, the SRV names and the
-- published selectors' _domainkey names: anything. Pure (it reads no table), so PowerDNS's role
-- may run it inside dns_records, and add_record asks the same question through it.
CREATE FUNCTION hp_mail_reserved(record_name text, record_type text, record_content text,
                                 mail_domain text, selectors text[]) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN record_name = mail_domain
            THEN record_type IN ('MX', 'CNAME', 'NS')
                 OR (record_type = 'TXT' AND record_content ~* '^"v=spf1( |"|$)')
        ELSE record_name IN ('_dmarc.' || mail_domain, 'autoconfig.' || mail_domain,
                             'autodiscover.' || mail_domain, '_submission._tcp.' || mail_domain,
                             '_submissions._tcp.' || mail_domain, '_imaps._tcp.' || mail_domain)
             OR record_name = ANY (SELECT s || '._domainkey.' || mail_domain FROM unnest(selectors) s)
    END
$$;

CREATE OR REPLACE VIEW dns_records AS
    -- SOA: the first DNS node is the primary name server.
    SELECT concat_ws(' ',
                     coalesce((SELECT n.name FROM nodes n WHERE 'dns' = ANY (n.kinds) ORDER BY n.id LIMIT 1),
                              'localhost'),
                     'hostmaster.' || z.name, z.serial, 10800, 3600, 604800, 300) AS content,
           3600 AS ttl, 0 AS prio, 'SOA'::text AS type, z.id AS domain_id, false AS disabled,
           z.name, true AS auth, NULL::text AS ordername, z.name AS anchor, NULL::bigint AS record_id
      FROM zones z
    UNION ALL
    -- NS: every DNS node.
    SELECT n.name, 3600, 0, 'NS', z.id, false, z.name, true, NULL, z.name, NULL
      FROM zones z CROSS JOIN nodes n
     WHERE 'dns' = ANY (n.kinds)
    UNION ALL
    -- A and AAAA of every active site domain of the zone's owner in the zone (managed ones win
    -- over a customer's record of the same name).
    SELECT host(a.ip), 300, 0, a.type, z.id, false, d.name, true, NULL, d.name, NULL
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
    -- The records get_mail_dns gives for every served mail domain of the zone's owner in the zone.
    SELECT CASE WHEN r.type = 'TXT' THEN hp_dns_txt(r.content) ELSE r.content END,
           3600, r.prio, r.type, z.id, false, r.name, true, NULL, m.name, NULL
      FROM mail_domains m
      JOIN LATERAL (SELECT best.id FROM zones best WHERE best.name = ANY (hp_suffixes(m.name))
                     ORDER BY length(best.name) DESC LIMIT 1) inner_zone ON true
      JOIN zones z ON z.id = inner_zone.id AND z.user_id = m.user_id
                      AND reverse(m.name) COLLATE "C" >= reverse(z.name) COLLATE "C"
                      AND reverse(m.name) COLLATE "C" < (reverse(z.name) || '/') COLLATE "C"
      JOIN mail_dns_records r ON r.domain = m.name
     WHERE m.status = 'active' AND NOT m.disabled
    UNION ALL
    -- The zone owner's own records, but none where a managed address or mail record stands.
    SELECT r.content, r.ttl, r.prio, r.type, r.zone_id, false, r.name, true, NULL, r.name, r.id
      FROM zone_records r
      JOIN zones z ON z.id = r.zone_id
     WHERE NOT (r.type IN ('A', 'AAAA', 'CNAME')
                AND EXISTS (SELECT 1 FROM domains d
                             WHERE d.name = r.name AND d.user_id = z.user_id AND d.status = 'active'))
       AND NOT EXISTS (SELECT 1 FROM mail_domains m
                        WHERE m.name = ANY (hp_suffixes(r.name)) AND m.user_id = z.user_id
                          AND m.status = 'active' AND NOT m.disabled
                          AND hp_mail_reserved(r.name, r.type, r.content, m.name,
                                               ARRAY(SELECT k.selector FROM mail_dkim k
                                                      WHERE k.domain = m.name)));

-- The SOA serial moves with every change of the managed mail records: of a mail domain (added,
-- removed, its name, owner, region or state changed), of its DKIM keys, and of the mail nodes of
-- its region. Zones by the names' parents, as for site domains (hp_domains_changed).
CREATE TRIGGER mail_domains_dns_inserted AFTER INSERT ON mail_domains
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION hp_domains_changed();
CREATE TRIGGER mail_domains_dns_deleted AFTER DELETE ON mail_domains
    REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION hp_domains_changed();

CREATE FUNCTION hp_mail_domain_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE zones SET serial = serial + 1
     WHERE name = ANY (hp_suffixes(OLD.name) || hp_suffixes(NEW.name));
    RETURN NULL;
END
$$;
-- Limits and review notes change no record.
CREATE TRIGGER mail_domains_dns_updated AFTER UPDATE ON mail_domains
    FOR EACH ROW
    WHEN ((OLD.name, OLD.user_id, OLD.region, OLD.disabled, OLD.status)
          IS DISTINCT FROM (NEW.name, NEW.user_id, NEW.region, NEW.disabled, NEW.status))
    EXECUTE FUNCTION hp_mail_domain_updated();

CREATE FUNCTION hp_dkim_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE zones SET serial = serial + 1
     WHERE name IN (SELECT unnest(hp_suffixes(c.domain)) FROM changed_rows c);
    RETURN NULL;
END
$$;
CREATE TRIGGER mail_dkim_dns_inserted AFTER INSERT ON mail_dkim
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION hp_dkim_changed();
CREATE TRIGGER mail_dkim_dns_updated AFTER UPDATE ON mail_dkim
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION hp_dkim_changed();
CREATE TRIGGER mail_dkim_dns_deleted AFTER DELETE ON mail_dkim
    REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION hp_dkim_changed();

-- A mail node added, removed, or changed in what the records show (name, kinds, region,
-- addresses): every zone holding a mail domain of its region(s), old and new.
CREATE FUNCTION hp_mail_nodes_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    regions text[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NOT 'mail' = ANY (NEW.kinds) THEN RETURN NULL; END IF;
        regions := ARRAY[NEW.region];
    ELSIF TG_OP = 'DELETE' THEN
        IF NOT 'mail' = ANY (OLD.kinds) THEN RETURN NULL; END IF;
        regions := ARRAY[OLD.region];
    ELSE
        IF NOT ('mail' = ANY (OLD.kinds) OR 'mail' = ANY (NEW.kinds))
           OR (OLD.name, OLD.kinds, OLD.region, OLD.address, OLD.ipv4, OLD.ipv6)
              IS NOT DISTINCT FROM (NEW.name, NEW.kinds, NEW.region, NEW.address, NEW.ipv4, NEW.ipv6) THEN
            RETURN NULL;
        END IF;
        regions := ARRAY[OLD.region, NEW.region];
    END IF;
    UPDATE zones SET serial = serial + 1
     WHERE name IN (SELECT unnest(hp_suffixes(m.name)) FROM mail_domains m WHERE m.region = ANY (regions));
    RETURN NULL;
END
$$;
CREATE TRIGGER nodes_mail_dns_changed AFTER INSERT OR UPDATE OR DELETE ON nodes
    FOR EACH ROW EXECUTE FUNCTION hp_mail_nodes_changed();
