//! `--metrics ADDR`: vpnfp's own counters in the Prometheus text format,
//! served over plain HTTP (`GET /metrics`).

use std::fmt::Write as _;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use vpnfp_common::{Counters, Outcome};

use crate::report::Mode;

/// One mode's numbers at scrape time.
#[derive(Clone, Copy, Debug, Default)]
pub struct ModeMetrics {
    pub counters: Counters,
    pub hosts_tracked: u64,
    pub hosts_evicted: u64,
    /// NFQUEUE: packets the rule matched that never reached vpnfp.
    pub missed: Option<u64>,
}

/// The exposition text for every running mode.
pub fn render(modes: &[(Mode, ModeMetrics)], reports: u64, windows_reported: u64) -> String {
    let mut out = String::new();
    let mut family =
        |name: &str, kind: &str, help: &str, rows: &mut dyn Iterator<Item = (String, u64)>| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in rows {
                let _ = writeln!(out, "{name}{{{labels}}} {value}");
            }
        };
    let per_mode = |f: &dyn Fn(&ModeMetrics) -> Option<u64>| -> Vec<(String, u64)> {
        modes
            .iter()
            .filter_map(|(mode, m)| f(m).map(|v| (format!("mode=\"{}\"", mode.as_str()), v)))
            .collect()
    };
    family(
        "vpnfp_frames_total",
        "counter",
        "Frames seen, by outcome (every frame has exactly one).",
        &mut modes.iter().flat_map(|(mode, m)| {
            Outcome::ALL.into_iter().map(move |o| {
                (
                    format!("mode=\"{}\",outcome=\"{}\"", mode.as_str(), o.name()),
                    m.counters.outcome(o),
                )
            })
        }),
    );
    family(
        "vpnfp_frames_verdict_total",
        "counter",
        "Frames by verdict: monitor mode passes (XDP_PASS, NF_ACCEPT) every one.",
        &mut modes.iter().map(|(mode, m)| {
            (
                format!("mode=\"{}\",verdict=\"pass\"", mode.as_str()),
                m.counters.seen,
            )
        }),
    );
    family(
        "vpnfp_frames_seen_total",
        "counter",
        "Frames seen.",
        &mut per_mode(&|m| Some(m.counters.seen)).into_iter(),
    );
    family(
        "vpnfp_windows_closed_total",
        "counter",
        "Windows closed (each judged by the research's rule).",
        &mut per_mode(&|m| Some(m.counters.windows_closed)).into_iter(),
    );
    family(
        "vpnfp_ringbuf_records_lost_total",
        "counter",
        "Window-close records lost to a full ring buffer (XDP).",
        &mut per_mode(&|m| Some(m.counters.records_lost)).into_iter(),
    );
    family(
        "vpnfp_hosts_tracked",
        "gauge",
        "Hosts whose state is held.",
        &mut per_mode(&|m| Some(m.hosts_tracked)).into_iter(),
    );
    family(
        "vpnfp_host_evictions_total",
        "counter",
        "Hosts evicted to stay within --max-hosts (least recently seen first).",
        &mut per_mode(&|m| Some(m.hosts_evicted)).into_iter(),
    );
    family(
        "vpnfp_nfqueue_packets_missed_total",
        "counter",
        "Packets the NFQUEUE rule matched that vpnfp never saw (fail-open).",
        &mut per_mode(&|m| m.missed).into_iter(),
    );
    let _ = writeln!(out, "# HELP vpnfp_reports_total Suspected-VPN reports.");
    let _ = writeln!(out, "# TYPE vpnfp_reports_total counter");
    let _ = writeln!(out, "vpnfp_reports_total {reports}");
    let _ = writeln!(
        out,
        "# HELP vpnfp_windows_reported_total Windows closed and reported, all modes."
    );
    let _ = writeln!(out, "# TYPE vpnfp_windows_reported_total counter");
    let _ = writeln!(out, "vpnfp_windows_reported_total {windows_reported}");
    out
}

/// Answers one HTTP request with `body` (for GET /metrics) or 404. The
/// request is read (bounded in size and time) before answering, as clients
/// expect.
pub async fn respond(mut stream: TcpStream, body: String) {
    let mut request = Vec::with_capacity(512);
    let mut buf = [0u8; 512];
    let read = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    if read.is_err() {
        return;
    }
    let line = String::from_utf8_lossy(&request);
    let path = line.split_whitespace().nth(1).unwrap_or("");
    let (status, body) = if path == "/metrics" || path == "/" {
        ("200 OK", body)
    } else {
        ("404 Not Found", "not found: try /metrics\n".to_string())
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_per_mode() {
        let mut m = ModeMetrics::default();
        m.counters.seen = 10;
        m.counters.outcomes[Outcome::Analysed as usize] = 7;
        m.counters.outcomes[Outcome::MalformedTruncated as usize] = 3;
        m.hosts_tracked = 2;
        let text = render(
            &[
                (Mode::Xdp, m),
                (
                    Mode::Nfqueue,
                    ModeMetrics {
                        missed: Some(4),
                        ..m
                    },
                ),
            ],
            1,
            5,
        );
        for line in [
            "vpnfp_frames_total{mode=\"xdp\",outcome=\"analysed\"} 7",
            "vpnfp_frames_total{mode=\"nfqueue\",outcome=\"malformed_truncated\"} 3",
            "vpnfp_frames_verdict_total{mode=\"xdp\",verdict=\"pass\"} 10",
            "vpnfp_hosts_tracked{mode=\"xdp\"} 2",
            "vpnfp_nfqueue_packets_missed_total{mode=\"nfqueue\"} 4",
            "vpnfp_reports_total 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        assert!(!text.contains("vpnfp_nfqueue_packets_missed_total{mode=\"xdp\"}"));
    }
}
