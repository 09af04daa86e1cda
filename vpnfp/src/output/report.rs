//! What vpnfp says about a closed window and an ended flow: one human line
//! for the log, and one JSON object (serde) per line on stdout.

use std::net::IpAddr;

use serde::Serialize;
use vpnfp_common::{Reason, net::parse::ipproto};

use crate::{
    clock::{seconds, unix_secs},
    judge::{
        identify::Detection,
        senders::SenderChanged,
        verdict::{Level, Verdict},
    },
    model::{EndReason, FlowReport, Mode, ProcessField, WindowReport},
};
use vpnfp_common::identify::Class;

impl WindowReport {
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
}

#[derive(Serialize)]
struct WindowJson {
    event: &'static str,
    mode: Mode,
    host: IpAddr,
    peer: IpAddr,
    window_start: f64,
    window_end: f64,
    window_secs: f64,
    count_this: u64,
    count_prev: u64,
    reason: Option<&'static str>,
}

impl Serialize for WindowReport {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        WindowJson {
            event: if self.reason.is_some() {
                "suspected_vpn"
            } else {
                "window_closed"
            },
            mode: self.mode,
            host: self.host,
            peer: self.peer,
            window_start: unix_secs(self.window_start_ns),
            window_end: unix_secs(self.window_end_ns),
            window_secs: self.window_ns() as f64 / 1e9,
            count_this: self.count_this,
            count_prev: self.count_prev,
            reason: self.reason.map(Reason::as_str),
        }
        .serialize(s)
    }
}

/// A transport protocol by name where it has one, else its number.
pub fn transport_name(proto: u8) -> Option<&'static str> {
    Some(match proto {
        ipproto::TCP => "tcp",
        ipproto::UDP => "udp",
        ipproto::ICMP => "icmp",
        ipproto::ICMPV6 => "icmpv6",
        ipproto::GRE => "gre",
        ipproto::ESP => "esp",
        ipproto::AH => "ah",
        ipproto::SCTP => "sctp",
        ipproto::UDPLITE => "udplite",
        _ => return None,
    })
}

#[derive(Serialize)]
#[serde(untagged)]
enum TransportJson {
    Name(&'static str),
    Number(u8),
}

fn transport_json(proto: u8) -> TransportJson {
    transport_name(proto).map_or(TransportJson::Number(proto), TransportJson::Name)
}

/// TCP flags by name, in header order.
pub fn tcp_flag_names(flags: u8) -> Vec<&'static str> {
    const NAMES: [&str; 8] = ["fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr"];
    (0..8)
        .filter(|bit| flags & (1 << bit) != 0)
        .map(|bit| NAMES[bit])
        .collect()
}

#[derive(Serialize)]
struct FlowJson<'a> {
    event: &'static str,
    mode: Mode,
    host: IpAddr,
    peer: IpAddr,
    transport: TransportJson,
    host_port: u16,
    peer_port: u16,
    scope: &'static str,
    packets_up: u64,
    packets_down: u64,
    bytes_up: u64,
    bytes_down: u64,
    first_seen: f64,
    last_seen: f64,
    end_reason: EndReason,
    tcp_flags: Vec<&'static str>,
    protocol: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<&'static str>,
    peer_name: Option<&'a str>,
    #[serde(skip_serializing_if = "ProcessField::is_off")]
    process: &'a ProcessField,
    /// `--local`: its packets left without a socket.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    no_socket: bool,
}

impl Serialize for FlowReport {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let f = &self.flow;
        let v = &f.value;
        FlowJson {
            event: "flow",
            mode: self.mode,
            host: f.id.host,
            peer: f.id.peer,
            transport: transport_json(f.id.proto),
            host_port: f.id.host_port,
            peer_port: f.id.peer_port,
            scope: f.scope().as_str(),
            packets_up: v.packets_up,
            packets_down: v.packets_down,
            bytes_up: v.bytes_up,
            bytes_down: v.bytes_down,
            first_seen: unix_secs(v.first_seen_ns),
            last_seen: unix_secs(v.last_seen_ns),
            end_reason: f.end,
            tcp_flags: tcp_flag_names(v.tcp_flags),
            protocol: self.protocol,
            hint: self.hint,
            peer_name: self.peer_name.as_deref(),
            process: &self.process,
            no_socket: self.process.is_no_socket(),
        }
        .serialize(s)
    }
}

