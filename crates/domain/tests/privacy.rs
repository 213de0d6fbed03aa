#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Property tests of the anonymisation scrubber: an identifier never survives in any text around
//! it, in any case, and text without the person's data is never touched.

use helpdesk_domain::privacy::{REMOVED_TEXT, Scrubber};
use proptest::prelude::*;

fn with_case(text: &str, upper: &[bool]) -> String {
    text.chars()
        .zip(upper.iter().cycle())
        .map(|(c, up)| if *up { c.to_uppercase().next().unwrap_or(c) } else { c })
        .collect()
}

proptest! {
    #[test]
    fn an_identifier_never_survives_in_surrounding_text(
        before in "[a-zA-Zà-ú0-9 ,.!?]{0,40}",
        after in "[a-zA-Zà-ú0-9 ,.!?]{0,40}",
        local in "[a-z][a-z0-9.]{2,12}",
        upper in proptest::collection::vec(any::<bool>(), 1..8),
        repeats in 1usize..4,
    ) {
        let email = format!("{local}@example.com");
        let mut scrubber = Scrubber::new();
        scrubber.identifier(&email);
        let text = format!("{before}{}{after}", vec![with_case(&email, &upper); repeats].join(" e "));
        let scrubbed = scrubber.scrub(&text).expect("the text holds the e-mail");
        prop_assert!(!scrubbed.to_lowercase().contains(&email), "{scrubbed}");
        prop_assert!(scrubbed.starts_with(&before) && scrubbed.ends_with(&after));
        prop_assert_eq!(scrubbed.matches(REMOVED_TEXT).count(), repeats);
    }

    #[test]
    fn text_without_the_persons_data_is_left_alone(
        text in "[a-zA-Z0-9 ,.!?]{0,80}",
        body in "[a-z]{1,20}",
    ) {
        let mut scrubber = Scrubber::new();
        scrubber.identifier("Maria Souza").identifier("maria@example.com").whole_text(&format!("#{body}#"));
        prop_assume!(!text.to_lowercase().contains("maria souza"));
        prop_assert_eq!(scrubber.scrub(&text), None);
    }
}
