-- Per mail domain limits (#17): how many mailboxes it may hold, and the total of its mailboxes'
-- quotas (0: no limit). With a total quota, every mailbox has a quota of its own. add_mailbox,
-- set_mailbox and set_mail_domain decide under the domain's row lock.
ALTER TABLE mail_domains
    ADD COLUMN max_mailboxes integer NOT NULL DEFAULT 0 CHECK (max_mailboxes >= 0),
    ADD COLUMN quota_bytes bigint NOT NULL DEFAULT 0 CHECK (quota_bytes >= 0);
