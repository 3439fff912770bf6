-- Mail readers by region, limited by the database: each mail node logs in as its region's reader
-- role (made by mail-config's reader-grants.sql, which records it here). Every mail view shows
-- a reader only its region's rows, and row-level security lets it write only its region's
-- mailbox usage. The table's owner (hostplane itself) still sees every row.
CREATE TABLE mail_reader_regions (
    role    name PRIMARY KEY,
    region  text NOT NULL
);

-- Whether `reader` may see rows of `region`: its recorded region, or hostplane's own role (the
-- owner of this function). SECURITY DEFINER because readers may not read mail_reader_regions;
-- the views pass `current_user`, which there is the role querying them.
CREATE FUNCTION hp_mail_region_visible(region text, reader name) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
    SELECT EXISTS (SELECT 1 FROM mail_reader_regions r WHERE r.role = reader AND r.region = $1)
        OR (NOT EXISTS (SELECT 1 FROM mail_reader_regions r WHERE r.role = reader)
            AND pg_has_role(reader, current_user, 'MEMBER'))
$$;

-- Whether `reader` may write the usage of `address` (a mailbox of a region it serves).
CREATE FUNCTION hp_mail_usage_writable(address text, reader name) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
    SELECT EXISTS (SELECT 1 FROM mailboxes m JOIN mail_domains d ON d.name = m.domain
                    WHERE m.address = $1 AND hp_mail_region_visible(d.region, reader))
$$;

ALTER TABLE mailbox_usage ENABLE ROW LEVEL SECURITY;
CREATE POLICY mail_reader_region ON mailbox_usage
    USING (hp_mail_usage_writable(address, current_user))
    WITH CHECK (hp_mail_usage_writable(address, current_user));

-- The views as before, each limited to the reader's region. A disabled mailbox answers itself
-- in the alias map (so a catch-all never takes its mail) and is refused at RCPT time by
-- mail_recipient_access, so no bounce goes to a forgeable sender.
CREATE OR REPLACE VIEW mail_virtual_domains AS
    SELECT d.name AS domain, d.region
      FROM mail_domains d
     WHERE NOT d.disabled AND d.status = 'active' AND hp_mail_region_visible(d.region, current_user);

CREATE OR REPLACE VIEW mail_virtual_mailboxes AS
    SELECT m.address, m.domain || '/' || m.local_part || '/Maildir/' AS maildir, d.region
      FROM mailboxes m JOIN mail_domains d ON d.name = m.domain
     WHERE NOT m.disabled AND NOT d.disabled AND d.status = 'active'
       AND hp_mail_region_visible(d.region, current_user);

CREATE OR REPLACE VIEW mail_virtual_aliases AS
    SELECT a.source, array_to_string(a.destinations, ',') AS destination, d.region
      FROM mail_aliases a JOIN mail_domains d ON d.name = a.domain
     WHERE NOT d.disabled AND d.status = 'active' AND hp_mail_region_visible(d.region, current_user)
    UNION ALL
    SELECT m.address,
           CASE WHEN m.disabled THEN m.address ELSE array_to_string(m.address || m.forward_to, ',') END,
           d.region
      FROM mailboxes m JOIN mail_domains d ON d.name = m.domain
     WHERE NOT d.disabled AND d.status = 'active' AND hp_mail_region_visible(d.region, current_user);

-- Postfix check_recipient_access (smtpd_recipient_restrictions): key address, value the
-- refusal of a disabled mailbox.
CREATE VIEW mail_recipient_access AS
    SELECT m.address, '550 5.2.1 mailbox disabled'::text AS action, d.region
      FROM mailboxes m JOIN mail_domains d ON d.name = m.domain
     WHERE m.disabled AND NOT d.disabled AND d.status = 'active'
       AND hp_mail_region_visible(d.region, current_user);

CREATE OR REPLACE VIEW mail_sender_logins AS
    SELECT m.address AS sender, m.address AS login, d.region
      FROM mailboxes m JOIN mail_domains d ON d.name = m.domain
     WHERE NOT m.disabled AND NOT d.disabled AND d.status = 'active' AND m.can_login
       AND hp_mail_region_visible(d.region, current_user);

CREATE OR REPLACE VIEW mail_dovecot_passdb AS
    SELECT m.address AS "user", m.password_hash AS password, d.region
      FROM mailboxes m JOIN mail_domains d ON d.name = m.domain
     WHERE NOT m.disabled AND NOT d.disabled AND d.status = 'active' AND m.can_login
       AND hp_mail_region_visible(d.region, current_user);

CREATE OR REPLACE VIEW mail_dovecot_userdb AS
    SELECT m.address AS "user", m.domain || '/' || m.local_part AS home,
           CASE WHEN m.quota_bytes > 0 THEN '*:bytes=' || m.quota_bytes ELSE '*:storage=0' END AS quota_rule,
           d.region
      FROM mailboxes m JOIN mail_domains d ON d.name = m.domain
     WHERE NOT m.disabled AND NOT d.disabled AND d.status = 'active'
       AND hp_mail_region_visible(d.region, current_user);

CREATE OR REPLACE VIEW mail_recipient_bcc AS
    SELECT b.source, b.destination, b.region
      FROM mail_bcc b JOIN mail_domains d ON d.name = b.domain
     WHERE NOT d.disabled AND d.status = 'active' AND hp_mail_region_visible(b.region, current_user);

CREATE OR REPLACE VIEW mail_transport_maps AS
    SELECT t.source, t.destination, t.region
      FROM mail_transports t JOIN mail_domains d ON d.name = t.domain
     WHERE NOT d.disabled AND d.status = 'active' AND hp_mail_region_visible(t.region, current_user);

-- OpenDKIM's tables cannot filter; the database does: a node holds only its region's keys.
CREATE OR REPLACE VIEW mail_dkim_keys AS
    SELECT k.domain AS key_name, k.domain, k.selector, k.private_key, d.region
      FROM mail_dkim k JOIN mail_domains d ON d.name = k.domain
     WHERE NOT d.disabled AND d.status = 'active' AND hp_mail_region_visible(d.region, current_user);

CREATE OR REPLACE VIEW mail_dkim_signing AS
    SELECT k.domain AS sender, k.domain AS key_name, d.region
      FROM mail_dkim k JOIN mail_domains d ON d.name = k.domain
     WHERE NOT d.disabled AND d.status = 'active' AND hp_mail_region_visible(d.region, current_user);
