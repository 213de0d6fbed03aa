//! E-mail templates: files under `templates/` embedded at compile time, rendered by substituting
//! `{{key}}` with values from the outbox row's JSON payload. See `templates/README.md`.

use serde_json::Value;

/// The locales we write e-mails in; anything else falls back to the default, Brazilian Portuguese.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locale {
    PtBr,
    En,
}

impl Locale {
    pub fn from_tag(tag: &str) -> Self {
        if tag.eq_ignore_ascii_case("en") || tag.to_ascii_lowercase().starts_with("en-") {
            Self::En
        } else {
            Self::PtBr
        }
    }
}

/// The three parts of one template in one locale, as written in the files.
#[derive(Debug)]
struct Parts {
    subject: &'static str,
    text: &'static str,
    html: &'static str,
}

#[derive(Debug)]
struct Template {
    name: &'static str,
    pt_br: Parts,
    en: Parts,
}

macro_rules! parts {
    ($name:literal, $locale:literal) => {
        Parts {
            subject: include_str!(concat!("../templates/", $name, "/", $locale, ".subject.txt")),
            text: include_str!(concat!("../templates/", $name, "/", $locale, ".txt")),
            html: include_str!(concat!("../templates/", $name, "/", $locale, ".html")),
        }
    };
}

macro_rules! template {
    ($name:literal) => {
        Template { name: $name, pt_br: parts!($name, "pt-BR"), en: parts!($name, "en") }
    };
}

/// Every template the worker can send. Adding one: its six files plus one line here.
static TEMPLATES: &[Template] = &[
    template!("welcome"),
    template!("password_reset"),
    template!("ticket_created"),
    template!("ticket_replied"),
    template!("ticket_customer_replied"),
    template!("ticket_assigned"),
    template!("ticket_waiting"),
    template!("ticket_closed"),
    template!("ticket_reminder"),
    template!("sla_at_risk"),
    template!("sla_breached"),
    template!("meeting_confirmed"),
    template!("meeting_updated"),
    template!("meeting_cancelled"),
    template!("meeting_reminder"),
    template!("contact_request"),
    template!("contact_answer"),
    template!("monitor_alert"),
    template!("monitor_page"),
    template!("probe_network_problem"),
    template!("monitor_overdue"),
    template!("webhook_disabled"),
];

/// An e-mail ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Why a template cannot be rendered. All are permanent: retrying cannot fix them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("unknown e-mail template '{0}'")]
    UnknownTemplate(String),
    #[error("template '{template}' needs '{key}' but the payload has no such value")]
    MissingValue { template: String, key: String },
    #[error("template '{template}' has an unclosed '{{{{' placeholder")]
    UnclosedPlaceholder { template: String },
}

/// Renders `template` in `locale` with `payload` (a JSON object).
pub fn render(template: &str, locale: Locale, payload: &Value) -> Result<Rendered, RenderError> {
    let found = TEMPLATES
        .iter()
        .find(|t| t.name == template)
        .ok_or_else(|| RenderError::UnknownTemplate(template.to_owned()))?;
    let parts = match locale {
        Locale::PtBr => &found.pt_br,
        Locale::En => &found.en,
    };
    let value = |key: &str| {
        lookup(payload, key)
            .ok_or_else(|| RenderError::MissingValue { template: template.to_owned(), key: key.to_owned() })
    };
    let unclosed = || RenderError::UnclosedPlaceholder { template: template.to_owned() };
    // A subject is one header line: never let a value break it.
    let subject = substitute(parts.subject.trim(), |key| value(key).map(|v| v.replace(['\r', '\n'], " ")), unclosed)?;
    let text = substitute(parts.text, value, unclosed)?;
    let html = substitute(parts.html, |key| value(key).map(|v| escape_html(&v)), unclosed)?;
    Ok(Rendered { subject, text, html })
}

