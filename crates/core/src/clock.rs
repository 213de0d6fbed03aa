//! The one source of "now" for operations and jobs, so tests can move time instead of waiting.

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use std::sync::{Arc, Mutex, PoisonError};

#[derive(Clone, Debug, Default)]
pub struct Clock {
    manual: Option<Arc<Mutex<DateTime<Utc>>>>,
    /// Added to the wall clock: a whole process running ahead of time, which is how the system
    /// tests let the real worker binary reach R8's reminder and auto-close without waiting days.
    offset: TimeDelta,
}

impl Clock {
    /// The wall clock.
    pub fn system() -> Self {
        Self { manual: None, offset: TimeDelta::zero() }
    }

    /// The wall clock moved forward by `offset` (`HELPDESK_CLOCK_OFFSET_SECONDS`, development only).
    pub fn offset(offset: TimeDelta) -> Self {
        Self { manual: None, offset }
    }

    /// A clock that stands still at `at` until moved with [`Clock::advance`] or [`Clock::set`].
    pub fn manual(at: DateTime<Utc>) -> Self {
        Self { manual: Some(Arc::new(Mutex::new(at))), offset: TimeDelta::zero() }
    }

    /// Now, to the microsecond: PostgreSQL's precision, so an instant written to a column and
    /// the same instant inside a stored SLA event are equal to the last digit.
    pub fn now(&self) -> DateTime<Utc> {
        match &self.manual {
            Some(at) => *at.lock().unwrap_or_else(PoisonError::into_inner),
            None => (Utc::now() + self.offset).trunc_subsecs(6),
        }
    }

    /// Moves a manual clock forward; a no-op on the system clock.
    pub fn advance(&self, by: TimeDelta) {
        if let Some(at) = &self.manual {
            let mut at = at.lock().unwrap_or_else(PoisonError::into_inner);
            *at += by;
        }
    }

    pub fn set(&self, to: DateTime<Utc>) {
        if let Some(at) = &self.manual {
            *at.lock().unwrap_or_else(PoisonError::into_inner) = to;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_has_database_precision() {
        assert_eq!(Clock::system().now().timestamp_subsec_nanos() % 1_000, 0);
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start = DateTime::<Utc>::UNIX_EPOCH;
        let clock = Clock::manual(start);
        let copy = clock.clone();
        assert_eq!(clock.now(), start);
        copy.advance(TimeDelta::hours(72));
        assert_eq!(clock.now(), start + TimeDelta::hours(72));
    }

    #[test]
    fn an_offset_clock_runs_ahead_of_the_wall_clock() {
        let before = Utc::now();
        let ahead = Clock::offset(TimeDelta::hours(73)).now();
        assert!(ahead >= before + TimeDelta::hours(73) - TimeDelta::microseconds(1));
        assert!(ahead <= Utc::now() + TimeDelta::hours(73));
    }
}
