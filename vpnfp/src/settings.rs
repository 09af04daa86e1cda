//! The fingerprint's settings as the user gives them, validated once, turned
//! into what the kernel and the decision need.

use std::{net::Ipv4Addr, str::FromStr};

use vpnfp_common::{
    InternalRanges, Ipv4Range, KernelConfig, NANOS_PER_SEC, Thresholds,
    classify::{MAX_INTERNAL_RANGES, RESEARCH_INTERNAL_RANGES},
    config::FLAG_INTERNAL_HOSTS_ONLY,
};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SettingsError {
    #[error("--count must be at least 1 (got 0)")]
    ZeroCount,
    #[error("--window must be a positive number of seconds (got {0})")]
    BadWindow(f64),
    #[error("--overlap-ratio must be in (0, 1] (got {0})")]
    BadOverlapRatio(f64),
    #[error("at most {MAX_INTERNAL_RANGES} internal ranges fit in the kernel config (got {0})")]
    TooManyRanges(usize),
    #[error("'{0}' is not an IPv4 range like 10.0.0.0/8")]
    BadRange(String),
}

/// An IPv4 prefix as typed on the command line (`10.0.0.0/8`, or a bare
/// address for /32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr(pub Ipv4Range);

impl FromStr for Cidr {
    type Err = SettingsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || SettingsError::BadRange(s.to_string());
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, l.parse::<u8>().map_err(|_| bad())?),
            None => (s, 32),
        };
        if len > 32 {
            return Err(bad());
        }
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        Ok(Cidr(Ipv4Range::new(u32::from(addr), len)))
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}",
            Ipv4Addr::from(self.0.network),
            self.0.prefix_len()
        )
    }
}

/// Validated fingerprint settings, shared by every mode.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub thresholds: Thresholds,
    pub window_ns: u64,
    pub internal: InternalRanges,
    pub internal_hosts_only: bool,
}

impl Settings {
    /// `ranges` empty means the research's list.
    pub fn new(
        count: u64,
        window_secs: f64,
        overlap_ratio: f64,
        ranges: &[Cidr],
        internal_hosts_only: bool,
    ) -> Result<Self, SettingsError> {
        if count == 0 {
            return Err(SettingsError::ZeroCount);
        }
        // Windows are whole nanoseconds; anything under 1 ns is no window.
        if !(window_secs.is_finite() && window_secs * NANOS_PER_SEC as f64 >= 1.0) {
            return Err(SettingsError::BadWindow(window_secs));
        }
        if !(overlap_ratio > 0.0 && overlap_ratio <= 1.0) {
            return Err(SettingsError::BadOverlapRatio(overlap_ratio));
        }
        let internal = if ranges.is_empty() {
            InternalRanges::from_slice(&RESEARCH_INTERNAL_RANGES)
        } else {
            let ranges: Vec<Ipv4Range> = ranges.iter().map(|c| c.0).collect();
            InternalRanges::from_slice(&ranges)
        }
        .ok_or(SettingsError::TooManyRanges(ranges.len()))?;
        Ok(Self {
            thresholds: Thresholds::from_ratio(count, overlap_ratio),
            window_ns: (window_secs * NANOS_PER_SEC as f64).round() as u64,
            internal,
            internal_hosts_only,
        })
    }

    pub fn kernel_config(&self) -> KernelConfig {
        let mut config = KernelConfig::new(self.window_ns, self.internal);
        if self.internal_hosts_only {
            config.flags |= FLAG_INTERNAL_HOSTS_ONLY;
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn research_defaults() {
        let s = Settings::new(10_000, 1200.0, 0.75, &[], false).unwrap();
        assert_eq!(s.thresholds, Thresholds::research());
        assert_eq!(s.window_ns, 1_200 * NANOS_PER_SEC);
        assert_eq!(s.internal, InternalRanges::research());
    }

    #[test]
    fn rejects_invalid_settings() {
        assert_eq!(
            Settings::new(0, 1.0, 0.75, &[], false),
            Err(SettingsError::ZeroCount)
        );
        for w in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e-12] {
            assert!(matches!(
                Settings::new(10, w, 0.75, &[], false),
                Err(SettingsError::BadWindow(_))
            ));
        }
        for r in [0.0, -0.5, 1.01, f64::NAN] {
            assert!(matches!(
                Settings::new(10, 1.0, r, &[], false),
                Err(SettingsError::BadOverlapRatio(_))
            ));
        }
        let many = vec![Cidr::from_str("10.0.0.0/8").unwrap(); 17];
        assert_eq!(
            Settings::new(10, 1.0, 0.75, &many, false),
            Err(SettingsError::TooManyRanges(17))
        );
    }

    #[test]
    fn parses_ranges() {
        assert_eq!(
            "10.1.2.3/8".parse::<Cidr>().unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(
            "192.0.2.1".parse::<Cidr>().unwrap().to_string(),
            "192.0.2.1/32"
        );
        for bad in ["10.0.0.0/33", "10.0.0/8", "x", "10.0.0.0/"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        let custom = Settings::new(10, 1.0, 0.75, &["10.0.0.0/8".parse().unwrap()], true).unwrap();
        assert_eq!(custom.internal.len, 1);
        assert_eq!(custom.kernel_config().flags, FLAG_INTERNAL_HOSTS_ONLY);
    }
}
