//! The e-mail outbox (DESIGN §3.5): operations write the e-mails they cause here, inside their own
//! transaction; the worker delivers them. A unique idempotency key per cause means a retried
//! operation or a duplicate job can never queue a second copy.
//!
//! Delivery protocol (used by the worker, see `helpdesk-worker`'s `jobs/email.rs`):
//! 1. [`claim_batch`] moves `next_attempt_at` forward by a lease and counts the attempt, in one
//!    committed statement, *before* SMTP is contacted. A second job for the same row finds it
//!    not due and does nothing; a worker that dies mid-send leaves a row that becomes due again
//!    when the lease ends ([`extend_leases`] keeps a live, slow send's lease), which the
//!    reconciler ([`due_for_delivery`]) picks up.
//! 2. After SMTP answers: [`mark_sent_batch`], [`schedule_retry`] or [`mark_failed`].

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

/// The templates operations write, by name. The worker must be able to render every one (its
/// tests check this list), so a new e-mail cannot ship without its template.
pub mod templates {
    pub const WELCOME: &str = "welcome";
    pub const PASSWORD_RESET: &str = "password_reset";
    pub const TICKET_CREATED: &str = "ticket_created";
    pub const TICKET_REPLIED: &str = "ticket_replied";
    pub const TICKET_CUSTOMER_REPLIED: &str = "ticket_customer_replied";
    pub const TICKET_ASSIGNED: &str = "ticket_assigned";
    pub const TICKET_WAITING: &str = "ticket_waiting";
    pub const TICKET_CLOSED: &str = "ticket_closed";
    pub const TICKET_REMINDER: &str = "ticket_reminder";
    pub const SLA_AT_RISK: &str = "sla_at_risk";
    pub const SLA_BREACHED: &str = "sla_breached";
    pub const MEETING_CONFIRMED: &str = "meeting_confirmed";
    pub const MEETING_UPDATED: &str = "meeting_updated";
    pub const MEETING_CANCELLED: &str = "meeting_cancelled";
    pub const MEETING_REMINDER: &str = "meeting_reminder";
    pub const CONTACT_REQUEST: &str = "contact_request";
    pub const CONTACT_ANSWER: &str = "contact_answer";
    pub const MONITOR_ALERT: &str = "monitor_alert";
    pub const MONITOR_PAGE: &str = "monitor_page";
    pub const PROBE_NETWORK_PROBLEM: &str = "probe_network_problem";
    pub const MONITOR_OVERDUE: &str = "monitor_overdue";
    pub const WEBHOOK_DISABLED: &str = "webhook_disabled";
    pub const ALL: &[&str] = &[
        WELCOME,
        PASSWORD_RESET,
        TICKET_CREATED,
        TICKET_REPLIED,
        TICKET_CUSTOMER_REPLIED,
        TICKET_ASSIGNED,
        TICKET_WAITING,
        TICKET_CLOSED,
        TICKET_REMINDER,
        SLA_AT_RISK,
        SLA_BREACHED,
        MEETING_CONFIRMED,
        MEETING_UPDATED,
        MEETING_CANCELLED,
        MEETING_REMINDER,
        CONTACT_REQUEST,
        CONTACT_ANSWER,
        MONITOR_ALERT,
        MONITOR_PAGE,
        PROBE_NETWORK_PROBLEM,
        MONITOR_OVERDUE,
        WEBHOOK_DISABLED,
    ];
}

/// One e-mail to queue. `template` names the template files the worker renders.
#[derive(Debug, Clone)]
pub struct NewEmail<'a> {
    pub idempotency_key: String,
    pub to_address: &'a str,
    pub to_name: Option<&'a str>,
    pub locale: &'a str,
    pub template: &'static str,
    pub payload: Value,
}

/// Queues an e-mail; returns false when one with the same idempotency key was already queued.
pub async fn enqueue(conn: &mut PgConnection, email: NewEmail<'_>, now: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    Ok(enqueue_returning_id(conn, email, now).await?.is_some())
}

/// Queues an e-mail and returns its outbox id, so the caller can push a delivery job for it after
/// committing (`JobQueue::deliver_email`); `None` when one with the same idempotency key was
/// already queued.
pub async fn enqueue_returning_id(
    conn: &mut PgConnection,
    email: NewEmail<'_>,
    now: DateTime<Utc>,
) -> Result<Option<Uuid>, sqlx::Error> {
    enqueue_at(conn, email, now, now).await
}

