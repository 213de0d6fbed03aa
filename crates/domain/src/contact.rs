//! The public contact form, "Fale Conosco" (DESIGN R1): what a non-customer may send, and the
//! guards against robots that do not need an account to try. Rate limits are the API's (Redis).

use crate::accounts::Email;
use chrono::{DateTime, TimeDelta, Utc};

pub const NAME_MAX: usize = 200;
pub const COMPANY_MAX: usize = 200;
pub const MESSAGE_MAX: usize = 5000;
/// An answer from the commercial team, same bound as the message it answers.
pub const ANSWER_MAX: usize = 5000;

/// What the form sent, as received.
#[derive(Debug, Clone)]
pub struct Submission<'a> {
    pub name: &'a str,
    pub email: &'a str,
    pub company: Option<&'a str>,
    pub message: &'a str,
    pub consent: bool,
    /// The hidden field people never see and robots fill in.
    pub honeypot: Option<&'a str>,
}

/// A submission that passed every rule, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidContact {
    pub name: String,
    pub email: Email,
    pub company: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The honeypot was filled in. Deliberately not named as such to the sender.
    Robot,
    /// Sent sooner after the form was served than a person can read and type it.
    TooFast,
    /// Fields breaking a rule: (field, message).
    Invalid(Vec<(&'static str, String)>),
}

fn bounded(field: &'static str, value: &str, max: usize, errors: &mut Vec<(&'static str, String)>) -> String {
    let value = value.trim();
    if value.is_empty() {
        errors.push((field, "must not be empty".into()));
    } else if value.chars().count() > max {
        errors.push((field, format!("must be at most {max} characters")));
    }
    value.to_owned()
}

/// Checks a submission served at `served_at` and sent at `now`. The robot guards come first, so
/// a robot learns nothing about the field rules.
pub fn check(
    submission: &Submission<'_>,
    served_at: DateTime<Utc>,
    now: DateTime<Utc>,
    min_fill_time: TimeDelta,
) -> Result<ValidContact, Refusal> {
    if submission.honeypot.is_some_and(|h| !h.is_empty()) {
        return Err(Refusal::Robot);
    }
    if now - served_at < min_fill_time {
        return Err(Refusal::TooFast);
    }
    let mut errors = Vec::new();
    let name = bounded("name", submission.name, NAME_MAX, &mut errors);
    let message = bounded("message", submission.message, MESSAGE_MAX, &mut errors);
    let company = submission.company.map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned);
    if company.as_ref().is_some_and(|c| c.chars().count() > COMPANY_MAX) {
        errors.push(("company", format!("must be at most {COMPANY_MAX} characters")));
    }
    let email = Email::parse(submission.email).map_err(|e| ("email", e.to_string()));
    if let Err(error) = &email {
        errors.push(error.clone());
    }
    if !submission.consent {
        errors.push(("consent", "we can only answer with your consent to be contacted".into()));
    }
    match email {
        Ok(email) if errors.is_empty() => Ok(ValidContact { name, email, company, message }),
        _ => Err(Refusal::Invalid(errors)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn submission<'a>(message: &'a str, honeypot: Option<&'a str>) -> Submission<'a> {
        Submission { name: "Ana", email: "ana@example.com", company: Some("  "), message, consent: true, honeypot }
    }

    fn t(seconds: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + TimeDelta::seconds(seconds)
    }

    #[test]
    fn a_filled_honeypot_is_a_robot_even_with_valid_fields() {
        let refused = check(&submission("hello", Some("http://spam")), t(0), t(60), TimeDelta::seconds(3));
        assert_eq!(refused, Err(Refusal::Robot));
        assert!(check(&submission("hello", Some("")), t(0), t(60), TimeDelta::seconds(3)).is_ok());
    }

    #[test]
    fn a_submission_faster_than_the_minimum_is_refused() {
        assert_eq!(check(&submission("hi", None), t(0), t(2), TimeDelta::seconds(3)), Err(Refusal::TooFast));
        let ok = check(&submission("hi", None), t(0), t(3), TimeDelta::seconds(3));
        assert_eq!(ok.map(|c| c.company), Ok(None));
    }

    #[test]
    fn consent_is_required() {
        let mut s = submission("hi", None);
        s.consent = false;
        let Err(Refusal::Invalid(errors)) = check(&s, t(0), t(60), TimeDelta::seconds(3)) else { panic!() };
        assert_eq!(errors.iter().map(|e| e.0).collect::<Vec<_>>(), ["consent"]);
    }

    proptest! {
        #[test]
        fn message_length_limit_is_exact(extra in 0usize..3, len in 1usize..=MESSAGE_MAX) {
            let message = "é".repeat(len + extra);
            let result = check(&submission(&message, None), t(0), t(60), TimeDelta::seconds(3));
            prop_assert_eq!(result.is_ok(), len + extra <= MESSAGE_MAX);
        }
    }
}
