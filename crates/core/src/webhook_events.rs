//! The webhook outbox (issue 13, decision 23): operations record the events they cause here, in
//! their own transaction, and the deliveries to every subscription that wants each event are
//! written with it. A rolled-back change therefore leaves neither event nor delivery behind, and a
//! committed one is announced to the worker by the `webhook_deliveries_notify` trigger.
//!
//! **Order.** Deliveries are numbered from one sequence while holding a transaction-scoped
//! advisory lock ([`ORDER_LOCK`]), taken only when an event has a subscriber and held until
//! commit. Numbers therefore follow commit order: no delivery can commit behind one with a higher
//! number, so the worker sending each subscription's queue by number never skips one that is
//! about to appear. The price is that transactions causing subscribed events commit one at a
//! time from their first event on; events are recorded last in each operation, so the lock is held
//! for little more than the commit.
//!
//! The monitoring feature calls [`incident_down`], [`incident_escalated`], [`incident_recovered`]
//! and [`maintenance_scheduled`] in its own transactions.

use chrono::{DateTime, Utc};
use helpdesk_domain::tickets::{TicketChange, TimelineEntry};
use helpdesk_domain::webhooks::events::{IncidentEvent, MaintenanceScheduled, MeetingEvent};
use helpdesk_domain::webhooks::{EventData, EventType, SubscriptionFilter, WebhookEvent, ticket_events};
use sqlx::PgConnection;
use std::sync::{Arc, PoisonError, RwLock};
use uuid::Uuid;

/// The advisory lock key that orders deliveries (an arbitrary constant: "webhook" in ASCII).
pub const ORDER_LOCK: i64 = 0x0077_6562_686f_6f6b;

/// Which receivers a transaction has seen: the token of `webhook_subscriber_generation`, read by
/// [`crate::sla_store::SlaStore::snapshot_for_change`] in the statement every ticket transaction
/// already runs. The token changes whenever a subscription is created, deleted, enabled,
/// disabled or re-filtered (a trigger), so a process that has the receivers of this token needs
/// no read of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiversSeen(pub Uuid);

/// One enabled subscription and what it receives.
#[derive(Debug, Clone)]
struct Receiver {
    id: Uuid,
    filter: SubscriptionFilter,
}

/// The receivers of the token this process read last. Tokens are random UUIDs, so one names one
/// database's state: a process serving several databases (the test suite) only misses more often.
static RECEIVERS: RwLock<Option<(Uuid, Arc<[Receiver]>)>> = RwLock::new(None);

/// Records `event` and its deliveries to every enabled subscription that receives it (or, for a
/// ping, to its one subscription); an event nobody receives is not stored. Returns how many
/// deliveries were written.
pub async fn record(conn: &mut PgConnection, event: &WebhookEvent, now: DateTime<Utc>) -> Result<usize, sqlx::Error> {
    record_seen(conn, event, None, now).await
}

/// [`record`], with the receivers `seen` earlier in the transaction: no read when this process
/// knows that token's receivers.
async fn record_seen(
    conn: &mut PgConnection,
    event: &WebhookEvent,
    seen: Option<ReceiversSeen>,
    now: DateTime<Utc>,
) -> Result<usize, sqlx::Error> {
    let event_type = event.data.event_type();
    let organization_id = event.data.organization_id();
    let target = match &event.data {
        EventData::Ping(ping) => Some(ping.subscription_id),
        _ => None,
    };
    let subscribers: Vec<Uuid> = match target {
        Some(subscription) => vec![subscription],
        None => receivers(&mut *conn, seen)
            .await?
            .iter()
            .filter(|r| r.filter.receives(event_type, organization_id))
            .map(|r| r.id)
            .collect(),
    };
    // Without a subscriber the event is not kept: nothing would deliver it, and its payload
    // (names, message bodies) would be personal data stored for nobody (R14).
    if subscribers.is_empty() {
        return Ok(0);
    }
    sqlx::query!(
        "INSERT INTO webhook_events (id, type, occurred_at, organization_id, subscription_id, payload)
         VALUES ($1, $2, $3, $4, $5, $6)",
        event.id,
        event_type.as_str(),
        event.occurred_at,
        organization_id,
        target,
        event.data.to_json()
    )
    .execute(&mut *conn)
    .await?;
    insert_deliveries(conn, event.id, &subscribers, None, now).await
}

/// The enabled subscriptions, from this process's copy when `seen` is its token; otherwise read
/// with the current token in one statement (so the copy is exactly that token's) and kept.
async fn receivers(conn: &mut PgConnection, seen: Option<ReceiversSeen>) -> Result<Arc<[Receiver]>, sqlx::Error> {
    if let Some(ReceiversSeen(token)) = seen {
        let cached = RECEIVERS.read().unwrap_or_else(PoisonError::into_inner);
        if let Some((cached_token, receivers)) = cached.as_ref()
            && *cached_token == token
        {
            return Ok(receivers.clone());
        }
    }
    let rows = sqlx::query!(
        r#"SELECT g.token, s.id AS "id?", s.event_types AS "event_types?", s.organization_id
           FROM webhook_subscriber_generation g
           LEFT JOIN webhook_subscriptions s ON s.enabled
           ORDER BY s.id"#
    )
    .fetch_all(&mut *conn)
    .await?;
    let Some(token) = rows.first().map(|row| row.token) else {
        return Ok(Arc::from([]));
    };
    let receivers: Arc<[Receiver]> = rows
        .into_iter()
        .filter_map(|row| {
            let filter = filter_of(row.event_types.as_deref().unwrap_or_default(), row.organization_id);
            row.id.map(|id| Receiver { id, filter })
        })
        .collect();
    *RECEIVERS.write().unwrap_or_else(PoisonError::into_inner) = Some((token, receivers.clone()));
    Ok(receivers)
}

