-- The fast path from a committed e-mail to its delivery (DESIGN §3, revised in
-- docs/architecture.md): PostgreSQL announces every new outbox row on the channel
-- `email_outbox`. NOTIFY is transactional — delivered at commit, dropped on rollback — so the
-- worker hears only of e-mails that really exist, and no API process has to push a job after
-- committing (a crash between the two would have cost the fast path).
CREATE FUNCTION email_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('email_outbox', NEW.id::text);
    RETURN NEW;
END
$$;

CREATE TRIGGER email_outbox_notify AFTER INSERT ON email_outbox
    FOR EACH ROW EXECUTE FUNCTION email_outbox_notify();
