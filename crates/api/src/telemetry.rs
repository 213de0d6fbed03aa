//! Logging setup shared by the binary and tests.
//!
//! Log lines carry text that clients choose (paths, query parameter names in error messages).
//! The JSON format escapes it by construction; the text format writes field values as they
//! are, so a newline in a query parameter's name would forge a second log line. Every field
//! value of the text format therefore goes through [`escape_controls`].

use std::fmt::Write as _;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::format::{Writer, debug_fn};

pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    // try_init: tests call this more than once per process.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.fmt_fields(debug_fn(write_escaped_field).delimited(" ")).try_init()
    };
}

/// Writes one field as `name=value` (the message bare), with control characters escaped.
fn write_escaped_field(
    writer: &mut Writer<'_>,
    field: &tracing::field::Field,
    value: &dyn std::fmt::Debug,
) -> std::fmt::Result {
    let mut text = String::new();
    write!(text, "{value:?}")?;
    if field.name() == "message" {
        writer.write_str(&escape_controls(&text))
    } else {
        write!(writer, "{}={}", field.name(), escape_controls(&text))
    }
}

/// Replaces every control character (newline, carriage return, escape, NUL, …) by its Rust
/// escape (`\n`, `\u{1b}`), so one event is always one line and carries no terminal sequences.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            escaped.extend(c.escape_debug());
        } else {
            escaped.push(c);
        }
    }
    escaped.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(escape_controls("plain ção"), "plain ção");
        assert_eq!(escape_controls("a\nb\r\u{1b}[31m\0"), "a\\nb\\r\\u{1b}[31m\\0");
    }
}