/// A stored subscription's filter; stored types this build does not know are ignored.
pub fn filter_of(event_types: &[String], organization_id: Option<Uuid>) -> SubscriptionFilter {
    SubscriptionFilter {
        event_types: event_types.iter().filter_map(|t| EventType::parse(t).ok()).collect(),
        organization_id,
    }
}

/// Writes one delivery of `event_id` per subscription, numbered under the order lock. A
/// subscription deleted since the caller's receivers were read is skipped: those may come from
/// a copy as old as the transaction's first statement.
pub(crate) async fn insert_deliveries(
    conn: &mut PgConnection,
    event_id: Uuid,
    subscriptions: &[Uuid],
    replay_of: Option<&[Option<Uuid>]>,
    now: DateTime<Utc>,
) -> Result<usize, sqlx::Error> {
    if subscriptions.is_empty() {
        return Ok(0);
    }
    sqlx::query!("SELECT pg_advisory_xact_lock($1)", ORDER_LOCK).execute(&mut *conn).await?;
    let ids: Vec<Uuid> = subscriptions.iter().map(|_| Uuid::now_v7()).collect();
    let replays: Vec<Option<Uuid>> = replay_of.map_or_else(|| vec![None; subscriptions.len()], <[_]>::to_vec);
    let inserted = sqlx::query!(
        "INSERT INTO webhook_deliveries (id, subscription_id, event_id, next_attempt_at, replay_of, created_at)
         SELECT v.id, v.subscription_id, $3, $4, v.replay_of, $4
         FROM UNNEST($1::uuid[], $2::uuid[], $5::uuid[]) WITH ORDINALITY AS v (id, subscription_id, replay_of, n)
         WHERE EXISTS (SELECT 1 FROM webhook_subscriptions s WHERE s.id = v.subscription_id)
         ORDER BY v.n
         ON CONFLICT DO NOTHING",
        &ids,
        subscriptions,
        event_id,
        now,
        &replays as &[Option<Uuid>]
    )
    .execute(&mut *conn)
    .await?;
    Ok(usize::try_from(inserted.rows_affected()).unwrap_or(usize::MAX))
}

/// Records the events of a saved ticket change (created, updated, status changed, public message
/// added, closed, reopened, SLA at risk and breached). `timeline` is the change's timeline as it
/// was before saving; `message_body` is the public reply's body when the change added one.
/// `seen`: the receivers the transaction saw with its SLA versions.
pub async fn ticket_change(
    conn: &mut PgConnection,
    change: &TicketChange,
    timeline: &[TimelineEntry],
    message_body: Option<&str>,
    seen: ReceiversSeen,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    for data in ticket_events::events_of(&change.ticket, change.created, timeline, message_body) {
        record_seen(&mut *conn, &WebhookEvent::new(data, now), Some(seen), now).await?;
    }
    Ok(())
}

/// What happened to a meeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeetingChange {
    Booked,
    Rescheduled,
    Cancelled,
}

/// Records `meeting.booked`, `meeting.rescheduled` or `meeting.cancelled`.
pub async fn meeting(
    conn: &mut PgConnection,
    change: MeetingChange,
    payload: MeetingEvent,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let data = match change {
        MeetingChange::Booked => EventData::MeetingBooked(payload),
        MeetingChange::Rescheduled => EventData::MeetingRescheduled(payload),
        MeetingChange::Cancelled => EventData::MeetingCancelled(payload),
    };
    record(conn, &WebhookEvent::new(data, now), now).await.map(|_| ())
}

/// `incident.down` (R11): call in the transaction that opens the incident (after the downtime is
/// confirmed). Returns the event's id.
pub async fn incident_down(
    conn: &mut PgConnection,
    incident: IncidentEvent,
    now: DateTime<Utc>,
) -> Result<Uuid, sqlx::Error> {
    emit(conn, EventData::IncidentDown(incident), now).await
}

/// `incident.escalated` (R11: down for more than 15 minutes, or the two-hour emergency ticket;
/// set `ticket_id` then). Call in the transaction that records the escalation.
pub async fn incident_escalated(
    conn: &mut PgConnection,
    incident: IncidentEvent,
    now: DateTime<Utc>,
) -> Result<Uuid, sqlx::Error> {
    emit(conn, EventData::IncidentEscalated(incident), now).await
}

/// `incident.recovered` (R11): call in the transaction that closes the incident (`resolved_at`
/// set).
pub async fn incident_recovered(
    conn: &mut PgConnection,
    incident: IncidentEvent,
    now: DateTime<Utc>,
) -> Result<Uuid, sqlx::Error> {
    emit(conn, EventData::IncidentRecovered(incident), now).await
}

/// `maintenance.scheduled` (R12): call in the transaction that creates the window.
/// `organization_id: None` (a window over every site) reaches organisation-scoped subscriptions too.
pub async fn maintenance_scheduled(
    conn: &mut PgConnection,
    window: MaintenanceScheduled,
    now: DateTime<Utc>,
) -> Result<Uuid, sqlx::Error> {
    emit(conn, EventData::MaintenanceScheduled(window), now).await
}

async fn emit(conn: &mut PgConnection, data: EventData, now: DateTime<Utc>) -> Result<Uuid, sqlx::Error> {
    let event = WebhookEvent::new(data, now);
    record(conn, &event, now).await?;
    Ok(event.id)
}
