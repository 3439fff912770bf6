-- App passwords (#17): named passwords of a mailbox for IMAP/SMTP clients, so that its main
-- password stays in the webmail/console. `{BLF-CRYPT}` bcrypt like the main one. Dovecot's SQL
-- passdb returns one row per query, so each app password has a slot (1-5) and mail-config
-- writes one passdb per slot after the main one.
CREATE TABLE mailbox_app_passwords (
    address        text NOT NULL REFERENCES mailboxes (address) ON DELETE CASCADE,
    name           text NOT NULL,
    slot           smallint NOT NULL CHECK (slot BETWEEN 1 AND 5),
    password_hash  text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (address, name),
    UNIQUE (address, slot)
);

-- Dovecot passdbs 2-6: a mailbox's app password in one slot, while the mailbox may log in.
CREATE VIEW mail_dovecot_app_passdb AS
    SELECT p.address AS "user", p.password_hash AS password, p.slot, d.region
      FROM mailbox_app_passwords p
      JOIN mailboxes m ON m.address = p.address
      JOIN mail_domains d ON d.name = m.domain
     WHERE NOT m.disabled AND NOT d.disabled AND d.status = 'active' AND m.can_login
       AND hp_mail_region_visible(d.region, current_user);
