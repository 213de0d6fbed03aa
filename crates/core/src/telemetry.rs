//! Logging set-up shared by both binaries (`helpdesk-api`, `helpdesk-worker`).
//!
//! Log lines carry text that clients choose (paths, query parameter names in error messages,
//! e-mail addresses, SMTP replies). The JSON format escapes it by construction; the text format
//! writes field values as they are, so a newline in a query parameter's name would forge a second
//! log line. Every field value of the text format therefore goes through [`escape_controls`]:
//! in either format, one event is one line.

use std::fmt::Write as _;
use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::{Writer, debug_fn};
use tracing_subscriber::util::SubscriberInitExt;

/// How a binary logs: `json` or text, the filter used when `RUST_LOG` is unset, and whether
/// lines name the module that logged them.
#[derive(Debug, Clone, Copy)]
pub struct LogFormat {
    pub json: bool,
    pub default_filter: &'static str,
    pub with_target: bool,
}

/// Installs the global subscriber writing to stdout. `try_init`: tests call this more than once
/// per process.
pub fn init(format: LogFormat) {
    let _ = subscriber(format, std::io::stdout).try_init();
}

/// The subscriber [`init`] installs, writing to `writer` (tests capture the output with it).
pub fn subscriber<W>(format: LogFormat, writer: W) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(format.default_filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(format.with_target).with_writer(writer);
    if format.json {
        Box::new(builder.json().finish())
    } else {
        Box::new(builder.fmt_fields(debug_fn(write_escaped_field).delimited(" ")).finish())
    }
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
    use std::sync::{Arc, Mutex};

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(escape_controls("plain ção"), "plain ção");
        assert_eq!(escape_controls("a\nb\r\u{1b}[31m\0"), "a\\nb\\r\\u{1b}[31m\\0");
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Captured {
        type Writer = Captured;
        fn make_writer(&'w self) -> Captured {
            self.clone()
        }
    }

    fn logged(json: bool) -> String {
        let captured = Captured::default();
        let format = LogFormat { json, default_filter: "info", with_target: true };
        tracing::subscriber::with_default(subscriber(format, captured.clone()), || {
            let forged = "x\n2026-01-01T00:00:00Z ERROR forged=1\r\u{1b}[2K";
            tracing::warn!(recipient = %forged, reply = ?forged, "delivery failed: {forged}");
        });
        let bytes = captured.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[test]
    fn a_forged_newline_leaves_one_line_in_every_format() {
        for json in [false, true] {
            let output = logged(json);
            assert_eq!(output.lines().count(), 1, "json={json}: {output}");
            assert!(output.contains("forged=1"), "the payload is kept, escaped: {output}");
            // The formatter's own colours stay; the forged terminal sequence does not.
            assert!(!output.contains('\r') && !output.contains("\u{1b}[2K"), "json={json}: {output:?}");
        }
    }
}
