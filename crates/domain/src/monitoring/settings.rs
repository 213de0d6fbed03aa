//! What a monitor may be configured to, and what an answer must look like to count as up.
//!
//! Bounds (each refusal names its field, for 422 problem+json):
//! - `name` 1–200 characters after trimming; `url` at most 2,048 characters and allowed by the
//!   egress guard ([`EgressPolicy::check_url_str`]; the caller also resolves names);
//! - `expected_status_codes`: at most 50 distinct codes in 100–599; empty means any 2xx;
//! - `keyword` 1–200 characters, with a mode (present, the default, or absent);
//! - `latency_threshold_ms` 1–120,000 or none;
//! - `interval_seconds` 30–86,400 (default 300); `timeout_seconds` 1–60 (default 15) and below
//!   the interval; `tls_warning_days` 0–365 (default 14; 0 turns the warning off).

use url::Url;

use super::status::KeywordMode;
use crate::egress::{Destination, EgressPolicy};

pub const DEFAULT_INTERVAL_SECONDS: u32 = 300;
pub const MIN_INTERVAL_SECONDS: u32 = 30;
pub const MAX_INTERVAL_SECONDS: u32 = 86_400;
pub const DEFAULT_TIMEOUT_SECONDS: u32 = 15;
pub const MAX_TIMEOUT_SECONDS: u32 = 60;
pub const DEFAULT_TLS_WARNING_DAYS: u32 = 14;
pub const MAX_TLS_WARNING_DAYS: u32 = 365;
pub const MAX_LATENCY_THRESHOLD_MS: u32 = 120_000;
pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_URL_CHARS: usize = 2_048;
pub const MAX_KEYWORD_CHARS: usize = 200;
pub const MAX_EXPECTED_STATUS_CODES: usize = 50;

/// A keyword the body must contain, or must not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyword {
    pub text: String,
    pub mode: KeywordMode,
}

impl Keyword {
    /// Whether a body satisfies the keyword rule (case-sensitive, as the customer typed it).
    pub fn satisfied_by(&self, body: &str) -> bool {
        body.contains(&self.text) == (self.mode == KeywordMode::Present)
    }
}

/// The settings of a monitor, as an agent writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorSettings {
    pub name: String,
    pub url: String,
    pub expected_status_codes: Vec<u16>,
    pub keyword: Option<Keyword>,
    pub latency_threshold_ms: Option<u32>,
    pub interval_seconds: u32,
    pub timeout_seconds: u32,
    pub tls_warning_days: u32,
}

impl MonitorSettings {
    /// Settings with the defaults for everything but the name and URL.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Self {
        MonitorSettings {
            name: name.into(),
            url: url.into(),
            expected_status_codes: Vec::new(),
            keyword: None,
            latency_threshold_ms: None,
            interval_seconds: DEFAULT_INTERVAL_SECONDS,
            timeout_seconds: DEFAULT_TIMEOUT_SECONDS,
            tls_warning_days: DEFAULT_TLS_WARNING_DAYS,
        }
    }
}

/// One field that breaks a rule; `field` is the API's name for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    pub field: &'static str,
    pub message: String,
}

impl SettingsError {
    fn new(field: &'static str, message: impl ToString) -> Self {
        SettingsError { field, message: message.to_string() }
    }
}

/// Settings that passed [`validate`]: trimmed name, sorted distinct status codes, and the URL
/// with what the egress guard could check before resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidSettings {
    pub settings: MonitorSettings,
    pub url: Url,
    pub destination: Destination,
}

/// Checks every bound and returns all the fields that break one.
pub fn validate(mut settings: MonitorSettings, policy: &EgressPolicy) -> Result<ValidSettings, Vec<SettingsError>> {
    let mut errors = Vec::new();
    settings.name = settings.name.trim().to_owned();
    let name_chars = settings.name.chars().count();
    if name_chars == 0 || name_chars > MAX_NAME_CHARS {
        errors.push(SettingsError::new("name", format!("must be 1 to {MAX_NAME_CHARS} characters")));
    }
    settings.url = settings.url.trim().to_owned();
    let checked = if settings.url.chars().count() > MAX_URL_CHARS {
        errors.push(SettingsError::new("url", format!("must be at most {MAX_URL_CHARS} characters")));
        None
    } else {
        match policy.check_url_str(&settings.url) {
            Ok(checked) => Some(checked),
            Err(refusal) => {
                errors.push(SettingsError::new("url", refusal));
                None
            }
        }
    };
    settings.expected_status_codes.sort_unstable();
    settings.expected_status_codes.dedup();
    if settings.expected_status_codes.len() > MAX_EXPECTED_STATUS_CODES {
        errors.push(SettingsError::new("expected_status_codes", format!("at most {MAX_EXPECTED_STATUS_CODES} codes")));
    }
    if let Some(bad) = settings.expected_status_codes.iter().find(|c| !(100..=599).contains(*c)) {
        errors.push(SettingsError::new("expected_status_codes", format!("{bad} is not an HTTP status code (100-599)")));
    }
    if let Some(keyword) = &settings.keyword {
        let chars = keyword.text.chars().count();
        if chars == 0 || chars > MAX_KEYWORD_CHARS {
            errors.push(SettingsError::new("keyword", format!("must be 1 to {MAX_KEYWORD_CHARS} characters")));
        }
    }
    if let Some(ms) = settings.latency_threshold_ms
        && !(1..=MAX_LATENCY_THRESHOLD_MS).contains(&ms)
    {
        errors.push(SettingsError::new("latency_threshold_ms", format!("must be 1 to {MAX_LATENCY_THRESHOLD_MS} ms")));
    }
    let interval_ok = (MIN_INTERVAL_SECONDS..=MAX_INTERVAL_SECONDS).contains(&settings.interval_seconds);
    if !interval_ok {
        errors.push(SettingsError::new(
            "interval_seconds",
            format!("must be {MIN_INTERVAL_SECONDS} to {MAX_INTERVAL_SECONDS} seconds"),
        ));
    }
    if !(1..=MAX_TIMEOUT_SECONDS).contains(&settings.timeout_seconds) {
        errors.push(SettingsError::new("timeout_seconds", format!("must be 1 to {MAX_TIMEOUT_SECONDS} seconds")));
    } else if interval_ok && settings.timeout_seconds >= settings.interval_seconds {
        errors.push(SettingsError::new("timeout_seconds", "must be shorter than the interval"));
    }
    if settings.tls_warning_days > MAX_TLS_WARNING_DAYS {
        errors.push(SettingsError::new("tls_warning_days", format!("must be 0 to {MAX_TLS_WARNING_DAYS} days")));
    }
    match checked {
        Some((url, destination)) if errors.is_empty() => Ok(ValidSettings { settings, url, destination }),
        _ => Err(errors),
    }
}

