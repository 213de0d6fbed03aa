//! When a monitor is probed: on slots `phase + k × interval` seconds after the Unix epoch.
//!
//! The phase is a stable hash of the monitor's id, so 100,000 monitors with the same interval
//! spread evenly over it instead of all firing on the minute, and a monitor keeps its slots
//! across restarts, pauses and workers. Plans advance from the planned slot, never from the time
//! a probe finished, so slow probes do not make a monitor drift.

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

/// The monitor's offset within its interval, in `[0, interval_seconds)`: FNV-1a of the id's
/// bytes (stable across Rust versions and processes, unlike `std`'s hasher).
pub fn phase_offset(id: Uuid, interval_seconds: u32) -> u32 {
    let interval = u64::from(interval_seconds.max(1));
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in id.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // The remainder is below `interval`, itself a u32.
    u32::try_from(hash % interval).unwrap_or(0)
}

/// The first slot strictly after `after`: the smallest whole second `t > after` with
/// `t ≡ phase (mod interval)`. A phase at or past the interval is reduced modulo it.
pub fn next_planned(after: DateTime<Utc>, interval_seconds: u32, phase_seconds: u32) -> DateTime<Utc> {
    let interval = i64::from(interval_seconds.max(1));
    let phase = i64::from(phase_seconds) % interval;
    let secs = after.timestamp();
    // `phase + k × interval` is the last slot at or before `after`'s second, so the next one
    // is always one interval on (an instant with a fractional part is past its second's slot).
    let k = (secs - phase).div_euclid(interval);
    let next = phase + (k + 1) * interval;
    DateTime::from_timestamp(next, 0).unwrap_or(after + TimeDelta::seconds(interval))
}

/// How many slots lie in `(from, to]`: the slots a worker outage skipped when it comes back at
/// `to` after last planning `from`.
pub fn slots_between(from: DateTime<Utc>, to: DateTime<Utc>, interval_seconds: u32, phase_seconds: u32) -> u64 {
    if to <= from {
        return 0;
    }
    let interval = i64::from(interval_seconds.max(1));
    let phase = i64::from(phase_seconds) % interval;
    let upto = |t: DateTime<Utc>| (t.timestamp() - phase).div_euclid(interval);
    u64::try_from(upto(to) - upto(from)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap_or_default()
    }

    #[test]
    fn next_slot_is_strictly_after_and_on_phase() {
        assert_eq!(next_planned(at(1000), 300, 100), at(1300));
        assert_eq!(next_planned(at(999), 300, 100), at(1000));
        assert_eq!(next_planned(at(1001), 300, 100), at(1300));
        assert_eq!(next_planned(at(1000) + TimeDelta::milliseconds(1), 300, 100), at(1300));
    }

    #[test]
    fn phases_spread_evenly() {
        let interval = 300;
        let mut buckets = [0u32; 10];
        for _ in 0..30_000 {
            let p = phase_offset(Uuid::new_v4(), interval);
            buckets[(p / 30) as usize] += 1;
        }
        // 3,000 expected per bucket; a fair hash stays well within ±10 %.
        assert!(buckets.iter().all(|&b| (2_700..=3_300).contains(&b)), "{buckets:?}");
    }

    proptest! {
        #[test]
        fn next_planned_is_the_first_slot_after(secs in 0i64..4_000_000_000, nanos in 0u32..1_000_000_000,
                                               interval in 30u32..86_400, phase_seed in any::<u32>()) {
            let phase = phase_seed % interval;
            let after = DateTime::from_timestamp(secs, nanos).unwrap_or_default();
            let next = next_planned(after, interval, phase);
            prop_assert!(next > after);
            prop_assert!(next - after <= TimeDelta::seconds(i64::from(interval)));
            prop_assert_eq!((next.timestamp() - i64::from(phase)).rem_euclid(i64::from(interval)), 0);
            // Advancing from a slot lands on the next slot.
            prop_assert_eq!(next_planned(next, interval, phase), next + TimeDelta::seconds(i64::from(interval)));
        }

        #[test]
        fn phase_is_within_interval_and_stable(bytes in any::<[u8; 16]>(), interval in 1u32..100_000) {
            let id = Uuid::from_bytes(bytes);
            let p = phase_offset(id, interval);
            prop_assert!(p < interval);
            prop_assert_eq!(p, phase_offset(id, interval));
        }

        #[test]
        fn slots_between_counts_planned_slots(from in 0i64..2_000_000_000, len in 0i64..1_000_000,
                                              interval in 30u32..3_600, phase_seed in any::<u32>()) {
            let phase = phase_seed % interval;
            let (a, b) = (at(from), at(from + len));
            let mut count = 0u64;
            let mut t = next_planned(a, interval, phase);
            while t <= b { count += 1; t = next_planned(t, interval, phase); }
            prop_assert_eq!(slots_between(a, b, interval, phase), count);
        }
    }
}
