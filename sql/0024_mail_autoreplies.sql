-- Autoreply (#17): a mailbox's vacation message, carried out by Dovecot Pigeonhole Sieve at
-- delivery. Pigeonhole reads the script live through its dict storage (the SQL dict, view
-- mail_sieve_scripts): `priv/sieve/name/hostplane` gives the script's id (its md5, so a changed
-- script is compiled again), `priv/sieve/data/ID` its text. Sieve's vacation answers each sender
-- once per `days` and never lists, bounces or automatic mail.
CREATE TABLE mail_autoreplies (
    address       text PRIMARY KEY REFERENCES mailboxes (address) ON DELETE CASCADE,
    subject       text NOT NULL,
    body          text NOT NULL,
    from_address  text,
    -- The last day (UTC) it answers; null: until deleted.
    until         date,
    days          integer NOT NULL DEFAULT 7 CHECK (days BETWEEN 1 AND 30),
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- A Sieve quoted string (RFC 5228: backslash and double quote escaped).
CREATE FUNCTION hp_sieve_string(value text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT '"' || replace(replace(value, '\', '\\'), '"', '\"') || '"'
$$;

CREATE VIEW mail_sieve_scripts AS
    SELECT a.address, 'hostplane'::text AS name, md5(s.script) AS id, s.script, d.region
      FROM mail_autoreplies a
      JOIN mailboxes m ON m.address = a.address
      JOIN mail_domains d ON d.name = m.domain
     CROSS JOIN LATERAL (
           SELECT 'require ["vacation"];' || E'\n' || 'vacation :days ' || a.days
                  || ' :subject ' || hp_sieve_string(a.subject)
                  || coalesce(' :from ' || hp_sieve_string(a.from_address), '')
                  || E'\n  ' || hp_sieve_string(a.body) || E';\n' AS script) s
     WHERE (a.until IS NULL OR a.until >= (now() AT TIME ZONE 'UTC')::date)
       AND NOT m.disabled AND NOT d.disabled AND d.status = 'active'
       AND hp_mail_region_visible(d.region, current_user);
