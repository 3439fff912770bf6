-- Dovecot's quota_clone plugin writes each mailbox's usage through its SQL dict; the row says
-- when it last did.
CREATE FUNCTION hp_touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER mailbox_usage_touch
    BEFORE UPDATE ON mailbox_usage
    FOR EACH ROW EXECUTE FUNCTION hp_touch_updated_at();
