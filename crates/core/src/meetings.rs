//! Consultancy meetings (R13): free slots, booking, rescheduling and cancelling.
//!
//! Every operation runs on a connection inside a transaction its caller owns. Booking locks the
//! organisation's row first, so the plan's monthly quota and the `Idempotency-Key` are checked
//! and used under one lock per organisation; overlaps are left to PostgreSQL's exclusion
//! constraints (`meetings_consultant_no_overlap`, `meetings_organization_no_overlap`), which hold
//! under any concurrency. "Any consultant" tries each free consultant in turn inside a SAVEPOINT,
//! so a constraint violation rolls back only that attempt, not the transaction.

use crate::accounts::Caller;
use crate::error::violated_constraint;
use crate::meeting_invites::{self, Cause, Invite, Party};
use crate::organizations;
use crate::pagination::{self, PageRequest};
use crate::webhook_events::{self, MeetingChange};
use crate::{CoreError, consultants};
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use helpdesk_domain::accounts::Role;
use helpdesk_domain::calendar::{BusinessCalendar, WeeklyHours};
use helpdesk_domain::meetings::{ConsultantSchedule, MeetingRules, Reminders, SlotRule};
use helpdesk_domain::plans::MissingEntitlement;
use helpdesk_domain::webhooks::events::MeetingEvent;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

/// What the operations need besides the calendar: the rules and where invites come from.
#[derive(Debug, Clone, Copy)]
pub struct MeetingSettings<'a> {
    pub rules: MeetingRules,
    /// `HELPDESK_MEETING_URL_TEMPLATE`, with `{room}`.
    pub url_template: &'a str,
    /// The helpdesk's mailbox, the invites' organizer.
    pub organizer: &'a str,
}

