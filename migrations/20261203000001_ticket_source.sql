-- Three ways to open a ticket (issue 14): a customer (portal), an agent on a customer's behalf,
-- the system for an organisation (monitoring). The requester is the customer the ticket is for;
-- the system's own tickets have none. `opened_by` is the person who opened it (NULL: the system).
ALTER TABLE tickets
    ADD COLUMN source text NOT NULL DEFAULT 'portal' CHECK (source IN ('portal', 'agent', 'monitoring')),
    ADD COLUMN opened_by uuid REFERENCES users (id);
UPDATE tickets SET opened_by = requester_id;
ALTER TABLE tickets ALTER COLUMN requester_id DROP NOT NULL;
ALTER TABLE tickets ALTER COLUMN source DROP DEFAULT;

-- Re-projection is worker work: open tickets whose clocks run on an older calendar or policy
-- version are found through this index, whatever process made the edit.
CREATE INDEX tickets_versions_behind_idx ON tickets (calendar_version, policy_version) WHERE status <> 'closed';
