//! A person's data under the LGPD (DESIGN R14): the export (Art. 18 II/V) and the anonymisation
//! (Art. 18 IV/VI), side by side, so that the list of tables holding personal data is written
//! once.
//!
//! **Adding a table that holds personal data** (meetings, contact requests, …): add a section to
//! [`PersonalDataExport`] and its query to [`export`], and a step to [`anonymise`] that replaces
//! what the person wrote and scrubs copies with the [`Scrubber`]. The API test
//! `privacy::deletion_leaves_no_trace` searches every text and jsonb column of the database, so a
//! forgotten table makes it fail.

use crate::accounts::Caller;
use crate::audit::{self, AuditEntry};
use crate::{CoreError, admin_contacts};
use chrono::{DateTime, Utc};
use helpdesk_domain::accounts::Role;
use helpdesk_domain::privacy::{ANONYMISED_NAME, REMOVED_TEXT, Scrubber, anonymised_email};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

/// Everything held about one person, as JSON sections. Each section is an array of rows (the
/// profile, one object) with the columns that describe the person; nothing about anyone else:
/// other people are named only by opaque ids, and their IP addresses are left out.
#[derive(Debug, Clone, Serialize)]
pub struct PersonalDataExport {
    pub generated_at: DateTime<Utc>,
    pub profile: Value,
    /// Sign-in sessions (refresh tokens, without the token).
    pub sessions: Value,
    /// Tickets the person opened.
    pub tickets: Value,
    /// Messages the person wrote, on any ticket.
    pub messages: Value,
    /// Timeline entries of actions the person took.
    pub ticket_events: Value,
    /// E-mails sent (or queued) to the person, with what they said.
    pub emails: Value,
    /// Audit entries about the person: who read or changed their data, sign-ins.
    pub audit_events: Value,
}

/// Reads the export of `user_id`. The caller decides who may ask and records the export.
pub async fn export(
    conn: &mut PgConnection,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<PersonalDataExport, CoreError> {
    let profile = sqlx::query_scalar!(
        r#"SELECT to_jsonb(u) AS "profile!" FROM (
               SELECT id, email, name, role, organization_id, admin_contact, locale, phone, terms_version,
                      terms_accepted_at, disabled_at, created_at, updated_at
               FROM users WHERE id = $1 AND anonymised_at IS NULL) u"#,
        user_id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(CoreError::NotFound("user"))?;
    let sessions = sqlx::query_scalar!(
        r#"SELECT COALESCE(jsonb_agg(to_jsonb(s) ORDER BY s.created_at, s.id), '[]') AS "rows!" FROM (
               SELECT id, family_id, created_at, expires_at, used_at, revoked_at
               FROM refresh_tokens WHERE user_id = $1) s"#,
        user_id
    )
    .fetch_one(&mut *conn)
    .await?;
    let tickets = sqlx::query_scalar!(
        r#"SELECT COALESCE(jsonb_agg(to_jsonb(t) ORDER BY t.created_at, t.id), '[]') AS "rows!" FROM (
               SELECT id, number, organization_id, subject, description, category, severity, emergency, plan_code,
                      status, close_reason, created_at, updated_at, closed_at
               FROM tickets WHERE requester_id = $1) t"#,
        user_id
    )
    .fetch_one(&mut *conn)
    .await?;
    let messages = sqlx::query_scalar!(
        r#"SELECT COALESCE(jsonb_agg(to_jsonb(m) ORDER BY m.created_at, m.id), '[]') AS "rows!" FROM (
               SELECT id, ticket_id, body, internal, created_at FROM ticket_messages WHERE author_id = $1) m"#,
        user_id
    )
    .fetch_one(&mut *conn)
    .await?;
    let ticket_events = sqlx::query_scalar!(
        r#"SELECT COALESCE(jsonb_agg(to_jsonb(e) ORDER BY e.occurred_at, e.id), '[]') AS "rows!" FROM (
               SELECT id, ticket_id, kind, data, occurred_at FROM ticket_events WHERE actor_id = $1) e"#,
        user_id
    )
    .fetch_one(&mut *conn)
    .await?;
    let emails = sqlx::query_scalar!(
        r#"SELECT COALESCE(jsonb_agg(to_jsonb(o) ORDER BY o.created_at, o.id), '[]') AS "rows!" FROM (
               SELECT o.id, o.to_address, o.to_name, o.locale, o.template, o.payload, o.status, o.created_at, o.sent_at
               FROM email_outbox o JOIN users u ON lower(o.to_address) = lower(u.email)
               WHERE u.id = $1) o"#,
        user_id
    )
    .fetch_one(&mut *conn)
    .await?;
    // Who acted is named by role only when it was someone else: their id and address are theirs.
    let audit_events = sqlx::query_scalar!(
        r#"SELECT COALESCE(jsonb_agg(to_jsonb(a) ORDER BY a.occurred_at, a.id), '[]') AS "rows!" FROM (
               SELECT a.id, a.occurred_at, a.action,
                      CASE WHEN a.actor_id = $1 THEN 'self' WHEN a.actor_id IS NULL THEN 'system'
                           ELSE COALESCE((SELECT role FROM users WHERE id = a.actor_id), 'staff') END AS actor,
                      CASE WHEN a.actor_id = $1 THEN a.ip END AS ip,
                      a.details
               FROM audit_events a WHERE a.subject_type = 'user' AND a.subject_id = $1) a"#,
        user_id
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(PersonalDataExport {
        generated_at: now,
        profile,
        sessions,
        tickets,
        messages,
        ticket_events,
        emails,
        audit_events,
    })
}