impl FlowReport {
    pub fn human(&self) -> String {
        let f = &self.flow;
        let v = &f.value;
        let transport = transport_name(f.id.proto)
            .map(str::to_string)
            .unwrap_or_else(|| format!("proto {}", f.id.proto));
        let addr = |ip: IpAddr, port: u16| match (ip, port) {
            (_, 0) => ip.to_string(),
            (IpAddr::V6(_), _) => format!("[{ip}]:{port}"),
            _ => format!("{ip}:{port}"),
        };
        format!(
            "flow {}: {} {} <-> {} ({}): up {} packets {} bytes, down {} packets {} bytes, {} s{}{}; {}",
            f.end.as_str(),
            transport,
            addr(f.id.host, f.id.host_port),
            addr(f.id.peer, f.id.peer_port),
            f.scope().as_str(),
            v.packets_up,
            v.bytes_up,
            v.packets_down,
            v.bytes_down,
            seconds(v.last_seen_ns.saturating_sub(v.first_seen_ns)),
            match (self.protocol, self.hint) {
                (Some(p), _) => format!(", {p}"),
                (None, Some(h)) => format!(", hint {h}"),
                (None, None) => String::new(),
            },
            self.process.human(),
            if f.end == EndReason::ActiveTimeout {
                "goes on"
            } else {
                "ended"
            }
        )
    }
}

#[derive(Serialize)]
struct DetectionJson<'a> {
    event: &'static str,
    mode: Mode,
    host: IpAddr,
    peer: IpAddr,
    protocol: &'static str,
    class: &'static str,
    confidence: &'static str,
    transport: TransportJson,
    host_port: u16,
    peer_port: u16,
    scope: &'static str,
    reasons: &'a [String],
    packets_seen: u32,
    at: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    server_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    peer_name: Option<&'a str>,
    #[serde(skip_serializing_if = "ProcessField::is_off")]
    process: &'a ProcessField,
}

impl Serialize for Detection {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let n = &self.naming;
        DetectionJson {
            event: if n.is_hint() {
                "vpn_hint"
            } else {
                "vpn_detected"
            },
            mode: self.mode,
            host: self.id.host,
            peer: self.id.peer,
            protocol: n.protocol,
            class: n.class.as_str(),
            confidence: n.confidence.as_str(),
            transport: transport_json(self.id.proto),
            host_port: self.id.host_port,
            peer_port: self.id.peer_port,
            scope: self.scope.as_str(),
            reasons: &n.reasons,
            packets_seen: self.packets_seen,
            at: unix_secs(self.at_ns),
            server_name: n.server_name.as_deref(),
            peer_name: self.peer_name.as_deref(),
            process: &self.process,
        }
        .serialize(s)
    }
}

/// One human line per identification.
pub fn detection_human(d: &Detection) -> String {
    let n = &d.naming;
    let what = match n.class {
        _ if n.is_hint() => {
            "hint (not a name: the host is suspected until persistence confirms it)"
        }
        Class::Vpn => "VPN",
        Class::Tunnel => "tunnel (not necessarily a VPN)",
        Class::Benign => "protocol",
    };
    let transport = transport_name(d.id.proto)
        .map(str::to_string)
        .unwrap_or_else(|| format!("proto {}", d.id.proto));
    format!(
        "{what} detected: {} host {} -> peer {} ({transport} {} -> {}, {}): {} after {} packets, {} confidence{}",
        n.protocol,
        d.id.host,
        d.id.peer,
        d.id.host_port,
        d.id.peer_port,
        d.scope.as_str(),
        n.reasons.join(", "),
        d.packets_seen,
        n.confidence.as_str(),
        n.server_name
            .as_deref()
            .map_or(String::new(), |s| format!(", server name {s}")),
    ) + &d.process.human()
}

#[derive(Serialize)]
struct VerdictJson<'a> {
    event: &'static str,
    mode: Mode,
    host: IpAddr,
    verdict: Level,
    previous: Level,
    protocols: &'a [&'static str],
    peers: &'a [IpAddr],
    reasons: &'a [String],
    since: f64,
    at: f64,
    bytes: u64,
    host_bytes: u64,
    peer_names: &'a std::collections::BTreeMap<IpAddr, String>,
    #[serde(skip_serializing_if = "ProcessField::is_off")]
    process: &'a ProcessField,
}

impl Serialize for Verdict {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        VerdictJson {
            event: "host_verdict",
            mode: self.mode,
            host: self.host,
            verdict: self.level,
            previous: self.previous,
            protocols: &self.protocols,
            peers: &self.peers,
            reasons: &self.reasons,
            since: unix_secs(self.since_ns),
            at: unix_secs(self.at_ns),
            bytes: self.bytes,
            host_bytes: self.host_bytes,
            peer_names: &self.peer_names,
            process: &self.process,
        }
        .serialize(s)
    }
}

impl Verdict {
    pub fn human(&self) -> String {
        let protocols = if self.protocols.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.protocols.join(", "))
        };
        let peers: Vec<String> = self.peers.iter().map(IpAddr::to_string).collect();
        format!(
            "verdict: host {}: {}{}{}, was {}; reasons: {}",
            self.host,
            self.level.as_str(),
            protocols,
            if peers.is_empty() {
                String::new()
            } else {
                format!(" with {}", peers.join(", "))
            },
            self.previous.as_str(),
            if self.reasons.is_empty() {
                "none".to_string()
            } else {
                self.reasons.join("; ")
            }
        ) + &self.process.human()
    }
}

