-- E-mail delivery by the worker (DESIGN §3.5).
--
-- A worker claims a pending row by moving `next_attempt_at` forward by a lease (a few minutes)
-- before it talks to SMTP, so the row's due time doubles as its lease expiry: a duplicate job sees
-- a row that is not due and does nothing, and a worker that dies mid-send leaves a row that simply
-- becomes due again for the reconciler, through the existing partial index. No extra status value
-- is needed; these columns only make the history visible to admins and support.
ALTER TABLE email_outbox
    -- When the last delivery attempt started (the claim), whatever its outcome.
    ADD COLUMN last_attempt_at timestamptz,
    -- The Message-ID header sent, derived from the idempotency key: lets support match a complaint
    -- ("I got it twice") to the row.
    ADD COLUMN message_id text;