#[derive(Debug, Clone)]
pub struct Meeting {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub consultant_id: Uuid,
    pub consultant_name: String,
    pub booked_by: Uuid,
    pub ticket_id: Option<Uuid>,
    pub topic: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// `confirmed` or `cancelled`.
    pub status: String,
    pub sequence: i32,
    pub meeting_url: String,
    pub idempotency_key: Option<String>,
    pub counts_toward_quota: bool,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub cancelled_by: Option<Uuid>,
    pub cancel_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Meeting {
    pub fn is_cancelled(&self) -> bool {
        self.status == "cancelled"
    }
}

/// A booking request.
#[derive(Debug, Clone)]
pub struct NewMeeting {
    pub starts_at: DateTime<Utc>,
    pub duration_minutes: i64,
    /// `None`: any free consultant.
    pub consultant_id: Option<Uuid>,
    /// Staff only: the organisation booked for.
    pub organization_id: Option<Uuid>,
    pub ticket_id: Option<Uuid>,
    pub topic: String,
    pub idempotency_key: Option<String>,
}

/// A booking's outcome: a new meeting, or the one an earlier request with the same
/// `Idempotency-Key` made.
#[derive(Debug, Clone)]
pub enum Booking {
    Created(Meeting),
    Replayed(Meeting),
}

/// The 422 naming the rule a request breaks (`starts_at: too_soon: …`).
pub fn rule_error(rule: SlotRule) -> CoreError {
    let field = match rule {
        SlotRule::DurationTooLong | SlotRule::DurationTooShort => "duration_minutes",
        SlotRule::ConsultantUnavailable => "consultant_id",
        _ => "starts_at",
    };
    CoreError::invalid(field, format!("{}: {rule}", rule.code()))
}

fn duration_of(minutes: i64) -> Result<TimeDelta, CoreError> {
    TimeDelta::try_minutes(minutes).ok_or_else(|| rule_error(SlotRule::DurationTooLong))
}

async fn load(conn: &mut PgConnection, id: Uuid) -> Result<Option<Meeting>, CoreError> {
    Ok(sqlx::query_as!(
        Meeting,
        r#"SELECT m.id, m.organization_id, m.consultant_id, u.name AS consultant_name, m.booked_by, m.ticket_id, m.topic,
                  m.starts_at, m.ends_at, m.status, m.sequence, m.meeting_url, m.idempotency_key, m.counts_toward_quota,
                  m.cancelled_at, m.cancelled_by, m.cancel_reason, m.created_at, m.updated_at
           FROM meetings m JOIN users u ON u.id = m.consultant_id WHERE m.id = $1"#,
        id
    )
    .fetch_optional(&mut *conn)
    .await?)
}

/// The meeting, locked for a change, if the caller may see it (another organisation's is "not
/// found", like one that does not exist).
async fn lock_visible(conn: &mut PgConnection, caller: &Caller, id: Uuid) -> Result<Meeting, CoreError> {
    let organization = sqlx::query_scalar!("SELECT organization_id FROM meetings WHERE id = $1 FOR UPDATE", id)
        .fetch_optional(&mut *conn)
        .await?;
    match organization {
        Some(org) if caller.may_see_organization(org) => load(conn, id).await?.ok_or(CoreError::NotFound("meeting")),
        _ => Err(CoreError::NotFound("meeting")),
    }
}

/// One meeting the caller may see.
pub async fn get(conn: &mut PgConnection, caller: &Caller, id: Uuid) -> Result<Meeting, CoreError> {
    match load(conn, id).await? {
        Some(m) if caller.may_see_organization(m.organization_id) => Ok(m),
        _ => Err(CoreError::NotFound("meeting")),
    }
}

async fn party(conn: &mut PgConnection, user: Uuid) -> Result<Party, CoreError> {
    sqlx::query_as!(Party, "SELECT id AS user_id, name, email, locale FROM users WHERE id = $1", user)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(CoreError::NotFound("user"))
}

/// Writes the e-mails of `cause` for `meeting` (see `meeting_invites`).
async fn notify(
    conn: &mut PgConnection,
    calendar: &BusinessCalendar,
    settings: &MeetingSettings<'_>,
    meeting: &Meeting,
    cause: Cause<'_>,
    now: DateTime<Utc>,
) -> Result<(), CoreError> {
    let customer = party(conn, meeting.booked_by).await?;
    let consultant = party(conn, meeting.consultant_id).await?;
    let invite = Invite {
        meeting_id: meeting.id,
        topic: &meeting.topic,
        starts_at: meeting.starts_at,
        ends_at: meeting.ends_at,
        sequence: meeting.sequence,
        meeting_url: &meeting.meeting_url,
        customer: &customer,
        consultant: &consultant,
        organizer: settings.organizer,
        zone: calendar.time_zone(),
    };
    meeting_invites::notify(&mut *conn, &invite, cause, now).await?;
    let (change, previous_starts_at, cancel_reason) = match cause {
        Cause::Booked => (MeetingChange::Booked, None, None),
        Cause::Rescheduled { previous_start } => (MeetingChange::Rescheduled, Some(previous_start), None),
        Cause::Cancelled { reason } => (MeetingChange::Cancelled, None, reason.map(str::to_owned)),
        Cause::Reminder(_) => return Ok(()),
    };
    let payload = MeetingEvent {
        meeting_id: meeting.id,
        organization_id: meeting.organization_id,
        consultant_id: meeting.consultant_id,
        booked_by: meeting.booked_by,
        ticket_id: meeting.ticket_id,
        topic: meeting.topic.clone(),
        starts_at: meeting.starts_at,
        ends_at: meeting.ends_at,
        status: meeting.status.clone(),
        meeting_url: meeting.meeting_url.clone(),
        previous_starts_at,
        cancel_reason,
    };
    webhook_events::meeting(conn, change, payload, now).await?;
    Ok(())
}

/// The organisation's plan must include meetings; returns the monthly quota.
async fn monthly_quota(
    conn: &mut PgConnection,
    calendar: &BusinessCalendar,
    organization_id: Uuid,
    now: DateTime<Utc>,
) -> Result<i64, CoreError> {
    let plan = organizations::active_plan(conn, organization_id, calendar.today(now))
        .await?
        .ok_or(CoreError::NotEntitled(MissingEntitlement::NoActiveContract))?;
    plan.entitlements.check_meeting(0).map_err(CoreError::NotEntitled)?;
    Ok(i64::from(plan.entitlements.consultancy_meetings_per_month))
}

fn validate_topic(topic: &str) -> Result<(), CoreError> {
    let length = topic.trim().chars().count();
    if (1..=200).contains(&length) { Ok(()) } else { Err(CoreError::invalid("topic", "must have 1 to 200 characters")) }
}

/// The consultants who could take `[start, end)`: active, not on time off, within their weekly
/// hours. Existing meetings are not looked at: the exclusion constraint decides those, so a
/// concurrent booking is refused by the database, not by a check that raced it.
async fn candidates(
    conn: &mut PgConnection,
    calendar: &BusinessCalendar,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    only: Option<Uuid>,
) -> Result<Vec<Uuid>, CoreError> {
    let date = calendar.today(start);
    let (day_start, day_end) = (calendar.start_of_day(date), calendar.start_of_day(date + TimeDelta::days(1)));
    // Least busy that day first, so meetings spread over the consultants.
    let rows = sqlx::query!(
        r#"SELECT c.user_id, c.weekly_hours
           FROM consultants c JOIN users u ON u.id = c.user_id
           WHERE c.active AND u.disabled_at IS NULL AND ($5::uuid IS NULL OR c.user_id = $5)
             AND NOT EXISTS (SELECT 1 FROM consultant_time_off t
                             WHERE t.consultant_id = c.user_id AND t.starts_at < $2 AND t.ends_at > $1)
           ORDER BY (SELECT count(*) FROM meetings m WHERE m.consultant_id = c.user_id AND m.status <> 'cancelled'
                       AND m.starts_at >= $3 AND m.starts_at < $4), c.user_id"#,
        start,
        end,
        day_start,
        day_end,
        only
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let weekly_hours: Option<WeeklyHours> =
            row.weekly_hours.map(serde_json::from_value).transpose().map_err(|e| {
                CoreError::Internal(format!("consultant {}: weekly hours unreadable: {e}", row.user_id))
            })?;
        if ConsultantSchedule::new(weekly_hours.as_ref(), Vec::new()).works_at(calendar, start, end) {
            out.push(row.user_id);
        }
    }
    Ok(out)
}

/// Whether `id` is an active consultant at all (to tell "no such consultant" from "not free").
async fn is_active_consultant(conn: &mut PgConnection, id: Uuid) -> Result<bool, CoreError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT true AS "x!" FROM consultants c JOIN users u ON u.id = c.user_id WHERE c.user_id = $1 AND c.active AND u.disabled_at IS NULL"#,
        id
    )
    .fetch_optional(&mut *conn)
    .await?
    .is_some())
}

