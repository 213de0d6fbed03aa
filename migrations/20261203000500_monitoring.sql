-- Uptime monitoring (R11) and maintenance windows (R12).
--
-- Sized for 100,000 monitors at a 5-minute interval: 28.8 M raw results a day. Raw results live
-- in DAILY range partitions of `monitor_checks` that are dropped whole after the retention period
-- (default 30 days), never deleted row by row; hourly rollups live in MONTHLY partitions of
-- `monitor_rollups` kept 13 months; incidents and their alerts are kept.
--
-- Names the worker (mon-worker, branch `probes`) relies on — change them only together:
--   monitors.next_check_at + monitors_due_idx      claim: WHERE next_check_at <= $now AND NOT paused
--                                                  ORDER BY next_check_at FOR UPDATE SKIP LOCKED
--   monitors.{state, consecutive_failures, consecutive_successes, confirming, open_incident_id,
--             tls_incident_id, last_check_*, tls_expires_at}   the state machine's memory
--   monitor_checks (+ monitor_checks_ensure_partitions, monitor_checks_drop_partitions_before)
--   monitor_gaps                                   "no data" periods after a worker outage
--   monitor_rollups (+ monitor_rollups_ensure_partitions, monitor_rollups_drop_partitions_before)
--   incidents, incident_alerts UNIQUE (incident_id, kind)
--   maintenance_windows, maintenance_window_monitors
--   probe_network_alerts (storm guard), monitor_self_check_alerts (self-check dedupe)
-- mon-worker adds anything further under the migration prefix 20261203000510+.

