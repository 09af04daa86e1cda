//! `vpnfp report --html FILE`: one self-contained static page (inline CSS
//! and SVG, no script, no network): the hosts flagged, protocols over time,
//! and per host a timeline of traffic with its VPN use marked.

use std::fmt::Write;

use crate::store::query::{HostReport, Report};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn bytes(n: i64) -> String {
    let n = n as f64;
    match n {
        n if n >= 1e9 => format!("{:.1} GB", n / 1e9),
        n if n >= 1e6 => format!("{:.1} MB", n / 1e6),
        n if n >= 1e3 => format!("{:.1} kB", n / 1e3),
        n => format!("{n:.0} B"),
    }
}

pub fn time(t: f64) -> String {
    let secs = t as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A stable colour per protocol name: the known ones fixed and distinct,
/// others by a hash.
fn colour(protocol: &str) -> &'static str {
    match protocol {
        "wireguard" => return "#d9480f",
        "openvpn" => return "#5f3dc4",
        "ipsec" => return "#0b7285",
        "anyconnect" => return "#1864ab",
        "ssh" => return "#2b8a3e",
        "fully_encrypted" => return "#862e9c",
        "pptp" => return "#c2255c",
        "l2tp" => return "#e67700",
        "tailscale" => return "#364fc7",
        _ => {}
    }
    const PALETTE: [&str; 8] = [
        "#d9480f", "#5f3dc4", "#0b7285", "#e67700", "#c2255c", "#2b8a3e", "#1864ab", "#862e9c",
    ];
    let h = protocol
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
    PALETTE[h as usize % PALETTE.len()]
}

fn badge(level: &str) -> String {
    let colour = match level {
        "vpn" => "#c92a2a",
        "tunnel" => "#e67700",
        "suspected" => "#f08c00",
        _ => "#2b8a3e",
    };
    format!(
        "<span class=\"badge\" style=\"background:{colour}\">{}</span>",
        esc(level)
    )
}

const W: f64 = 760.0;

fn timeline(h: &HostReport) -> String {
    let max = h.timeline.iter().map(|s| s.bytes).max().unwrap_or(0).max(1) as f64;
    let n = h.timeline.len().max(1) as f64;
    let slot = W / n;
    let mut svg = format!(
        "<svg class=\"timeline\" width=\"{W}\" height=\"72\" viewBox=\"0 0 {W} 72\" role=\"img\" aria-label=\"traffic and VPN use of {}\">",
        esc(&h.host)
    );
    for (i, s) in h.timeline.iter().enumerate() {
        let x = i as f64 * slot;
        for (k, p) in s.vpn.iter().enumerate() {
            let _ = write!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{}\" width=\"{:.1}\" height=\"6\" fill=\"{}\"><title>{}</title></rect>",
                2 + k * 7,
                slot,
                colour(p),
                esc(p)
            );
        }
        let hgt = (s.bytes as f64 / max) * 44.0;
        if s.bytes > 0 {
            let _ = write!(
                svg,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#495057\"><title>{}</title></rect>",
                x + 0.5,
                70.0 - hgt,
                (slot - 1.0).max(0.5),
                hgt.max(1.0),
                bytes(s.bytes)
            );
        }
    }
    svg.push_str("<line x1=\"0\" y1=\"70.5\" x2=\"760\" y2=\"70.5\" stroke=\"#adb5bd\"/></svg>");
    svg
}

