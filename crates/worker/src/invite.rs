//! Calendar invites on e-mails (R13): an outbox payload that carries `ics` (the text built by
//! `helpdesk_core::meeting_invites`) and `ics_method` gets it attached as `invite.ics`, with the
//! content type `text/calendar; method=…` that calendar clients act on.

use serde_json::Value;

/// The `.ics` attachment of one e-mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarInvite {
    /// `REQUEST` or `CANCEL`: must match the METHOD inside the text.
    pub method: &'static str,
    pub ics: String,
}

impl CalendarInvite {
    pub fn content_type(&self) -> String {
        format!("text/calendar; charset=utf-8; method={}", self.method)
    }
}

/// The invite a payload carries, if any. A payload with `ics` but no known method is an error
/// (permanent: the row's data is wrong), never an e-mail with a half-made invite.
pub fn from_payload(payload: &Value) -> Result<Option<CalendarInvite>, String> {
    let Some(ics) = payload.get("ics").and_then(Value::as_str) else { return Ok(None) };
    let method = match payload.get("ics_method").and_then(Value::as_str) {
        Some("REQUEST") => "REQUEST",
        Some("CANCEL") => "CANCEL",
        other => return Err(format!("the payload's ics_method must be REQUEST or CANCEL, got {other:?}")),
    };
    Ok(Some(CalendarInvite { method, ics: ics.to_owned() }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_payloads_with_an_ics_and_a_known_method_carry_an_invite() {
        assert_eq!(from_payload(&json!({ "name": "Ana" })), Ok(None));
        let invite = from_payload(&json!({ "ics": "BEGIN:VCALENDAR", "ics_method": "CANCEL" }));
        assert_eq!(
            invite.clone().ok().flatten().map(|i| i.content_type()),
            Some("text/calendar; charset=utf-8; method=CANCEL".into())
        );
        assert!(from_payload(&json!({ "ics": "BEGIN:VCALENDAR", "ics_method": "PUBLISH" })).is_err());
    }
}
