-- An autoreply's From is checked where the mail server reads it, not only when it is set: the
-- reply leaves without a login, so once the mailbox may no longer send as that address (its
-- alias deleted or re-pointed, its domain gone to another user), the reply goes out from the
-- mailbox's own address instead.
CREATE OR REPLACE VIEW mail_sieve_scripts AS
    SELECT a.address, 'hostplane'::text AS name, md5(s.script) AS id, s.script, d.region
      FROM mail_autoreplies a
      JOIN mailboxes m ON m.address = a.address
      JOIN mail_domains d ON d.name = m.domain
     CROSS JOIN LATERAL (
           SELECT 'require ["vacation"];' || E'\n' || 'vacation :days ' || a.days
                  || ' :subject ' || hp_sieve_string(a.subject)
                  || coalesce(' :from ' || hp_sieve_string(
                         CASE WHEN EXISTS (SELECT 1 FROM mail_sender_logins l
                                            WHERE l.sender = a.from_address AND l.login = a.address)
                              THEN a.from_address END), '')
                  || E'\n  ' || hp_sieve_string(a.body) || E';\n' AS script) s
     WHERE (a.until IS NULL OR a.until >= (now() AT TIME ZONE 'UTC')::date)
       AND NOT m.disabled AND NOT d.disabled AND d.status = 'active'
       AND hp_mail_region_visible(d.region, current_user);
