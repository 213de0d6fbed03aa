-- Ticket timers as one stored instant per ticket (DESIGN §3.1; docs/architecture.md, decision 4b).
--
-- The earlier design derived each timer from several columns and a firing log (`ticket_alerts`)
-- on every reconciler round, so the sweep's cost grew with the number of long-waiting and
-- already-alerted tickets (270–480 ms a round with 99,000 reminders due). Now the domain reduces a
-- ticket's timers to the earliest instant at which one acts, `next_timer_at`, written with every
-- change of the ticket; what has acted is recorded on the ticket itself, in the same transaction
-- as the action:
--   * `reminder_sent_at`: when the reminder of the current wait went out (R8); the auto-close
--     counts from it.
--   * `sla_alerts`: per metric, the last alert sent ("at_risk" or "breached") and for which target
--     revision, so each fires once per target (helpdesk_domain::timers::AlertMarks).
-- The reconciler's sweep is one range scan of a partial index holding only tickets with a pending
-- timer.
ALTER TABLE tickets
    ADD COLUMN next_timer_at timestamptz,
    ADD COLUMN reminder_sent_at timestamptz,
    ADD COLUMN sla_alerts jsonb NOT NULL DEFAULT '{}'::jsonb;

-- Carry over what the firing log knew, so an upgrade sends nothing twice.
UPDATE tickets t SET reminder_sent_at = a.fired_at
FROM (SELECT ticket_id, max(fired_at) AS fired_at FROM ticket_alerts WHERE kind = 'customer_reminder' GROUP BY ticket_id) a
WHERE a.ticket_id = t.id AND t.status = 'waiting_customer' AND a.fired_at >= t.waiting_since;

-- A metric's target revision is the number of times its target took a new value in the clock's
-- events (the rule of helpdesk_domain::sla); an old alert counts for the current target when it
-- was recorded under the current due instant.
WITH targets AS (
    SELECT t.id, m.metric, e.ord,
           CASE e.kind->>'type'
               WHEN 'started' THEN e.kind->'targets'->m.metric
               WHEN 'policy_changed' THEN e.kind->'targets'->m.metric
               WHEN 'target_changed' THEN CASE WHEN e.kind->>'metric' = m.metric THEN e.kind->'target' END
           END AS target
    FROM tickets t
    CROSS JOIN (VALUES ('first_response'), ('resolution')) m (metric)
    CROSS JOIN LATERAL (SELECT event->'kind' AS kind, ord FROM jsonb_array_elements(t.sla_events) WITH ORDINALITY ev (event, ord)) e
    WHERE t.status <> 'closed'
), changes AS (
    SELECT id, metric, target, lag(target) OVER (PARTITION BY id, metric ORDER BY ord) AS previous
    FROM targets WHERE target IS NOT NULL
), revisions AS (
    SELECT id, metric, count(*) FILTER (WHERE previous IS NULL OR target <> previous) AS revision
    FROM changes GROUP BY id, metric
), marks AS (
    SELECT r.id, r.metric, r.revision,
           CASE WHEN EXISTS (SELECT 1 FROM ticket_alerts a WHERE a.ticket_id = r.id AND a.kind = r.metric || '_breached'
                                AND a.due_at = CASE r.metric WHEN 'first_response' THEN t.first_response_due_at ELSE t.resolution_due_at END)
                     THEN 'breached'
                WHEN EXISTS (SELECT 1 FROM ticket_alerts a WHERE a.ticket_id = r.id AND a.kind = r.metric || '_at_risk'
                                AND a.due_at = CASE r.metric WHEN 'first_response' THEN t.first_response_due_at ELSE t.resolution_due_at END)
                     THEN 'at_risk'
           END AS stage
    FROM revisions r JOIN tickets t ON t.id = r.id
)
UPDATE tickets t SET sla_alerts = m.alerts
FROM (SELECT id, jsonb_object_agg(metric, jsonb_build_object('target_revision', revision, 'stage', stage)) AS alerts
      FROM marks WHERE stage IS NOT NULL GROUP BY id) m
WHERE m.id = t.id;

-- The instant itself is the domain's to compute: every open ticket is due for one look by the
-- worker, which acts on what is due and otherwise stores the true instant. The default does the
-- same for a ticket inserted by a process that predates this column (during a rolling upgrade).
UPDATE tickets SET next_timer_at = now() WHERE status <> 'closed';
ALTER TABLE tickets ALTER COLUMN next_timer_at SET DEFAULT now();

DROP TABLE ticket_alerts;
DROP INDEX tickets_first_response_timer_idx;
DROP INDEX tickets_resolution_timer_idx;
DROP INDEX tickets_waiting_idx;

-- The reconciler's sweep: `next_timer_at <= now`, oldest first, in pages keyed by (instant, id).
-- Only tickets with a pending timer are in it; the sweep reads it alone (index-only).
CREATE INDEX tickets_timer_idx ON tickets (next_timer_at, id) WHERE next_timer_at IS NOT NULL;

-- The fast path: a committed change of a ticket's timer instant is announced as
-- '<ticket id> <instant in Unix microseconds>', and the worker schedules a delayed job for that
-- instant without reading the ticket. Changes that leave the instant alone (a note, an
-- assignment) announce nothing. Best effort, as before: the reconciler covers what is missed.
DROP TRIGGER tickets_notify_changed ON tickets;
DROP FUNCTION tickets_notify_changed();

CREATE FUNCTION tickets_notify_timer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.next_timer_at IS NOT NULL AND (TG_OP = 'INSERT' OR NEW.next_timer_at IS DISTINCT FROM OLD.next_timer_at) THEN
        PERFORM pg_notify('ticket_timer', NEW.id::text || ' ' || (extract(epoch FROM NEW.next_timer_at) * 1000000)::bigint);
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER tickets_notify_timer AFTER INSERT OR UPDATE OF next_timer_at ON tickets
    FOR EACH ROW EXECUTE FUNCTION tickets_notify_timer();

-- The outbox sweep pages the same way, by (instant, id).
CREATE INDEX email_outbox_due_page_idx ON email_outbox (next_attempt_at, id) WHERE status = 'pending';
DROP INDEX email_outbox_due_idx;
