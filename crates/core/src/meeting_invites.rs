//! The e-mails a meeting causes (R13): confirmation, change, cancellation and reminders, each to
//! the customer who booked and to the consultant, through the outbox. Confirmation, change and
//! cancellation carry an iCalendar invite built with the `icalendar` crate: one stable `UID` per
//! meeting, `METHOD:REQUEST` with `SEQUENCE` increasing on every change, and `METHOD:CANCEL` with
//! `STATUS:CANCELLED`, which is what calendar clients need to update the event they hold rather
//! than add a second one. The worker attaches `payload.ics` as `text/calendar; method=…`.

use crate::outbox::{self, NewEmail, templates};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use helpdesk_domain::meetings::ReminderKind;
use icalendar::{Calendar, Component, EventLike, EventStatus, Property};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

/// What an invite's `METHOD` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteMethod {
    Request,
    Cancel,
}

impl InviteMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            InviteMethod::Request => "REQUEST",
            InviteMethod::Cancel => "CANCEL",
        }
    }
}

/// A person an e-mail goes to.
#[derive(Debug, Clone)]
pub struct Party {
    pub user_id: Uuid,
    pub name: String,
    pub email: String,
    pub locale: String,
}

/// The meeting as the e-mails describe it.
#[derive(Debug, Clone)]
pub struct Invite<'a> {
    pub meeting_id: Uuid,
    pub topic: &'a str,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub sequence: i32,
    pub meeting_url: &'a str,
    pub customer: &'a Party,
    pub consultant: &'a Party,
    /// The helpdesk's mailbox (`Name <address>`), the invite's organizer.
    pub organizer: &'a str,
    pub zone: Tz,
}

/// Why a meeting e-mail is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause<'a> {
    Booked,
    Rescheduled { previous_start: DateTime<Utc> },
    Cancelled { reason: Option<&'a str> },
    Reminder(ReminderKind),
}

/// The invite's stable identifier: the same for every version of the meeting.
pub fn uid(meeting_id: Uuid) -> String {
    format!("meeting-{meeting_id}@kadix-helpdesk")
}

fn mailbox_address(mailbox: &str) -> (&str, &str) {
    match (mailbox.find('<'), mailbox.rfind('>')) {
        (Some(open), Some(close)) if open < close => {
            (mailbox[..open].trim().trim_matches('"'), &mailbox[open + 1..close])
        }
        _ => ("", mailbox.trim()),
    }
}

/// The `.ics` text of an invite.
pub fn ics(invite: &Invite<'_>, method: InviteMethod, now: DateTime<Utc>) -> String {
    let (organizer_name, organizer_address) = mailbox_address(invite.organizer);
    let mut organizer = Property::new("ORGANIZER", format!("mailto:{organizer_address}"));
    if !organizer_name.is_empty() {
        organizer.add_parameter("CN", organizer_name);
    }
    let mut event = icalendar::Event::new();
    event
        .uid(&uid(invite.meeting_id))
        .sequence(u32::try_from(invite.sequence).unwrap_or(0))
        .timestamp(now)
        .starts(invite.starts_at)
        .ends(invite.ends_at)
        .summary(&format!("Kadix: {}", invite.topic))
        .description(&format!("{}\n{}", invite.topic, invite.meeting_url))
        .location(invite.meeting_url)
        .url(invite.meeting_url)
        .status(match method {
            InviteMethod::Request => EventStatus::Confirmed,
            InviteMethod::Cancel => EventStatus::Cancelled,
        })
        .append_property(organizer);
    for party in [invite.customer, invite.consultant] {
        let mut attendee = Property::new("ATTENDEE", format!("mailto:{}", party.email));
        attendee.add_parameter("CN", &party.name).add_parameter("ROLE", "REQ-PARTICIPANT");
        event.append_multi_property(attendee);
    }
    let mut calendar = Calendar::new();
    calendar.append_property(Property::new("METHOD", method.as_str()));
    calendar.push(event.done());
    calendar.done().to_string()
}

fn is_english(locale: &str) -> bool {
    locale.eq_ignore_ascii_case("en") || locale.to_ascii_lowercase().starts_with("en-")
}

