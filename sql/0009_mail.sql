-- Mail hosting, first part: nodes serve web, mail or both, in a region; customers' mail domains
-- and mailboxes. Postfix and Dovecot will read these through views of their own.

ALTER TABLE nodes
    ADD COLUMN kinds text[] NOT NULL DEFAULT '{web}'
        CHECK (cardinality(kinds) > 0 AND kinds <@ ARRAY['web', 'mail']),
    ADD COLUMN region text NOT NULL DEFAULT 'default';
CREATE INDEX nodes_mail_region ON nodes (region) WHERE 'mail' = ANY (kinds);

ALTER TABLE users
    ADD COLUMN max_mail_domains integer,
    ADD COLUMN max_mailboxes integer;

-- A mail domain belongs to one user: one of their site domains, or a name they hold for mail
-- only (claimed like a site domain: unique, and no nesting with another user's names).
CREATE TABLE mail_domains (
    name        text PRIMARY KEY CHECK (name = lower(name)),
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    region      text NOT NULL,
    disabled    boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mail_domains_user ON mail_domains (user_id, name);
CREATE INDEX mail_domains_reversed_name ON mail_domains (reverse(name) COLLATE "C");

CREATE TABLE mailboxes (
    address        text PRIMARY KEY CHECK (address = lower(address)),
    domain         text NOT NULL REFERENCES mail_domains (name) ON DELETE CASCADE,
    local_part     text NOT NULL,
    -- '{BLF-CRYPT}' followed by a bcrypt hash, as Dovecot reads it.
    password_hash  text NOT NULL,
    -- 0: no limit.
    quota_bytes    bigint NOT NULL DEFAULT 0 CHECK (quota_bytes >= 0),
    can_login      boolean NOT NULL DEFAULT true,
    forward_to     text[] NOT NULL DEFAULT '{}',
    disabled       boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (domain, local_part)
);

-- What Dovecot reports a mailbox holds (filled from Dovecot, never guessed).
CREATE TABLE mailbox_usage (
    address     text PRIMARY KEY REFERENCES mailboxes (address) ON DELETE CASCADE,
    used_bytes  bigint NOT NULL DEFAULT 0,
    messages    bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Aliases: `user@domain`, or `@domain` for a catch-all, to one or more addresses.
CREATE TABLE mail_aliases (
    source        text PRIMARY KEY CHECK (source = lower(source)),
    domain        text NOT NULL REFERENCES mail_domains (name) ON DELETE CASCADE,
    destinations  text[] NOT NULL CHECK (cardinality(destinations) BETWEEN 1 AND 50),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mail_aliases_domain ON mail_aliases (domain, source);
