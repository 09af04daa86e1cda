//! The fingerprint's settings as the user gives them, validated once, turned
//! into what the kernel and the engine need. Every duration is checked here,
//! before anything is attached or any rule added.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    str::FromStr,
    time::Duration,
};

use vpnfp_common::{
    InternalRanges, InternalRanges6, Ipv4Range, Ipv6Range, KernelConfig, NANOS_PER_SEC, Thresholds,
    classify::{DEFAULT_INTERNAL_RANGES6, MAX_INTERNAL_RANGES, RESEARCH_INTERNAL_RANGES},
    config::{FLAG_INTERNAL_HOSTS_ONLY, FLAG_NO_FLOWS},
    record::SAMPLE_MAX,
};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SettingsError {
    #[error("--count must be at least 1 (got 0)")]
    ZeroCount,
    #[error("--{flag} must be a number of seconds from {min} to {max} (got {value})")]
    BadDuration {
        flag: &'static str,
        value: f64,
        min: String,
        max: String,
    },
    #[error("--overlap-ratio must be in (0, 1] (got {0})")]
    BadOverlapRatio(f64),
    #[error("--concentration-share must be in (0.5, 1] (got {0})")]
    BadShare(f64),
    #[error(
        "at most {MAX_INTERNAL_RANGES} internal ranges per address family fit in the kernel config (got {0})"
    )]
    TooManyRanges(usize),
    #[error("'{0}' is not an IP range like 10.0.0.0/8 or fd00::/8")]
    BadRange(String),
    #[error("--inspect-packets must be at most 255 (got {0})")]
    TooManyInspected(u32),
    #[error("--sample-bytes must be from 1 to {SAMPLE_MAX} (got {0})")]
    BadSampleBytes(u32),
}

/// An IP prefix as typed on the command line (`10.0.0.0/8`, `fd00::/8`, or
/// a bare address for a single host).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cidr {
    V4(Ipv4Range),
    V6(Ipv6Range),
}

impl FromStr for Cidr {
    type Err = SettingsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || SettingsError::BadRange(s.to_string());
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l.parse::<u8>().map_err(|_| bad())?)),
            None => (s, None),
        };
        match addr.parse::<IpAddr>().map_err(|_| bad())? {
            IpAddr::V4(a) => {
                let len = len.unwrap_or(32);
                if len > 32 {
                    return Err(bad());
                }
                Ok(Cidr::V4(Ipv4Range::new(u32::from(a), len)))
            }
            IpAddr::V6(a) => {
                let len = len.unwrap_or(128);
                if len > 128 {
                    return Err(bad());
                }
                Ok(Cidr::V6(Ipv6Range::new(a.octets(), len)))
            }
        }
    }
}

impl Cidr {
    /// Whether `addr` is inside the prefix.
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self, addr) {
            (Cidr::V4(r), IpAddr::V4(a)) => r.contains(u32::from(a)),
            (Cidr::V6(r), IpAddr::V6(a)) => r.contains(&vpnfp_common::V6(a.octets())),
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cidr::V4(r) => write!(f, "{}/{}", Ipv4Addr::from(r.network), r.prefix_len()),
            Cidr::V6(r) => {
                let mut b = [0u8; 16];
                b[..8].copy_from_slice(&r.network[0].to_be_bytes());
                b[8..].copy_from_slice(&r.network[1].to_be_bytes());
                write!(f, "{}/{}", Ipv6Addr::from(b), r.prefix_len())
            }
        }
    }
}

/// A number of seconds from the command line, validated: finite, within
/// `min..=max` (the bounds keep windows closable and timers representable).
pub fn duration(
    flag: &'static str,
    secs: f64,
    min: f64,
    max: f64,
) -> Result<Duration, SettingsError> {
    if !(secs.is_finite() && secs >= min && secs <= max) {
        return Err(SettingsError::BadDuration {
            flag,
            value: secs,
            min: if min == 0.0 {
                "0".into()
            } else {
                format!("{min}")
            },
            max: format!("{max}"),
        });
    }
    Ok(Duration::from_secs_f64(secs))
}

/// One week: longer windows or timeouts are surely a typo (the research's
/// window is 20 minutes).
pub const MAX_WINDOW_SECS: f64 = 7.0 * 86_400.0;

/// What the user asked for, before validation.
#[derive(Clone, Debug, PartialEq)]
pub struct SettingsInput {
    pub count: u64,
    pub window_secs: f64,
    pub overlap_ratio: f64,
    pub ranges: Vec<Cidr>,
    pub internal_hosts_only: bool,
    pub concentration_window_secs: f64,
    pub concentration_share: f64,
    pub concentration_min_packets: u32,
    pub flows: bool,
    pub flow_idle_secs: f64,
    pub flow_active_secs: f64,
    pub inspect_packets: u32,
    pub sample_bytes: u32,
    /// How long evidence keeps a host's verdict (None: from the windows).
    pub verdict_hold_secs: Option<f64>,
}

