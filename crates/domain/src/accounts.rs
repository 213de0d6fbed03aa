//! Accounts: roles, e-mail addresses, and the password policy (DESIGN R1, §5).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What a user is allowed to do. Customers act within their own organisation only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Role {
    Customer,
    Agent,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Agent => "agent",
            Role::Admin => "admin",
        }
    }

    /// Agents and admins work for Kadix and see every organisation.
    pub fn is_staff(self) -> bool {
        matches!(self, Role::Agent | Role::Admin)
    }

    /// Can this role see the organisation `target`, given the caller's own organisation?
    pub fn may_see_organization<Id: PartialEq>(self, own: Option<Id>, target: Id) -> bool {
        self.is_staff() || own == Some(target)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role '{0}'")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "customer" => Ok(Role::Customer),
            "agent" => Ok(Role::Agent),
            "admin" => Ok(Role::Admin),
            other => Err(UnknownRole(other.to_owned())),
        }
    }
}

/// An e-mail address, trimmed and lower-cased so that one person cannot hold two accounts by
/// changing case. Deliberately permissive beyond the basic shape: the confirmation that matters is
/// that mail arrives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("is not a valid e-mail address")]
    Invalid,
    #[error("is longer than 254 characters")]
    TooLong,
}

impl Email {
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let email = raw.trim().to_lowercase();
        if email.len() > 254 {
            return Err(EmailError::TooLong);
        }
        let (local, domain) = email.rsplit_once('@').ok_or(EmailError::Invalid)?;
        let plausible = !local.is_empty()
            && local.len() <= 64
            && domain.len() >= 3
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && !email.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
            && !local.contains('@');
        if plausible { Ok(Email(email)) } else { Err(EmailError::Invalid) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(local, _)| local)
    }
}

impl TryFrom<String> for Email {
    type Error = EmailError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Email::parse(&value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Bounds follow OWASP's ASVS: long passphrases allowed, no composition rules, breached and
/// obvious passwords refused.
pub const PASSWORD_MIN_CHARS: usize = 10;
pub const PASSWORD_MAX_CHARS: usize = 128;

const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("must have at least {PASSWORD_MIN_CHARS} characters")]
    TooShort,
    #[error("must have at most {PASSWORD_MAX_CHARS} characters")]
    TooLong,
    #[error("is one of the most commonly used passwords")]
    TooCommon,
    #[error("must not contain your e-mail address")]
    ContainsEmail,
}

/// Checks a new password against the policy. `email` is the account's, if known.
pub fn validate_new_password(password: &str, email: Option<&Email>) -> Result<(), PasswordError> {
    let chars = password.chars().count();
    if chars < PASSWORD_MIN_CHARS {
        return Err(PasswordError::TooShort);
    }
    if chars > PASSWORD_MAX_CHARS {
        return Err(PasswordError::TooLong);
    }
    let lowered = password.to_lowercase();
    if is_common_password(&lowered) || is_single_repeated_char(&lowered) {
        return Err(PasswordError::TooCommon);
    }
    if let Some(email) = email {
        let local = email.local_part();
        if local.len() >= 4 && lowered.contains(local) {
            return Err(PasswordError::ContainsEmail);
        }
    }
    Ok(())
}

fn is_common_password(lowered: &str) -> bool {
    // Also catch the usual "append digits/punctuation" variants of a listed word.
    let stem = lowered.trim_end_matches(|c: char| c.is_ascii_digit() || c.is_ascii_punctuation());
    COMMON_PASSWORDS.lines().any(|common| common == lowered || (!stem.is_empty() && common == stem))
}

fn is_single_repeated_char(lowered: &str) -> bool {
    let mut chars = lowered.chars();
    chars.next().is_some_and(|first| chars.all(|c| c == first))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn email_is_normalised_to_lower_case() {
        assert_eq!(Email::parse("  Ana.Silva@Example.COM ").map(String::from), Ok("ana.silva@example.com".into()));
    }

    #[test]
    fn malformed_emails_are_refused() {
        for raw in [
            "",
            "ana",
            "ana@",
            "@example.com",
            "ana@example",
            "ana@@example.com",
            "a na@example.com",
            "ana@.example.com",
            "ana@example..com",
        ] {
            assert!(Email::parse(raw).is_err(), "{raw} should be refused");
        }
    }

    #[test]
    fn password_policy_refuses_short_common_and_email_based_passwords() {
        let email = Email::parse("mariana@example.com").ok();
        assert_eq!(validate_new_password("short", None), Err(PasswordError::TooShort));
        assert_eq!(validate_new_password("password123", None), Err(PasswordError::TooCommon));
        assert_eq!(validate_new_password("qwertyuiop!!", None), Err(PasswordError::TooCommon));
        assert_eq!(validate_new_password("aaaaaaaaaaaa", None), Err(PasswordError::TooCommon));
        assert_eq!(validate_new_password("Mariana-2026-x", email.as_ref()), Err(PasswordError::ContainsEmail));
        assert_eq!(validate_new_password(&"x".repeat(129), None), Err(PasswordError::TooLong));
        assert_eq!(validate_new_password("correct horse battery staple", email.as_ref()), Ok(()));
    }

    #[test]
    fn only_staff_see_other_organisations() {
        assert!(Role::Agent.may_see_organization(None, 7));
        assert!(Role::Customer.may_see_organization(Some(7), 7));
        assert!(!Role::Customer.may_see_organization(Some(8), 7));
    }

    proptest! {
        #[test]
        fn role_round_trips_through_its_name(role in prop_oneof![Just(Role::Customer), Just(Role::Agent), Just(Role::Admin)]) {
            prop_assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }

        #[test]
        fn parsed_emails_are_idempotent(local in "[a-zA-Z0-9._+-]{1,20}", domain in "[a-z0-9-]{1,20}\\.[a-z]{2,6}") {
            let first = Email::parse(&format!("{local}@{domain}")).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(Email::parse(first.as_str()), Ok(first.clone()));
        }
    }
}
