-- The worker's side of uptime monitoring (issue 10): claims and the state machine's memory.
-- The schema itself is 20261203000500_monitoring.sql; this table sits beside `monitors` so the
-- API's reads of monitors stay as they are.
CREATE TABLE monitor_probe_states (
    monitor_id    uuid PRIMARY KEY REFERENCES monitors (id),
    -- The probe-result state machine's memory (domain::monitoring::probe_state::ProbeState, as
    -- JSON): the phase, the first failure awaiting confirmation, and the open incident with its
    -- escalation origin, holds and alerts announced. The monitors' columns (state,
    -- consecutive_*, confirming, open_incident_id, last_check_*) are kept in step for readers.
    state         jsonb NOT NULL DEFAULT '{}',
    -- The planned instant a worker has claimed and is probing. While claimed, the monitor's
    -- next_check_at is the claim's lease end: a worker that dies mid-probe leaves a monitor that
    -- falls due again then, claimed again for the same slot, and its stale job records nothing.
    claimed_slot  timestamptz
);

-- An incident that went through a storm of probe failures (our network, not the site).
ALTER TABLE incidents ADD COLUMN in_storm boolean NOT NULL DEFAULT false;

-- Self-check: overdue monitors are found by their last check.
CREATE INDEX monitors_last_check_idx ON monitors (last_check_started_at) WHERE NOT paused;
