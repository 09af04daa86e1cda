//! What vpnfp says about a closed window: for a suspected VPN user one
//! human-readable log line, and with `--json` one JSON object per line
//! (`--all-windows` adds the windows that were not suspected).

use std::{fmt::Write as _, net::Ipv4Addr};

use vpnfp_common::{Reason, Thresholds, WindowClose, decide};

/// Which path saw the packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Xdp,
    Nfqueue,
    Replay,
}

impl Mode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Xdp => "xdp",
            Mode::Nfqueue => "nfqueue",
            Mode::Replay => "replay",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowReport {
    pub mode: Mode,
    pub host: Ipv4Addr,
    pub peer: Ipv4Addr,
    /// Unix time, nanoseconds.
    pub window_start_ns: u64,
    pub window_end_ns: u64,
    pub count_this: u64,
    pub count_prev: u64,
    /// `Some` when the window makes the host a suspected VPN user.
    pub reason: Option<Reason>,
}

impl WindowReport {
    /// Applies the research's decision to a closed window; `to_unix_ns` maps
    /// the record's clock to Unix time.
    pub fn judge(
        mode: Mode,
        closed: &WindowClose,
        thresholds: &Thresholds,
        to_unix_ns: impl Fn(u64) -> u64,
    ) -> Self {
        Self {
            mode,
            host: Ipv4Addr::from(closed.host),
            peer: Ipv4Addr::from(closed.peer),
            window_start_ns: to_unix_ns(closed.window_start_ns),
            window_end_ns: to_unix_ns(closed.window_end_ns),
            count_this: closed.count_this,
            count_prev: closed.count_prev,
            reason: decide(closed, thresholds),
        }
    }

    pub fn window_ns(&self) -> u64 {
        self.window_end_ns.saturating_sub(self.window_start_ns)
    }

    /// One line, the fields in the order a reader scans them.
    pub fn human(&self) -> String {
        format!(
            "{}: host {} -> peer {}: {} packets in a {} s window (previous window {}; rule: {})",
            if self.reason.is_some() {
                "suspected VPN"
            } else {
                "window closed"
            },
            self.host,
            self.peer,
            self.count_this,
            seconds(self.window_ns()),
            self.count_prev,
            self.reason.map_or("none", Reason::as_str)
        )
    }

    /// One JSON object, no trailing newline. Numbers and dotted quads only,
    /// so no escaping is needed.
    pub fn json(&self) -> String {
        let mut s = String::with_capacity(256);
        let _ = write!(
            s,
            concat!(
                "{{\"event\":\"{}\",\"mode\":\"{}\",\"host\":\"{}\",\"peer\":\"{}\",",
                "\"window_start\":{},\"window_end\":{},\"window_secs\":{},",
                "\"count_this\":{},\"count_prev\":{},\"reason\":{}}}"
            ),
            if self.reason.is_some() {
                "suspected_vpn"
            } else {
                "window_closed"
            },
            self.mode.as_str(),
            self.host,
            self.peer,
            seconds(self.window_start_ns),
            seconds(self.window_end_ns),
            seconds_ns(self.window_ns()),
            self.count_this,
            self.count_prev,
            match self.reason {
                Some(reason) => format!("\"{}\"", reason.as_str()),
                None => "null".to_string(),
            }
        );
        s
    }
}

/// Prints window reports: suspected VPN users always (log line, and a JSON
/// line with `json`), other windows only with `all_windows`.
pub struct Reporter {
    pub thresholds: Thresholds,
    pub json: bool,
    pub all_windows: bool,
    /// Windows closed and suspected-VPN reports so far.
    pub closes: u64,
    pub reports: u64,
}

impl Reporter {
    pub fn new(thresholds: Thresholds, json: bool, all_windows: bool) -> Self {
        Self {
            thresholds,
            json,
            all_windows,
            closes: 0,
            reports: 0,
        }
    }

    pub fn window_closed(
        &mut self,
        mode: Mode,
        closed: &WindowClose,
        to_unix_ns: impl Fn(u64) -> u64,
    ) -> WindowReport {
        let report = WindowReport::judge(mode, closed, &self.thresholds, to_unix_ns);
        self.closes += 1;
        if report.reason.is_some() {
            self.reports += 1;
            log::info!("{}", report.human());
        } else {
            log::debug!("{}", report.human());
        }
        if self.json && (report.reason.is_some() || self.all_windows) {
            use std::io::Write;
            // A closed stdout (a pipe whose reader left) must not kill the
            // fingerprinter; the log line above still stands.
            let _ = writeln!(std::io::stdout().lock(), "{}", report.json());
        }
        report
    }
}

/// Nanoseconds as seconds with nanosecond precision: a window length is
/// compared with WINDOW to the nanosecond, so it is printed in full (at
/// microseconds a 2.0000004 s window would read as exactly 2 s).
pub fn seconds_ns(ns: u64) -> String {
    format!("{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000)
}

/// Nanoseconds as seconds with microsecond precision (the research's pcap
/// timestamps), truncated rather than rounded so it never claims a later time.
pub fn seconds(ns: u64) -> String {
    format!("{}.{:06}", ns / 1_000_000_000, (ns % 1_000_000_000) / 1_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed(count_this: u64) -> WindowClose {
        WindowClose {
            host: u32::from(Ipv4Addr::new(192, 168, 1, 10)),
            peer: u32::from(Ipv4Addr::new(198, 51, 100, 7)),
            window_start_ns: 1_000,
            window_end_ns: 5_200_001_999,
            count_this,
            count_prev: 3,
        }
    }

    #[test]
    fn judges_with_the_shared_decision() {
        let th = Thresholds::from_ratio(10, 0.75);
        let quiet = WindowReport::judge(Mode::Xdp, &closed(4), &th, |t| t);
        assert_eq!(quiet.reason, None);
        let v: serde_json::Value = serde_json::from_str(&quiet.json()).unwrap();
        assert_eq!(v["event"], "window_closed");
        assert!(v["reason"].is_null());
        let r = WindowReport::judge(Mode::Xdp, &closed(14), &th, |t| {
            t + 1_700_000_000_000_000_000
        });
        assert_eq!(r.reason, Some(Reason::Count));
        assert_eq!(r.window_start_ns, 1_700_000_000_000_001_000);
    }

    #[test]
    fn json_has_the_documented_fields() {
        let th = Thresholds::from_ratio(10, 0.75);
        let r = WindowReport::judge(Mode::Replay, &closed(14), &th, |t| {
            t + 1_700_000_000_000_000_000
        });
        let v: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
        assert_eq!(v["event"], "suspected_vpn");
        assert_eq!(v["mode"], "replay");
        assert_eq!(v["host"], "192.168.1.10");
        assert_eq!(v["peer"], "198.51.100.7");
        assert_eq!(v["window_start"].as_f64().unwrap(), 1_700_000_000.000001);
        assert_eq!(v["window_end"].as_f64().unwrap(), 1_700_000_005.200001);
        assert_eq!(v["window_secs"].as_f64().unwrap(), 5.200000999);
        assert_eq!(v["count_this"], 14);
        assert_eq!(v["count_prev"], 3);
        assert_eq!(v["reason"], "count");
        assert!(
            r.human()
                .contains("host 192.168.1.10 -> peer 198.51.100.7: 14 packets")
        );
    }

    #[test]
    fn seconds_keep_microseconds() {
        assert_eq!(seconds(0), "0.000000");
        assert_eq!(seconds(5_200_000_000), "5.200000");
        assert_eq!(seconds(1_999), "0.000001");
    }
}
