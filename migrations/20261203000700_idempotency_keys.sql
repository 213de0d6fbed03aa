-- Idempotency keys (docs/architecture.md, decision on Idempotency-Key): the first response to a
-- creating POST, per caller and key, replayed to a retry with the same key for 24 hours. The row
-- is written in the transaction that does the work, so work and key commit together.
CREATE TABLE idempotency_keys (
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key          text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    -- SHA-256 of the method, the path and the request body (JSON with object keys sorted).
    fingerprint  bytea NOT NULL,
    status       smallint NOT NULL,
    -- The response headers worth replaying (Location, ETag), as [[name, value], …].
    headers      jsonb NOT NULL DEFAULT '[]',
    body         bytea NOT NULL,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
