-- Zones under domain review (#18, found by the outside review): a user whose domains an admin
-- reviews has new zones `reviewing` too, and PowerDNS serves a zone only once it is `active`
-- (review_domain passes it); a rejected one keeps its reason. The views of 0034 with that filter.

ALTER TABLE zones ADD COLUMN status text NOT NULL DEFAULT 'active'
                      CHECK (status IN ('active', 'reviewing', 'rejected')),
                  ADD COLUMN reject_reason text;
CREATE INDEX zones_review ON zones (status, name) WHERE status <> 'active';

CREATE OR REPLACE VIEW dns_domains AS
    SELECT z.id, z.name, NULL::text AS master, NULL::integer AS last_check,
           NULL::bigint AS notified_serial, 'NATIVE'::text AS type, NULL::text AS options,
           NULL::text AS catalog, NULL::text AS account
      FROM zones z
     WHERE z.status = 'active';

CREATE OR REPLACE VIEW dns_records AS
    -- SOA: the first DNS node is the primary name server.
    SELECT concat_ws(' ',
                     coalesce((SELECT n.name FROM nodes n WHERE 'dns' = ANY (n.kinds) ORDER BY n.id LIMIT 1),
                              'localhost'),
                     'hostmaster.' || z.name, z.serial, 10800, 3600, 604800, 300) AS content,
           3600 AS ttl, 0 AS prio, 'SOA'::text AS type, z.id AS domain_id, false AS disabled,
           z.name, true AS auth, NULL::text AS ordername, z.name AS anchor, NULL::bigint AS record_id
      FROM zones z
     WHERE z.status = 'active'
    UNION ALL
    -- NS: every DNS node.
    SELECT n.name, 3600, 0, 'NS', z.id, false, z.name, true, NULL, z.name, NULL
      FROM zones z CROSS JOIN nodes n
     WHERE 'dns' = ANY (n.kinds) AND z.status = 'active'
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
      JOIN zones z ON z.id = inner_zone.id AND z.user_id = d.user_id AND z.status = 'active'
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
      JOIN zones z ON z.id = inner_zone.id AND z.user_id = m.user_id AND z.status = 'active'
                      AND reverse(m.name) COLLATE "C" >= reverse(z.name) COLLATE "C"
                      AND reverse(m.name) COLLATE "C" < (reverse(z.name) || '/') COLLATE "C"
      JOIN mail_dns_records r ON r.domain = m.name
     WHERE m.status = 'active' AND NOT m.disabled
    UNION ALL
    -- The zone owner's own records, but none where a managed address or mail record stands.
    SELECT r.content, r.ttl, r.prio, r.type, r.zone_id, false, r.name, true, NULL, r.name,
           CASE WHEN r.acme_domain IS NULL THEN r.id END
      FROM zone_records r
      JOIN zones z ON z.id = r.zone_id AND z.status = 'active'
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
