-- Ticket timers (DESIGN R5–R8, §3): SLA at-risk and breach alerts, the R8 reminder and auto-close.
--
-- The instants themselves are already data on `tickets` (the projected `*_at_risk_at`/`*_due_at`,
-- `waiting_since`). This table records that a timer acted, so a duplicate or replayed job is a
-- no-op: one row per ticket, timer kind and instant. For the SLA alerts (at risk and breached) the
-- instant is the metric's due instant, so a re-targeted ticket (new due instant) can alert again but
-- the same target never twice; for the reminder and the auto-close it is the instant they were due. For the reminder, `fired_at` is what the
-- auto-close counts from (48 h after the reminder), and a reminder belongs to the current wait when
-- `fired_at >= tickets.waiting_since`.
CREATE TABLE ticket_alerts (
    ticket_id  uuid NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    kind       text NOT NULL CHECK (kind IN ('first_response_at_risk', 'first_response_breached',
                                             'resolution_at_risk', 'resolution_breached',
                                             'customer_reminder', 'auto_close')),
    due_at     timestamptz NOT NULL,
    fired_at   timestamptz NOT NULL,
    PRIMARY KEY (ticket_id, kind, due_at)
);
-- "The reminder of the current wait": the latest reminder of a ticket.
CREATE INDEX ticket_alerts_fired_idx ON ticket_alerts (ticket_id, kind, fired_at);

-- The reconciler's sweeps, each through its own partial index: unmet SLA metrics of open tickets
-- by their at-risk instant (always at or before the due instant), and waiting tickets by the start
-- of the wait.
CREATE INDEX tickets_first_response_timer_idx ON tickets (first_response_at_risk_at)
    WHERE status <> 'closed' AND first_response_met_at IS NULL;
CREATE INDEX tickets_resolution_timer_idx ON tickets (resolution_at_risk_at)
    WHERE status <> 'closed' AND resolution_met_at IS NULL;
CREATE INDEX tickets_waiting_idx ON tickets (waiting_since) WHERE status = 'waiting_customer';

-- The fast path: every committed ticket change is announced on `ticket_changed`; the worker reads
-- the ticket and schedules delayed jobs at its timers' instants. Like the outbox's NOTIFY it is
-- transactional (sent at commit, dropped on rollback) and best effort: the reconciler covers
-- whatever the listener misses.
CREATE FUNCTION tickets_notify_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ticket_changed', NEW.id::text);
    RETURN NEW;
END
$$;

CREATE TRIGGER tickets_notify_changed AFTER INSERT OR UPDATE ON tickets
    FOR EACH ROW EXECUTE FUNCTION tickets_notify_changed();