/// Queues an e-mail to be delivered no earlier than `deliver_at` (an out-of-hours alert held for
/// the next business instant, R7): the reconciler picks it up once it is due. Returns its outbox
/// id; `None` when one with the same idempotency key was already queued.
pub async fn enqueue_at(
    conn: &mut PgConnection,
    email: NewEmail<'_>,
    deliver_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<Uuid>, sqlx::Error> {
    Ok(enqueue_all(conn, vec![(email, deliver_at)], now).await?.pop())
}

/// Queues several e-mails, each due at its instant, in one statement; returns the ids of those
/// queued (an e-mail whose idempotency key was already queued is left out).
pub async fn enqueue_all(
    conn: &mut PgConnection,
    emails: Vec<(NewEmail<'_>, DateTime<Utc>)>,
    now: DateTime<Utc>,
) -> Result<Vec<Uuid>, sqlx::Error> {
    if emails.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = emails.iter().map(|_| Uuid::now_v7()).collect();
    let mut keys = Vec::with_capacity(emails.len());
    let (mut addresses, mut names, mut locales) = (Vec::new(), Vec::new(), Vec::new());
    let (mut templates, mut payloads, mut due) = (Vec::new(), Vec::new(), Vec::new());
    for (email, deliver_at) in emails {
        keys.push(email.idempotency_key);
        addresses.push(email.to_address);
        names.push(email.to_name);
        locales.push(email.locale);
        templates.push(email.template);
        payloads.push(email.payload);
        due.push(deliver_at);
    }
    sqlx::query_scalar!(
        r#"INSERT INTO email_outbox (id, idempotency_key, to_address, to_name, locale, template, payload, next_attempt_at, created_at)
           SELECT id, idempotency_key, to_address, to_name, locale, template, payload, next_attempt_at, $9
           FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::jsonb[], $8::timestamptz[])
                AS v (id, idempotency_key, to_address, to_name, locale, template, payload, next_attempt_at)
           ON CONFLICT (idempotency_key) DO NOTHING
           RETURNING id"#,
        &ids,
        &keys,
        &addresses as &[&str],
        &names as &[Option<&str>],
        &locales as &[&str],
        &templates as &[&str],
        &payloads,
        &due,
        now,
    )
    .fetch_all(conn)
    .await
}

/// A row claimed by one delivery attempt.
#[derive(Debug, Clone)]
pub struct ClaimedEmail {
    pub id: Uuid,
    pub idempotency_key: String,
    pub to_address: String,
    pub to_name: Option<String>,
    pub locale: String,
    pub template: String,
    pub payload: Value,
    /// Attempts so far, this one included (1 on the first attempt).
    pub attempts: i32,
}

/// Claims every pending, due row of `ids` for one delivery attempt each, in one statement (the
/// worker batches the claims of its concurrent sends); rows sent, failed, not due, leased, or
/// locked by a concurrent claim right now are left out. The claim is committed on its own, so no
/// row lock is held while talking to SMTP.
pub async fn claim_batch(
    conn: &mut PgConnection,
    ids: &[Uuid],
    now: DateTime<Utc>,
    lease: TimeDelta,
) -> Result<Vec<ClaimedEmail>, sqlx::Error> {
    // Rows locked in id order and skipped when locked, so two claimers never wait on each other.
    sqlx::query_as!(
        ClaimedEmail,
        r#"UPDATE email_outbox
           SET attempts = attempts + 1, next_attempt_at = $3, last_attempt_at = $2
           WHERE id IN (SELECT id FROM email_outbox
                        WHERE id = ANY($1) AND status = 'pending' AND next_attempt_at <= $2
                        ORDER BY id
                        FOR UPDATE SKIP LOCKED)
           RETURNING id, idempotency_key, to_address, to_name, locale, template, payload, attempts"#,
        ids,
        now,
        now + lease,
    )
    .fetch_all(conn)
    .await
}

/// Records deliveries the SMTP server accepted, many rows in one statement: `(id, message_id)` pairs; returns the ids
/// recorded (a row already sent or failed is left alone).
pub async fn mark_sent_batch(
    conn: &mut PgConnection,
    sent: &[(Uuid, String)],
    now: DateTime<Utc>,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let (ids, message_ids): (Vec<Uuid>, Vec<String>) = sent.iter().cloned().unzip();
    sqlx::query_scalar!(
        r#"UPDATE email_outbox e SET status = 'sent', sent_at = $3, message_id = v.message_id, last_error = NULL
           FROM UNNEST($1::uuid[], $2::text[]) AS v (id, message_id)
           WHERE e.id = v.id AND e.status = 'pending'
           RETURNING e.id"#,
        &ids,
        &message_ids,
        now,
    )
    .fetch_all(conn)
    .await
}

/// The heartbeat of live delivery attempts: moves the lease of each `(id, attempt)` still held
/// (pending, and not claimed since by a later attempt) to `until`. A short lease renewed this
/// way lets a dead worker's rows be taken over soon while a live, slow send keeps its row.
/// Returns how many leases were extended.
pub async fn extend_leases(
    conn: &mut PgConnection,
    held: &[(Uuid, i32)],
    until: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let (ids, attempts): (Vec<Uuid>, Vec<i32>) = held.iter().copied().unzip();
    let updated = sqlx::query!(
        r#"UPDATE email_outbox e SET next_attempt_at = $3
           FROM UNNEST($1::uuid[], $2::int4[]) AS h (id, attempts)
           WHERE e.id = h.id AND e.attempts = h.attempts AND e.status = 'pending'"#,
        &ids,
        &attempts,
        until,
    )
    .execute(conn)
    .await?;
    Ok(updated.rows_affected())
}

/// Records a transient failure of `attempt` and when to try again. A no-op when a later attempt
/// has claimed the row meanwhile (its outcome wins).
pub async fn schedule_retry(
    conn: &mut PgConnection,
    id: Uuid,
    attempt: i32,
    next_attempt_at: DateTime<Utc>,
    error: &str,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query!(
        r#"UPDATE email_outbox SET next_attempt_at = $3, last_error = $4
           WHERE id = $1 AND status = 'pending' AND attempts = $2"#,
        id,
        attempt,
        next_attempt_at,
        error,
    )
    .execute(conn)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Gives up on a row; `error` is shown to admins.
pub async fn mark_failed(conn: &mut PgConnection, id: Uuid, error: &str) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query!(
        r#"UPDATE email_outbox SET status = 'failed', last_error = $2 WHERE id = $1 AND status = 'pending'"#,
        id,
        error,
    )
    .execute(conn)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// A pending row that is due: never attempted, backing off past its retry time, or leased by an
/// attempt that died.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueEmail {
    pub id: Uuid,
    /// The instant it became due; names the attempt, so it is queued once per attempt.
    pub next_attempt_at: DateTime<Utc>,
}

/// [`due_for_delivery`] restricted to rows attempted before (`attempts > 0`): claims whose lease
/// ran out (a dead worker's) and retries whose job was lost. The outbox sweep between reconciler
/// rounds reads these only: rows never attempted have their fast-path job, or the reconciler's
/// next round when the announcement was missed, and re-queueing a backlog of them every 15 s
/// made a second job for every row still waiting (`bench_a_hundred`).
pub async fn due_retries(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    after: Option<DueEmail>,
    limit: i64,
) -> Result<Vec<DueEmail>, sqlx::Error> {
    // One statement for every page: the first page's keyset is the lowest possible one.
    sqlx::query_as!(
        DueEmail,
        r#"SELECT id, next_attempt_at FROM email_outbox
           WHERE status = 'pending' AND next_attempt_at <= $1 AND attempts > 0
             AND (next_attempt_at, id) > (COALESCE($2, '-infinity'::timestamptz), COALESCE($3, '00000000-0000-0000-0000-000000000000'::uuid))
           ORDER BY next_attempt_at, id
           LIMIT $4"#,
        now,
        after.map(|last| last.next_attempt_at),
        after.map(|last| last.id),
        limit,
    )
    .fetch_all(conn)
    .await
}

/// The oldest due rows, `limit` at a time, through the partial index on `(next_attempt_at, id)`
/// and nothing else (an index-only scan: keep the selected columns in the index), passing the last
/// row of a page as `after` for the next.
pub async fn due_for_delivery(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    after: Option<DueEmail>,
    limit: i64,
) -> Result<Vec<DueEmail>, sqlx::Error> {
    match after {
        None => {
            sqlx::query_as!(
                DueEmail,
                r#"SELECT id, next_attempt_at FROM email_outbox
                   WHERE status = 'pending' AND next_attempt_at <= $1
                   ORDER BY next_attempt_at, id
                   LIMIT $2"#,
                now,
                limit,
            )
            .fetch_all(conn)
            .await
        }
        Some(last) => {
            sqlx::query_as!(
                DueEmail,
                r#"SELECT id, next_attempt_at FROM email_outbox
                   WHERE status = 'pending' AND next_attempt_at <= $1 AND (next_attempt_at, id) > ($2, $3)
                   ORDER BY next_attempt_at, id
                   LIMIT $4"#,
                now,
                last.next_attempt_at,
                last.id,
                limit,
            )
            .fetch_all(conn)
            .await
        }
    }
}
