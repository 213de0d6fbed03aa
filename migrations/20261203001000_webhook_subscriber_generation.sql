-- A token that changes whenever the set of webhook receivers may change (a subscription created,
-- deleted, enabled, disabled or re-filtered). Ticket transactions read it with the SLA versions
-- they already read, and each process keeps the receivers of the token it last saw: opening a
-- ticket then asks nothing more of the database when no subscription changed (issue 14's
-- creation benchmark). A random UUID rather than a counter, so a token names one database's
-- state and a process serving several databases (the test suite) never mixes them up.
CREATE TABLE webhook_subscriber_generation (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    token      uuid NOT NULL
);
INSERT INTO webhook_subscriber_generation (token) VALUES (gen_random_uuid());

CREATE FUNCTION webhook_subscriber_generation_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE webhook_subscriber_generation SET token = gen_random_uuid();
    RETURN NULL;
END $$;

-- Statement-level, and only for the columns that decide who receives what: the worker's lease
-- and failure counters update subscriptions on every delivery and must not churn the token.
CREATE TRIGGER webhook_subscriber_generation_bump
    AFTER INSERT OR DELETE OR TRUNCATE ON webhook_subscriptions
    FOR EACH STATEMENT EXECUTE FUNCTION webhook_subscriber_generation_bump();
CREATE TRIGGER webhook_subscriber_generation_bump_on_update
    AFTER UPDATE OF enabled, event_types, organization_id ON webhook_subscriptions
    FOR EACH STATEMENT EXECUTE FUNCTION webhook_subscriber_generation_bump();