fn protocols_chart(r: &Report) -> String {
    let n = r.protocols_over_time.len().max(1) as f64;
    let slot = W / n;
    let max = r
        .protocols_over_time
        .iter()
        .map(|s| s.counts.values().sum::<i64>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let mut svg = format!(
        "<svg width=\"{W}\" height=\"80\" viewBox=\"0 0 {W} 80\" role=\"img\" aria-label=\"VPN and tunnel identifications over time\">"
    );
    for (i, s) in r.protocols_over_time.iter().enumerate() {
        let mut y = 78.0;
        for (p, c) in &s.counts {
            let h = *c as f64 / max * 74.0;
            y -= h;
            let _ = write!(
                svg,
                "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{}\"><title>{} x{c}</title></rect>",
                i as f64 * slot + 0.5,
                (slot - 1.0).max(0.5),
                colour(p),
                esc(p)
            );
        }
    }
    svg.push_str("<line x1=\"0\" y1=\"78.5\" x2=\"760\" y2=\"78.5\" stroke=\"#adb5bd\"/></svg>");
    svg
}

/// Bytes per service over time (the largest six, stacked, the rest as
/// "other"), the share of bytes that went through a VPN or tunnel, and
/// each service's flow-size distribution.
/// `run --local`: one row per program, with the tunnels it used.
fn programs_section(r: &Report) -> String {
    if r.programs.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "<h2>Programs</h2>\n<table id=\"programs\"><tr><th>program</th><th>cgroup</th><th>flows</th><th>up</th><th>down</th><th>tunnels</th></tr>\n",
    );
    for p in r.programs.iter().take(50) {
        let tunnels: Vec<String> = p
            .tunnels
            .iter()
            .map(|t| {
                format!(
                    "<i class=\"sw\" style=\"background:{}\"></i>{} to {} ({})",
                    colour(&t.protocol),
                    esc(&t.protocol),
                    esc(&t.peer),
                    bytes(t.bytes)
                )
            })
            .collect();
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&p.name()),
            esc(p.cgroup.as_deref().unwrap_or("")),
            p.flows,
            bytes(p.bytes_up),
            bytes(p.bytes_down),
            tunnels.join("<br>")
        );
    }
    s.push_str("</table>\n");
    s
}

