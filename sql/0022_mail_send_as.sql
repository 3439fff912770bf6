-- Send-as for aliases (#17): a mailbox an alias delivers to may send as the alias over
-- submission (Postfix smtpd_sender_login_maps returns every login of a sender). Only mailboxes
-- of the alias's owner count, and never for a catch-all (`@domain` is no sender).
CREATE OR REPLACE VIEW mail_sender_logins AS
    SELECT m.address AS sender, m.address AS login, d.region
      FROM mailboxes m JOIN mail_domains d ON d.name = m.domain
     WHERE NOT m.disabled AND NOT d.disabled AND d.status = 'active' AND m.can_login
       AND hp_mail_region_visible(d.region, current_user)
    UNION ALL
    SELECT a.source, m.address, d.region
      FROM mail_aliases a
      JOIN mail_domains d ON d.name = a.domain
      JOIN mailboxes m ON m.address = ANY (a.destinations)
      JOIN mail_domains md ON md.name = m.domain
     WHERE a.source NOT LIKE '@%' AND md.user_id = d.user_id
       AND NOT m.disabled AND m.can_login AND NOT md.disabled AND md.status = 'active'
       AND NOT d.disabled AND d.status = 'active'
       AND hp_mail_region_visible(d.region, current_user);
