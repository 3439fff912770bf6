-- Wildcard site domains and DNS-01 records in the zones PowerDNS serves (#18), on top of
-- 0030's dns_records: a wildcard domain's `*.name` gets the same managed A/AAAA records as its
-- name (a customer's A, AAAA or CNAME there is not served, and refused by add_record), and the
-- ACME challenge rows of zone_records (0032's acme_domain) are managed: no record_id, so lists
-- show them locked.

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
    -- over a customer's record of the same name), and of `*.name` for a wildcard one.
    SELECT host(a.ip), 300, 0, a.type, z.id, false, w.name, true, NULL, d.name, NULL
      FROM domains d
     CROSS JOIN LATERAL (SELECT d.name UNION ALL SELECT '*.' || d.name WHERE d.wildcard) w (name)
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
    SELECT r.content, r.ttl, r.prio, r.type, r.zone_id, false, r.name, true, NULL, r.name,
           CASE WHEN r.acme_domain IS NULL THEN r.id END
      FROM zone_records r
      JOIN zones z ON z.id = r.zone_id
     WHERE NOT (r.type IN ('A', 'AAAA', 'CNAME')
                AND EXISTS (SELECT 1 FROM domains d
                             WHERE d.name = r.name AND d.user_id = z.user_id AND d.status = 'active'))
       AND NOT (r.type IN ('A', 'AAAA', 'CNAME') AND r.name LIKE '*.%'
                AND EXISTS (SELECT 1 FROM domains d
                             WHERE d.name = substr(r.name, 3) AND d.wildcard
                               AND d.user_id = z.user_id AND d.status = 'active'))
       AND NOT EXISTS (SELECT 1 FROM mail_domains m
                        WHERE m.name = ANY (hp_suffixes(r.name)) AND m.user_id = z.user_id
                          AND m.status = 'active' AND NOT m.disabled
                          AND hp_mail_reserved(r.name, r.type, r.content, m.name,
                                               ARRAY(SELECT k.selector FROM mail_dkim k
                                                      WHERE k.domain = m.name)));
