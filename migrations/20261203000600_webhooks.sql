-- Webhooks (issue 13): subscriptions, the event outbox, one delivery per subscription × event
-- (in order per subscription) and every attempt made. Decision 19 in docs/architecture.md.

CREATE TABLE webhook_subscriptions (
    id                          uuid PRIMARY KEY,
    url                         text NOT NULL CHECK (length(url) BETWEEN 1 AND 2000),
    description                 text NOT NULL DEFAULT '' CHECK (length(description) <= 500),
    -- Empty: every event type.
    event_types                 text[] NOT NULL DEFAULT '{}',
    -- NULL: events of every organisation; otherwise that organisation's only.
    organization_id             uuid REFERENCES organizations (id) ON DELETE CASCADE,
    -- `whsec_…`. Kept in clear: signing needs the key itself (a hash cannot sign).
    secret                      text NOT NULL,
    -- After a rotation, the old secret still signs (a second signature) until it expires.
    previous_secret             text,
    previous_secret_expires_at  timestamptz,
    enabled                     boolean NOT NULL DEFAULT true,
    disabled_reason             text,
    disabled_at                 timestamptz,
    consecutive_failures        integer NOT NULL DEFAULT 0,
    failing_since               timestamptz,
    -- One delivery run at a time per subscription: whoever holds this lease sends, in order.
    lease_until                 timestamptz,
    -- Which run holds the lease: a run whose lease ran out cannot release another's.
    lease_token                 uuid,
    created_by                  uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at                  timestamptz NOT NULL,
    updated_at                  timestamptz NOT NULL
);

-- The outbox: one row per event, written in the transaction of the change that caused it.
CREATE TABLE webhook_events (
    id               uuid PRIMARY KEY,
    type             text NOT NULL,
    occurred_at      timestamptz NOT NULL,
    organization_id  uuid,
    -- A ping is addressed to one subscription.
    subscription_id  uuid REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    payload          jsonb NOT NULL
);
CREATE INDEX webhook_events_occurred_idx ON webhook_events (occurred_at, id);

-- The order of deliveries. Drawn under the `webhook_events::record` lock, held to commit, so
-- numbers follow commit order (see decision 19).
CREATE SEQUENCE webhook_delivery_sequence;

CREATE TABLE webhook_deliveries (
    id                uuid PRIMARY KEY,
    subscription_id   uuid NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    event_id          uuid NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    sequence          bigint NOT NULL DEFAULT nextval('webhook_delivery_sequence'),
    state             text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'in_flight', 'succeeded', 'failed')),
    attempts          integer NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL,
    first_attempt_at  timestamptz,
    -- A replay is a new delivery of the same event (same webhook-id).
    replay_of         uuid REFERENCES webhook_deliveries (id) ON DELETE SET NULL,
    created_at        timestamptz NOT NULL,
    finished_at       timestamptz
);
CREATE UNIQUE INDEX webhook_deliveries_once_idx ON webhook_deliveries (subscription_id, event_id) WHERE replay_of IS NULL;
-- The queue of each subscription, in order.
CREATE INDEX webhook_deliveries_queue_idx ON webhook_deliveries (subscription_id, sequence)
    WHERE state IN ('pending', 'in_flight');
-- Subscriptions with something due (the sweep).
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE state IN ('pending', 'in_flight');
CREATE INDEX webhook_deliveries_list_idx ON webhook_deliveries (subscription_id, sequence DESC);
CREATE INDEX webhook_deliveries_event_idx ON webhook_deliveries (event_id);

CREATE TABLE webhook_attempts (
    id               uuid PRIMARY KEY,
    delivery_id      uuid NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt          integer NOT NULL,
    at               timestamptz NOT NULL,
    succeeded        boolean NOT NULL,
    response_status  integer,
    -- The first 1 KiB of the response body (lossy UTF-8).
    response_body    text,
    latency_ms       integer NOT NULL,
    error            text
);
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id, attempt);
CREATE INDEX webhook_attempts_at_idx ON webhook_attempts (at);

-- The fast path: each committed delivery wakes the worker for its subscription (NOTIFY is
-- transactional; identical payloads in one transaction are folded into one).
CREATE FUNCTION webhook_deliveries_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('webhook_deliveries', NEW.subscription_id::text);
    RETURN NEW;
END
$$;

CREATE TRIGGER webhook_deliveries_notify AFTER INSERT ON webhook_deliveries
    FOR EACH ROW EXECUTE FUNCTION webhook_deliveries_notify();
