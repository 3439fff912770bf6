-- Fair webhook delivery (issue 16): deliverers lease webhooks, not deliveries. One row per
-- webhook tells when it next has due work (`next_at`; NULL: nothing pending), so a lease reads
-- only the webhooks with due work, however long the outbox behind them is. The owner is kept
-- beside it so leases can take owners in turn. See src/db/webhook_queue.rs for the protocol.
CREATE TABLE webhook_queue (
    webhook_id    uuid PRIMARY KEY REFERENCES webhooks (id) ON DELETE CASCADE,
    owner_id      uuid NOT NULL,
    next_at       timestamptz,
    leased_until  timestamptz
);
CREATE INDEX webhook_queue_due ON webhook_queue (next_at) WHERE next_at IS NOT NULL;

INSERT INTO webhook_queue (webhook_id, owner_id, next_at)
SELECT w.id, w.created_by,
       (SELECT min(d.next_at) FROM webhook_deliveries d
         WHERE d.webhook_id = w.id AND d.state = 'pending')
  FROM webhooks w;

CREATE FUNCTION webhooks_queue_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_queue (webhook_id, owner_id) VALUES (NEW.id, NEW.created_by);
    RETURN NULL;
END
$$;
CREATE TRIGGER webhooks_queue_row AFTER INSERT ON webhooks
    FOR EACH ROW EXECUTE FUNCTION webhooks_queue_row();

-- A change writes its deliveries, holds its webhooks' queue rows FOR KEY SHARE until it ends
-- (a deliverer marks a webhook idle only with FOR UPDATE, which waits for no one: it skips a
-- row so held, so it can never mark idle a webhook whose delivery is about to commit), and wakes
-- the idle ones, locking them in one order so that two changes cannot deadlock here.
CREATE OR REPLACE FUNCTION changes_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    hooks uuid[];
BEGIN
    SELECT array_agg(w.id ORDER BY w.id) INTO hooks
      FROM webhooks w
     WHERE NEW.event = ANY (w.events)
       AND (w.user_id IS NULL OR w.user_id = NEW.user_id);
    IF hooks IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM 1 FROM webhook_queue q WHERE q.webhook_id = ANY (hooks)
      ORDER BY q.webhook_id FOR KEY SHARE;
    INSERT INTO webhook_deliveries (webhook_id, change_id, txid)
    SELECT h, NEW.id, NEW.txid FROM unnest(hooks) AS h;
    PERFORM 1 FROM webhook_queue q WHERE q.webhook_id = ANY (hooks) AND q.next_at IS NULL
      ORDER BY q.webhook_id FOR NO KEY UPDATE;
    UPDATE webhook_queue q SET next_at = now()
     WHERE q.webhook_id = ANY (hooks) AND q.next_at IS NULL;
    RETURN NULL;
END
$$;

-- Ends a deliverer's lease of a webhook: due when its oldest pending delivery is (a poll later
-- if an older transaction may still add one), idle (NULL) when nothing is pending. Idle is decided
-- only under FOR UPDATE, which a change in flight (FOR KEY SHARE) keeps it from taking; the
-- look at the deliveries is a statement of its own, so its snapshot sees every change that
-- ended before the lock was taken. Without the lock: due again a poll later.
CREATE FUNCTION webhook_queue_release(hook uuid, poll_secs float8) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    held boolean;
BEGIN
    PERFORM 1 FROM webhook_queue WHERE webhook_id = hook FOR UPDATE SKIP LOCKED;
    held := FOUND;
    UPDATE webhook_queue q SET leased_until = NULL, next_at = coalesce(
        (SELECT CASE WHEN d.txid < pg_snapshot_xmin(pg_current_snapshot()) THEN d.next_at
                     ELSE greatest(d.next_at, now() + make_interval(secs => poll_secs)) END
           FROM webhook_deliveries d
          WHERE d.webhook_id = hook AND d.state = 'pending'
          ORDER BY d.txid, d.id
          LIMIT 1),
        CASE WHEN held THEN NULL ELSE now() + make_interval(secs => poll_secs) END)
     WHERE q.webhook_id = hook;
END
$$;

-- Leases no longer scan deliveries by due time.
DROP INDEX webhook_deliveries_due;

-- A delivery the owner may no longer receive (disabled, or no longer an admin for another
-- user's object) is dropped, not sent.
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_state_check;
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_state_check
    CHECK (state IN ('pending', 'delivered', 'failed', 'dropped'));

