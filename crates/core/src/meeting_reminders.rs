//! Meeting reminders (R13) on the stored-instant pattern (DESIGN §3): each meeting row holds the
//! instant its next reminder falls (`next_reminder_at`, behind a partial index) and which
//! reminders went out for its current schedule. The worker's reconciler drains due rows with
//! `FOR UPDATE SKIP LOCKED`; for each it asks the domain what is due *now*, writes the e-mails to
//! the outbox, records them and stores the next instant, in the caller's transaction. A second
//! run, another worker or a restarted one therefore finds nothing due: never lost (the row says
//! it is due until it is recorded), never doubled (recorded with the e-mail, and the e-mail's key
//! names the reminder and the start it was for).

use crate::CoreError;
use crate::meeting_invites::{self, Cause, Invite, Party};
use crate::sla_store::SlaStore;
use chrono::{DateTime, Utc};
use helpdesk_domain::meetings::{ReminderKind, Reminders};
use sqlx::PgConnection;
use uuid::Uuid;

/// What one batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReminderBatch {
    /// Due meetings locked (fewer than asked: nothing else is due that another worker does not hold).
    pub meetings: usize,
    /// Reminders written (each to both parties).
    pub sent: usize,
}

/// Runs the due reminders of up to `limit` meetings in the caller's transaction.
pub async fn run_due_batch(
    conn: &mut PgConnection,
    store: &SlaStore,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<ReminderBatch, CoreError> {
    let due = sqlx::query!(
        r#"SELECT m.id, m.topic, m.starts_at, m.ends_at, m.sequence, m.meeting_url, m.status, m.reminders_from,
                  m.day_reminder_sent_at, m.hour_reminder_sent_at,
                  b.id AS customer_id, b.name AS customer_name, b.email AS customer_email, b.locale AS customer_locale,
                  c.id AS consultant_id, c.name AS consultant_name, c.email AS consultant_email, c.locale AS consultant_locale
           FROM meetings m JOIN users b ON b.id = m.booked_by JOIN users c ON c.id = m.consultant_id
           WHERE m.next_reminder_at <= $1
           ORDER BY m.next_reminder_at, m.id
           LIMIT $2
           FOR UPDATE OF m SKIP LOCKED"#,
        now,
        limit
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut batch = ReminderBatch { meetings: due.len(), sent: 0 };
    if due.is_empty() {
        return Ok(batch);
    }
    // Only for the zone the e-mails name.
    let calendar = store.snapshot(&mut *conn).await?.calendar;
    for row in due {
        let state = Reminders {
            starts_at: row.starts_at,
            from: row.reminders_from,
            day_sent: row.day_reminder_sent_at.is_some(),
            hour_sent: row.hour_reminder_sent_at.is_some(),
            cancelled: row.status == "cancelled",
        };
        let run = state.run(now);
        if let Some(kind) = run.send {
            let customer = Party {
                user_id: row.customer_id,
                name: row.customer_name,
                email: row.customer_email,
                locale: row.customer_locale,
            };
            let consultant = Party {
                user_id: row.consultant_id,
                name: row.consultant_name,
                email: row.consultant_email,
                locale: row.consultant_locale,
            };
            let invite = Invite {
                meeting_id: row.id,
                topic: &row.topic,
                starts_at: row.starts_at,
                ends_at: row.ends_at,
                sequence: row.sequence,
                meeting_url: &row.meeting_url,
                customer: &customer,
                consultant: &consultant,
                // Reminders carry no invite, so no organizer.
                organizer: "",
                zone: calendar.time_zone(),
            };
            meeting_invites::notify(conn, &invite, Cause::Reminder(kind), now).await?;
            batch.sent += 1;
        }
        let settles = |kind: ReminderKind| run.settle.contains(&kind).then_some(now);
        sqlx::query!(
            r#"UPDATE meetings SET day_reminder_sent_at = coalesce(day_reminder_sent_at, $2),
                      hour_reminder_sent_at = coalesce(hour_reminder_sent_at, $3), next_reminder_at = $4
               WHERE id = $1"#,
            row.id,
            settles(ReminderKind::DayBefore),
            settles(ReminderKind::HourBefore),
            run.next_at
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(batch)
}

/// The meetings whose reminders are due at `now` (for tests and operators).
pub async fn due(conn: &mut PgConnection, now: DateTime<Utc>) -> Result<Vec<Uuid>, CoreError> {
    Ok(sqlx::query_scalar!("SELECT id FROM meetings WHERE next_reminder_at <= $1 ORDER BY next_reminder_at, id", now)
        .fetch_all(conn)
        .await?)
}
