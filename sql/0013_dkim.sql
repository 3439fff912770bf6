-- DKIM: one signing key per mail domain. The private key is for OpenDKIM alone: the API never
-- answers it, and only the mail servers' reader role reads it, through the views below.
CREATE TABLE mail_dkim (
    domain       text PRIMARY KEY REFERENCES mail_domains (name) ON DELETE CASCADE,
    selector     text NOT NULL,
    -- PKCS#8 DER of the RSA private key, base64 (one line: OpenDKIM reads it inline).
    private_key  text NOT NULL,
    -- SubjectPublicKeyInfo DER, base64: the p= of the DNS record.
    public_key   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- OpenDKIM KeyTable: key name -> domain, selector, private key.
CREATE VIEW mail_dkim_keys AS
    SELECT k.domain AS key_name, k.domain, k.selector, k.private_key, d.region
      FROM mail_dkim k JOIN mail_domains d ON d.name = k.domain
     WHERE NOT d.disabled;

-- OpenDKIM SigningTable: sender domain -> key name (OpenDKIM asks for the whole address, then
-- for its domain).
CREATE VIEW mail_dkim_signing AS
    SELECT k.domain AS sender, k.domain AS key_name, d.region
      FROM mail_dkim k JOIN mail_domains d ON d.name = k.domain
     WHERE NOT d.disabled;
