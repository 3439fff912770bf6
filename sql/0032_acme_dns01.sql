-- DNS-01 and wildcard certificates (#18). A site domain may also answer every name below it
-- (`wildcard`); its certificate then covers both names and is ordered over DNS-01 through the
-- zone hosted here that the name lies in. The challenge's TXT values are rows of zone_records
-- marked with the domain they answer for (`acme_domain`): PowerDNS serves them like any record,
-- the serial triggers move the zone's SOA, and users can neither edit nor delete them (they show
-- as managed). They go when the order ends, or with the domain's certificate.

ALTER TABLE domains ADD COLUMN wildcard boolean NOT NULL DEFAULT false;

ALTER TABLE zone_records
    ADD COLUMN acme_domain text REFERENCES certificates (domain) ON DELETE CASCADE;
CREATE INDEX zone_records_acme ON zone_records (acme_domain) WHERE acme_domain IS NOT NULL;
