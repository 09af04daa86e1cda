//! Step 3 of the research: the decision at a window close.

use crate::WindowClose;

/// The research's defaults.
pub const DEFAULT_COUNT: u64 = 10_000;
pub const DEFAULT_WINDOW_SECS: u64 = 1_200;
pub const DEFAULT_OVERLAP_RATIO: f64 = 0.75;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    /// Suspect when `count_this > count`.
    pub count: u64,
    /// Suspect when `count_prev + count_this > overlap`. The research compares
    /// with the real number `ratio * count`; for an integer sum `s`,
    /// `s > x` is `s > floor(x)`, so the floor is stored and the comparison
    /// stays exact in integers (the kernel has no floats).
    pub overlap: u64,
}

impl Thresholds {
    /// `ratio * count` computed in f64 as the reference does, then floored.
    pub fn from_ratio(count: u64, ratio: f64) -> Self {
        let overlap = ratio * count as f64;
        Self {
            count,
            overlap: if overlap <= 0.0 { 0 } else { overlap as u64 },
        }
    }

    pub fn research() -> Self {
        Self::from_ratio(DEFAULT_COUNT, DEFAULT_OVERLAP_RATIO)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// `count_this > COUNT`.
    Count,
    /// `count_prev + count_this > OVERLAP` (and not `Count`).
    Overlap,
}

impl Reason {
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::Count => "count",
            Reason::Overlap => "overlap",
        }
    }
}

/// `Some(reason)` when the closed window makes its host a suspected VPN user.
#[inline(always)]
pub fn decide<A>(close: &WindowClose<A>, thresholds: &Thresholds) -> Option<Reason> {
    if close.count_this > thresholds.count {
        Some(Reason::Count)
    } else if close.count_prev.saturating_add(close.count_this) > thresholds.overlap {
        Some(Reason::Overlap)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(count_this: u64, count_prev: u64) -> WindowClose<u32> {
        WindowClose {
            count_this,
            count_prev,
            ..Default::default()
        }
    }

    #[test]
    fn research_defaults() {
        assert_eq!(
            Thresholds::research(),
            Thresholds {
                count: 10_000,
                overlap: 7_500
            }
        );
    }

    #[test]
    fn comparisons_are_strict() {
        let th = Thresholds::research();
        // 10,000 is not above COUNT, but it is above OVERLAP on its own.
        assert_eq!(decide(&close(10_000, 0), &th), Some(Reason::Overlap));
        assert_eq!(decide(&close(10_001, 0), &th), Some(Reason::Count));
        assert_eq!(decide(&close(7_500, 0), &th), None);
        assert_eq!(decide(&close(7_501, 0), &th), Some(Reason::Overlap));
        assert_eq!(decide(&close(3_000, 4_500), &th), None);
        assert_eq!(decide(&close(3_000, 4_501), &th), Some(Reason::Overlap));
        // Both hold: count wins.
        assert_eq!(decide(&close(10_001, 10_000), &th), Some(Reason::Count));
    }

    #[test]
    fn fractional_overlap_is_compared_as_the_real_number() {
        // OVERLAP = 7.5: 7 is not above it, 8 is.
        let th = Thresholds::from_ratio(10, 0.75);
        assert_eq!(decide(&close(3, 4), &th), None);
        assert_eq!(decide(&close(4, 4), &th), Some(Reason::Overlap));
        // Ratio 1: overlap equals count.
        assert_eq!(Thresholds::from_ratio(10, 1.0).overlap, 10);
    }
}
