-- The outbox announcement names the row's due instant too (`<id> <microseconds since epoch>`),
-- so the worker's fast path queues the delivery under the same key as the reconciler
-- (`outbox:<id>:due:<instant>`, docs/architecture.md decision 4). With different keys, every row
-- still waiting in a backlog when the reconciler or the outbox sweep ran got a second job, which
-- then found the row sent and did nothing: at 100,000 reminders, half as many jobs again.
CREATE OR REPLACE FUNCTION email_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('email_outbox',
        NEW.id::text || ' ' || (extract(epoch FROM NEW.next_attempt_at) * 1000000)::bigint::text);
    RETURN NEW;
END
$$;
