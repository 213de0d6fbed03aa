//! When a failed delivery is tried again, when it is given up, and when a subscription that keeps
//! failing is disabled.
//!
//! Exponential backoff with "equal jitter": the n-th wait is a random point in the upper half of
//! `base × 2^(n−1)` (capped), so receivers coming back after an outage are not hit by every
//! delivery at the same instant, yet no wait collapses to zero. Retries stop at `give_up_after`
//! (24 h) from the first attempt; the last one is made at that instant.

use chrono::{DateTime, TimeDelta, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base: TimeDelta,
    pub cap: TimeDelta,
    pub give_up_after: TimeDelta,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { base: TimeDelta::seconds(5), cap: TimeDelta::hours(1), give_up_after: TimeDelta::hours(24) }
    }
}

impl RetryPolicy {
    /// The wait before the next try after `attempts` failed ones (≥ 1), before jitter.
    pub fn ceiling(&self, attempts: i32) -> TimeDelta {
        let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(0);
        self.base.checked_mul(1_i32 << doublings.min(30)).map_or(self.cap, |wait| wait.min(self.cap))
    }

    /// When to try again after the `attempts`-th failure at `now`, the first having been made at
    /// `first_attempt_at`; `None` when the delivery is given up. `jitter` is uniform in [0, 1).
    pub fn next_attempt(
        &self,
        attempts: i32,
        first_attempt_at: DateTime<Utc>,
        now: DateTime<Utc>,
        jitter: f64,
    ) -> Option<DateTime<Utc>> {
        let deadline = first_attempt_at + self.give_up_after;
        if now >= deadline {
            return None;
        }
        let ceiling = self.ceiling(attempts);
        let jitter = if jitter.is_finite() { jitter.clamp(0.0, 1.0) } else { 0.0 };
        let micros = ceiling.num_microseconds().unwrap_or(i64::MAX);
        // f64 holds the microseconds of waits up to ~285 years exactly enough.
        #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
        let half = ((micros as f64) * 0.5 * jitter) as i64;
        let wait = TimeDelta::microseconds(micros / 2 + half).max(TimeDelta::milliseconds(1));
        Some((now + wait).min(deadline))
    }
}

/// A subscription is disabled once at least `min_failures` attempts in a row have failed over at
/// least `min_duration`: both, so neither a short burst of errors nor one slow retry schedule
/// disables it alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DisableRule {
    pub min_failures: i32,
    pub min_duration: TimeDelta,
}

impl Default for DisableRule {
    fn default() -> Self {
        Self { min_failures: 20, min_duration: TimeDelta::hours(24) }
    }
}

impl DisableRule {
    pub fn should_disable(&self, consecutive_failures: i32, failing_since: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        consecutive_failures >= self.min_failures && now - failing_since >= self.min_duration
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap_or_default()
    }

    proptest! {
        #[test]
        fn waits_stay_in_the_upper_half_of_the_ceiling_and_never_pass_the_deadline(
            attempts in 1i32..60, elapsed in 0i64..(25 * 3600), jitter in 0.0f64..1.0,
        ) {
            let policy = RetryPolicy::default();
            let first = at(0);
            let now = at(elapsed);
            match policy.next_attempt(attempts, first, now, jitter) {
                None => prop_assert!(now >= first + policy.give_up_after),
                Some(next) => {
                    prop_assert!(now < first + policy.give_up_after);
                    prop_assert!(next > now);
                    prop_assert!(next <= first + policy.give_up_after);
                    let ceiling = policy.ceiling(attempts);
                    prop_assert!(ceiling <= policy.cap);
                    if next < first + policy.give_up_after {
                        prop_assert!(next - now >= ceiling / 2);
                        prop_assert!(next - now <= ceiling);
                    }
                }
            }
        }

        #[test]
        fn the_ceiling_never_shrinks(attempts in 1i32..100) {
            let policy = RetryPolicy::default();
            prop_assert!(policy.ceiling(attempts + 1) >= policy.ceiling(attempts));
        }

        #[test]
        fn disabling_needs_both_many_failures_and_a_long_time(failures in 0i32..100, hours in 0i64..100) {
            let rule = DisableRule::default();
            let disabled = rule.should_disable(failures, at(0), at(hours * 3600));
            prop_assert_eq!(disabled, failures >= 20 && hours >= 24);
        }
    }

    #[test]
    fn retrying_for_a_day_takes_a_few_dozen_attempts() {
        let policy = RetryPolicy::default();
        let (first, mut now, mut attempts) = (at(0), at(0), 1);
        while let Some(next) = policy.next_attempt(attempts, first, now, 0.5) {
            now = next;
            attempts += 1;
        }
        assert_eq!(now, first + policy.give_up_after);
        assert!((20..60).contains(&attempts), "{attempts} attempts");
    }
}
