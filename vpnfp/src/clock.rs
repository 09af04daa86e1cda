//! The XDP program stamps packets with CLOCK_MONOTONIC (`bpf_ktime_get_ns`,
//! about 12 ns cheaper per packet here than the boot-time clock, and its
//! coarse variant where the exact time cannot matter); reports speak Unix
//! time.

use std::io;

fn clock_ns(clock: libc::clockid_t) -> io::Result<i128> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a timespec.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128)
}

/// Unix seconds to the microsecond (the research's pcap timestamps),
/// truncated rather than rounded so it never claims a later time. As an
/// f64 the nearest double to that decimal, which serde_json prints back as
/// the same decimal.
pub fn unix_secs(ns: u64) -> f64 {
    (ns / 1_000) as f64 / 1e6
}

/// Nanoseconds as seconds with nanosecond precision: a window length is
/// compared with WINDOW to the nanosecond, so it is printed in full (at
/// microseconds a 2.0000004 s window would read as exactly 2 s).
pub fn seconds_ns(ns: u64) -> String {
    format!("{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000)
}

/// Nanoseconds as seconds with microsecond precision, truncated.
pub fn seconds(ns: u64) -> String {
    format!("{}.{:06}", ns / 1_000_000_000, (ns % 1_000_000_000) / 1_000)
}

/// A minute in nanoseconds (the budgets that count per minute).
pub const MINUTE_NS: u64 = 60_000_000_000;

/// Unix time now, in seconds (as [`unix_secs`] writes it).
pub fn unix_now_secs() -> f64 {
    unix_secs(unix_now_ns())
}

/// Unix time now, in nanoseconds.
pub fn unix_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Converts the kernel's monotonic nanoseconds to Unix nanoseconds.
#[derive(Clone, Copy, Debug)]
pub struct KernelClock {
    realtime_minus_monotonic_ns: i128,
}

impl KernelClock {
    pub fn now() -> io::Result<Self> {
        let boot = clock_ns(libc::CLOCK_MONOTONIC)?;
        let real = clock_ns(libc::CLOCK_REALTIME)?;
        Ok(Self {
            realtime_minus_monotonic_ns: real - boot,
        })
    }

    /// A clock that leaves timestamps as they are (for records already in
    /// Unix time).
    pub const fn zero() -> Self {
        Self {
            realtime_minus_monotonic_ns: 0,
        }
    }

    /// Current monotonic nanoseconds (what the XDP program sees).
    pub fn kernel_now_ns() -> io::Result<u64> {
        clock_ns(libc::CLOCK_MONOTONIC).map(|ns| ns as u64)
    }

    pub fn to_unix_ns(&self, kernel_ns: u64) -> u64 {
        (kernel_ns as i128 + self.realtime_minus_monotonic_ns).max(0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_time_maps_to_now() {
        let clock = KernelClock::now().unwrap();
        let unix = clock.to_unix_ns(KernelClock::kernel_now_ns().unwrap());
        let real = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        assert!(real.abs_diff(unix) < 1_000_000_000, "{real} vs {unix}");
    }
}
