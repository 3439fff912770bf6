-- What the mail servers read: one view per lookup, each with the region it applies to, so a mail
-- node asks only for its region. Disabled domains and mailboxes are not in them. A database role
-- with SELECT on these views alone is what Postfix, Dovecot and OpenDKIM use (see
-- `hostplane mail-config`); names and columns here are a contract, documented in protocol.md.

-- Postfix virtual_mailbox_domains: key domain.
CREATE VIEW mail_virtual_domains AS
    SELECT d.name AS domain, d.region
      FROM mail_domains d
     WHERE NOT d.disabled;

-- Postfix virtual_mailbox_maps: key address, value the Maildir below the mail root.
CREATE VIEW mail_virtual_mailboxes AS
    SELECT m.address, m.domain || '/' || m.local_part || '/Maildir/' AS maildir, d.region
      FROM mailboxes m JOIN mail_domains d ON d.name = m.domain
     WHERE NOT m.disabled AND NOT d.disabled;

-- Postfix virtual_alias_maps: key source, value destinations. Every mailbox answers itself (and
-- its forwards), so a catch-all `@domain`, which Postfix asks only after `user@domain`, never
-- takes a mailbox's mail.
CREATE VIEW mail_virtual_aliases AS
    SELECT a.source, array_to_string(a.destinations, ',') AS destination, d.region
      FROM mail_aliases a JOIN mail_domains d ON d.name = a.domain
     WHERE NOT d.disabled
    UNION ALL
    SELECT m.address, array_to_string(m.address || m.forward_to, ','), d.region
      FROM mailboxes m JOIN mail_domains d ON d.name = m.domain
     WHERE NOT m.disabled AND NOT d.disabled;

-- Postfix smtpd_sender_login_maps: key sender address, value the login allowed to use it.
CREATE VIEW mail_sender_logins AS
    SELECT m.address AS sender, m.address AS login, d.region
      FROM mailboxes m JOIN mail_domains d ON d.name = m.domain
     WHERE NOT m.disabled AND NOT d.disabled AND m.can_login;

-- Dovecot passdb: mailboxes that may log in, with their {BLF-CRYPT} hash.
CREATE VIEW mail_dovecot_passdb AS
    SELECT m.address AS "user", m.password_hash AS password, d.region
      FROM mailboxes m JOIN mail_domains d ON d.name = m.domain
     WHERE NOT m.disabled AND NOT d.disabled AND m.can_login;

-- Dovecot userdb: every deliverable mailbox, its home below the mail root and its quota.
CREATE VIEW mail_dovecot_userdb AS
    SELECT m.address AS "user", m.domain || '/' || m.local_part AS home,
           CASE WHEN m.quota_bytes > 0 THEN '*:bytes=' || m.quota_bytes ELSE '*:storage=0' END AS quota_rule,
           d.region
      FROM mailboxes m JOIN mail_domains d ON d.name = m.domain
     WHERE NOT m.disabled AND NOT d.disabled;
