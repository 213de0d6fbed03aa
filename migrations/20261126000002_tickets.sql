-- Tickets under the SLA policy (DESIGN R3–R6, R9).

-- The business calendar and the SLA policy are versioned and immutable per version: a ticket's
-- clock cites the versions it used, so its history can always be replayed and explained.
CREATE TABLE calendar_versions (
    version     integer PRIMARY KEY CHECK (version > 0),
    spec        jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  uuid REFERENCES users (id)
);

CREATE TABLE sla_policy_versions (
    version     integer PRIMARY KEY CHECK (version > 0),
    policy      jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  uuid REFERENCES users (id)
);

CREATE TABLE tickets (
    id                       uuid PRIMARY KEY,
    number                   bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    organization_id          uuid NOT NULL REFERENCES organizations (id),
    requester_id             uuid NOT NULL REFERENCES users (id),
    assignee_id              uuid REFERENCES users (id),
    subject                  text NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
    description              text NOT NULL CHECK (length(description) BETWEEN 1 AND 20000),
    category                 text NOT NULL CHECK (category IN ('service', 'technical')),
    severity                 text NOT NULL CHECK (severity IN ('critical', 'high', 'normal', 'low')),
    emergency                boolean NOT NULL DEFAULT false,
    plan_code                text NOT NULL,
    status                   text NOT NULL CHECK (status IN ('open', 'waiting_customer', 'closed')),
    close_reason             text CHECK (close_reason IN ('resolved', 'not_needed', 'duplicate', 'auto_closed')),
    closed_at                timestamptz,
    waiting_since            timestamptz,
    references_ticket_id     uuid REFERENCES tickets (id),
    -- The SLA clock: its append-only event list (replayed by helpdesk-domain) and, derived from
    -- it, the instants the worker's timers and the agents' queue sort by.
    sla_events               jsonb NOT NULL,
    calendar_version         integer NOT NULL REFERENCES calendar_versions (version),
    policy_version           integer NOT NULL REFERENCES sla_policy_versions (version),
    first_response_due_at    timestamptz,
    first_response_at_risk_at timestamptz,
    first_response_met_at    timestamptz,
    first_response_breached  boolean NOT NULL DEFAULT false,
    resolution_due_at        timestamptz,
    resolution_at_risk_at    timestamptz,
    resolution_met_at        timestamptz,
    resolution_breached      boolean NOT NULL DEFAULT false,
    -- The earliest pending due instant (first response until met, then resolution); a far-future
    -- sentinel while nothing is due (paused or met), so the queue index needs no NULL handling.
    next_due_at              timestamptz NOT NULL,
    -- Bumped on every change; timer jobs carry it and do nothing when it moved on.
    version                  integer NOT NULL DEFAULT 1,
    created_at               timestamptz NOT NULL,
    updated_at               timestamptz NOT NULL,
    CONSTRAINT tickets_closed_consistent CHECK ((status = 'closed') = (closed_at IS NOT NULL AND close_reason IS NOT NULL)),
    CONSTRAINT tickets_waiting_consistent CHECK ((status = 'waiting_customer') = (waiting_since IS NOT NULL))
);
-- A customer's list: newest first within the organisation.
CREATE INDEX tickets_organization_idx ON tickets (organization_id, created_at DESC, id DESC);
-- The agents' queue: unresolved tickets by the next due instant.
CREATE INDEX tickets_queue_idx ON tickets (next_due_at, id) WHERE status <> 'closed';
CREATE INDEX tickets_assignee_idx ON tickets (assignee_id, status) WHERE assignee_id IS NOT NULL;
CREATE INDEX tickets_created_idx ON tickets (created_at DESC, id DESC);
-- Tickets whose clock is behind the current calendar or policy are re-projected in the background.
CREATE INDEX tickets_projection_idx ON tickets (calendar_version, policy_version) WHERE status <> 'closed';

CREATE TABLE ticket_messages (
    id          uuid PRIMARY KEY,
    ticket_id   uuid NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    author_id   uuid NOT NULL REFERENCES users (id),
    body        text NOT NULL CHECK (length(body) BETWEEN 1 AND 20000),
    internal    boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL
);
CREATE INDEX ticket_messages_ticket_idx ON ticket_messages (ticket_id, created_at, id);

-- The ticket's audit timeline: status changes, assignment, SLA events, with who and when.
CREATE TABLE ticket_events (
    id           uuid PRIMARY KEY,
    ticket_id    uuid NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    actor_id     uuid REFERENCES users (id),
    kind         text NOT NULL,
    data         jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- Internal events (notes, internal re-assignments) are hidden from customers.
    internal     boolean NOT NULL DEFAULT false,
    occurred_at  timestamptz NOT NULL
);
CREATE INDEX ticket_events_ticket_idx ON ticket_events (ticket_id, occurred_at, id);
