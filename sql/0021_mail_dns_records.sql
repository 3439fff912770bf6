-- The DNS records a mail domain needs (#17): get_mail_dns answers them, and a zone's managed
-- records may take them from here later. One row per record; `prio` is the MX or SRV priority
-- (0 otherwise), SRV content is "weight port target" as PowerDNS keeps it, TXT content is the
-- plain value (not split into quoted strings). The MX hosts are the mail nodes of the domain's
-- region by their names, ranked by id.

-- A node's SPF terms: its public ipv4/ipv6 when set (sql/0025, which runs after this file: the
-- node is read as a whole row, so this view needs no column it adds), else its address (an IP,
-- or a host name: `a:`).
CREATE FUNCTION hp_node_spf(node jsonb) RETURNS text
    LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN node ->> 'ipv4' IS NOT NULL OR node ->> 'ipv6' IS NOT NULL
            THEN concat_ws(' ', 'ip4:' || host((node ->> 'ipv4')::inet), 'ip6:' || host((node ->> 'ipv6')::inet))
        WHEN node ->> 'address' ~ '^[0-9.]+$' THEN 'ip4:' || (node ->> 'address')
        WHEN node ->> 'address' LIKE '%:%' THEN 'ip6:' || (node ->> 'address')
        ELSE 'a:' || (node ->> 'address')
    END
$$;

CREATE VIEW mail_dns_records AS
    SELECT d.name AS domain, d.name AS name, 'MX'::text AS type, mx.host AS content,
           (10 * mx.rank)::integer AS prio, d.region
      FROM mail_domains d
     CROSS JOIN LATERAL (SELECT n.name AS host, row_number() OVER (ORDER BY n.id) AS rank
                           FROM nodes n WHERE 'mail' = ANY (n.kinds) AND n.region = d.region) mx
    UNION ALL
    SELECT d.name, d.name, 'TXT',
           concat_ws(' ', 'v=spf1 mx',
                     (SELECT string_agg(hp_node_spf(to_jsonb(n)), ' ' ORDER BY n.id)
                        FROM nodes n WHERE 'mail' = ANY (n.kinds) AND n.region = d.region),
                     '-all'),
           0, d.region
      FROM mail_domains d
    UNION ALL
    -- Every key kept: the active one, one published ahead of its activation, those retiring.
    SELECT d.name, k.selector || '._domainkey.' || d.name, 'TXT', 'v=DKIM1; k=rsa; p=' || k.public_key,
           0, d.region
      FROM mail_domains d JOIN mail_dkim_states k ON k.domain = d.name
    UNION ALL
    SELECT d.name, '_dmarc.' || d.name, 'TXT', 'v=DMARC1; p=quarantine; adkim=r; aspf=r', 0, d.region
      FROM mail_domains d
    UNION ALL
    -- Client set-up: Thunderbird's autoconfig and Outlook's autodiscover names point at the
    -- first mail node; RFC 6186/8314 SRV records name every one.
    SELECT d.name, c.label || '.' || d.name, 'CNAME', mx.host, 0, d.region
      FROM mail_domains d
     CROSS JOIN (VALUES ('autoconfig'), ('autodiscover')) c (label)
     CROSS JOIN LATERAL (SELECT n.name AS host FROM nodes n
                          WHERE 'mail' = ANY (n.kinds) AND n.region = d.region
                          ORDER BY n.id LIMIT 1) mx
    UNION ALL
    SELECT d.name, s.service || '._tcp.' || d.name, 'SRV', '1 ' || s.port || ' ' || mx.host,
           (10 * mx.rank)::integer, d.region
      FROM mail_domains d
     CROSS JOIN (VALUES ('_submission', 587), ('_submissions', 465), ('_imaps', 993)) s (service, port)
     CROSS JOIN LATERAL (SELECT n.name AS host, row_number() OVER (ORDER BY n.id) AS rank
                           FROM nodes n WHERE 'mail' = ANY (n.kinds) AND n.region = d.region) mx;
