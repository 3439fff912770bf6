-- The rest of get_stats and get_user_stats kept, not counted (sql/0027_usage_counters.sql has the
-- pattern): live sessions, changes per UTC day, webhook deliveries pending and failed, and the
-- bytes mailboxes hold (the service's and each user's). Statement-level triggers with transition
-- tables, so the bulk deletes of src/purge.rs cost one counter write per statement; the service's
-- totals are split over 16 shards (the backend's, hp_usage_shard()) so no row is hot.
-- Lock order: after user_usage and service_usage (these tables are written last, by triggers).

CREATE TABLE service_activity (
    shard               smallint PRIMARY KEY CHECK (shard BETWEEN 0 AND 15),
    sessions            bigint NOT NULL DEFAULT 0,
    deliveries_pending  bigint NOT NULL DEFAULT 0,
    deliveries_failed   bigint NOT NULL DEFAULT 0,
    mail_bytes          bigint NOT NULL DEFAULT 0
);
INSERT INTO service_activity (shard) SELECT generate_series(0, 15);
UPDATE service_activity SET
    sessions = (SELECT count(*) FROM sessions),
    deliveries_pending = (SELECT count(*) FROM webhook_deliveries WHERE state = 'pending'),
    deliveries_failed = (SELECT count(*) FROM webhook_deliveries WHERE state = 'failed'),
    mail_bytes = (SELECT coalesce(sum(used_bytes), 0) FROM mailbox_usage)
 WHERE shard = 0;

-- Changes recorded per UTC day (a day's rows go once the purge has taken all its changes).
CREATE TABLE changes_per_day (
    day    date NOT NULL,
    shard  smallint NOT NULL CHECK (shard BETWEEN 0 AND 15),
    n      bigint NOT NULL,
    PRIMARY KEY (day, shard)
);
INSERT INTO changes_per_day (day, shard, n)
SELECT (at AT TIME ZONE 'UTC')::date, 0, count(*) FROM changes GROUP BY 1;

-- Sessions: rows, whoever inserts or deletes them (login, logout, purge, a user's cascade).
CREATE FUNCTION hp_sessions_counted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT count(*) INTO n FROM new_rows;
    ELSE
        SELECT -count(*) INTO n FROM old_rows;
    END IF;
    IF n <> 0 THEN
        UPDATE service_activity SET sessions = sessions + n WHERE shard = hp_usage_shard();
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER sessions_counted_in AFTER INSERT ON sessions REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hp_sessions_counted();
CREATE TRIGGER sessions_counted_out AFTER DELETE ON sessions REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hp_sessions_counted();

-- Changes: by the UTC day of `at`.
CREATE FUNCTION hp_changes_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO changes_per_day AS c (day, shard, n)
        SELECT (at AT TIME ZONE 'UTC')::date, hp_usage_shard(), count(*) FROM new_rows GROUP BY 1
            ON CONFLICT (day, shard) DO UPDATE SET n = c.n + excluded.n;
    ELSE
        WITH gone AS (SELECT (at AT TIME ZONE 'UTC')::date AS day, count(*) AS n FROM old_rows GROUP BY 1),
             -- Taken from the days' shards in order until each day's count is off.
             shards AS (SELECT c.day, c.shard, c.n,
                               least(c.n, g.n - coalesce(sum(c.n) OVER (PARTITION BY c.day ORDER BY c.shard
                                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)) AS take
                          FROM changes_per_day c JOIN gone g ON g.day = c.day)
        UPDATE changes_per_day c SET n = c.n - s.take
          FROM shards s WHERE c.day = s.day AND c.shard = s.shard AND s.take > 0;
        DELETE FROM changes_per_day WHERE n = 0
           AND day IN (SELECT DISTINCT (at AT TIME ZONE 'UTC')::date FROM old_rows);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER changes_counted_in AFTER INSERT ON changes REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hp_changes_counted();
CREATE TRIGGER changes_counted_out AFTER DELETE ON changes REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hp_changes_counted();

-- Webhook deliveries by state. An update keeps the number of rows, so each state's change is
-- its count among the new rows less its count among the old ones (no join).
CREATE FUNCTION hp_deliveries_counted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE pending bigint := 0; failed bigint := 0;
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        SELECT pending + count(*) FILTER (WHERE state = 'pending'),
               failed + count(*) FILTER (WHERE state = 'failed')
          INTO pending, failed FROM new_rows;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        SELECT pending - count(*) FILTER (WHERE state = 'pending'),
               failed - count(*) FILTER (WHERE state = 'failed')
          INTO pending, failed FROM old_rows;
    END IF;
    IF pending <> 0 OR failed <> 0 THEN
        UPDATE service_activity
           SET deliveries_pending = deliveries_pending + pending,
               deliveries_failed = deliveries_failed + failed
         WHERE shard = hp_usage_shard();
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER webhook_deliveries_counted_in AFTER INSERT ON webhook_deliveries
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hp_deliveries_counted();
CREATE TRIGGER webhook_deliveries_counted_moved AFTER UPDATE ON webhook_deliveries
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hp_deliveries_counted();
CREATE TRIGGER webhook_deliveries_counted_out AFTER DELETE ON webhook_deliveries
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hp_deliveries_counted();

-- Mailbox usage, written by Dovecot's reader role: each row knows its owner (set when it is
-- written, from its mailbox's domain, which never changes hands), so the bytes can still be
-- taken off when the row goes in a cascade from its domain or its user. The functions run as
-- their owner: the reader role may write only mailbox_usage.
ALTER TABLE user_usage ADD COLUMN mail_bytes bigint NOT NULL DEFAULT 0;
ALTER TABLE mailbox_usage ADD COLUMN owner uuid;
UPDATE mailbox_usage q SET owner = d.user_id
  FROM mailboxes m JOIN mail_domains d ON d.name = m.domain WHERE m.address = q.address;
UPDATE user_usage u SET mail_bytes = t.n
  FROM (SELECT owner, sum(used_bytes) AS n FROM mailbox_usage GROUP BY 1) t WHERE t.owner = u.user_id;

CREATE FUNCTION hp_mailbox_usage_owner() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    NEW.owner := (SELECT d.user_id FROM mailboxes m JOIN mail_domains d ON d.name = m.domain
                   WHERE m.address = NEW.address);
    RETURN NEW;
END $$;
CREATE TRIGGER mailbox_usage_owner BEFORE INSERT ON mailbox_usage
    FOR EACH ROW EXECUTE FUNCTION hp_mailbox_usage_owner();

-- The bytes a statement added or took, per owner.
CREATE FUNCTION hp_mail_bytes_counted() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE owners uuid[]; deltas bigint[]; total bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(owner), array_agg(n), coalesce(sum(n), 0) INTO owners, deltas, total
          FROM (SELECT owner, sum(used_bytes)::bigint AS n FROM new_rows GROUP BY 1) g;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(owner), array_agg(n), coalesce(sum(n), 0) INTO owners, deltas, total
          FROM (SELECT owner, -sum(used_bytes)::bigint AS n FROM old_rows GROUP BY 1) g;
    ELSE
        SELECT array_agg(owner), array_agg(n), coalesce(sum(n), 0) INTO owners, deltas, total
          FROM (SELECT owner, sum(n)::bigint AS n
                  FROM (SELECT owner, used_bytes AS n FROM new_rows
                        UNION ALL SELECT owner, -used_bytes FROM old_rows) x
                 GROUP BY 1 HAVING sum(n) <> 0) g;
    END IF;
    IF total = 0 AND owners IS NULL THEN
        RETURN NULL;
    END IF;
    -- A row without an owner (its mailbox was gone when it was written) counts for the service only.
    PERFORM hp_add_usage('mail_bytes',
        ARRAY(SELECT o FROM unnest(owners, deltas) t (o, n) WHERE o IS NOT NULL),
        ARRAY(SELECT n FROM unnest(owners, deltas) t (o, n) WHERE o IS NOT NULL));
    IF total <> 0 THEN
        UPDATE service_activity SET mail_bytes = mail_bytes + total WHERE shard = hp_usage_shard();
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER mailbox_usage_counted_in AFTER INSERT ON mailbox_usage
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hp_mail_bytes_counted();
CREATE TRIGGER mailbox_usage_counted_moved AFTER UPDATE ON mailbox_usage
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hp_mail_bytes_counted();
CREATE TRIGGER mailbox_usage_counted_out AFTER DELETE ON mailbox_usage
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hp_mail_bytes_counted();
