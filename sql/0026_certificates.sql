-- Certificates from ACME (#18): one row per site domain that wants HTTPS, which is also the
-- issuance and renewal job (leased with FOR UPDATE SKIP LOCKED), the HTTP-01 tokens its node
-- answers while an order waits, and the ACME account of each directory.

-- A domain may do without HTTPS (add_domain {https: false}).
ALTER TABLE domains ADD COLUMN https boolean NOT NULL DEFAULT true;

CREATE TABLE certificates (
    domain       text PRIMARY KEY REFERENCES domains (name) ON DELETE CASCADE,
    -- pending: no certificate yet; issued: a certificate is served; failed: the last order failed.
    state        text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'issued', 'failed')),
    not_after    timestamptz,
    last_error   text,
    -- The chain (PEM), and its private key sealed with HOSTPLANE_SECRET_KEY_FILE's key.
    cert_pem     text,
    key_sealed   bytea,
    -- The job: when the next order is due, failures in a row (the backoff), and the lease.
    due_at       timestamptz NOT NULL DEFAULT now(),
    failures     integer NOT NULL DEFAULT 0,
    leased_until timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX certificates_due ON certificates (due_at);

-- Every domain there is wants a certificate.
INSERT INTO certificates (domain) SELECT name FROM domains;

-- HTTP-01 tokens the domain's node serves under /.well-known/acme-challenge/ during an order.
CREATE TABLE acme_http_challenges (
    domain            text NOT NULL REFERENCES certificates (domain) ON DELETE CASCADE,
    token             text NOT NULL CHECK (token ~ '^[A-Za-z0-9_-]{1,200}$'),
    key_authorization text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (domain, token)
);

-- One ACME account per directory, shared by every instance; its key sealed like certificates'.
CREATE TABLE acme_accounts (
    directory   text PRIMARY KEY,
    credentials bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
