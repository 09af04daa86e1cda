//! `vpnfp report` as tables for people: the text beside `html.rs`'s page.

use std::fmt::Write;

use crate::{
    output::html::{bytes, time},
    store::query::Report,
};

/// Tables for people.
pub fn report(r: &Report) -> String {
    let mut s = String::new();
    if r.hosts.is_empty() && r.flagged.is_empty() {
        return "The store holds nothing for this range.\n".to_string();
    }
    let _ = writeln!(
        s,
        "vpnfp report: {} to {} ({}); {} hosts seen, {} flagged\n",
        time(r.since),
        time(r.until),
        r.mode,
        r.hosts_seen,
        r.flagged.len()
    );
    if r.future_rows > 0 {
        let _ = writeln!(
            s,
            "{} rows are dated more than a day after this machine's clock: kept, not in this range\n",
            r.future_rows
        );
    }
    let _ = writeln!(
        s,
        "{:<40} {:<10} {:<28} {:>10} {:>10} {:>6}",
        "host", "verdict", "protocols", "up", "down", "flows"
    );
    for h in &r.hosts {
        let _ = writeln!(
            s,
            "{:<40} {:<10} {:<28} {:>10} {:>10} {:>6}",
            h.host,
            h.verdict,
            if h.protocols.is_empty() {
                "-".to_string()
            } else {
                h.protocols.join(",")
            },
            bytes(h.bytes_up),
            bytes(h.bytes_down),
            h.flows
        );
    }
    for h in r.hosts.iter().filter(|h| h.verdict != "none") {
        let _ = writeln!(s, "\n{} ({}):", h.host, h.verdict);
        if let (Some(a), Some(b)) = (h.first_flagged, h.last_flagged) {
            let _ = writeln!(s, "  flagged {} to {}", time(a), time(b));
        }
        for d in &h.detections {
            let _ = writeln!(
                s,
                "  {} ({}) with {}{}: {} flows, {} to {}",
                d.protocol,
                d.class,
                d.peer.addr,
                d.peer
                    .name
                    .as_ref()
                    .map_or(String::new(), |n| format!(" ({n})")),
                d.flows,
                time(d.first),
                time(d.last)
            );
        }
        if !h.reasons.is_empty() {
            let _ = writeln!(s, "  reasons: {}", h.reasons.join("; "));
        }
        let top: Vec<String> = h
            .top_peers
            .iter()
            .map(|p| {
                format!(
                    "{}{} {}",
                    p.peer.addr,
                    p.peer
                        .name
                        .as_ref()
                        .map_or(String::new(), |n| format!(" ({n})")),
                    bytes(p.bytes)
                )
            })
            .collect();
        let _ = writeln!(s, "  top peers: {}", top.join(", "));
    }
    let totals: std::collections::BTreeMap<&String, i64> = r
        .protocols_over_time
        .iter()
        .flat_map(|slot| slot.counts.iter())
        .fold(Default::default(), |mut m, (p, c)| {
            *m.entry(p).or_default() += c;
            m
        });
    if !totals.is_empty() {
        let _ = writeln!(s, "\nidentifications over the range:");
        for (p, c) in totals {
            let _ = writeln!(s, "  {p}: {c}");
        }
    }
    let sv = &r.services;
    if !sv.services.is_empty() {
        let _ = writeln!(
            s,
            "\nservices ({:.0}% of {} named; {} through VPNs and tunnels):",
            sv.named_share * 100.0,
            bytes(sv.bytes),
            bytes(sv.tunnelled_bytes)
        );
        let _ = writeln!(
            s,
            "  {:<32} {:>6} {:>10} {:>10} {:>10} {:>10}",
            "service", "flows", "up", "down", "p50 flow", "p90 flow"
        );
        for x in sv.services.iter().take(15) {
            let name = match &x.organisation {
                Some(o) if *o != x.service => format!("{} ({o})", x.service),
                _ => x.service.clone(),
            };
            let _ = writeln!(
                s,
                "  {:<32} {:>6} {:>10} {:>10} {:>10} {:>10}",
                name,
                x.flows,
                bytes(x.bytes_up),
                bytes(x.bytes_down),
                bytes(x.size.p50 as i64),
                bytes(x.size.p90 as i64)
            );
        }
        let more = sv.services.len().saturating_sub(15) + sv.omitted;
        if more > 0 {
            let _ = writeln!(s, "  ... and {more} more (--json, --csv)");
        }
    }
    if !r.programs.is_empty() {
        let _ = writeln!(s, "\nprograms (run --local):");
        for p in r.programs.iter().take(20) {
            let traffic = format!(
                "{} flows, up {}, down {}",
                p.flows,
                bytes(p.bytes_up),
                bytes(p.bytes_down)
            );
            if p.tunnels.is_empty() {
                let _ = writeln!(s, "  {}: {traffic}", p.name());
            }
            for t in &p.tunnels {
                let _ = writeln!(
                    s,
                    "  {}: {} tunnel to {}, {} ({traffic})",
                    p.name(),
                    t.protocol,
                    t.peer,
                    bytes(t.bytes)
                );
            }
        }
        if r.programs.len() > 20 {
            let _ = writeln!(s, "  ... and {} more (--json)", r.programs.len() - 20);
        }
    }
    s
}