fn services_section(r: &Report) -> String {
    let sv = &r.services;
    let mut s = String::from("<h2>Services</h2>\n");
    if sv.services.is_empty() {
        s.push_str("<p>No flows in this range.</p>\n");
        return s;
    }
    let _ = writeln!(
        s,
        "<p class=\"dim\">{} in flows; {:.0}% of the bytes to peers with a name (DNS answers, TLS server names, reverse DNS), the rest by address.</p>",
        bytes(sv.bytes),
        sv.named_share * 100.0
    );
    // Through tunnels.
    let share = if sv.bytes > 0 {
        sv.tunnelled_bytes as f64 / sv.bytes as f64
    } else {
        0.0
    };
    let _ = writeln!(
        s,
        "<svg id=\"tunnel-share\" width=\"{W}\" height=\"26\" viewBox=\"0 0 {W} 26\" role=\"img\" aria-label=\"share of bytes through VPNs and tunnels\"><rect x=\"0\" y=\"4\" width=\"{W}\" height=\"16\" fill=\"#dee2e6\"/><rect x=\"0\" y=\"4\" width=\"{:.1}\" height=\"16\" fill=\"#c92a2a\"><title>{}</title></rect><text x=\"6\" y=\"16\" font-size=\"12\" fill=\"#212529\">{:.1}% of the bytes went through a VPN or tunnel ({})</text></svg>",
        share * W,
        bytes(sv.tunnelled_bytes),
        share * 100.0,
        bytes(sv.tunnelled_bytes)
    );
    // Over time, stacked; colours by rank, so the largest are distinct.
    const SHOWN: usize = 6;
    const RANKED: [&str; SHOWN + 1] = [
        "#1864ab", "#d9480f", "#2b8a3e", "#862e9c", "#e67700", "#0b7285", "#868e96",
    ];
    let rank_colour = |i: usize| RANKED[i.min(SHOWN)];
    let slots = sv.services.first().map_or(0, |x| x.timeline.len());
    let mut stacks: Vec<(String, Vec<i64>)> = sv
        .services
        .iter()
        .take(SHOWN)
        .map(|x| (x.service.clone(), x.timeline.clone()))
        .collect();
    if sv.services.len() > SHOWN {
        let mut other = vec![0i64; slots];
        for x in &sv.services[SHOWN..] {
            for (o, b) in other.iter_mut().zip(&x.timeline) {
                *o += b;
            }
        }
        stacks.push(("other".to_string(), other));
    }
    s.push_str("<div class=\"legend\">");
    for (i, (name, _)) in stacks.iter().enumerate() {
        let _ = write!(
            s,
            "<span><i class=\"sw\" style=\"background:{}\"></i>{}</span>",
            rank_colour(i),
            esc(name)
        );
    }
    s.push_str("</div>\n");
    let max = (0..slots)
        .map(|i| stacks.iter().map(|(_, t)| t[i]).sum::<i64>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let slot = W / slots.max(1) as f64;
    let _ = write!(
        s,
        "<svg id=\"services-over-time\" width=\"{W}\" height=\"100\" viewBox=\"0 0 {W} 100\" role=\"img\" aria-label=\"bytes per service over time\">"
    );
    for i in 0..slots {
        let mut y = 98.0;
        for (k, (name, t)) in stacks.iter().enumerate() {
            if t[i] == 0 {
                continue;
            }
            let h = t[i] as f64 / max * 94.0;
            y -= h;
            let _ = write!(
                s,
                "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{}\"><title>{}: {}</title></rect>",
                i as f64 * slot + 0.5,
                (slot - 1.0).max(0.5),
                rank_colour(k),
                esc(name),
                bytes(t[i])
            );
        }
    }
    s.push_str("<line x1=\"0\" y1=\"98.5\" x2=\"760\" y2=\"98.5\" stroke=\"#adb5bd\"/></svg>\n");
    // The table, each row with its flow-size histogram.
    s.push_str("<table id=\"services\"><tr><th>service</th><th>flows</th><th>up</th><th>down</th><th>flow size p50 / p90 / p99</th><th>duration p50 / p90</th><th>up/down p50</th><th>flow sizes (1 kB to 1 GB, x4 per bar)</th></tr>\n");
    for (rank, x) in sv.services.iter().enumerate() {
        let top = *x.size_histogram.iter().max().unwrap_or(&1) as f64;
        let mut hist =
            String::from("<svg class=\"hist\" width=\"120\" height=\"24\" viewBox=\"0 0 120 24\">");
        let bw = 120.0 / x.size_histogram.len() as f64;
        for (i, c) in x.size_histogram.iter().enumerate() {
            let h = *c as f64 / top.max(1.0) * 22.0;
            let _ = write!(
                hist,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{}\"><title>{c} flows</title></rect>",
                i as f64 * bw,
                23.0 - h,
                bw - 1.0,
                rank_colour(rank)
            );
        }
        hist.push_str("</svg>");
        let name = match &x.organisation {
            Some(o) if *o != x.service => format!(
                "{} <span class=\"dim\">({})</span>",
                esc(&x.service),
                esc(o)
            ),
            _ => esc(&x.service),
        };
        let _ = writeln!(
            s,
            "<tr class=\"service\" data-service=\"{}\"><td>{name}</td><td>{}</td><td>{}</td><td>{}</td><td>{} / {} / {}</td><td>{:.1} / {:.1} s</td><td>{:.2}</td><td>{hist}</td></tr>",
            esc(&x.service),
            x.flows,
            bytes(x.bytes_up),
            bytes(x.bytes_down),
            bytes(x.size.p50 as i64),
            bytes(x.size.p90 as i64),
            bytes(x.size.p99 as i64),
            x.duration.p50,
            x.duration.p90,
            x.up_down_ratio.p50
        );
    }
    s.push_str("</table>\n");
    if sv.omitted > 0 {
        let _ = writeln!(
            s,
            "<p class=\"dim\">{} smaller services not shown (all are in --csv).</p>",
            sv.omitted
        );
    }
    s
}

fn peer(p: &crate::store::query::Peer) -> String {
    match &p.name {
        Some(n) => format!("{} <span class=\"dim\">({})</span>", esc(n), esc(&p.addr)),
        None => esc(&p.addr),
    }
}

pub fn page(r: &Report) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>vpnfp report</title>\n<style>\
body{{font-family:system-ui,sans-serif;margin:24px;color:#212529;max-width:900px}}\
h1{{font-size:22px}}h2{{font-size:18px;margin-top:28px}}\
.host{{border:1px solid #dee2e6;border-radius:6px;padding:12px 16px;margin:14px 0}}\
.badge{{color:#fff;border-radius:4px;padding:1px 7px;font-size:13px;margin-left:6px}}\
.dim{{color:#868e96}}table{{border-collapse:collapse;font-size:13px;margin:6px 0}}\
td,th{{border-bottom:1px solid #e9ecef;padding:3px 10px 3px 0;text-align:left}}\
.legend span{{display:inline-block;margin-right:12px;font-size:13px}}\
.sw{{display:inline-block;width:10px;height:10px;margin-right:4px}}\
</style></head><body>\n<h1>vpnfp report</h1>\n<p class=\"dim\">{} to {} &middot; source: {} &middot; {} hosts seen, {} flagged</p>\n",
        time(r.since),
        time(r.until),
        esc(&r.mode),
        r.hosts_seen,
        r.flagged.len()
    );
    s.push_str("<h2>Hosts flagged</h2>\n");
    if r.flagged.is_empty() {
        s.push_str("<p>None.</p>\n");
    } else {
        s.push_str(
            "<table id=\"flagged\"><tr><th>host</th><th>verdict</th><th>protocols</th></tr>\n",
        );
        for f in &r.flagged {
            let _ = writeln!(
                s,
                "<tr class=\"flagged-host\" data-host=\"{h}\"><td>{h}</td><td>{}</td><td>{}</td></tr>",
                badge(&f.verdict),
                esc(&f.protocols.join(", ")),
                h = esc(&f.host)
            );
        }
        s.push_str("</table>\n");
    }
    let all: std::collections::BTreeSet<&String> = r
        .protocols_over_time
        .iter()
        .flat_map(|x| x.counts.keys())
        .collect();
    s.push_str("<h2>VPN and tunnel protocols over time</h2>\n<div class=\"legend\">");
    for p in &all {
        let _ = write!(
            s,
            "<span><i class=\"sw\" style=\"background:{}\"></i>{}</span>",
            colour(p),
            esc(p)
        );
    }
    s.push_str("</div>\n");
    s.push_str(&protocols_chart(r));
    s.push_str(&services_section(r));
    s.push_str(&programs_section(r));
    s.push_str("\n<h2>Hosts</h2>\n");
    for h in &r.hosts {
        let _ = write!(
            s,
            "<div class=\"host\" data-host=\"{hh}\" data-verdict=\"{v}\"><b>{hh}</b>{}",
            badge(&h.verdict),
            hh = esc(&h.host),
            v = esc(&h.verdict)
        );
        if !h.protocols.is_empty() {
            let _ = write!(
                s,
                " <span class=\"protocols\">{}</span>",
                h.protocols
                    .iter()
                    .map(|p| format!("<span style=\"color:{}\">{}</span>", colour(p), esc(p)))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let _ = write!(
            s,
            "<div class=\"dim\">up {} ({} packets), down {} ({} packets), {} flows",
            bytes(h.bytes_up),
            h.packets_up,
            bytes(h.bytes_down),
            h.packets_down,
            h.flows
        );
        if let (Some(a), Some(b)) = (h.first_flagged, h.last_flagged) {
            let _ = write!(s, "; flagged {} to {}", time(a), time(b));
        }
        s.push_str("</div>");
        if !h.vpn_peers.is_empty() {
            let _ = write!(
                s,
                "<div>VPN/tunnel peers: {}</div>",
                h.vpn_peers.iter().map(peer).collect::<Vec<_>>().join(", ")
            );
        }
        s.push_str(&timeline(h));
        if !h.reasons.is_empty() {
            let _ = write!(
                s,
                "<div class=\"dim\">reasons: {}</div>",
                esc(&h.reasons.join("; "))
            );
        }
        s.push_str("<table><tr><th>protocol</th><th>flows</th><th>bytes</th></tr>");
        for p in &h.by_protocol {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&p.protocol),
                p.flows,
                bytes(p.bytes)
            );
        }
        s.push_str("</table><table><tr><th>top peers</th><th>flows</th><th>bytes</th></tr>");
        for p in &h.top_peers {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                peer(&p.peer),
                p.flows,
                bytes(p.bytes)
            );
        }
        s.push_str("</table></div>\n");
    }
    s.push_str("<p class=\"dim\">Timelines: traffic per slot (grey); coloured bars above it mark the VPN and tunnel protocols in use.</p>\n</body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_civil_utc() {
        assert_eq!(time(0.0), "1970-01-01 00:00:00 UTC");
        assert_eq!(time(1_795_319_416.5), "2026-11-22 03:50:16 UTC");
        assert_eq!(bytes(1_500), "1.5 kB");
        assert_eq!(esc("<a&\"b\">"), "&lt;a&amp;&quot;b&quot;&gt;");
    }
}
