-- LGPD duties (DESIGN R14): anonymisation, an organisation's admin contacts, audit queries,
-- retention of audit events and ended sessions.

-- An anonymised person keeps their row, so tickets, messages and timelines keep pointing at an
-- author (the SLA evidence stays), but every personal field holds a placeholder.
ALTER TABLE users
    ADD COLUMN anonymised_at timestamptz,
    -- The customer the organisation (the controller) names to speak for it: receives what goes to
    -- "the organisation" and hands the role over before leaving. Staff never hold it.
    ADD COLUMN admin_contact boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT users_admin_contact_is_customer CHECK (NOT admin_contact OR role = 'customer');

-- Until now nobody was named: the longest-standing active customer of each organisation is.
UPDATE users u SET admin_contact = true
FROM (SELECT DISTINCT ON (organization_id) id FROM users
      WHERE role = 'customer' AND disabled_at IS NULL
      ORDER BY organization_id, created_at, id) first
WHERE u.id = first.id;

CREATE INDEX users_admin_contact_idx ON users (organization_id) WHERE admin_contact;

-- The audit endpoint filters by actor and by subject, newest first.
CREATE INDEX audit_events_actor_idx ON audit_events (actor_id, occurred_at DESC, id DESC) WHERE actor_id IS NOT NULL;
-- Unfiltered pages and the retention sweep read audit_events_time_idx (occurred_at, id), backwards
-- and forwards.

-- Retention of ended sessions: a refresh token has ended at the earliest of its expiry,
-- revocation and use (rotation); LEAST ignores NULLs.
CREATE INDEX refresh_tokens_ended_idx ON refresh_tokens (LEAST(expires_at, revoked_at, used_at));
CREATE INDEX password_reset_tokens_expires_idx ON password_reset_tokens (expires_at);

-- A person's export and anonymisation find their rows by author, requester, actor and
-- recipient without scanning the tables.
CREATE INDEX tickets_requester_idx ON tickets (requester_id);
CREATE INDEX ticket_messages_author_idx ON ticket_messages (author_id);
CREATE INDEX ticket_events_actor_idx ON ticket_events (actor_id) WHERE actor_id IS NOT NULL;
CREATE INDEX email_outbox_recipient_idx ON email_outbox (lower(to_address));
