-- Mailboxes log in too (role `mailbox`): a session belongs to a user or to a mailbox, and goes
-- with it. Ending one NOTIFYs like any session (the trigger of 0004 fires on every delete).
ALTER TABLE sessions
    ALTER COLUMN user_id DROP NOT NULL,
    ADD COLUMN mailbox text REFERENCES mailboxes (address) ON DELETE CASCADE,
    ADD CONSTRAINT sessions_one_holder CHECK ((user_id IS NULL) <> (mailbox IS NULL));
CREATE INDEX sessions_mailbox ON sessions (mailbox) WHERE mailbox IS NOT NULL;
