-- Staged DKIM rotation (#17): a domain holds one key per selector. A domain's first key signs at
-- once; a later one is published first and signs once activated (activate_dkim: `activated_at`)
-- or once `activate_after` has passed (set_dkim writes now() + HOSTPLANE_DKIM_ACTIVATE_AFTER_SECS).
-- The key it replaces keeps its DNS record for 7 days after that, then is dropped.
ALTER TABLE mail_dkim DROP CONSTRAINT mail_dkim_pkey;
ALTER TABLE mail_dkim ADD PRIMARY KEY (domain, selector);
ALTER TABLE mail_dkim ADD COLUMN activated_at timestamptz, ADD COLUMN activate_after timestamptz;
UPDATE mail_dkim SET activated_at = created_at;

-- Since when a key signs: the earlier of its activation and its automatic activation, once past.
CREATE FUNCTION hp_dkim_since(activated_at timestamptz, activate_after timestamptz)
    RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN least($1, $2) <= now() THEN least($1, $2) END
$$;

-- Every key kept, with its state: `published` (in DNS, not signing yet), `active` (signing: the
-- latest activated), `retiring` (replaced at `superseded_at`, still in DNS for mail in flight).
-- Keys retired more than 7 days ago are gone from here (and deleted by the next set_dkim).
CREATE VIEW mail_dkim_states AS
    SELECT k.domain, k.selector, k.private_key, k.public_key, k.created_at, k.activate_after,
           a.active_since, n.superseded_at,
           CASE WHEN a.active_since IS NULL THEN 'published'
                WHEN n.superseded_at IS NULL THEN 'active'
                ELSE 'retiring' END AS state
      FROM mail_dkim k
     CROSS JOIN LATERAL (SELECT hp_dkim_since(k.activated_at, k.activate_after) AS active_since) a
      LEFT JOIN LATERAL (
           SELECT min(hp_dkim_since(o.activated_at, o.activate_after)) AS superseded_at
             FROM mail_dkim o
            WHERE o.domain = k.domain
              AND (hp_dkim_since(o.activated_at, o.activate_after), o.created_at, o.selector)
                  > (a.active_since, k.created_at, k.selector)) n ON true
     WHERE n.superseded_at IS NULL OR n.superseded_at > now() - interval '7 days';

-- OpenDKIM signs with the active key only.
CREATE OR REPLACE VIEW mail_dkim_keys AS
    SELECT k.domain AS key_name, k.domain, k.selector, k.private_key, d.region
      FROM mail_dkim_states k JOIN mail_domains d ON d.name = k.domain
     WHERE k.state = 'active' AND NOT d.disabled AND d.status = 'active'
       AND hp_mail_region_visible(d.region, current_user);

CREATE OR REPLACE VIEW mail_dkim_signing AS
    SELECT k.domain AS sender, k.domain AS key_name, d.region
      FROM mail_dkim_states k JOIN mail_domains d ON d.name = k.domain
     WHERE k.state = 'active' AND NOT d.disabled AND d.status = 'active'
       AND hp_mail_region_visible(d.region, current_user);
