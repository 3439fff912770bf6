-- The integration surface (issue 10): API keys, request counters shared by instances,
-- idempotent requests, the change log with its webhook outbox, and domain review.

-- API keys act as their owner, narrowed by an action list, read-only, addresses and expiry.
-- Only the key's SHA-256 is kept; `prefix` tells keys apart in lists.
CREATE TABLE api_keys (
    id            uuid PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          text NOT NULL,
    key_hash      bytea NOT NULL UNIQUE,
    prefix        text NOT NULL,
    actions       text[],
    read_only     boolean NOT NULL DEFAULT false,
    cidrs         cidr[],
    rate_limit    integer CHECK (rate_limit > 0),
    expires_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    last_used_ip  inet
);
CREATE INDEX api_keys_user ON api_keys (user_id, created_at);

-- Requests per caller and hourly window. Each instance counts in memory and adds its count here
-- now and then, learning the sum of all instances in return.
CREATE TABLE request_counts (
    subject       text NOT NULL,
    window_start  timestamptz NOT NULL,
    count         bigint NOT NULL,
    PRIMARY KEY (subject, window_start)
);
CREATE INDEX request_counts_window ON request_counts (window_start);

-- A change sent with a request_id, with its answer: written in the change's own transaction.
CREATE TABLE idempotent_requests (
    caller       text NOT NULL,
    request_id   text NOT NULL,
    params_hash  bytea NOT NULL,
    answer       bytea NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (caller, request_id)
);
CREATE INDEX idempotent_requests_created ON idempotent_requests (created_at);

-- Every change a script may want to hear of, written in the change's transaction. `txid` gives
-- commit order: readers take only rows of transactions older than every running one.
CREATE TABLE changes (
    id        bigserial PRIMARY KEY,
    txid      xid8 NOT NULL DEFAULT pg_current_xact_id(),
    at        timestamptz NOT NULL DEFAULT now(),
    event     text NOT NULL,
    user_id   uuid,
    node_id   integer,
    data      jsonb NOT NULL
);
CREATE INDEX changes_order ON changes (txid, id);
CREATE INDEX changes_user ON changes (user_id, txid, id);
CREATE INDEX changes_at ON changes (at);

-- Webhooks: a user's hear of their own objects, an admin's (user_id NULL) of everything.
CREATE TABLE webhooks (
    id          uuid PRIMARY KEY,
    user_id     uuid REFERENCES users (id) ON DELETE CASCADE,
    created_by  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    url         text NOT NULL,
    events      text[] NOT NULL,
    secret      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_user ON webhooks (user_id);
CREATE INDEX webhooks_created_by ON webhooks (created_by, created_at);

-- The outbox: one row per change and webhook, written with the change.
CREATE TABLE webhook_deliveries (
    id            bigserial PRIMARY KEY,
    webhook_id    uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    change_id     bigint NOT NULL REFERENCES changes (id) ON DELETE CASCADE,
    txid          xid8 NOT NULL,
    state         text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts      integer NOT NULL DEFAULT 0,
    next_at       timestamptz NOT NULL DEFAULT now(),
    leased_until  timestamptz,
    last_status   integer,
    last_error    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    done_at       timestamptz
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (webhook_id, txid, id)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_list ON webhook_deliveries (webhook_id, id);
CREATE INDEX webhook_deliveries_change ON webhook_deliveries (change_id);
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (created_at) WHERE state <> 'pending';
CREATE INDEX webhook_deliveries_failed ON webhook_deliveries (webhook_id) WHERE state = 'failed';

CREATE FUNCTION changes_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_deliveries (webhook_id, change_id, txid)
    SELECT w.id, NEW.id, NEW.txid
      FROM webhooks w
     WHERE NEW.event = ANY (w.events)
       AND (w.user_id IS NULL OR w.user_id = NEW.user_id);
    RETURN NULL;
END
$$;
CREATE TRIGGER changes_fan_out AFTER INSERT ON changes
    FOR EACH ROW EXECUTE FUNCTION changes_fan_out();

-- Domain review: under review a domain is in no node's desired state and no mail view.
ALTER TABLE users ADD COLUMN review_domains boolean NOT NULL DEFAULT false;
ALTER TABLE domains
    ADD COLUMN status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'reviewing', 'rejected')),
    ADD COLUMN reject_reason text;