/// Payload packets per flow handed to identification by default: the
/// signatures need 1 to 6, obfuscated OpenVPN's opcode pattern 10.
pub const DEFAULT_INSPECT_PACKETS: u32 = 12;

impl SettingsInput {
    /// The research's defaults and vpnfp's.
    pub fn defaults() -> Self {
        Self {
            count: vpnfp_common::decision::DEFAULT_COUNT,
            window_secs: vpnfp_common::decision::DEFAULT_WINDOW_SECS as f64,
            overlap_ratio: vpnfp_common::decision::DEFAULT_OVERLAP_RATIO,
            ranges: Vec::new(),
            internal_hosts_only: false,
            concentration_window_secs: 60.0,
            concentration_share: 0.9,
            concentration_min_packets: 600,
            flows: true,
            flow_idle_secs: 60.0,
            flow_active_secs: 300.0,
            inspect_packets: DEFAULT_INSPECT_PACKETS,
            sample_bytes: SAMPLE_MAX as u32,
            verdict_hold_secs: None,
        }
    }
}

/// Validated fingerprint settings, shared by every mode.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub thresholds: Thresholds,
    pub window_ns: u64,
    pub internal: InternalRanges,
    pub internal6: InternalRanges6,
    pub ranges: Vec<Cidr>,
    pub internal_hosts_only: bool,
    pub concentration_window_ns: u64,
    pub concentration_share: f64,
    pub concentration_min_packets: u32,
    pub flows: bool,
    pub flow_idle_ns: u64,
    pub flow_active_ns: u64,
    pub inspect_packets: u32,
    pub sample_bytes: u32,
    /// Evidence keeps a host's verdict this long after it was last seen.
    pub verdict_hold_ns: u64,
}

