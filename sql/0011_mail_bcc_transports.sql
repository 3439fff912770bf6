-- Recipient BCC and transports. Postfix takes one BCC address and one transport per lookup, so
-- each source (user@domain or @domain; user@domain or domain) has at most one per region.

CREATE TABLE mail_bcc (
    source       text NOT NULL CHECK (source = lower(source)),
    region       text NOT NULL,
    domain       text NOT NULL REFERENCES mail_domains (name) ON DELETE CASCADE,
    destination  text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, region)
);
CREATE INDEX mail_bcc_domain ON mail_bcc (domain, source);

CREATE TABLE mail_transports (
    source       text NOT NULL CHECK (source = lower(source)),
    region       text NOT NULL,
    domain       text NOT NULL REFERENCES mail_domains (name) ON DELETE CASCADE,
    destination  text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, region)
);
CREATE INDEX mail_transports_domain ON mail_transports (domain, source);

-- Postfix recipient_bcc_maps: key source, value one address.
CREATE VIEW mail_recipient_bcc AS
    SELECT b.source, b.destination, b.region
      FROM mail_bcc b JOIN mail_domains d ON d.name = b.domain
     WHERE NOT d.disabled;

-- Postfix transport_maps: key user@domain or domain, value like lmtp:unix:private/dovecot-lmtp.
CREATE VIEW mail_transport_maps AS
    SELECT t.source, t.destination, t.region
      FROM mail_transports t JOIN mail_domains d ON d.name = t.domain
     WHERE NOT d.disabled;
