-- Rows that only grow are purged by index, never by scanning whole tables; reset mails are
-- counted per recipient address and per requesting client, not only per account.

CREATE INDEX auth_throttle_window_start ON auth_throttle (window_start);
CREATE INDEX sessions_last_seen ON sessions (last_seen);
CREATE INDEX sessions_created_at ON sessions (created_at);
CREATE INDEX invites_expires_at ON invites (expires_at);
CREATE INDEX password_resets_expires_at ON password_resets (expires_at);
CREATE INDEX audit_log_at ON audit_log (at);

ALTER TABLE password_resets
    ADD COLUMN recipient text,
    ADD COLUMN requested_from text;
CREATE INDEX password_resets_recipient ON password_resets (recipient, created_at);
CREATE INDEX password_resets_requested_from ON password_resets (requested_from, created_at);
CREATE INDEX password_resets_user_created ON password_resets (user_id, created_at);