fn ns(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

impl Settings {
    pub fn new(input: &SettingsInput) -> Result<Self, SettingsError> {
        if input.count == 0 {
            return Err(SettingsError::ZeroCount);
        }
        // Windows are whole nanoseconds; anything under 1 ns is no window.
        let window = duration("window", input.window_secs, 1e-9, MAX_WINDOW_SECS)?;
        if window.is_zero() {
            return Err(SettingsError::BadDuration {
                flag: "window",
                value: input.window_secs,
                min: "1e-9".into(),
                max: format!("{MAX_WINDOW_SECS}"),
            });
        }
        if !(input.overlap_ratio > 0.0 && input.overlap_ratio <= 1.0) {
            return Err(SettingsError::BadOverlapRatio(input.overlap_ratio));
        }
        if !(input.concentration_share > 0.5 && input.concentration_share <= 1.0) {
            return Err(SettingsError::BadShare(input.concentration_share));
        }
        let concentration = duration(
            "concentration-window",
            input.concentration_window_secs,
            0.0,
            3_600.0,
        )?;
        let idle = duration("flow-idle", input.flow_idle_secs, 1.0, 86_400.0)?;
        let active = duration("flow-active", input.flow_active_secs, 0.0, 86_400.0)?;
        if input.inspect_packets > 255 {
            return Err(SettingsError::TooManyInspected(input.inspect_packets));
        }
        if input.sample_bytes == 0 || input.sample_bytes as usize > SAMPLE_MAX {
            return Err(SettingsError::BadSampleBytes(input.sample_bytes));
        }
        // By default evidence outlives the longest gap between its
        // refreshes: two research windows, two concentration windows, two
        // flow deltas, and never less than ten minutes.
        let verdict_hold = match input.verdict_hold_secs {
            Some(secs) => duration("verdict-hold", secs, 1.0, 30.0 * 86_400.0)?,
            None => [
                window * 2,
                concentration * 2,
                active * 2,
                Duration::from_secs(600),
            ]
            .into_iter()
            .max()
            .unwrap_or_default(),
        };
        let v4: Vec<Ipv4Range> = input
            .ranges
            .iter()
            .filter_map(|c| match c {
                Cidr::V4(r) => Some(*r),
                Cidr::V6(_) => None,
            })
            .collect();
        let v6: Vec<Ipv6Range> = input
            .ranges
            .iter()
            .filter_map(|c| match c {
                Cidr::V6(r) => Some(*r),
                Cidr::V4(_) => None,
            })
            .collect();
        // Ranges given for one family replace that family's defaults only.
        let internal = if v4.is_empty() {
            InternalRanges::from_slice(&RESEARCH_INTERNAL_RANGES)
        } else {
            InternalRanges::from_slice(&v4)
        }
        .ok_or(SettingsError::TooManyRanges(v4.len()))?;
        let internal6 = if v6.is_empty() {
            InternalRanges6::from_slice(&DEFAULT_INTERNAL_RANGES6)
        } else {
            InternalRanges6::from_slice(&v6)
        }
        .ok_or(SettingsError::TooManyRanges(v6.len()))?;
        let mut ranges: Vec<Cidr> = internal.as_slice().iter().map(|r| Cidr::V4(*r)).collect();
        ranges.extend(internal6.as_slice().iter().map(|r| Cidr::V6(*r)));
        Ok(Self {
            thresholds: Thresholds::from_ratio(input.count, input.overlap_ratio),
            window_ns: ns(window),
            internal,
            internal6,
            ranges,
            internal_hosts_only: input.internal_hosts_only,
            concentration_window_ns: ns(concentration),
            concentration_share: input.concentration_share,
            concentration_min_packets: input.concentration_min_packets,
            flows: input.flows,
            flow_idle_ns: ns(idle),
            flow_active_ns: ns(active),
            inspect_packets: input.inspect_packets,
            sample_bytes: input.sample_bytes,
            verdict_hold_ns: ns(verdict_hold),
        })
    }

    pub fn kernel_config(&self) -> KernelConfig {
        let mut config = KernelConfig::new(self.window_ns, self.internal);
        config.internal6 = self.internal6;
        if self.internal_hosts_only {
            config.flags |= FLAG_INTERNAL_HOSTS_ONLY;
        }
        if !self.flows {
            config.flags |= FLAG_NO_FLOWS;
        }
        config.concentration_window_ns = self.concentration_window_ns;
        config.concentration_min_packets = self.concentration_min_packets;
        config.flow_active_ns = self.flow_active_ns;
        config.flow_idle_ns = self.flow_idle_ns;
        config.inspect_packets = self.inspect_packets;
        config.sample_bytes = self.sample_bytes;
        config
    }

    /// Whether `addr` is in the internal ranges.
    pub fn is_internal(&self, addr: IpAddr) -> bool {
        self.ranges.iter().any(|r| r.contains(addr))
    }
}

/// Seconds as nanoseconds.
pub fn secs_ns(secs: u64) -> u64 {
    secs.saturating_mul(NANOS_PER_SEC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> SettingsInput {
        SettingsInput::defaults()
    }

    #[test]
    fn research_defaults() {
        let s = Settings::new(&input()).unwrap();
        assert_eq!(s.thresholds, Thresholds::research());
        assert_eq!(s.window_ns, 1_200 * NANOS_PER_SEC);
        assert_eq!(s.internal, InternalRanges::research());
        assert_eq!(s.internal6, InternalRanges6::default_list());
    }

    #[test]
    fn rejects_invalid_settings() {
        let with = |f: &dyn Fn(&mut SettingsInput)| {
            let mut i = input();
            f(&mut i);
            Settings::new(&i)
        };
        assert_eq!(with(&|i| i.count = 0), Err(SettingsError::ZeroCount));
        for w in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e-12, 1e300] {
            assert!(matches!(
                with(&|i| i.window_secs = w),
                Err(SettingsError::BadDuration { flag: "window", .. })
            ));
        }
        for r in [0.0, -0.5, 1.01, f64::NAN] {
            assert!(matches!(
                with(&|i| i.overlap_ratio = r),
                Err(SettingsError::BadOverlapRatio(_))
            ));
        }
        assert!(matches!(
            with(&|i| i.flow_idle_secs = 1e19),
            Err(SettingsError::BadDuration { .. })
        ));
        let many = vec![Cidr::from_str("10.0.0.0/8").unwrap(); 17];
        assert_eq!(
            with(&|i| i.ranges = many.clone()),
            Err(SettingsError::TooManyRanges(17))
        );
    }

    #[test]
    fn parses_ranges_of_both_families() {
        assert_eq!(
            "10.1.2.3/8".parse::<Cidr>().unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(
            "192.0.2.1".parse::<Cidr>().unwrap().to_string(),
            "192.0.2.1/32"
        );
        assert_eq!(
            "fd12:3456::1/16".parse::<Cidr>().unwrap().to_string(),
            "fd12::/16"
        );
        for bad in ["10.0.0.0/33", "10.0.0/8", "x", "10.0.0.0/", "::/129"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        let mut i = input();
        i.ranges = vec!["10.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()];
        i.internal_hosts_only = true;
        let custom = Settings::new(&i).unwrap();
        assert_eq!((custom.internal.len, custom.internal6.len), (1, 1));
        assert_eq!(
            custom.kernel_config().flags & FLAG_INTERNAL_HOSTS_ONLY,
            FLAG_INTERNAL_HOSTS_ONLY
        );
        assert!(custom.is_internal("fd00::5".parse().unwrap()));
        assert!(!custom.is_internal("192.168.1.1".parse().unwrap()));
    }
}
