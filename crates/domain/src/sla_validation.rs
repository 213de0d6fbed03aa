//! What makes an SLA policy acceptable (R5, R8): every plan × severity has targets, each target
//! positive and bounded, the at-risk threshold and R8's delays within range. A policy that passes
//! can start the clock of any ticket any plan may open, so ticket creation never meets a gap.

use chrono::TimeDelta;

use crate::sla::{Severity, SlaPolicy};
use crate::timers::WaitingPolicy;

/// The longest target accepted: a year.
pub const MAX_TARGET: TimeDelta = TimeDelta::days(365);

/// One thing wrong with a policy, with the field it concerns (`rows[2].resolution`, `rows`,
/// `at_risk_fraction`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyProblem {
    pub field: String,
    pub message: String,
}

fn problem(field: impl Into<String>, message: impl Into<String>) -> PolicyProblem {
    PolicyProblem { field: field.into(), message: message.into() }
}

/// Every problem of `policy` for the plans `plans` (their codes); empty when it is acceptable.
pub fn validate_policy(policy: &SlaPolicy, plans: &[&str]) -> Vec<PolicyProblem> {
    let mut problems = Vec::new();
    if policy.rows.is_empty() {
        problems.push(problem("rows", "must list at least one target"));
    }
    for (i, row) in policy.rows.iter().enumerate() {
        for (metric, target) in [("first_response", row.targets.first_response), ("resolution", row.targets.resolution)]
        {
            if target.duration <= TimeDelta::zero() || target.duration > MAX_TARGET {
                problems.push(problem(format!("rows[{i}].{metric}"), "must be a positive duration of at most a year"));
            }
        }
    }
    for plan in plans {
        for severity in [Severity::Critical, Severity::High, Severity::Normal, Severity::Low] {
            if policy.targets(plan, severity, false).is_none() {
                problems.push(problem(
                    "rows",
                    format!("no targets for plan '{plan}', severity '{}': add a row for it", severity.as_str()),
                ));
            }
        }
    }
    if !(0.05..=1.0).contains(&policy.at_risk_fraction) {
        problems
            .push(problem("at_risk_fraction", format!("must be between 0.05 and 1, got {}", policy.at_risk_fraction)));
    }
    for (field, hours) in [
        ("reminder_after_hours", policy.waiting.reminder_after_hours),
        ("auto_close_after_hours", policy.waiting.auto_close_after_hours),
    ] {
        if !(1..=WaitingPolicy::MAX_HOURS).contains(&hours) {
            problems
                .push(problem(field, format!("must be between 1 and {} hours, got {hours}", WaitingPolicy::MAX_HOURS)));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PLANS: [&str; 3] = ["essencial", "pro", "premium"];

    #[test]
    fn the_seeded_policy_is_acceptable() {
        assert_eq!(validate_policy(&SlaPolicy::default_targets(), &PLANS), vec![]);
    }

    #[test]
    fn a_policy_without_premium_names_each_missing_row() {
        let mut policy = SlaPolicy::default_targets();
        policy.rows.retain(|r| r.plan != "premium");
        let problems = validate_policy(&policy, &PLANS);
        assert_eq!(problems.len(), 4);
        assert!(problems.iter().all(|p| p.field == "rows" && p.message.contains("plan 'premium'")));
        assert!(problems.iter().any(|p| p.message.contains("severity 'critical'")));
    }

    proptest! {
        #[test]
        fn removing_any_row_of_a_plan_without_fallback_is_refused(index in 0usize..9) {
            let mut policy = SlaPolicy::default_targets();
            // Rows 1..=8 are Pro's and Premium's per-severity rows; each is the only match.
            let index = 1 + index % 8;
            let removed = policy.rows.remove(index);
            let problems = validate_policy(&policy, &PLANS);
            let needle = format!("plan '{}'", removed.plan);
            prop_assert!(problems.iter().any(|p| p.message.contains(&needle)));
        }

        #[test]
        fn targets_out_of_range_are_named(hours in prop_oneof![Just(0i64), 8761i64..20_000]) {
            let mut policy = SlaPolicy::default_targets();
            policy.rows[0].targets.resolution.duration = TimeDelta::hours(hours);
            let problems = validate_policy(&policy, &PLANS);
            prop_assert!(problems.iter().any(|p| p.field == "rows[0].resolution"));
        }
    }
}
