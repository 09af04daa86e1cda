//! `--mode both`: XDP and NFQUEUE on the same traffic, their window closes
//! paired and compared. Both modes see the same packets of a host in the
//! same order, so the k-th window a host closes in one mode is the k-th in
//! the other; counts may differ by the packets in flight at a boundary.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    net::IpAddr,
};

use vpnfp_common::{Reason, Thresholds, WindowClose, decide};

use crate::model::Mode;

#[derive(Default)]
struct HostWindows {
    xdp: Vec<WindowClose<IpAddr>>,
    nfqueue: Vec<WindowClose<IpAddr>>,
}

pub struct Comparison {
    thresholds: Thresholds,
    hosts: BTreeMap<IpAddr, HostWindows>,
}

/// One window as both modes saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairedWindow {
    pub host: IpAddr,
    pub index: usize,
    pub xdp: Option<(IpAddr, u64, Option<Reason>)>,
    pub nfqueue: Option<(IpAddr, u64, Option<Reason>)>,
}

impl PairedWindow {
    pub fn identical_decision(&self) -> bool {
        matches!((&self.xdp, &self.nfqueue), (Some(x), Some(n)) if x.0 == n.0 && x.2 == n.2)
    }

    /// |count difference| when both sides have the window.
    pub fn count_difference(&self) -> Option<u64> {
        match (&self.xdp, &self.nfqueue) {
            (Some(x), Some(n)) => Some(x.1.abs_diff(n.1)),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct ComparisonReport {
    pub flagged_xdp: BTreeSet<IpAddr>,
    pub flagged_nfqueue: BTreeSet<IpAddr>,
    pub windows: Vec<PairedWindow>,
    /// Windows closed in one mode whose partner is still open in the other
    /// (only in reports made while running).
    pub pending: usize,
}

impl ComparisonReport {
    pub fn identical(&self) -> usize {
        self.windows
            .iter()
            .filter(|w| w.identical_decision())
            .count()
    }

    /// Share of windows with the same decision in both modes (1 when none).
    pub fn share_identical(&self) -> f64 {
        if self.windows.is_empty() {
            1.0
        } else {
            self.identical() as f64 / self.windows.len() as f64
        }
    }

    pub fn max_count_difference(&self) -> u64 {
        self.windows
            .iter()
            .filter_map(PairedWindow::count_difference)
            .max()
            .unwrap_or(0)
    }

    /// A table for people.
    pub fn human(&self) -> String {
        let list = |s: &BTreeSet<IpAddr>| {
            if s.is_empty() {
                "none".to_string()
            } else {
                s.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        let side = |s: &Option<(IpAddr, u64, Option<Reason>)>| match s {
            Some((peer, count, reason)) => format!(
                "{count:>8} {:<8} {peer}",
                reason.map_or("-", Reason::as_str)
            ),
            None => format!("{:>8} {:<8}", "(none)", ""),
        };
        let mut out = String::new();
        let _ = writeln!(out, "XDP vs NFQUEUE on the same traffic:");
        let _ = writeln!(
            out,
            "  hosts flagged by XDP:     {}",
            list(&self.flagged_xdp)
        );
        let _ = writeln!(
            out,
            "  hosts flagged by NFQUEUE: {}",
            list(&self.flagged_nfqueue)
        );
        let _ = writeln!(
            out,
            "  {:<16} {:>3} | {:<32} | {:<32} | same",
            "host", "#", "XDP: packets rule peer", "NFQUEUE: packets rule peer"
        );
        for w in &self.windows {
            let _ = writeln!(
                out,
                "  {:<16} {:>3} | {:<32} | {:<32} | {}",
                w.host.to_string(),
                w.index + 1,
                side(&w.xdp),
                side(&w.nfqueue),
                if w.identical_decision() { "yes" } else { "NO" }
            );
        }
        let _ = write!(
            out,
            "  {} of {} windows decided identically ({:.1}%), largest count difference {}{}",
            self.identical(),
            self.windows.len(),
            100.0 * self.share_identical(),
            self.max_count_difference(),
            if self.pending > 0 {
                format!(", {} windows still open in one mode", self.pending)
            } else {
                String::new()
            }
        );
        out
    }

    /// The report as one JSON object (`"event": "comparison"`).
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "event": "comparison",
            "hosts_flagged_xdp": self.flagged_xdp,
            "hosts_flagged_nfqueue": self.flagged_nfqueue,
            "windows": self.windows.len(),
            "identical_decisions": self.identical(),
            "share_identical": self.share_identical(),
            "max_count_difference": self.max_count_difference(),
            "pending": self.pending,
        })
    }
}

impl Comparison {
    pub fn new(thresholds: Thresholds) -> Self {
        Self {
            thresholds,
            hosts: BTreeMap::new(),
        }
    }

    pub fn record(&mut self, mode: Mode, closed: &WindowClose<IpAddr>) {
        let host = self.hosts.entry(closed.host).or_default();
        match mode {
            Mode::Xdp => host.xdp.push(*closed),
            Mode::Nfqueue => host.nfqueue.push(*closed),
            Mode::Replay => {}
        }
    }

    /// `final_report`: both modes are drained, so a window one mode lacks is
    /// a disagreement; otherwise it is still pending.
    pub fn report(&self, final_report: bool) -> ComparisonReport {
        let mut report = ComparisonReport::default();
        let side = |w: Option<&WindowClose<IpAddr>>| {
            w.map(|w| (w.peer, w.count_this, decide(w, &self.thresholds)))
        };
        for (&host, windows) in &self.hosts {
            let paired = windows.xdp.len().min(windows.nfqueue.len());
            let total = windows.xdp.len().max(windows.nfqueue.len());
            for index in 0..total {
                if index >= paired && !final_report {
                    report.pending += 1;
                    continue;
                }
                let w = PairedWindow {
                    host,
                    index,
                    xdp: side(windows.xdp.get(index)),
                    nfqueue: side(windows.nfqueue.get(index)),
                };
                if w.xdp.is_some_and(|x| x.2.is_some()) {
                    report.flagged_xdp.insert(host);
                }
                if w.nfqueue.is_some_and(|n| n.2.is_some()) {
                    report.flagged_nfqueue.insert(host);
                }
                report.windows.push(w);
            }
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(host: u32, count_this: u64) -> WindowClose<IpAddr> {
        WindowClose {
            host: std::net::Ipv4Addr::from(host).into(),
            peer: std::net::Ipv4Addr::new(198, 51, 100, 7).into(),
            window_start_ns: 0,
            window_end_ns: 0,
            count_prev: 0,
            count_this,
        }
    }

    #[test]
    fn pairs_windows_in_order_and_counts_agreement() {
        let mut c = Comparison::new(Thresholds::from_ratio(100, 0.75));
        c.record(Mode::Xdp, &close(1, 200));
        c.record(Mode::Nfqueue, &close(1, 199));
        c.record(Mode::Xdp, &close(1, 76));
        c.record(Mode::Nfqueue, &close(1, 74));
        c.record(Mode::Xdp, &close(2, 10));
        let running = c.report(false);
        assert_eq!((running.windows.len(), running.pending), (2, 1));
        assert_eq!(running.identical(), 1, "76 is above OVERLAP 75, 74 is not");
        assert_eq!(running.max_count_difference(), 2);
        let done = c.report(true);
        assert_eq!((done.windows.len(), done.pending), (3, 0));
        assert_eq!(done.identical(), 1);
        assert!(
            done.flagged_xdp
                .contains(&IpAddr::from(std::net::Ipv4Addr::from(1)))
        );
        let v = done.json();
        assert_eq!(v["windows"], 3);
        assert_eq!(v["identical_decisions"], 1);
        assert!(done.human().contains("1 of 3 windows decided identically"));
    }
}
