-- get_list_mailbox {"q"} (#19): the part of an address is found through a trigram index, at any
-- number of mailboxes (the statement is planned with its pattern, see db::mail::list_mailboxes).
CREATE INDEX mailboxes_address_trgm ON mailboxes USING gin (address public.gin_trgm_ops);