fn lookup(payload: &Value, key: &str) -> Option<String> {
    match payload.get(key)? {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// Replaces every `{{ key }}` in `source` with `value(key)`.
fn substitute(
    source: &str,
    mut value: impl FnMut(&str) -> Result<String, RenderError>,
    unclosed: impl Fn() -> RenderError,
) -> Result<String, RenderError> {
    let mut out = String::with_capacity(source.len() + 64);
    let mut rest = source;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(&unclosed)?;
        out.push_str(&value(after[..end].trim())?);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeSet;

    fn placeholders(source: &str) -> BTreeSet<String> {
        let mut keys = BTreeSet::new();
        let _ = substitute(
            source,
            |key| {
                keys.insert(key.to_owned());
                Ok(String::new())
            },
            || RenderError::UnclosedPlaceholder { template: String::new() },
        );
        keys
    }

    #[test]
    fn every_email_the_operations_write_has_a_template() {
        for name in helpdesk_core::outbox::templates::ALL {
            assert!(TEMPLATES.iter().any(|t| t.name == *name), "no template for '{name}'");
        }
    }

    #[test]
    fn ticket_emails_render_from_the_payload_ticket_operations_write() {
        // The keys `tickets::notify` always writes, plus the per-e-mail extras.
        let payload = json!({
            "name": "Ana", "ticket_id": "0190f1a0-0000-7000-8000-000000000001", "ticket_number": 42,
            "subject": "Site <fora> do ar", "status": "open", "severity": "critical",
            "body": "Resolvido.", "reason": "resolved",
        });
        for name in helpdesk_core::outbox::templates::ALL.iter().filter(|n| n.starts_with("ticket_")) {
            for locale in [Locale::PtBr, Locale::En] {
                let rendered = render(name, locale, &payload).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(rendered.subject.contains("42") || rendered.text.contains("42"), "{name}: {rendered:?}");
                assert!(!rendered.html.contains("<fora>"), "{name}: values are escaped in HTML");
            }
        }
    }

    #[test]
    fn sla_alerts_render_from_the_payload_the_timers_write() {
        // The keys `ticket_timers::alert` writes.
        let payload = json!({
            "name": "Bia", "ticket_id": "0190f1a0-0000-7000-8000-000000000001", "ticket_number": 42,
            "subject": "Site <fora> do ar", "severity": "crítica", "metric": "primeira resposta",
            "due_at": "04/12/2026 17:00 (America/Sao_Paulo)", "emergency": false,
        });
        for name in [helpdesk_core::outbox::templates::SLA_AT_RISK, helpdesk_core::outbox::templates::SLA_BREACHED] {
            for locale in [Locale::PtBr, Locale::En] {
                let rendered = render(name, locale, &payload).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(rendered.subject.contains("#42"), "{name}: {rendered:?}");
                assert!(rendered.text.contains("04/12/2026 17:00"), "{name}: {rendered:?}");
                assert!(!rendered.html.contains("<fora>"), "{name}: values are escaped in HTML");
            }
        }
    }

    #[test]
    fn both_locales_of_every_template_use_the_same_placeholders() {
        for template in TEMPLATES {
            for (pt, en) in [
                (template.pt_br.subject, template.en.subject),
                (template.pt_br.text, template.en.text),
                (template.pt_br.html, template.en.html),
            ] {
                assert_eq!(placeholders(pt), placeholders(en), "template {}", template.name);
            }
            let all: BTreeSet<_> = [template.en.text, template.en.html].into_iter().flat_map(placeholders).collect();
            assert_eq!(
                placeholders(template.en.text),
                all,
                "the text part of {} must say everything the HTML says",
                template.name
            );
        }
    }

    #[test]
    fn renders_in_the_recipients_locale_and_defaults_to_portuguese() -> Result<(), RenderError> {
        let payload = json!({ "name": "Ana" });
        let en = render("welcome", Locale::from_tag("en"), &payload)?;
        assert_eq!(en.subject, "Welcome to Kadix Support");
        assert!(en.text.starts_with("Hello Ana,"));
        let pt = render("welcome", Locale::from_tag("pt-BR"), &payload)?;
        assert!(pt.text.starts_with("Olá, Ana!"));
        assert_eq!(Locale::from_tag("es"), Locale::PtBr);
        assert_eq!(Locale::from_tag("en-GB"), Locale::En);
        Ok(())
    }

    #[test]
    fn values_are_escaped_in_html_but_not_in_text() -> Result<(), RenderError> {
        let payload = json!({ "name": "<b>Zé</b> & \"Co\"", "reset_url": "https://x/r?a=1&b=2", "token": "t", "expires_in_minutes": 60 });
        let out = render("password_reset", Locale::En, &payload)?;
        assert!(out.html.contains("&lt;b&gt;Zé&lt;/b&gt; &amp; &quot;Co&quot;"));
        assert!(out.html.contains("href=\"https://x/r?a=1&amp;b=2\""));
        assert!(out.text.contains("<b>Zé</b> & \"Co\""));
        assert!(out.text.contains("60 minutes"));
        Ok(())
    }

    #[test]
    fn unknown_templates_and_missing_values_are_errors() {
        assert_eq!(render("nope", Locale::En, &json!({})), Err(RenderError::UnknownTemplate("nope".into())));
        assert_eq!(
            render("welcome", Locale::En, &json!({ "name": null })),
            Err(RenderError::MissingValue { template: "welcome".into(), key: "name".into() })
        );
    }

    #[test]
    fn values_cannot_break_the_subject_line() -> Result<(), RenderError> {
        let out = substitute(
            "Hi {{n}}",
            |_| Ok("a\r\nBcc: x".replace(['\r', '\n'], " ")),
            || RenderError::UnclosedPlaceholder { template: String::new() },
        )?;
        assert_eq!(out, "Hi a  Bcc: x");
        assert!(matches!(
            substitute("{{oops", |_| Ok(String::new()), || RenderError::UnclosedPlaceholder { template: "t".into() }),
            Err(RenderError::UnclosedPlaceholder { .. })
        ));
        Ok(())
    }
}