CREATE TABLE monitors (
    id                      uuid PRIMARY KEY,
    organization_id         uuid NOT NULL REFERENCES organizations (id),
    name                    text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    url                     text NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    -- Status codes that count as up. Empty means any 2xx (200–299), the common case.
    expected_status_codes   integer[] NOT NULL DEFAULT '{}',
    -- Optional keyword in the body, that must be present or absent.
    keyword                 text CHECK (length(keyword) BETWEEN 1 AND 200),
    keyword_mode            text CHECK (keyword_mode IN ('present', 'absent')),
    -- A success slower than this is `degraded`, not down. NULL: no latency rule.
    latency_threshold_ms    integer CHECK (latency_threshold_ms BETWEEN 1 AND 120000),
    interval_seconds        integer NOT NULL DEFAULT 300 CHECK (interval_seconds BETWEEN 30 AND 86400),
    timeout_seconds         integer NOT NULL DEFAULT 15 CHECK (timeout_seconds BETWEEN 1 AND 60),
    tls_warning_days        integer NOT NULL DEFAULT 14 CHECK (tls_warning_days BETWEEN 0 AND 365),
    -- Paused monitors (and deleted ones, which are paused for good) are never claimed.
    paused                  boolean NOT NULL DEFAULT false,
    -- Stable offset of the monitor's slots within its interval (domain::monitoring::schedule),
    -- so 100,000 monitors spread evenly instead of all firing on the minute.
    phase_offset_seconds    integer NOT NULL CHECK (phase_offset_seconds >= 0),
    -- The next PLANNED instant (slot or confirmation probe); plans advance from it, not from
    -- the time a probe finished.
    next_check_at           timestamptz NOT NULL,
    state                   text NOT NULL DEFAULT 'unknown' CHECK (state IN ('unknown', 'up', 'degraded', 'down')),
    state_changed_at        timestamptz,
    -- The probe state machine's memory (worker).
    consecutive_failures    integer NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    consecutive_successes   integer NOT NULL DEFAULT 0 CHECK (consecutive_successes >= 0),
    confirming              boolean NOT NULL DEFAULT false,
    open_incident_id        uuid,
    tls_incident_id         uuid,
    -- The last result, denormalised so the monitor page needs no partition scan.
    last_check_scheduled_at timestamptz,
    last_check_started_at   timestamptz,
    last_check_status_code  integer,
    last_check_latency_ms   integer,
    last_check_error_kind   text CHECK (last_check_error_kind IN ('timeout', 'dns', 'connect', 'tls', 'status', 'keyword', 'blocked')),
    tls_expires_at          timestamptz,
    created_by              uuid REFERENCES users (id),
    created_at              timestamptz NOT NULL,
    updated_at              timestamptz NOT NULL,
    -- Soft delete: the monitor's incidents are kept, so the row stays (paused) for them.
    deleted_at              timestamptz,
    CONSTRAINT monitors_timeout_below_interval CHECK (timeout_seconds < interval_seconds),
    CONSTRAINT monitors_phase_within_interval CHECK (phase_offset_seconds < interval_seconds),
    CONSTRAINT monitors_keyword_consistent CHECK ((keyword IS NULL) = (keyword_mode IS NULL)),
    CONSTRAINT monitors_deleted_paused CHECK (deleted_at IS NULL OR paused)
);
-- The worker's claim of due monitors: only active ones, in planned order.
CREATE INDEX monitors_due_idx ON monitors (next_check_at) WHERE NOT paused;
CREATE INDEX monitors_organization_idx ON monitors (organization_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX monitors_list_idx ON monitors (created_at DESC, id DESC) WHERE deleted_at IS NULL;

-- Raw probe results. Partitioned by day on the scheduled instant (UTC days); no foreign key to
-- monitors, which would cost a lookup on each of 28.8 M inserts a day (monitors are never hard-
-- deleted). The primary key doubles as "one result per monitor and planned slot".
CREATE TABLE monitor_checks (
    monitor_id    uuid NOT NULL,
    scheduled_at  timestamptz NOT NULL,
    started_at    timestamptz NOT NULL,
    -- Whether this was the ~60 s confirmation probe rather than a regular slot.
    confirmation  boolean NOT NULL DEFAULT false,
    status_code   integer,
    latency_ms    integer,
    -- NULL: success. `blocked`: refused by the egress guard after resolution.
    error_kind    text CHECK (error_kind IN ('timeout', 'dns', 'connect', 'tls', 'status', 'keyword', 'blocked')),
    degraded      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (monitor_id, scheduled_at)
) PARTITION BY RANGE (scheduled_at);

-- Range partitions named <parent>_p<suffix>, one per `period` (a day or a month), in UTC.
-- Creates the `count` partitions from the one starting at `first` that do not exist yet;
-- idempotent. Returns how many it created.
CREATE FUNCTION monitoring_ensure_partitions(parent text, suffix_format text, period interval, first date, count integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    start_day date;
    created integer := 0;
    part text;
BEGIN
    FOR i IN 0 .. count - 1 LOOP
        start_day := (first + i * period)::date;
        part := parent || '_p' || to_char(start_day, suffix_format);
        IF to_regclass(part) IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                part, parent,
                (start_day::timestamp AT TIME ZONE 'UTC'),
                ((start_day + period)::timestamp AT TIME ZONE 'UTC'));
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END;
$$;

-- Drops, whole, every partition of `parent` whose period ends on or before `before_day`.
-- Returns how many.
CREATE FUNCTION monitoring_drop_partitions(parent text, suffix_format text, period interval, before_day date)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    part record;
    dropped integer := 0;
BEGIN
    FOR part IN
        SELECT c.relname, to_date(substring(c.relname from length(parent) + 3), suffix_format) AS start_day
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = parent::regclass
    LOOP
        IF part.start_day + period <= before_day THEN
            EXECUTE format('DROP TABLE %I', part.relname);
            dropped := dropped + 1;
        END IF;
    END LOOP;
    RETURN dropped;
END;
$$;

-- Daily partitions of raw results for [from_day, from_day + days); the worker calls it daily
-- (and before inserting for a date it has not prepared).
CREATE FUNCTION monitor_checks_ensure_partitions(from_day date, days integer) RETURNS integer
LANGUAGE sql AS $$ SELECT monitoring_ensure_partitions('monitor_checks', 'YYYYMMDD', interval '1 day', from_day, days) $$;

-- Drops the daily partitions of days before `before_day` (retention, default 30 days).
CREATE FUNCTION monitor_checks_drop_partitions_before(before_day date) RETURNS integer
LANGUAGE sql AS $$ SELECT monitoring_drop_partitions('monitor_checks', 'YYYYMMDD', interval '1 day', before_day) $$;

SELECT monitor_checks_ensure_partitions(current_date - 1, 9);

-- "No data" periods, [from_at, to_at): slots missed during a worker outage, coalesced into one
-- catch-up probe. Uptime excludes them, as it excludes maintenance.
CREATE TABLE monitor_gaps (
    id           uuid PRIMARY KEY,
    monitor_id   uuid NOT NULL REFERENCES monitors (id),
    from_at      timestamptz NOT NULL,
    to_at        timestamptz NOT NULL,
    missed_slots integer NOT NULL DEFAULT 0 CHECK (missed_slots >= 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT monitor_gaps_range_check CHECK (to_at > from_at)
);
CREATE INDEX monitor_gaps_monitor_idx ON monitor_gaps (monitor_id, to_at);

-- Hourly rollups of the raw results, monthly partitions kept 13 months (~100,000 × 24 rows a day).
CREATE TABLE monitor_rollups (
    monitor_id      uuid NOT NULL,
    hour            timestamptz NOT NULL,
    checks          integer NOT NULL CHECK (checks >= 0),
    failures        integer NOT NULL CHECK (failures >= 0),
    degraded        integer NOT NULL CHECK (degraded >= 0),
    latency_sum_ms  bigint NOT NULL DEFAULT 0,
    latency_max_ms  integer,
    PRIMARY KEY (monitor_id, hour)
) PARTITION BY RANGE (hour);

-- Monthly partitions for the `months` months from the month of `from_day`.
CREATE FUNCTION monitor_rollups_ensure_partitions(from_day date, months integer) RETURNS integer
LANGUAGE sql AS $$ SELECT monitoring_ensure_partitions('monitor_rollups', 'YYYYMM', interval '1 month', date_trunc('month', from_day)::date, months) $$;

-- Drops the monthly partitions whose month ends on or before `before_day` (13 months kept).
CREATE FUNCTION monitor_rollups_drop_partitions_before(before_day date) RETURNS integer
LANGUAGE sql AS $$ SELECT monitoring_drop_partitions('monitor_rollups', 'YYYYMM', interval '1 month', before_day) $$;

SELECT monitor_rollups_ensure_partitions(current_date, 2);

-- An incident: a confirmed (or being confirmed) downtime, or a TLS expiry warning.
--   kind 'down': started_at is the first failure; confirmed_at the second (DOWN). An incident
--     whose confirmation never came (a single failure) has confirmed_at NULL and counts for
--     nothing in uptime.
--   kind 'tls_expiring': a warning, never a downtime; resolved when the certificate is renewed.
-- in_maintenance: it started (or was confirmed) inside a maintenance window, so no alerts were
-- sent; maintenance_ended_at: the window's end, from which the 15-minute and 2-hour timers count
-- for a site still down after it.
CREATE TABLE incidents (
    id                    uuid PRIMARY KEY,
    monitor_id            uuid NOT NULL REFERENCES monitors (id),
    organization_id       uuid NOT NULL REFERENCES organizations (id),
    kind                  text NOT NULL DEFAULT 'down' CHECK (kind IN ('down', 'tls_expiring')),
    started_at            timestamptz NOT NULL,
    confirmed_at          timestamptz,
    resolved_at           timestamptz,
    in_maintenance        boolean NOT NULL DEFAULT false,
    maintenance_ended_at  timestamptz,
    -- The emergency ticket opened after 2 hours down.
    ticket_id             uuid REFERENCES tickets (id),
    -- First failure's error kind and status code, for the alert text.
    error_kind            text,
    status_code           integer,
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL,
    CONSTRAINT incidents_resolved_after_start CHECK (resolved_at IS NULL OR resolved_at >= started_at),
    CONSTRAINT incidents_confirmed_after_start CHECK (confirmed_at IS NULL OR confirmed_at >= started_at)
);
-- At most one open incident of each kind per monitor.
CREATE UNIQUE INDEX incidents_open_key ON incidents (monitor_id, kind) WHERE resolved_at IS NULL;
CREATE INDEX incidents_monitor_idx ON incidents (monitor_id, started_at DESC, id DESC);
CREATE INDEX incidents_organization_idx ON incidents (organization_id, started_at DESC, id DESC);
CREATE INDEX incidents_started_idx ON incidents (started_at DESC, id DESC);
-- The worker's escalation sweep over open, confirmed downtimes.
CREATE INDEX incidents_open_idx ON incidents (confirmed_at) WHERE resolved_at IS NULL;

ALTER TABLE monitors
    ADD CONSTRAINT monitors_open_incident_fk FOREIGN KEY (open_incident_id) REFERENCES incidents (id),
    ADD CONSTRAINT monitors_tls_incident_fk FOREIGN KEY (tls_incident_id) REFERENCES incidents (id);

-- Alerts sent for an incident: each kind at most once per incident, whatever the retries,
-- restarts or concurrent workers.
CREATE TABLE incident_alerts (
    id           uuid PRIMARY KEY,
    incident_id  uuid NOT NULL REFERENCES incidents (id),
    kind         text NOT NULL CHECK (kind IN ('down', 'down_15m', 'down_2h', 'recovered', 'tls_expiring')),
    sent_at      timestamptz NOT NULL,
    -- The idempotency-key prefix of the outbox rows written for it (one per recipient).
    outbox_key   text,
    recipients   integer NOT NULL DEFAULT 0 CHECK (recipients >= 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT incident_alerts_once UNIQUE (incident_id, kind)
);

-- Maintenance windows (R12). One-off: [starts_at, ends_at). Weekly: from a local wall-clock
-- weekday and time, for a duration (up to a week), in time_zone (the business calendar's zone
-- when created). Scope: all monitors, one organisation's, or those listed in
-- maintenance_window_monitors.
CREATE TABLE maintenance_windows (
    id                 uuid PRIMARY KEY,
    title              text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description        text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
    scope              text NOT NULL CHECK (scope IN ('all', 'organization', 'monitors')),
    organization_id    uuid REFERENCES organizations (id),
    kind               text NOT NULL CHECK (kind IN ('one_off', 'weekly')),
    starts_at          timestamptz,
    ends_at            timestamptz,
    -- ISO weekday, 1 = Monday … 7 = Sunday.
    weekly_weekday     smallint CHECK (weekly_weekday BETWEEN 1 AND 7),
    weekly_start_time  time,
    weekly_duration_minutes integer CHECK (weekly_duration_minutes BETWEEN 1 AND 10080),
    time_zone          text NOT NULL,
    created_by         uuid REFERENCES users (id),
    created_at         timestamptz NOT NULL,
    cancelled_at       timestamptz,
    cancelled_by       uuid REFERENCES users (id),
    CONSTRAINT maintenance_windows_one_off CHECK (
        kind <> 'one_off' OR (starts_at IS NOT NULL AND ends_at > starts_at
            AND weekly_weekday IS NULL AND weekly_start_time IS NULL AND weekly_duration_minutes IS NULL)),
    CONSTRAINT maintenance_windows_weekly CHECK (
        kind <> 'weekly' OR (starts_at IS NULL AND ends_at IS NULL
            AND weekly_weekday IS NOT NULL AND weekly_start_time IS NOT NULL AND weekly_duration_minutes IS NOT NULL)),
    CONSTRAINT maintenance_windows_org_scope CHECK ((scope = 'organization') = (organization_id IS NOT NULL) OR scope = 'monitors')
);
CREATE INDEX maintenance_windows_active_idx ON maintenance_windows (created_at DESC, id DESC) WHERE cancelled_at IS NULL;

CREATE TABLE maintenance_window_monitors (
    window_id   uuid NOT NULL REFERENCES maintenance_windows (id) ON DELETE CASCADE,
    monitor_id  uuid NOT NULL REFERENCES monitors (id),
    PRIMARY KEY (window_id, monitor_id)
);
CREATE INDEX maintenance_window_monitors_monitor_idx ON maintenance_window_monitors (monitor_id);

-- Storm guard: one "probe connectivity problem" alert per episode (most monitors failing in the
-- same minute and the canary failing too). `minute` is the UTC minute that opened the episode.
CREATE TABLE probe_network_alerts (
    id           uuid PRIMARY KEY,
    minute       timestamptz NOT NULL UNIQUE,
    failing      integer NOT NULL,
    probed       integer NOT NULL,
    canary_url   text,
    resolved_at  timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Self-check: a monitor two intervals without a check alerts the agents once per overdue episode
-- (identified by the monitor's next_check_at that was missed).
CREATE TABLE monitor_self_check_alerts (
    monitor_id    uuid NOT NULL REFERENCES monitors (id),
    overdue_since timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (monitor_id, overdue_since)
);
