-- Usage kept, not counted: each user's sites, domains, mail domains, mailboxes, API keys,
-- webhooks and zones, and the service's totals, maintained by triggers in the same transaction as
-- every change (cascades included), so quota checks, get_user_stats, get_stats and get_list_user
-- cost the same for an account with millions of rows as for an empty one.
--
-- The service's totals are split over 16 shards (a backend adds to the shard of its process id),
-- so concurrent changes by different users do not queue on one row; get_stats sums 16 rows.
-- Lock order: user_usage, then service_usage, after every table whose triggers write them.

CREATE TABLE user_usage (
    user_id       uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    sites         bigint NOT NULL DEFAULT 0,
    domains       bigint NOT NULL DEFAULT 0,
    mail_domains  bigint NOT NULL DEFAULT 0,
    mailboxes     bigint NOT NULL DEFAULT 0,
    api_keys      bigint NOT NULL DEFAULT 0,
    webhooks      bigint NOT NULL DEFAULT 0,
    zones         bigint NOT NULL DEFAULT 0
);

CREATE TABLE service_usage (
    shard               smallint PRIMARY KEY CHECK (shard BETWEEN 0 AND 15),
    users               bigint NOT NULL DEFAULT 0,
    sites               bigint NOT NULL DEFAULT 0,
    domains_active      bigint NOT NULL DEFAULT 0,
    domains_reviewing   bigint NOT NULL DEFAULT 0,
    domains_rejected    bigint NOT NULL DEFAULT 0,
    mail_active         bigint NOT NULL DEFAULT 0,
    mail_reviewing      bigint NOT NULL DEFAULT 0,
    mail_rejected       bigint NOT NULL DEFAULT 0,
    mailboxes           bigint NOT NULL DEFAULT 0
);
INSERT INTO service_usage (shard) SELECT generate_series(0, 15);

-- A mail domain knows how many mailboxes it holds: a cascade that deletes both can still tell
-- the owner's counter how many went.
ALTER TABLE mail_domains ADD COLUMN mailbox_count bigint NOT NULL DEFAULT 0;
UPDATE mail_domains d SET mailbox_count = (SELECT count(*) FROM mailboxes m WHERE m.domain = d.name);

INSERT INTO user_usage (user_id, sites, domains, mail_domains, mailboxes, api_keys, webhooks, zones)
SELECT u.id,
       (SELECT count(*) FROM sites WHERE user_id = u.id),
       (SELECT count(*) FROM domains WHERE user_id = u.id),
       (SELECT count(*) FROM mail_domains WHERE user_id = u.id),
       (SELECT coalesce(sum(mailbox_count), 0) FROM mail_domains WHERE user_id = u.id),
       (SELECT count(*) FROM api_keys WHERE user_id = u.id),
       (SELECT count(*) FROM webhooks WHERE created_by = u.id),
       (SELECT count(*) FROM zones WHERE user_id = u.id)
  FROM users u;

UPDATE service_usage SET
    users = (SELECT count(*) FROM users),
    sites = (SELECT count(*) FROM sites),
    domains_active = (SELECT count(*) FROM domains WHERE status = 'active'),
    domains_reviewing = (SELECT count(*) FROM domains WHERE status = 'reviewing'),
    domains_rejected = (SELECT count(*) FROM domains WHERE status = 'rejected'),
    mail_active = (SELECT count(*) FROM mail_domains WHERE status = 'active'),
    mail_reviewing = (SELECT count(*) FROM mail_domains WHERE status = 'reviewing'),
    mail_rejected = (SELECT count(*) FROM mail_domains WHERE status = 'rejected'),
    mailboxes = (SELECT count(*) FROM mailboxes)
 WHERE shard = 0;

CREATE FUNCTION hp_usage_shard() RETURNS smallint LANGUAGE sql STABLE AS
    $$ SELECT (pg_backend_pid() % 16)::smallint $$;

