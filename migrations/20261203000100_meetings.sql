-- Consultancy meetings (R13): consultants with their weekly hours and time off, and meetings that
-- the database itself keeps from overlapping.

-- An agent or admin flagged as a consultant. `weekly_hours` (a WeeklyHours JSON object, local
-- wall-clock times) narrows the business calendar's opening hours; NULL means all of them.
CREATE TABLE consultants (
    user_id       uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    active        boolean NOT NULL DEFAULT true,
    weekly_hours  jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE consultant_time_off (
    id             uuid PRIMARY KEY,
    consultant_id  uuid NOT NULL REFERENCES consultants (user_id) ON DELETE CASCADE,
    starts_at      timestamptz NOT NULL,
    ends_at        timestamptz NOT NULL,
    reason         text NOT NULL DEFAULT '' CHECK (length(reason) <= 200),
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT consultant_time_off_range_check CHECK (ends_at > starts_at)
);
CREATE INDEX consultant_time_off_idx ON consultant_time_off USING gist (consultant_id, tstzrange(starts_at, ends_at, '[)'));

CREATE TABLE meetings (
    id                     uuid PRIMARY KEY,
    organization_id        uuid NOT NULL REFERENCES organizations (id),
    consultant_id          uuid NOT NULL REFERENCES consultants (user_id),
    booked_by              uuid NOT NULL REFERENCES users (id),
    ticket_id              uuid REFERENCES tickets (id),
    topic                  text NOT NULL CHECK (length(topic) BETWEEN 1 AND 200),
    starts_at              timestamptz NOT NULL,
    ends_at                timestamptz NOT NULL,
    status                 text NOT NULL DEFAULT 'confirmed' CHECK (status IN ('confirmed', 'cancelled')),
    -- iCalendar SEQUENCE: 0 when booked, +1 on every reschedule and on the cancellation.
    sequence               integer NOT NULL DEFAULT 0,
    -- The stable link (HELPDESK_MEETING_URL_TEMPLATE filled in at booking), kept across reschedules.
    meeting_url            text NOT NULL,
    -- The client's Idempotency-Key header: a retried booking returns this meeting.
    idempotency_key        text CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    -- Whether the meeting uses up the organisation's monthly quota (false once cancelled before
    -- the cut-off, or cancelled by an agent).
    counts_toward_quota    boolean NOT NULL DEFAULT true,
    cancelled_at           timestamptz,
    cancelled_by           uuid REFERENCES users (id),
    cancel_reason          text CHECK (length(cancel_reason) <= 500),
    -- Reminders (DESIGN §3): the instant the current schedule was set (a reminder whose instant
    -- lies before it is never sent), what was sent for it, and the next instant the worker acts.
    reminders_from         timestamptz NOT NULL,
    day_reminder_sent_at   timestamptz,
    hour_reminder_sent_at  timestamptz,
    next_reminder_at       timestamptz,
    created_at             timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL,
    CONSTRAINT meetings_range_check CHECK (ends_at > starts_at),
    -- A consultant is never double-booked, whatever the concurrency (R13). Half-open ranges, so
    -- back-to-back meetings are fine.
    CONSTRAINT meetings_consultant_no_overlap EXCLUDE USING gist (
        consultant_id WITH =,
        tstzrange(starts_at, ends_at, '[)') WITH &&
    ) WHERE (status <> 'cancelled'),
    -- Nor is an organisation in two meetings at once.
    CONSTRAINT meetings_organization_no_overlap EXCLUDE USING gist (
        organization_id WITH =,
        tstzrange(starts_at, ends_at, '[)') WITH &&
    ) WHERE (status <> 'cancelled'),
    CONSTRAINT meetings_idempotency_key UNIQUE (organization_id, idempotency_key)
);
CREATE INDEX meetings_organization_idx ON meetings (organization_id, starts_at, id);
CREATE INDEX meetings_consultant_idx ON meetings (consultant_id, starts_at, id);
-- Quota: the organisation's meetings booked in a month.
CREATE INDEX meetings_quota_idx ON meetings (organization_id, created_at) WHERE counts_toward_quota;
-- The reconciler's sweep of due reminders.
CREATE INDEX meetings_reminder_idx ON meetings (next_reminder_at, id) WHERE next_reminder_at IS NOT NULL;