fn slot_taken() -> CoreError {
    CoreError::conflict("slot_taken", "no consultant is free at that time any more; pick another slot")
}

fn organization_busy() -> CoreError {
    CoreError::conflict("organization_busy", "the organisation already has a meeting at that time")
}

/// Books a meeting (R13). See the module comment for how concurrency is handled.
pub async fn book(
    conn: &mut PgConnection,
    calendar: &BusinessCalendar,
    settings: &MeetingSettings<'_>,
    caller: &Caller,
    input: NewMeeting,
    now: DateTime<Utc>,
) -> Result<Booking, CoreError> {
    let organization_id = match caller.role {
        Role::Customer => {
            if input.organization_id.is_some_and(|o| Some(o) != caller.organization_id) {
                return Err(CoreError::invalid("organization_id", "customers book for their own organisation"));
            }
            caller.organization_id.ok_or_else(|| CoreError::Internal("customer without organisation".into()))?
        }
        Role::Agent | Role::Admin => input
            .organization_id
            .ok_or_else(|| CoreError::invalid("organization_id", "staff name the organisation they book for"))?,
    };
    // One booking per organisation at a time: the quota count and the idempotency check below
    // stay true until this transaction ends. NO KEY UPDATE, so inserts that merely reference the
    // organisation (tickets, users) are not blocked.
    sqlx::query_scalar!("SELECT id FROM organizations WHERE id = $1 FOR NO KEY UPDATE", organization_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(CoreError::NotFound("organization"))?;
    if let Some(key) = &input.idempotency_key {
        if !(1..=200).contains(&key.len()) {
            return Err(CoreError::invalid("Idempotency-Key", "must have 1 to 200 characters"));
        }
        let existing = sqlx::query_scalar!(
            "SELECT id FROM meetings WHERE organization_id = $1 AND idempotency_key = $2",
            organization_id,
            key
        )
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(id) = existing {
            let meeting = load(conn, id).await?.ok_or(CoreError::NotFound("meeting"))?;
            let same = meeting.starts_at == input.starts_at
                && meeting.ends_at - meeting.starts_at == duration_of(input.duration_minutes)?;
            if !same {
                return Err(CoreError::invalid("Idempotency-Key", "was already used for a different booking"));
            }
            return Ok(Booking::Replayed(meeting));
        }
    }
    let quota = monthly_quota(conn, calendar, organization_id, now).await?;

    validate_topic(&input.topic)?;
    let duration = duration_of(input.duration_minutes)?;
    let rules = settings.rules;
    rules.check_request(calendar, now, input.starts_at, duration).map_err(rule_error)?;
    let (start, end) = (input.starts_at, input.starts_at + duration);
    if let Some(ticket) = input.ticket_id {
        let found = sqlx::query_scalar!(
            r#"SELECT true AS "x!" FROM tickets WHERE id = $1 AND organization_id = $2"#,
            ticket,
            organization_id
        )
        .fetch_optional(&mut *conn)
        .await?;
        if found.is_none() {
            return Err(CoreError::invalid("ticket_id", "no such ticket of this organisation"));
        }
    }

    // Months in the calendar's zone: a booking at 22:00 local on the 31st counts in that month.
    let (month_start, month_end) = calendar.month_of(calendar.today(now));
    let used = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM meetings
           WHERE organization_id = $1 AND counts_toward_quota AND created_at >= $2 AND created_at < $3"#,
        organization_id,
        month_start,
        month_end
    )
    .fetch_one(&mut *conn)
    .await?;
    if used >= quota {
        return Err(CoreError::conflict(
            "meeting_quota_exhausted",
            format!("the plan includes {quota} meeting(s) a month and this month's are booked"),
        ));
    }

    let candidates = candidates(conn, calendar, start, end, input.consultant_id).await?;
    if candidates.is_empty() {
        return Err(match input.consultant_id {
            Some(id) if !is_active_consultant(conn, id).await? => {
                CoreError::invalid("consultant_id", "is not an active consultant")
            }
            Some(_) => rule_error(SlotRule::ConsultantUnavailable),
            None => slot_taken(),
        });
    }

    let id = Uuid::now_v7();
    let room = format!("{:032x}", rand::random::<u128>());
    let meeting_url = settings.url_template.replace("{room}", &room);
    let reminders = Reminders { starts_at: start, from: now, day_sent: false, hour_sent: false, cancelled: false };
    let mut booked = false;
    for &candidate in &candidates {
        let mut attempt = conn.begin().await?; // a SAVEPOINT inside the caller's transaction
        let inserted = sqlx::query!(
            r#"INSERT INTO meetings (id, organization_id, consultant_id, booked_by, ticket_id, topic, starts_at, ends_at,
                                     meeting_url, idempotency_key, reminders_from, next_reminder_at, created_at, updated_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $11, $11)"#,
            id,
            organization_id,
            candidate,
            caller.user_id,
            input.ticket_id,
            input.topic.trim(),
            start,
            end,
            meeting_url,
            input.idempotency_key,
            now,
            reminders.next_at()
        )
        .execute(&mut *attempt)
        .await;
        match inserted {
            Ok(_) => {
                attempt.commit().await?;
                booked = true;
                break;
            }
            Err(error) => {
                let constraint = violated_constraint(&error).map(str::to_owned);
                attempt.rollback().await?;
                match constraint.as_deref() {
                    Some("meetings_consultant_no_overlap") => {
                        tracing::debug!(consultant = %candidate, "consultant taken meanwhile; trying the next");
                    }
                    Some("meetings_organization_no_overlap") => return Err(organization_busy()),
                    _ => return Err(error.into()),
                }
            }
        }
    }
    if !booked {
        return Err(slot_taken());
    }
    let meeting = load(conn, id).await?.ok_or(CoreError::NotFound("meeting"))?;
    notify(conn, calendar, settings, &meeting, Cause::Booked, now).await?;
    Ok(Booking::Created(meeting))
}

