-- Two-factor sign-in (#20): TOTP (RFC 6238) per account, single-use recovery codes, and the
-- admins' policy. Everything lives here so that every instance sees the same state: a pending
-- enrolment, the last time step accepted (a code is never accepted twice, whichever instance
-- sees it), and the policy.

-- One row per account that started an enrolment. The secret must be readable to check codes: it
-- is sealed with the service's secret key (crate::seal, bound to 'totp:<user id>'), never clear.
-- confirmed_at NULL: the enrolment is pending and sign-in does not ask for a code yet.
CREATE TABLE user_totp (
    user_id        uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_sealed  bytea NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    confirmed_at   timestamptz,
    -- The time step (Unix time / 30) of the last code accepted; only later steps are accepted.
    last_step      bigint
);

-- Recovery codes, stored as the SHA-256 of their normalised form; each works once.
CREATE TABLE totp_recovery_codes (
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  bytea NOT NULL,
    used_at    timestamptz,
    PRIMARY KEY (user_id, code_hash)
);

-- The service's sign-in policy: one row.
CREATE TABLE auth_policy (
    only_row                   boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    totp_required_for_admins   boolean NOT NULL DEFAULT false,
    updated_at                 timestamptz NOT NULL DEFAULT now()
);
INSERT INTO auth_policy DEFAULT VALUES;
