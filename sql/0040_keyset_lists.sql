-- Every list keyset-paged by one builder (#19, db::list): the order of each list, under each of
-- its filters, is an index's, so a page (and a cursor, a row value compared in that order) reads
-- only its own rows. These are the lists whose order no index served yet.

-- get_list_mailbox {domain}: by address within one domain.
CREATE INDEX mailboxes_domain_address ON mailboxes (domain, address);

-- get_list_bcc and get_list_transport {domain}: by (source, region) within one domain.
CREATE INDEX mail_bcc_domain_source_region ON mail_bcc (domain, source, region);
DROP INDEX mail_bcc_domain;
CREATE INDEX mail_transports_domain_source_region ON mail_transports (domain, source, region);
DROP INDEX mail_transports_domain;

-- get_list_api_key: a user's keys newest first, the id parting keys made at the same instant.
CREATE INDEX api_keys_user_created_id ON api_keys (user_id, created_at, id);
DROP INDEX api_keys_user;

-- get_list_webhook: oldest first, of one creator (a user) or of all (an admin).
CREATE INDEX webhooks_created_by_created_id ON webhooks (created_by, created_at, id);
DROP INDEX webhooks_created_by;
CREATE INDEX webhooks_created_id ON webhooks (created_at, id);