/// Where a meeting moves to.
#[derive(Debug, Clone, Copy)]
pub struct Reschedule {
    pub starts_at: DateTime<Utc>,
    /// `None` keeps the duration.
    pub duration_minutes: Option<i64>,
}

/// Moves a meeting to a new start (and duration) with the same consultant and link, in one
/// statement: the new range is claimed and the old one released together, and when the new
/// range is taken nothing changes.
pub async fn reschedule(
    conn: &mut PgConnection,
    calendar: &BusinessCalendar,
    settings: &MeetingSettings<'_>,
    caller: &Caller,
    id: Uuid,
    change: Reschedule,
    now: DateTime<Utc>,
) -> Result<Meeting, CoreError> {
    let Reschedule { starts_at, duration_minutes } = change;
    let meeting = lock_visible(conn, caller, id).await?;
    let rules = settings.rules;
    if meeting.is_cancelled() {
        return Err(CoreError::conflict("meeting_cancelled", "the meeting was cancelled"));
    }
    if now >= meeting.starts_at {
        return Err(CoreError::conflict("meeting_started", "the meeting has already started"));
    }
    if !caller.role.is_staff() && !rules.before_cutoff(meeting.starts_at, now) {
        return Err(CoreError::conflict(
            "cutoff_passed",
            "a meeting can no longer be rescheduled 2 hours or less before it starts",
        ));
    }
    let duration = match duration_minutes {
        Some(minutes) => duration_of(minutes)?,
        None => meeting.ends_at - meeting.starts_at,
    };
    rules.check_request(calendar, now, starts_at, duration).map_err(rule_error)?;
    let end = starts_at + duration;
    let free = candidates(conn, calendar, starts_at, end, Some(meeting.consultant_id)).await?;
    if free.is_empty() {
        return Err(rule_error(SlotRule::ConsultantUnavailable));
    }
    let reminders = Reminders { starts_at, from: now, day_sent: false, hour_sent: false, cancelled: false };
    let mut attempt = conn.begin().await?;
    let updated = sqlx::query!(
        r#"UPDATE meetings SET starts_at = $2, ends_at = $3, sequence = sequence + 1, reminders_from = $4,
                  day_reminder_sent_at = NULL, hour_reminder_sent_at = NULL, next_reminder_at = $5, updated_at = $4
           WHERE id = $1"#,
        id,
        starts_at,
        end,
        now,
        reminders.next_at()
    )
    .execute(&mut *attempt)
    .await;
    if let Err(error) = updated {
        let constraint = violated_constraint(&error).map(str::to_owned);
        attempt.rollback().await?;
        return Err(match constraint.as_deref() {
            Some("meetings_consultant_no_overlap") => slot_taken(),
            Some("meetings_organization_no_overlap") => organization_busy(),
            _ => error.into(),
        });
    }
    attempt.commit().await?;
    let moved = load(conn, id).await?.ok_or(CoreError::NotFound("meeting"))?;
    notify(conn, calendar, settings, &moved, Cause::Rescheduled { previous_start: meeting.starts_at }, now).await?;
    Ok(moved)
}