impl SenderChanged {
    pub fn human(&self) -> String {
        format!(
            "host {}: its packets now come from {} (before: {}); a new device has its address, or one on the LAN forges it",
            self.host, self.mac, self.previous
        )
    }
}

/// A host's verdict in the summary at exit.
pub fn verdict_summary(mode: Mode, host: IpAddr, level: Level, protocols: &[&str]) -> String {
    format!(
        "{}: host {host}: {}{}",
        mode.as_str(),
        level.as_str(),
        if protocols.is_empty() {
            String::new()
        } else {
            format!(" ({})", protocols.join(", "))
        }
    )
}

/// The store's line at exit.
pub fn store_summary(path: &str, written: u64, lost: u64) -> String {
    if lost > 0 {
        format!(
            "store {path}: {written} records written, {lost} lost (writer behind or writes failing)"
        )
    } else {
        format!("store {path}: {written} records written")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FlowEnded;
    use crate::model::FlowId;
    use std::net::Ipv4Addr;
    use vpnfp_common::FlowValue;
    use vpnfp_common::{Thresholds, WindowClose};

    fn closed(count_this: u64) -> WindowClose<IpAddr> {
        WindowClose {
            host: Ipv4Addr::new(192, 168, 1, 10).into(),
            peer: Ipv4Addr::new(198, 51, 100, 7).into(),
            window_start_ns: 1_700_000_000_000_001_000,
            window_end_ns: 1_700_000_005_200_002_999,
            count_this,
            count_prev: 3,
        }
    }

    #[test]
    fn json_has_the_documented_fields() {
        let th = Thresholds::from_ratio(10, 0.75);
        let quiet = WindowReport::judge(Mode::Xdp, &closed(4), &th);
        let v = serde_json::to_value(&quiet).unwrap();
        assert_eq!(v["event"], "window_closed");
        assert!(v["reason"].is_null());
        let r = WindowReport::judge(Mode::Replay, &closed(14), &th);
        let text = serde_json::to_string(&r).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["event"], "suspected_vpn");
        assert_eq!(v["mode"], "replay");
        assert_eq!(v["host"], "192.168.1.10");
        assert_eq!(v["peer"], "198.51.100.7");
        assert!(
            text.contains("\"window_start\":1700000000.000001,"),
            "{text}"
        );
        assert!(text.contains("\"window_end\":1700000005.200002,"), "{text}");
        assert!(text.contains("\"window_secs\":5.200001999,"), "{text}");
        assert_eq!(v["count_this"], 14);
        assert_eq!(v["count_prev"], 3);
        assert_eq!(v["reason"], "count");
        assert!(
            r.human()
                .contains("host 192.168.1.10 -> peer 198.51.100.7: 14 packets in a 5.200001 s")
        );
    }

    #[test]
    fn flow_json() {
        let report = FlowReport {
            mode: Mode::Xdp,
            flow: FlowEnded {
                id: FlowId {
                    host: "2001:db8::1".parse().unwrap(),
                    peer: "2001:db8::2".parse().unwrap(),
                    proto: 50,
                    host_port: 0,
                    peer_port: 0,
                },
                value: FlowValue {
                    packets_up: 2,
                    bytes_up: 300,
                    first_seen_ns: 1_000_000_000,
                    last_seen_ns: 2_500_000_000,
                    tcp_flags: 0x13,
                    scope: 1,
                    ..FlowValue::default()
                },
                end: EndReason::Idle,
            },
            protocol: None,
            hint: None,
            peer_name: None,
            process: Default::default(),
        };
        let v = serde_json::to_value(&report).unwrap();
        assert_eq!(v["event"], "flow");
        assert_eq!(v["transport"], "esp");
        assert_eq!(v["host"], "2001:db8::1");
        assert_eq!(v["scope"], "external");
        assert_eq!(v["end_reason"], "idle");
        assert_eq!(v["first_seen"], 1.0);
        assert_eq!(v["tcp_flags"], serde_json::json!(["fin", "syn", "ack"]));
        assert!(v["protocol"].is_null());
        let mut other = report.clone();
        other.flow.id.proto = 99;
        assert_eq!(serde_json::to_value(&other).unwrap()["transport"], 99);
        assert!(
            report
                .human()
                .contains("esp 2001:db8::1 <-> 2001:db8::2 (external)")
        );
    }

    #[test]
    fn seconds_keep_microseconds() {
        assert_eq!(seconds(0), "0.000000");
        assert_eq!(seconds(5_200_000_000), "5.200000");
        assert_eq!(seconds(1_999), "0.000001");
    }
}
