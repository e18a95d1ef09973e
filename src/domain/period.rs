//! `Period`: when something holds, from an instant to an optional end (open = still holds).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// A half-open interval `[start, end)`; no `end` means it still holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Period {
    #[schema(value_type = String, format = DateTime)]
    pub start: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub end: Option<Timestamp>,
}

impl Period {
    pub fn from(start: Timestamp) -> Self {
        Self { start, end: None }
    }

    /// An end, when given, comes after the start.
    pub fn is_well_formed(&self) -> bool {
        self.end.is_none_or(|end| end > self.start)
    }

    /// Whether the two periods share any instant.
    pub fn overlaps(&self, other: &Period) -> bool {
        let before_end = |t: Timestamp, p: &Period| p.end.is_none_or(|end| t < end);
        before_end(self.start, other) && before_end(other.start, self)
    }

    /// Whether the period holds at `at`.
    pub fn contains(&self, at: Timestamp) -> bool {
        self.start <= at && self.end.is_none_or(|end| at < end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    #[test]
    fn back_to_back_periods_do_not_overlap() {
        let a = Period {
            start: ts(0),
            end: Some(ts(100)),
        };
        let b = Period {
            start: ts(100),
            end: None,
        };
        assert!(!a.overlaps(&b) && !b.overlaps(&a));
        let c = Period {
            start: ts(99),
            end: Some(ts(200)),
        };
        assert!(a.overlaps(&c) && c.overlaps(&b));
    }

    #[test]
    fn open_periods_overlap_everything_after_them() {
        assert!(Period::from(ts(0)).overlaps(&Period::from(ts(1_000_000))));
    }

    #[test]
    fn well_formed_needs_end_after_start() {
        assert!(Period::from(ts(5)).is_well_formed());
        assert!(
            !Period {
                start: ts(5),
                end: Some(ts(5))
            }
            .is_well_formed()
        );
        assert!(
            !Period {
                start: ts(5),
                end: Some(ts(4))
            }
            .is_well_formed()
        );
    }

    proptest! {
        #[test]
        fn overlap_is_symmetric_and_agrees_with_containment(a in 0i64..100, la in 1i64..50, b in 0i64..100, lb in 1i64..50) {
            let p = Period { start: ts(a), end: Some(ts(a + la)) };
            let q = Period { start: ts(b), end: Some(ts(b + lb)) };
            prop_assert_eq!(p.overlaps(&q), q.overlaps(&p));
            let shared = (a.max(b)..(a + la).min(b + lb)).any(|t| p.contains(ts(t)) && q.contains(ts(t)));
            prop_assert_eq!(p.overlaps(&q), shared);
        }
    }
}
