//! LGPD rules (DESIGN R14): what anonymisation writes in place of a person's data, how copies of
//! that data are found in other text, who must accept the terms again, and the organisation's
//! admin-contact handover.

use crate::accounts::Role;

/// What an anonymised person's name becomes.
pub const ANONYMISED_NAME: &str = "Anonymised user";
/// What a text the person wrote (message body, ticket subject or description) becomes.
pub const REMOVED_TEXT: &str = "[removed at the data subject's request]";

/// The placeholder address of an anonymised user: unique (the column is), never deliverable
/// (`.invalid` is reserved by RFC 2606), and free of anything about the person.
pub fn anonymised_email(user_id: impl std::fmt::Display) -> String {
    format!("anonymised-{user_id}@anonymised.invalid")
}

/// Finds a person's data inside other text, to replace it.
///
/// Two kinds of needle: *whole texts* the person wrote (a message body, a ticket subject), which
/// a copy reproduces verbatim as one JSON string, so only an equal string is replaced — a short
/// body such as "ok" must not eat every "ok" inside other people's words; and *identifiers*
/// (e-mail, full name, phone), which are replaced wherever they appear, case-insensitively, so a
/// greeting "Olá, Maria Souza" loses the name. Identifiers too short or too common to be
/// distinctive (a one-word name, under [`MIN_FRAGMENT_CHARS`]) are replaced only as whole texts.
#[derive(Debug, Clone, Default)]
pub struct Scrubber {
    whole: Vec<String>,
    fragments: Vec<String>,
}

/// Shorter identifiers are matched only as whole texts.
pub const MIN_FRAGMENT_CHARS: usize = 6;

impl Scrubber {
    pub fn new() -> Self {
        Self::default()
    }

    /// A text the person wrote: replaced where a copy equals it (ignoring surrounding blanks).
    pub fn whole_text(&mut self, text: &str) -> &mut Self {
        let text = text.trim();
        if !text.is_empty() && text != REMOVED_TEXT && !self.whole.iter().any(|t| t == text) {
            self.whole.push(text.to_owned());
        }
        self
    }

    /// An identifier of the person: replaced wherever it appears, when distinctive enough.
    pub fn identifier(&mut self, text: &str) -> &mut Self {
        let text = text.trim();
        let distinctive = text.chars().count() >= MIN_FRAGMENT_CHARS
            && (text.contains('@') || text.contains(char::is_whitespace) || text.chars().any(|c| c.is_ascii_digit()));
        if distinctive {
            let lower = text.to_lowercase();
            if !self.fragments.contains(&lower) {
                self.fragments.push(lower);
            }
        }
        self.whole_text(text)
    }

    /// The scrubbed text, or `None` when `text` holds nothing of the person.
    pub fn scrub(&self, text: &str) -> Option<String> {
        let trimmed = text.trim();
        if self.whole.iter().any(|w| w == trimmed) {
            return Some(REMOVED_TEXT.to_owned());
        }
        let mut out = text.to_owned();
        let mut changed = false;
        for fragment in &self.fragments {
            if let Some(replaced) = replace_all(&out, fragment) {
                out = replaced;
                changed = true;
            }
        }
        changed.then_some(out)
    }
}

/// `haystack` with every case-insensitive occurrence of `needle` replaced, scanning forward
/// only (the placeholder itself is never searched again); `None` when there is none.
fn replace_all(haystack: &str, needle: &str) -> Option<String> {
    let mut out = String::with_capacity(haystack.len());
    let mut rest = haystack;
    let mut changed = false;
    while let Some((start, end)) = find_case_insensitive(rest, needle) {
        out.push_str(&rest[..start]);
        out.push_str(REMOVED_TEXT);
        rest = &rest[end..];
        changed = true;
    }
    out.push_str(rest);
    changed.then_some(out)
}

/// Byte range of the first case-insensitive occurrence of `needle` (already lower-case) in
/// `haystack`, on character boundaries.
fn find_case_insensitive(haystack: &str, needle: &str) -> Option<(usize, usize)> {
    let needle: Vec<char> = needle.chars().collect();
    let starts: Vec<usize> = haystack.char_indices().map(|(i, _)| i).collect();
    for (n, &start) in starts.iter().enumerate() {
        let mut chars = haystack[start..].chars();
        let mut matched = 0;
        for want in &needle {
            match chars.next() {
                Some(c) if c.to_lowercase().eq(std::iter::once(*want)) => matched += 1,
                _ => break,
            }
        }
        if matched == needle.len() {
            let end = starts.get(n + needle.len()).copied().unwrap_or(haystack.len());
            return Some((start, end));
        }
    }
    None
}

/// Must this user accept the current terms before doing anything else? The terms of use and
/// privacy notice are the customers' (the organisations' people); Kadix staff are bound by their
/// employment, so they are never stopped.
pub fn must_accept_terms(role: Role, accepted: Option<&str>, current: &str) -> bool {
    role == Role::Customer && accepted != Some(current)
}

/// Why a person may not leave yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HandoverNeeded {
    #[error("this person is the organisation's last admin contact and others remain: name another admin contact first")]
    LastAdminContact,
}

/// The organisation must keep an admin contact while it has people: the last one leaves (or
/// stops being one) only after naming another. When nobody else remains there is nobody to hand
/// over to, and the next person to sign up becomes the contact.
pub fn may_stop_being_admin_contact(
    is_admin_contact: bool,
    other_admin_contacts: i64,
    other_active_members: i64,
) -> Result<(), HandoverNeeded> {
    if is_admin_contact && other_admin_contacts == 0 && other_active_members > 0 {
        Err(HandoverNeeded::LastAdminContact)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_texts_replace_only_equal_strings() {
        let mut s = Scrubber::new();
        s.whole_text("ok");
        assert_eq!(s.scrub(" ok ").as_deref(), Some(REMOVED_TEXT));
        assert_eq!(s.scrub("look, ok?"), None);
    }

    #[test]
    fn identifiers_are_replaced_inside_text_in_any_case() {
        let mut s = Scrubber::new();
        s.identifier("Maria Souza").identifier("maria@example.com").identifier("Ana");
        assert_eq!(
            s.scrub("Olá, MARIA SOUZA! Escreva a Maria@Example.com").as_deref(),
            Some(format!("Olá, {REMOVED_TEXT}! Escreva a {REMOVED_TEXT}").as_str())
        );
        // A one-word name is not distinctive: only a text equal to it goes.
        assert_eq!(s.scrub("Banana"), None);
        assert_eq!(s.scrub("Ana").as_deref(), Some(REMOVED_TEXT));
    }

    #[test]
    fn only_customers_are_stopped_by_new_terms() {
        assert!(must_accept_terms(Role::Customer, Some("2026-01"), "2026-06"));
        assert!(must_accept_terms(Role::Customer, None, "2026-06"));
        assert!(!must_accept_terms(Role::Customer, Some("2026-06"), "2026-06"));
        assert!(!must_accept_terms(Role::Admin, None, "2026-06"));
    }

    #[test]
    fn the_last_admin_contact_hands_over_while_others_remain() {
        assert_eq!(may_stop_being_admin_contact(true, 0, 2), Err(HandoverNeeded::LastAdminContact));
        assert_eq!(may_stop_being_admin_contact(true, 1, 2), Ok(()));
        assert_eq!(may_stop_being_admin_contact(true, 0, 0), Ok(()));
        assert_eq!(may_stop_being_admin_contact(false, 0, 3), Ok(()));
    }
}