CREATE INDEX domains_reviewing ON domains (created_at) WHERE status <> 'active';
ALTER TABLE mail_domains
    ADD COLUMN status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'reviewing', 'rejected')),
    ADD COLUMN reject_reason text;
CREATE INDEX mail_domains_reviewing ON mail_domains (created_at) WHERE status <> 'active';

-- The mail views, as before, without domains that are not (yet) approved.
CREATE OR REPLACE VIEW mail_virtual_domains AS
    SELECT d.name AS domain, d.region
      FROM mail_domains d
     WHERE NOT d.disabled AND d.status = 'active';

CREATE OR REPLACE VIEW mail_virtual_mailboxes AS
    SELECT m.address, m.domain || '/' || m.local_part || '/Maildir/' AS maildir, d.region
      FROM mailboxes m JOIN mail_domains d ON d.name = m.domain
     WHERE NOT m.disabled AND NOT d.disabled AND d.status = 'active';

CREATE OR REPLACE VIEW mail_virtual_aliases AS
    SELECT a.source, array_to_string(a.destinations, ',') AS destination, d.region
      FROM mail_aliases a JOIN mail_domains d ON d.name = a.domain
     WHERE NOT d.disabled AND d.status = 'active'
    UNION ALL
    SELECT m.address, array_to_string(m.address || m.forward_to, ','), d.region
      FROM mailboxes m JOIN mail_domains d ON d.name = m.domain
     WHERE NOT m.disabled AND NOT d.disabled AND d.status = 'active';

CREATE OR REPLACE VIEW mail_sender_logins AS
    SELECT m.address AS sender, m.address AS login, d.region
      FROM mailboxes m JOIN mail_domains d ON d.name = m.domain
     WHERE NOT m.disabled AND NOT d.disabled AND d.status = 'active' AND m.can_login;

CREATE OR REPLACE VIEW mail_dovecot_passdb AS
    SELECT m.address AS "user", m.password_hash AS password, d.region
      FROM mailboxes m JOIN mail_domains d ON d.name = m.domain
     WHERE NOT m.disabled AND NOT d.disabled AND d.status = 'active' AND m.can_login;

CREATE OR REPLACE VIEW mail_dovecot_userdb AS
    SELECT m.address AS "user", m.domain || '/' || m.local_part AS home,
           CASE WHEN m.quota_bytes > 0 THEN '*:bytes=' || m.quota_bytes ELSE '*:storage=0' END AS quota_rule,
           d.region
      FROM mailboxes m JOIN mail_domains d ON d.name = m.domain
     WHERE NOT m.disabled AND NOT d.disabled AND d.status = 'active';

CREATE OR REPLACE VIEW mail_recipient_bcc AS
    SELECT b.source, b.destination, b.region
      FROM mail_bcc b JOIN mail_domains d ON d.name = b.domain
     WHERE NOT d.disabled AND d.status = 'active';

CREATE OR REPLACE VIEW mail_transport_maps AS
    SELECT t.source, t.destination, t.region
      FROM mail_transports t JOIN mail_domains d ON d.name = t.domain
     WHERE NOT d.disabled AND d.status = 'active';

CREATE OR REPLACE VIEW mail_dkim_keys AS
    SELECT k.domain AS key_name, k.domain, k.selector, k.private_key, d.region
      FROM mail_dkim k JOIN mail_domains d ON d.name = k.domain
     WHERE NOT d.disabled AND d.status = 'active';

CREATE OR REPLACE VIEW mail_dkim_signing AS
    SELECT k.domain AS sender, k.domain AS key_name, d.region
      FROM mail_dkim k JOIN mail_domains d ON d.name = k.domain
     WHERE NOT d.disabled AND d.status = 'active';

-- The audit log names the API key a change came through and the unit of work (a batch, or a
-- request with a request_id) it belonged to.
ALTER TABLE audit_log ADD COLUMN api_key uuid, ADD COLUMN unit uuid;