/// Cancels a meeting; its range is free at once. A customer's cancellation after the cut-off
/// still counts toward the quota; an agent cancelling for the customer must say why.
pub async fn cancel(
    conn: &mut PgConnection,
    calendar: &BusinessCalendar,
    settings: &MeetingSettings<'_>,
    caller: &Caller,
    id: Uuid,
    reason: Option<String>,
    now: DateTime<Utc>,
) -> Result<Meeting, CoreError> {
    let meeting = lock_visible(conn, caller, id).await?;
    let by_staff = caller.role.is_staff();
    let reason = reason.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
    if by_staff && reason.is_none() {
        return Err(CoreError::invalid("reason", "an agent cancelling for the customer gives a reason"));
    }
    if reason.as_ref().is_some_and(|r| r.chars().count() > 500) {
        return Err(CoreError::invalid("reason", "at most 500 characters"));
    }
    if meeting.is_cancelled() {
        return Err(CoreError::conflict("meeting_cancelled", "the meeting was already cancelled"));
    }
    if now >= meeting.starts_at {
        return Err(CoreError::conflict("meeting_started", "the meeting has already started"));
    }
    let counts = settings.rules.cancellation_counts(meeting.starts_at, now, by_staff);
    sqlx::query!(
        r#"UPDATE meetings SET status = 'cancelled', sequence = sequence + 1, cancelled_at = $2, cancelled_by = $3,
                  cancel_reason = $4, counts_toward_quota = counts_toward_quota AND $5, next_reminder_at = NULL, updated_at = $2
           WHERE id = $1"#,
        id,
        now,
        caller.user_id,
        reason,
        counts
    )
    .execute(&mut *conn)
    .await?;
    let cancelled = load(conn, id).await?.ok_or(CoreError::NotFound("meeting"))?;
    notify(conn, calendar, settings, &cancelled, Cause::Cancelled { reason: reason.as_deref() }, now).await?;
    Ok(cancelled)
}

/// Filters of the meetings list; customers always see their own organisation's.
#[derive(Debug, Clone, Default)]
pub struct MeetingFilter {
    pub consultant_id: Option<Uuid>,
    pub organization_id: Option<Uuid>,
    /// Meetings ending after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Meetings starting before this instant.
    pub to: Option<DateTime<Utc>>,
    pub include_cancelled: bool,
}