-- Adds per-user deltas of one counter: owners[i] gains deltas[i].
CREATE FUNCTION hp_add_usage(what text, owners uuid[], deltas bigint[]) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format(
        'UPDATE user_usage u SET %1$I = u.%1$I + d.n
           FROM (SELECT o, sum(n) AS n FROM unnest($1, $2) t (o, n) GROUP BY o) d
          WHERE u.user_id = d.o AND d.n <> 0', what)
    USING owners, deltas;
END $$;

-- Users: their counter row is born and dies with them.
CREATE FUNCTION hp_users_counted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO user_usage (user_id) SELECT id FROM new_rows;
        SELECT count(*) INTO n FROM new_rows;
    ELSE
        SELECT -count(*) INTO n FROM old_rows;
    END IF;
    UPDATE service_usage SET users = users + n WHERE shard = hp_usage_shard();
    RETURN NULL;
END $$;
CREATE TRIGGER users_counted_in AFTER INSERT ON users REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hp_users_counted();
CREATE TRIGGER users_counted_out AFTER DELETE ON users REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hp_users_counted();

-- Rows owned by one user column (sites, api_keys, webhooks, zones): TG_ARGV[0] is the counter,
-- TG_ARGV[1] the owner column, TG_ARGV[2] the service total or '' for none.
CREATE FUNCTION hp_owned_counted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE owners uuid[]; deltas bigint[]; total bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        EXECUTE format('SELECT array_agg(o), array_agg(n), coalesce(sum(n), 0)
                          FROM (SELECT %I AS o, count(*) AS n FROM new_rows GROUP BY 1) g', TG_ARGV[1])
           INTO owners, deltas, total;
    ELSE
        EXECUTE format('SELECT array_agg(o), array_agg(n), coalesce(sum(n), 0)
                          FROM (SELECT %I AS o, -count(*) AS n FROM old_rows GROUP BY 1) g', TG_ARGV[1])
           INTO owners, deltas, total;
    END IF;
    PERFORM hp_add_usage(TG_ARGV[0], owners, deltas);
    IF TG_ARGV[2] <> '' THEN
        EXECUTE format('UPDATE service_usage SET %1$I = %1$I + $1 WHERE shard = hp_usage_shard()', TG_ARGV[2])
          USING total;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER sites_counted_in AFTER INSERT ON sites REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hp_owned_counted('sites', 'user_id', 'sites');
CREATE TRIGGER sites_counted_out AFTER DELETE ON sites REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hp_owned_counted('sites', 'user_id', 'sites');
CREATE TRIGGER api_keys_counted_in AFTER INSERT ON api_keys REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hp_owned_counted('api_keys', 'user_id', '');
CREATE TRIGGER api_keys_counted_out AFTER DELETE ON api_keys REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hp_owned_counted('api_keys', 'user_id', '');
CREATE TRIGGER webhooks_counted_in AFTER INSERT ON webhooks REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hp_owned_counted('webhooks', 'created_by', '');
CREATE TRIGGER webhooks_counted_out AFTER DELETE ON webhooks REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hp_owned_counted('webhooks', 'created_by', '');
CREATE TRIGGER zones_counted_in AFTER INSERT ON zones REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hp_owned_counted('zones', 'user_id', '');
CREATE TRIGGER zones_counted_out AFTER DELETE ON zones REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hp_owned_counted('zones', 'user_id', '');

-- Domains and mail domains: per user, and the service's totals by review status. TG_ARGV[0] is
-- the per-user counter, TG_ARGV[1] the prefix of the service's columns ('domains' or 'mail').
CREATE FUNCTION hp_claims_counted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE owners uuid[]; statuses text[]; deltas bigint[]; boxes bigint[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(user_id), array_agg(status), array_agg(n), array_agg(0::bigint)
          INTO owners, statuses, deltas, boxes
          FROM (SELECT user_id, status, count(*) AS n FROM new_rows GROUP BY 1, 2) g;
    ELSIF TG_OP = 'DELETE' THEN
        IF TG_ARGV[1] = 'mail' THEN
            SELECT array_agg(user_id), array_agg(status), array_agg(n), array_agg(b)
              INTO owners, statuses, deltas, boxes
              FROM (SELECT user_id, status, -count(*) AS n, -sum(mailbox_count)::bigint AS b
                      FROM old_rows GROUP BY 1, 2) g;
        ELSE
            SELECT array_agg(user_id), array_agg(status), array_agg(n), array_agg(0::bigint)
              INTO owners, statuses, deltas, boxes
              FROM (SELECT user_id, status, -count(*) AS n FROM old_rows GROUP BY 1, 2) g;
        END IF;
    ELSE
        -- A change of status moves a row between the service's columns; its owner stays.
        SELECT array_agg(user_id), array_agg(status), array_agg(n), array_agg(0::bigint)
          INTO owners, statuses, deltas, boxes
          FROM (SELECT user_id, status, sum(n)::bigint AS n
                  FROM (SELECT user_id, status, 1 AS n FROM new_rows
                        UNION ALL SELECT user_id, status, -1 FROM old_rows) x
                 GROUP BY 1, 2 HAVING sum(n) <> 0) g;
    END IF;
    IF owners IS NULL THEN
        RETURN NULL;
    END IF;
    IF TG_OP <> 'UPDATE' THEN
        PERFORM hp_add_usage(TG_ARGV[0], owners, deltas);
        IF TG_ARGV[1] = 'mail' THEN
            PERFORM hp_add_usage('mailboxes', owners, boxes);
        END IF;
    END IF;
    EXECUTE format(
        'UPDATE service_usage SET %1$I = %1$I + coalesce((SELECT sum(n) FROM unnest($1, $2) t (s, n) WHERE s = ''active''), 0),
                                  %2$I = %2$I + coalesce((SELECT sum(n) FROM unnest($1, $2) t (s, n) WHERE s = ''reviewing''), 0),
                                  %3$I = %3$I + coalesce((SELECT sum(n) FROM unnest($1, $2) t (s, n) WHERE s = ''rejected''), 0)
          WHERE shard = hp_usage_shard()',
        TG_ARGV[1] || '_active', TG_ARGV[1] || '_reviewing', TG_ARGV[1] || '_rejected')
      USING statuses, deltas;
    RETURN NULL;
END $$;
CREATE TRIGGER domains_counted_in AFTER INSERT ON domains REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hp_claims_counted('domains', 'domains');
CREATE TRIGGER domains_counted_out AFTER DELETE ON domains REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hp_claims_counted('domains', 'domains');
CREATE TRIGGER domains_counted_moved AFTER UPDATE ON domains
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hp_claims_counted('domains', 'domains');
CREATE TRIGGER mail_domains_counted_in AFTER INSERT ON mail_domains REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hp_claims_counted('mail_domains', 'mail');
CREATE TRIGGER mail_domains_counted_out AFTER DELETE ON mail_domains REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hp_claims_counted('mail_domains', 'mail');
CREATE TRIGGER mail_domains_counted_moved AFTER UPDATE ON mail_domains
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hp_claims_counted('mail_domains', 'mail');

-- Mailboxes: their domain's count and its owner's. When the domain goes in the same statement
-- (a cascade), neither is found here: the domain's own trigger takes its mailbox_count off.
CREATE FUNCTION hp_mailboxes_counted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE domains_ text[]; deltas bigint[]; total bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(domain), array_agg(n), coalesce(sum(n), 0) INTO domains_, deltas, total
          FROM (SELECT domain, count(*) AS n FROM new_rows GROUP BY 1) g;
    ELSE
        SELECT array_agg(domain), array_agg(n), coalesce(sum(n), 0) INTO domains_, deltas, total
          FROM (SELECT domain, -count(*) AS n FROM old_rows GROUP BY 1) g;
    END IF;
    UPDATE mail_domains d SET mailbox_count = d.mailbox_count + t.n
      FROM unnest(domains_, deltas) t (name, n) WHERE d.name = t.name;
    PERFORM hp_add_usage('mailboxes',
        ARRAY(SELECT d.user_id FROM unnest(domains_, deltas) WITH ORDINALITY t (name, n, i)
                JOIN mail_domains d ON d.name = t.name ORDER BY t.i),
        ARRAY(SELECT t.n FROM unnest(domains_, deltas) WITH ORDINALITY t (name, n, i)
                JOIN mail_domains d ON d.name = t.name ORDER BY t.i));
    UPDATE service_usage SET mailboxes = mailboxes + total WHERE shard = hp_usage_shard();
    RETURN NULL;
END $$;
CREATE TRIGGER mailboxes_counted_in AFTER INSERT ON mailboxes REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hp_mailboxes_counted();
CREATE TRIGGER mailboxes_counted_out AFTER DELETE ON mailboxes REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hp_mailboxes_counted();
