-- SLA attainment reports (R10) and the public contact form (R1).

-- The one SQL form of a metric's verdict on a ticket at `now`, so the report and the ticket
-- list's `first_response=` / `resolution=` filters can never disagree (docs/architecture.md,
-- "SLA attainment"). It restates helpdesk_domain's definition of breached:
--   breached  <=> the stored flag (set when the clock ran out before the target was met, kept on
--                 closed tickets) OR the running due instant has passed (`due_at` is only set
--                 while the clock runs);
--   met       <=> met_at is set and not breached;
-- and the report's rule for abandoned tickets: a ticket auto-closed for lack of the customer's
-- answer (R8) is never "met" (the desk did not resolve it); a breach that happened before is still
-- a breach. Anything else is pending (open and not yet due) and left out of the share.
-- Pure, so IMMUTABLE; a single SQL expression, so the planner inlines it.
CREATE FUNCTION sla_outcome(breached boolean, due_at timestamptz, met_at timestamptz, close_reason text, now timestamptz)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN breached OR (due_at IS NOT NULL AND due_at <= now) THEN 'breached'
        WHEN close_reason = 'auto_closed' THEN 'abandoned'
        WHEN met_at IS NOT NULL THEN 'met'
        ELSE 'pending'
    END
$$;

-- "Fale Conosco": what a non-customer sent, and what the commercial team did with it. Never an
-- account (R1). Pruned by the worker after the configured retention (R14).
CREATE TABLE contact_requests (
    id           uuid PRIMARY KEY,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    email        text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    company      text CHECK (length(company) <= 200),
    message      text NOT NULL CHECK (length(message) BETWEEN 1 AND 5000),
    -- The sender's consent to be contacted, as given (the form refuses without it).
    consented_at timestamptz NOT NULL,
    status       text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'answered', 'closed')),
    answer       text CHECK (length(answer) BETWEEN 1 AND 5000),
    answered_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    answered_at  timestamptz,
    closed_by    uuid REFERENCES users (id) ON DELETE SET NULL,
    closed_at    timestamptz,
    created_at   timestamptz NOT NULL,
    CONSTRAINT contact_requests_answered_consistent CHECK ((answer IS NULL) = (answered_at IS NULL)),
    CONSTRAINT contact_requests_closed_consistent CHECK ((status = 'closed') = (closed_at IS NOT NULL))
);
-- The agents' list (newest first, by status) and the retention sweep (oldest first).
CREATE INDEX contact_requests_list_idx ON contact_requests (created_at DESC, id DESC);
CREATE INDEX contact_requests_status_idx ON contact_requests (status, created_at DESC, id DESC);