/// Meetings in start order (an agent's agenda, an organisation's meetings), a page at a time.
pub async fn list(
    conn: &mut PgConnection,
    caller: &Caller,
    mut filter: MeetingFilter,
    page: PageRequest,
) -> Result<(Vec<Meeting>, Option<String>), CoreError> {
    if caller.role == Role::Customer {
        filter.organization_id = caller.organization_id;
    }
    let (after_at, after_id) = page.after.map_or((None, None), |(at, id)| (Some(at), Some(id)));
    let rows = sqlx::query_as!(
        Meeting,
        r#"SELECT m.id, m.organization_id, m.consultant_id, u.name AS consultant_name, m.booked_by, m.ticket_id, m.topic,
                  m.starts_at, m.ends_at, m.status, m.sequence, m.meeting_url, m.idempotency_key, m.counts_toward_quota,
                  m.cancelled_at, m.cancelled_by, m.cancel_reason, m.created_at, m.updated_at
           FROM meetings m JOIN users u ON u.id = m.consultant_id
           WHERE ($1::uuid IS NULL OR m.organization_id = $1) AND ($2::uuid IS NULL OR m.consultant_id = $2)
             AND ($3::timestamptz IS NULL OR m.ends_at > $3) AND ($4::timestamptz IS NULL OR m.starts_at < $4)
             AND ($5 OR m.status <> 'cancelled')
             AND ($6::timestamptz IS NULL OR (m.starts_at, m.id) > ($6, $7))
           ORDER BY m.starts_at, m.id LIMIT $8"#,
        filter.organization_id,
        filter.consultant_id,
        filter.from,
        filter.to,
        filter.include_cancelled,
        after_at,
        after_id,
        page.fetch_limit()
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(pagination::finish(rows, &page, |m| (m.starts_at, m.id)))
}

/// A bookable start and the consultants free for it.
#[derive(Debug, Clone)]
pub struct FreeSlot {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub consultants: Vec<Uuid>,
}

/// What the slots listing is asked.
#[derive(Debug, Clone)]
pub struct SlotQuery {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub duration_minutes: i64,
    pub consultant_id: Option<Uuid>,
}

/// Free slots between two local dates (default: today to the horizon), clamped to notice and
/// horizon, where some consultant (or the one asked for) is free.
pub async fn slots(
    conn: &mut PgConnection,
    calendar: &BusinessCalendar,
    rules: &MeetingRules,
    caller: &Caller,
    query: SlotQuery,
    now: DateTime<Utc>,
) -> Result<Vec<FreeSlot>, CoreError> {
    if caller.role == Role::Customer {
        let org = caller.organization_id.ok_or_else(|| CoreError::Internal("customer without organisation".into()))?;
        monthly_quota(conn, calendar, org, now).await?;
    }
    let duration = duration_of(query.duration_minutes)?;
    rules.check_duration(duration).map_err(rule_error)?;
    let today = calendar.today(now);
    let from = query.from.unwrap_or(today);
    let to = query.to.unwrap_or_else(|| calendar.today(rules.latest_start(now)));
    if to < from {
        return Err(CoreError::invalid("to", "must not be before from"));
    }
    let mut people = consultants::list_active(conn).await?;
    if let Some(only) = query.consultant_id {
        people.retain(|c| c.user_id == only);
        if people.is_empty() {
            return Err(CoreError::invalid("consultant", "is not an active consultant"));
        }
    }
    let ids: Vec<Uuid> = people.iter().map(|c| c.user_id).collect();
    let (window_start, window_end) = (now, rules.latest_start(now) + duration);
    let blocked = sqlx::query!(
        r#"SELECT consultant_id AS "consultant_id!", starts_at AS "starts_at!", ends_at AS "ends_at!" FROM consultant_time_off
             WHERE consultant_id = ANY($1) AND starts_at < $3 AND ends_at > $2
           UNION ALL
           SELECT consultant_id, starts_at, ends_at FROM meetings
             WHERE consultant_id = ANY($1) AND status <> 'cancelled' AND starts_at < $3 AND ends_at > $2"#,
        &ids,
        window_start,
        window_end
    )
    .fetch_all(&mut *conn)
    .await?;
    let schedules: Vec<ConsultantSchedule<'_>> = people
        .iter()
        .map(|c| {
            let mine =
                blocked.iter().filter(|b| b.consultant_id == c.user_id).map(|b| (b.starts_at, b.ends_at)).collect();
            ConsultantSchedule::new(c.weekly_hours.as_ref(), mine)
        })
        .collect();
    Ok(rules
        .free_slots(calendar, now, from, to, duration, &schedules)
        .into_iter()
        .map(|slot| FreeSlot {
            starts_at: slot.start,
            ends_at: slot.end,
            consultants: slot.free.iter().filter_map(|&i| ids.get(i).copied()).collect(),
        })
        .collect())
}
