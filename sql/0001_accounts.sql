-- Accounts, sessions, login throttling, password reset and invite tokens, audit log.
-- Secrets (session cookies, uniqcodes, reset tokens, invite codes) are stored only as SHA-256 hashes.

CREATE TABLE users (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    login          text NOT NULL UNIQUE CHECK (login = lower(login)),
    password_hash  text NOT NULL,
    uniqcode_hash  bytea NOT NULL,
    role           text NOT NULL DEFAULT 'user' CHECK (role IN ('admin', 'user')),
    disabled       boolean NOT NULL DEFAULT false,
    max_sites      integer,
    max_domains    integer,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE user_emails (
    user_id   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    position  smallint NOT NULL,
    email     text NOT NULL,
    PRIMARY KEY (user_id, position)
);
CREATE INDEX user_emails_lower_email ON user_emails (lower(email));

CREATE TABLE sessions (
    token_hash  bytea PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sessions_user_id ON sessions (user_id);

-- Failed-attempt counters per login name and per client address, one fixed window each.
CREATE TABLE auth_throttle (
    scope         text NOT NULL,
    key           text NOT NULL,
    window_start  timestamptz NOT NULL,
    attempts      integer NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE TABLE password_resets (
    token_hash  bytea PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX password_resets_user_id ON password_resets (user_id);

CREATE TABLE invites (
    code_hash   bytea PRIMARY KEY,
    created_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_by     uuid REFERENCES users (id) ON DELETE SET NULL,
    used_at     timestamptz
);

CREATE TABLE audit_log (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    actor      uuid,
    actor_login text,
    action     text NOT NULL,
    object     text,
    params     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_action ON audit_log (action, id);

-- Timestamps leave the database as RFC 3339 text in UTC.
CREATE FUNCTION hp_iso(t timestamptz) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"');
