//! Half-open time spans `[start, end)` and the set arithmetic uptime and maintenance need.

use chrono::{DateTime, TimeDelta, Utc};

/// `[start, end)`; empty when `end <= start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Span {
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        Span { start, end }
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.start <= at && at < self.end
    }

    pub fn overlaps(&self, other: &Span) -> bool {
        self.start < other.end && other.start < self.end
    }

    pub fn length(&self) -> TimeDelta {
        if self.is_empty() { TimeDelta::zero() } else { self.end - self.start }
    }

    /// The part of `self` inside `other`.
    pub fn clip(&self, other: &Span) -> Span {
        Span { start: self.start.max(other.start), end: self.end.min(other.end) }
    }
}

/// Sorted, disjoint, non-empty spans covering exactly the union of `spans` (touching spans merge).
pub fn union(mut spans: Vec<Span>) -> Vec<Span> {
    spans.retain(|s| !s.is_empty());
    spans.sort();
    let mut out: Vec<Span> = Vec::with_capacity(spans.len());
    for span in spans {
        match out.last_mut() {
            Some(last) if span.start <= last.end => last.end = last.end.max(span.end),
            _ => out.push(span),
        }
    }
    out
}

/// `a \ b` for normalised inputs (see [`union`]); the result is normalised.
pub fn subtract(a: &[Span], b: &[Span]) -> Vec<Span> {
    let mut out = Vec::new();
    let mut j = 0;
    for span in a {
        let mut start = span.start;
        while j < b.len() && b[j].end <= start {
            j += 1;
        }
        let mut k = j;
        while k < b.len() && b[k].start < span.end {
            if b[k].start > start {
                out.push(Span::new(start, b[k].start));
            }
            start = start.max(b[k].end);
            k += 1;
        }
        if start < span.end {
            out.push(Span::new(start, span.end));
        }
    }
    out
}

/// `a ∩ b` for normalised inputs; the result is normalised.
pub fn intersect(a: &[Span], b: &[Span]) -> Vec<Span> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        let clipped = a[i].clip(&b[j]);
        if !clipped.is_empty() {
            out.push(clipped);
        }
        if a[i].end < b[j].end { i += 1 } else { j += 1 }
    }
    out
}

/// Total length of normalised spans.
pub fn measure(spans: &[Span]) -> TimeDelta {
    spans.iter().map(Span::length).fold(TimeDelta::zero(), |a, b| a + b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn spans() -> impl Strategy<Value = Vec<Span>> {
        proptest::collection::vec((0i64..1_000, 0i64..200), 0..8).prop_map(|v| {
            v.into_iter()
                .map(|(s, l)| {
                    let at = |x: i64| DateTime::from_timestamp(x, 0).unwrap_or_default();
                    Span::new(at(s), at(s + l))
                })
                .collect()
        })
    }

    fn covered(spans: &[Span], x: i64) -> bool {
        let at = DateTime::from_timestamp(x, 0).unwrap_or_default();
        spans.iter().any(|s| s.contains(at))
    }

    proptest! {
        #[test]
        fn set_operations_agree_pointwise(a in spans(), b in spans()) {
            let (ua, ub) = (union(a.clone()), union(b.clone()));
            let diff = subtract(&ua, &ub);
            let both = intersect(&ua, &ub);
            prop_assert!(diff.windows(2).all(|w| w[0].end < w[1].start));
            prop_assert!(both.windows(2).all(|w| w[0].end <= w[1].start));
            for x in 0..1_200 {
                prop_assert_eq!(covered(&ua, x), covered(&a, x));
                prop_assert_eq!(covered(&diff, x), covered(&a, x) && !covered(&b, x));
                prop_assert_eq!(covered(&both, x), covered(&a, x) && covered(&b, x));
            }
            prop_assert_eq!(measure(&ua), measure(&diff) + measure(&both));
        }
    }
}