/// Whether a status code counts as up: one of `expected`, or any 2xx when `expected` is empty.
pub fn status_expected(expected: &[u16], code: u16) -> bool {
    if expected.is_empty() { (200..=299).contains(&code) } else { expected.contains(&code) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn strict() -> EgressPolicy {
        EgressPolicy::strict()
    }

    fn fields(result: Result<ValidSettings, Vec<SettingsError>>) -> Vec<&'static str> {
        result.err().unwrap_or_default().into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn defaults_are_valid() {
        let valid = validate(MonitorSettings::new("  Shop  ", "https://example.com/health"), &strict());
        let valid = valid.unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(valid.settings.name, "Shop");
        assert_eq!(valid.settings.interval_seconds, 300);
        assert_eq!(valid.settings.timeout_seconds, 15);
    }

    #[test]
    fn each_bound_names_its_field() {
        let mut s = MonitorSettings::new("", "ftp://example.com/");
        s.expected_status_codes = vec![99, 200];
        s.keyword = Some(Keyword { text: String::new(), mode: KeywordMode::Present });
        s.latency_threshold_ms = Some(0);
        s.interval_seconds = 10;
        s.timeout_seconds = 61;
        s.tls_warning_days = 400;
        assert_eq!(
            fields(validate(s, &strict())),
            [
                "name",
                "url",
                "expected_status_codes",
                "keyword",
                "latency_threshold_ms",
                "interval_seconds",
                "timeout_seconds",
                "tls_warning_days"
            ]
        );
    }

    #[test]
    fn timeout_must_be_below_interval() {
        let mut s = MonitorSettings::new("a", "https://example.com/");
        s.interval_seconds = 30;
        s.timeout_seconds = 30;
        assert_eq!(fields(validate(s, &strict())), ["timeout_seconds"]);
    }

    #[test]
    fn internal_literal_addresses_are_refused_in_every_spelling() {
        for url in
            ["http://127.0.0.1:8080/", "http://2130706433/", "http://[::ffff:127.0.0.1]/", "http://169.254.169.254/"]
        {
            assert_eq!(fields(validate(MonitorSettings::new("a", url), &strict())), ["url"], "{url}");
        }
    }

    #[test]
    fn status_and_keyword_rules() {
        assert!(status_expected(&[], 204));
        assert!(!status_expected(&[], 301));
        assert!(status_expected(&[301, 302], 301));
        assert!(!status_expected(&[301], 200));
        let present = Keyword { text: "OK".into(), mode: KeywordMode::Present };
        let absent = Keyword { text: "error".into(), mode: KeywordMode::Absent };
        assert!(present.satisfied_by("all OK"));
        assert!(!present.satisfied_by("all ok"));
        assert!(absent.satisfied_by("fine"));
        assert!(!absent.satisfied_by("an error"));
    }

    proptest! {
        #[test]
        fn accepted_settings_are_within_bounds(interval in 0u32..100_000, timeout in 0u32..100, codes in proptest::collection::vec(0u16..700, 0..5)) {
            let mut s = MonitorSettings::new("m", "https://example.com/");
            s.interval_seconds = interval;
            s.timeout_seconds = timeout;
            s.expected_status_codes = codes;
            if let Ok(v) = validate(s, &strict()) {
                let s = v.settings;
                prop_assert!((30..=86_400).contains(&s.interval_seconds));
                prop_assert!(s.timeout_seconds >= 1 && s.timeout_seconds < s.interval_seconds && s.timeout_seconds <= 60);
                prop_assert!(s.expected_status_codes.iter().all(|c| (100..=599).contains(c)));
                prop_assert!(s.expected_status_codes.windows(2).all(|w| w[0] < w[1]));
            }
        }
    }
}