/// Who may export or anonymise whom: the person themselves, or an administrator.
pub fn check_access(caller: &Caller, user_id: Uuid) -> Result<(), CoreError> {
    if caller.user_id == user_id || caller.role == Role::Admin {
        Ok(())
    } else {
        Err(CoreError::forbidden("admin_only", "only the person themselves or an administrator may do this"))
    }
}

/// What one anonymisation changed, row counts per table (for the audit entry and the logs).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Anonymised {
    pub messages: u64,
    pub tickets: u64,
    pub ticket_events: u64,
    pub emails: u64,
    pub audit_events: u64,
    pub webhook_events: u64,
}

/// Anonymises a person in the caller's transaction: the user row keeps its id (tickets, messages
/// and timelines keep their author, timestamps and SLA evidence) but every personal field becomes
/// a placeholder; sessions and reset links die; what they wrote is replaced; and copies of their
/// data in e-mails, timelines, webhook events and the audit log are scrubbed.
pub async fn anonymise(
    conn: &mut PgConnection,
    caller: &Caller,
    user_id: Uuid,
    ip: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Anonymised, CoreError> {
    check_access(caller, user_id)?;
    // The organisation's people are locked first, all in one order (the handover check), then
    // the person: two of them leaving at once queue up instead of deadlocking.
    let organization_id =
        sqlx::query_scalar!("SELECT organization_id FROM users WHERE id = $1 AND anonymised_at IS NULL", user_id)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(CoreError::NotFound("user"))?;
    if let Some(organization_id) = organization_id {
        admin_contacts::check_may_leave(conn, organization_id, user_id).await?;
    }
    let person = sqlx::query!(
        "SELECT email, name, phone, role, organization_id FROM users WHERE id = $1 AND anonymised_at IS NULL FOR UPDATE",
        user_id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(CoreError::NotFound("user"))?;
    if person.role == Role::Admin.as_str() {
        let other_admins = sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!" FROM users WHERE role = 'admin' AND id <> $1 AND disabled_at IS NULL"#,
            user_id
        )
        .fetch_one(&mut *conn)
        .await?;
        if other_admins == 0 {
            return Err(CoreError::conflict("last_admin", "the desk's last active administrator cannot be removed"));
        }
    }

    // What identifies the person, and the texts they wrote, before any of it is overwritten.
    let mut scrubber = Scrubber::new();
    scrubber.identifier(&person.email).identifier(&person.name);
    if let Some(phone) = &person.phone {
        scrubber.identifier(phone);
    }
    let bodies = sqlx::query_scalar!("SELECT body FROM ticket_messages WHERE author_id = $1", user_id)
        .fetch_all(&mut *conn)
        .await?;
    for body in &bodies {
        scrubber.whole_text(body);
    }
    let own_tickets = sqlx::query!("SELECT subject, description FROM tickets WHERE requester_id = $1", user_id)
        .fetch_all(&mut *conn)
        .await?;
    for ticket in &own_tickets {
        scrubber.whole_text(&ticket.subject).whole_text(&ticket.description);
    }
    // Tickets that may hold copies: theirs, those they wrote on, acted on or were assigned.
    let involved: Vec<Uuid> = sqlx::query_scalar!(
        r#"SELECT id AS "id!" FROM tickets WHERE requester_id = $1 OR assignee_id = $1
           UNION SELECT ticket_id FROM ticket_messages WHERE author_id = $1
           UNION SELECT ticket_id FROM ticket_events WHERE actor_id = $1"#,
        user_id
    )
    .fetch_all(&mut *conn)
    .await?;

    let mut counts = Anonymised::default();
    sqlx::query!(
        "UPDATE users SET email = $2, name = $3, phone = NULL, password_hash = '!', admin_contact = false,
             disabled_at = COALESCE(disabled_at, $4), anonymised_at = $4, password_changed_at = $4, updated_at = $4
         WHERE id = $1",
        user_id,
        anonymised_email(user_id),
        ANONYMISED_NAME,
        now
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!("UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL", user_id, now)
        .execute(&mut *conn)
        .await?;
    sqlx::query!("DELETE FROM password_reset_tokens WHERE user_id = $1", user_id).execute(&mut *conn).await?;

    counts.messages = scrub_messages(conn, user_id, &involved, &scrubber).await?;
    counts.tickets = scrub_tickets(conn, user_id, &involved, &scrubber).await?;
    counts.ticket_events = scrub_ticket_events(conn, &involved, &scrubber).await?;
    counts.emails = scrub_emails(conn, user_id, &person.email, &involved, &scrubber, now).await?;
    counts.audit_events = scrub_audit_events(conn, user_id, &scrubber).await?;
    counts.webhook_events = scrub_webhook_events(conn, &involved, &scrubber).await?;

    audit::record(
        conn,
        AuditEntry {
            actor_id: Some(caller.user_id),
            action: "user.anonymised",
            subject_type: "user",
            subject_id: Some(user_id),
            ip: if caller.user_id == user_id { None } else { ip },
            details: json!({ "changed": counts }),
        },
        now,
    )
    .await?;
    Ok(counts)
}

/// Their messages become the placeholder; others' messages on the same tickets lose any mention.
async fn scrub_messages(
    conn: &mut PgConnection,
    user_id: Uuid,
    involved: &[Uuid],
    scrubber: &Scrubber,
) -> Result<u64, CoreError> {
    let own = sqlx::query!("UPDATE ticket_messages SET body = $2 WHERE author_id = $1", user_id, REMOVED_TEXT)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    let others = sqlx::query!(
        "SELECT id, body FROM ticket_messages WHERE ticket_id = ANY($1) AND author_id <> $2",
        involved,
        user_id
    )
    .fetch_all(&mut *conn)
    .await?;
    let (ids, bodies): (Vec<Uuid>, Vec<String>) =
        others.into_iter().filter_map(|m| scrubber.scrub(&m.body).map(|body| (m.id, body))).unzip();
    let scrubbed = sqlx::query!(
        "UPDATE ticket_messages m SET body = v.body FROM UNNEST($1::uuid[], $2::text[]) v (id, body) WHERE m.id = v.id",
        &ids,
        &bodies
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(own + scrubbed)
}

/// Their tickets' subject and description become the placeholder; other involved tickets lose
/// any mention. Nothing else of a ticket changes: status, times and SLA figures stay.
async fn scrub_tickets(
    conn: &mut PgConnection,
    user_id: Uuid,
    involved: &[Uuid],
    scrubber: &Scrubber,
) -> Result<u64, CoreError> {
    // `version` and `updated_at` stay too: this is not a change of the ticket's state, and its
    // timers must not see one.
    let own = sqlx::query!(
        "UPDATE tickets SET subject = $2, description = $2 WHERE requester_id = $1",
        user_id,
        REMOVED_TEXT
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let others = sqlx::query!(
        "SELECT id, subject, description FROM tickets WHERE id = ANY($1) AND requester_id <> $2",
        involved,
        user_id
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut rows = (Vec::new(), Vec::new(), Vec::new());
    for t in others {
        let (subject, description) = (scrubber.scrub(&t.subject), scrubber.scrub(&t.description));
        if subject.is_some() || description.is_some() {
            rows.0.push(t.id);
            rows.1.push(subject.unwrap_or(t.subject));
            rows.2.push(description.unwrap_or(t.description));
        }
    }
    let scrubbed = sqlx::query!(
        "UPDATE tickets t SET subject = v.subject, description = v.description
         FROM UNNEST($1::uuid[], $2::text[], $3::text[]) v (id, subject, description) WHERE t.id = v.id",
        &rows.0,
        &rows.1,
        &rows.2
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(own + scrubbed)
}

async fn scrub_ticket_events(
    conn: &mut PgConnection,
    involved: &[Uuid],
    scrubber: &Scrubber,
) -> Result<u64, CoreError> {
    let rows = sqlx::query!("SELECT id, data FROM ticket_events WHERE ticket_id = ANY($1)", involved)
        .fetch_all(&mut *conn)
        .await?;
    let (ids, data) = scrub_all(rows.into_iter().map(|r| (r.id, r.data)), scrubber);
    Ok(sqlx::query!(
        "UPDATE ticket_events e SET data = v.data FROM UNNEST($1::uuid[], $2::jsonb[]) v (id, data) WHERE e.id = v.id",
        &ids,
        &data
    )
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// E-mails to the person lose address, name and content (and, when still pending, are not
/// sent: the address is gone); e-mails to others about the involved tickets lose the copies.
async fn scrub_emails(
    conn: &mut PgConnection,
    user_id: Uuid,
    email: &str,
    involved: &[Uuid],
    scrubber: &Scrubber,
    now: DateTime<Utc>,
) -> Result<u64, CoreError> {
    let to_them = sqlx::query!(
        "UPDATE email_outbox SET to_address = $2, to_name = $3, payload = '{}'::jsonb,
             status = CASE WHEN status = 'pending' THEN 'failed' ELSE status END,
             last_error = CASE WHEN status = 'pending' THEN 'not sent: the recipient was anonymised' ELSE last_error END,
             next_attempt_at = CASE WHEN status = 'pending' THEN $4 ELSE next_attempt_at END
         WHERE lower(to_address) = lower($1)",
        email,
        anonymised_email(user_id),
        ANONYMISED_NAME,
        now
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let ticket_ids: Vec<String> = involved.iter().map(Uuid::to_string).collect();
    let rows = sqlx::query!("SELECT id, payload FROM email_outbox WHERE payload->>'ticket_id' = ANY($1)", &ticket_ids)
        .fetch_all(&mut *conn)
        .await?;
    let (ids, payloads) = scrub_all(rows.into_iter().map(|r| (r.id, r.payload)), scrubber);
    let copies = sqlx::query!(
        "UPDATE email_outbox o SET payload = v.payload FROM UNNEST($1::uuid[], $2::jsonb[]) v (id, payload) WHERE o.id = v.id",
        &ids,
        &payloads
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(to_them + copies)
}

/// Audit entries by or about the person keep what happened and when, not their address or any
/// copy of their data.
async fn scrub_audit_events(conn: &mut PgConnection, user_id: Uuid, scrubber: &Scrubber) -> Result<u64, CoreError> {
    let cleared = sqlx::query!(
        "UPDATE audit_events SET ip = NULL WHERE (actor_id = $1 OR (subject_type = 'user' AND subject_id = $1)) AND ip IS NOT NULL",
        user_id
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let rows = sqlx::query!(
        "SELECT id, details FROM audit_events WHERE actor_id = $1 OR (subject_type = 'user' AND subject_id = $1)",
        user_id
    )
    .fetch_all(&mut *conn)
    .await?;
    let (ids, details) = scrub_all(rows.into_iter().map(|r| (r.id, r.details)), scrubber);
    let scrubbed = sqlx::query!(
        "UPDATE audit_events a SET details = v.details FROM UNNEST($1::uuid[], $2::jsonb[]) v (id, details) WHERE a.id = v.id",
        &ids,
        &details
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(cleared.max(scrubbed))
}

/// Webhook events about the involved tickets (subjects, public messages) lose the copies; the
/// events keep their ids, so a replay sends the scrubbed payload under the same `webhook-id`.
async fn scrub_webhook_events(
    conn: &mut PgConnection,
    involved: &[Uuid],
    scrubber: &Scrubber,
) -> Result<u64, CoreError> {
    let ticket_ids: Vec<String> = involved.iter().map(Uuid::to_string).collect();
    let rows =
        sqlx::query!("SELECT id, payload FROM webhook_events WHERE payload->'ticket'->>'id' = ANY($1)", &ticket_ids)
            .fetch_all(&mut *conn)
            .await?;
    let (ids, payloads) = scrub_all(rows.into_iter().map(|r| (r.id, r.payload)), scrubber);
    Ok(sqlx::query!(
        "UPDATE webhook_events e SET payload = v.payload FROM UNNEST($1::uuid[], $2::jsonb[]) v (id, payload) WHERE e.id = v.id",
        &ids,
        &payloads
    )
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// The rows whose JSON changed, with their scrubbed JSON.
fn scrub_all(rows: impl Iterator<Item = (Uuid, Value)>, scrubber: &Scrubber) -> (Vec<Uuid>, Vec<Value>) {
    rows.filter_map(|(id, mut value)| scrub_json(&mut value, scrubber).then_some((id, value))).unzip()
}

/// Scrubs every string (keys stay: they are the application's own words); true when any changed.
fn scrub_json(value: &mut Value, scrubber: &Scrubber) -> bool {
    match value {
        Value::String(text) => match scrubber.scrub(text) {
            Some(scrubbed) => {
                *text = scrubbed;
                true
            }
            None => false,
        },
        Value::Array(items) => items.iter_mut().fold(false, |changed, item| scrub_json(item, scrubber) | changed),
        Value::Object(fields) => fields.values_mut().fold(false, |changed, item| scrub_json(item, scrubber) | changed),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_copies_lose_every_string_of_the_person_wherever_it_is_nested() {
        let mut scrubber = Scrubber::new();
        scrubber.identifier("maria@example.com").whole_text("my printer is on fire");
        let mut payload = json!({ "name": "Agent", "body": "my printer is on fire",
            "history": [{ "from": "Maria@example.com" }, 3, null], "ticket_number": 7 });
        assert!(scrub_json(&mut payload, &scrubber));
        assert_eq!(
            payload,
            json!({ "name": "Agent", "body": REMOVED_TEXT,
            "history": [{ "from": REMOVED_TEXT }, 3, null], "ticket_number": 7 })
        );
        assert!(!scrub_json(&mut payload, &scrubber), "scrubbing twice changes nothing");
    }
}