/// `04/12/2026 10:00–10:45 (America/Sao_Paulo)`, in the recipient's locale: every time in an
/// e-mail names its zone.
pub fn local_span(start: DateTime<Utc>, end: DateTime<Utc>, zone: Tz, locale: &str) -> String {
    let format = if is_english(locale) { "%Y-%m-%d %H:%M" } else { "%d/%m/%Y %H:%M" };
    let (start, end) = (start.with_timezone(&zone), end.with_timezone(&zone));
    format!("{}–{} ({})", start.format(format), end.format("%H:%M"), zone.name())
}

/// Writes the e-mails of `cause` to both parties, in the caller's transaction. Each has a key of
/// its own per meeting version (or reminder and start), so a retried cause queues nothing twice.
pub async fn notify(
    conn: &mut PgConnection,
    invite: &Invite<'_>,
    cause: Cause<'_>,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let (template, method, tag) = match cause {
        Cause::Booked => (templates::MEETING_CONFIRMED, Some(InviteMethod::Request), "confirmed".to_owned()),
        Cause::Rescheduled { .. } => (templates::MEETING_UPDATED, Some(InviteMethod::Request), "updated".to_owned()),
        Cause::Cancelled { .. } => (templates::MEETING_CANCELLED, Some(InviteMethod::Cancel), "cancelled".to_owned()),
        Cause::Reminder(kind) => (
            templates::MEETING_REMINDER,
            None,
            format!("reminder:{}:{}", kind.as_str(), invite.starts_at.timestamp_micros()),
        ),
    };
    let ics_text = method.map(|m| ics(invite, m, now));
    let mut emails = Vec::new();
    for (party, other) in [(invite.customer, invite.consultant), (invite.consultant, invite.customer)] {
        let english = is_english(&party.locale);
        let mut payload = json!({
            "name": party.name,
            "with": other.name,
            "meeting_id": invite.meeting_id,
            "topic": invite.topic,
            "when": local_span(invite.starts_at, invite.ends_at, invite.zone, &party.locale),
            "meeting_url": invite.meeting_url,
            "sequence": invite.sequence,
        });
        match cause {
            Cause::Rescheduled { previous_start } => {
                let previous_end = previous_start + (invite.ends_at - invite.starts_at);
                payload["previous_when"] = json!(local_span(previous_start, previous_end, invite.zone, &party.locale));
            }
            Cause::Cancelled { reason } => {
                let none = if english { "none given" } else { "não informado" };
                payload["reason"] = json!(reason.filter(|r| !r.trim().is_empty()).unwrap_or(none));
            }
            Cause::Reminder(kind) => {
                payload["lead"] = json!(match (kind, english) {
                    (ReminderKind::DayBefore, true) => "tomorrow",
                    (ReminderKind::DayBefore, false) => "amanhã",
                    (ReminderKind::HourBefore, true) => "in one hour",
                    (ReminderKind::HourBefore, false) => "em uma hora",
                });
            }
            Cause::Booked => {}
        }
        if let (Some(text), Some(method)) = (&ics_text, method) {
            payload["ics"] = json!(text);
            payload["ics_method"] = json!(method.as_str());
        }
        let key = match cause {
            Cause::Reminder(_) => format!("meeting:{}:{tag}:{}", invite.meeting_id, party.user_id),
            _ => format!("meeting:{}:seq:{}:{tag}:{}", invite.meeting_id, invite.sequence, party.user_id),
        };
        emails.push((
            NewEmail {
                idempotency_key: key,
                to_address: &party.email,
                to_name: Some(&party.name),
                locale: &party.locale,
                template,
                payload,
            },
            now,
        ));
    }
    outbox::enqueue_all(conn, emails, now).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_organizer_mailbox_is_split_into_name_and_address() {
        assert_eq!(
            mailbox_address("Kadix Atendimento <atendimento@kadix.com.br>"),
            ("Kadix Atendimento", "atendimento@kadix.com.br")
        );
        assert_eq!(mailbox_address("a@b.c"), ("", "a@b.c"));
    }

    #[test]
    fn spans_name_their_zone() {
        let start: DateTime<Utc> = "2026-12-04T13:00:00Z".parse().unwrap_or_default();
        let end = start + chrono::TimeDelta::minutes(45);
        let zone = chrono_tz::America::Sao_Paulo;
        assert_eq!(local_span(start, end, zone, "pt-BR"), "04/12/2026 10:00–10:45 (America/Sao_Paulo)");
        assert_eq!(local_span(start, end, zone, "en"), "2026-12-04 10:00–10:45 (America/Sao_Paulo)");
    }
}
