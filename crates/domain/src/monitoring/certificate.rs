//! The TLS certificate warning (R11): a site whose certificate expires within the monitor's
//! warning period (`tls_warning_days`, default 14; 0 turns it off) raises one warning, an incident
//! of kind `tls_expiring` that never counts as downtime. It stays open until a probe sees a
//! certificate outside the period (renewed), and a later expiry raises a new one.
//!
//! Like the downtime alerts, the warning is not raised while alerts are held (a maintenance
//! window, a storm): the first probe after the hold raises it.

use chrono::{DateTime, TimeDelta, Utc};

/// What one probe's certificate means for the monitor's warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateStep {
    /// Nothing changes.
    Keep,
    /// Raise the warning: the certificate expires within the period, `days_left` whole days on.
    Warn { days_left: i64 },
    /// The open warning is over: the certificate was renewed, or the warning turned off.
    Resolve,
}

/// Whether a certificate valid until `not_after` is within `warning_days` of `now`.
pub fn expiring(not_after: DateTime<Utc>, now: DateTime<Utc>, warning_days: u32) -> bool {
    warning_days > 0 && not_after - now < TimeDelta::days(i64::from(warning_days))
}

/// The step for a probe at `now` that saw a certificate valid until `not_after` (`None`: plain
/// http, or a probe that failed before the handshake told anything, which changes nothing).
pub fn step(
    not_after: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    warning_days: u32,
    warning_open: bool,
    held: bool,
) -> CertificateStep {
    let Some(not_after) = not_after else {
        return if warning_open && warning_days == 0 { CertificateStep::Resolve } else { CertificateStep::Keep };
    };
    match (expiring(not_after, now, warning_days), warning_open) {
        (true, false) if !held => CertificateStep::Warn { days_left: (not_after - now).num_days().max(0) },
        (false, true) => CertificateStep::Resolve,
        _ => CertificateStep::Keep,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    #[test]
    fn ten_days_left_of_fourteen_warns_once_and_a_renewal_resolves() {
        let soon = Some(t0() + TimeDelta::days(10) + TimeDelta::hours(3));
        assert_eq!(step(soon, t0(), 14, false, false), CertificateStep::Warn { days_left: 10 });
        assert_eq!(step(soon, t0(), 14, true, false), CertificateStep::Keep);
        let renewed = Some(t0() + TimeDelta::days(90));
        assert_eq!(step(renewed, t0(), 14, true, false), CertificateStep::Resolve);
        assert_eq!(step(renewed, t0(), 14, false, false), CertificateStep::Keep);
    }

    #[test]
    fn a_held_probe_waits_and_zero_days_turns_the_warning_off() {
        let soon = Some(t0() + TimeDelta::days(3));
        assert_eq!(step(soon, t0(), 14, false, true), CertificateStep::Keep);
        assert_eq!(step(soon, t0(), 0, false, false), CertificateStep::Keep);
        assert_eq!(step(soon, t0(), 0, true, false), CertificateStep::Resolve);
        assert_eq!(step(None, t0(), 0, true, false), CertificateStep::Resolve);
        assert_eq!(step(None, t0(), 14, true, false), CertificateStep::Keep);
    }

    proptest! {
        /// Whatever the certificates seen, the warning is raised only when the certificate is
        /// within the period, never twice while open, and resolved only when open.
        #[test]
        fn one_warning_per_expiring_certificate(
            probes in proptest::collection::vec((proptest::option::of(-5i64..60), any::<bool>()), 1..40),
            warning_days in 0u32..30,
        ) {
            let mut open = false;
            for (i, (days, held)) in probes.iter().enumerate() {
                let now = t0() + TimeDelta::hours(i64::try_from(i).unwrap());
                let not_after = days.map(|days| now + TimeDelta::days(days));
                match step(not_after, now, warning_days, open, *held) {
                    CertificateStep::Warn { days_left } => {
                        prop_assert!(!open && !held);
                        prop_assert!(warning_days > 0 && days_left < i64::from(warning_days));
                        open = true;
                    }
                    CertificateStep::Resolve => {
                        prop_assert!(open);
                        prop_assert!(not_after.is_none_or(|not_after| !expiring(not_after, now, warning_days)));
                        open = false;
                    }
                    CertificateStep::Keep => {}
                }
            }
        }

        /// The same expiring certificate seen at every probe, none held: exactly one warning.
        #[test]
        fn a_run_of_one_expiring_certificate_warns_exactly_once(
            probes in 1usize..50, days_left in 0i64..14, warning_days in 15u32..60,
        ) {
            let start = t0() + TimeDelta::days(60);
            let not_after = start + TimeDelta::days(days_left);
            let mut open = false;
            let mut raised = 0;
            for i in 0..probes {
                let now = start + TimeDelta::minutes(5 * i64::try_from(i).unwrap());
                if let CertificateStep::Warn { .. } = step(Some(not_after), now, warning_days, open, false) {
                    raised += 1;
                    open = true;
                }
            }
            prop_assert_eq!(raised, 1);
        }
    }
}
