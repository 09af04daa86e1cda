//! One verdict per host, from three kinds of evidence: protocol
//! identification (a flow named a VPN or a tunnel), the research's rule (a
//! suspected-VPN window) and the concentration mode (a window in which one
//! peer took most of the host's packets). Named ordinary protocols to a
//! peer (TLS, QUIC, HTTP, DNS) explain a rule's flag on that peer away.
//!
//! Levels, strongest first:
//! - `vpn`: a VPN protocol named with a confirmed signature, or a VPN
//!   heuristic (obfuscated OpenVPN) on a peer the research rule or the
//!   concentration mode also points at;
//! - `tunnel`: a tunnel (SSH, fully encrypted, IP carried in the clear,
//!   DNS or ICMP) to a peer the rule or the concentration mode points at;
//! - `suspected`: the rule or the concentration mode alone, on a peer no
//!   named ordinary protocol explains; or a hint alone; or a tunnel other
//!   than SSH alone;
//! - `none`.
//!
//! Evidence counts while it is younger than the hold time (refreshed by the
//! flows it names), so a verdict falls back when the tunnel ends.

use std::{
    collections::{BTreeSet, HashMap},
    net::IpAddr,
};

use hashlink::LruCache;

use crate::hash::FastBuild;
use serde::Serialize;
use vpnfp_common::{
    concentration::ConcentrationClose,
    identify::{Class, Confidence},
};

use crate::model::{FlowEnded, Mode};

use super::identify::{Detection, Naming};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    #[default]
    None,
    Suspected,
    Tunnel,
    Vpn,
}

impl Level {
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::None => "none",
            Level::Suspected => "suspected",
            Level::Tunnel => "tunnel",
            Level::Vpn => "vpn",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct JudgeSettings {
    /// A concentration window counts from this share of the host's
    /// packets to one peer.
    pub concentration_share: f64,
    /// Evidence counts for this long after it was last refreshed.
    pub hold_ns: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Identified {
        class: Class,
        confidence: Confidence,
    },
    Research,
    Concentration,
}

#[derive(Clone, Debug)]
struct Evidence {
    kind: Kind,
    peer: IpAddr,
    /// The protocol for identifications.
    protocol: Option<&'static str>,
    reason: String,
    last_ns: u64,
}

#[derive(Clone, Debug, Default)]
struct HostState {
    evidence: Vec<Evidence>,
    /// Ordinary protocols named on flows to each peer.
    explained: HashMap<IpAddr, BTreeSet<&'static str>>,
    /// IP bytes both ways per peer, from flow records.
    bytes: HashMap<IpAddr, u64>,
    level: Level,
    protocols: Vec<&'static str>,
    peers: Vec<IpAddr>,
    since_ns: u64,
}

/// A host's verdict as reported (`host_verdict`).
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub mode: Mode,
    pub host: IpAddr,
    pub level: Level,
    pub previous: Level,
    pub reasons: Vec<String>,
    pub protocols: Vec<&'static str>,
    pub peers: Vec<IpAddr>,
    /// Unix nanoseconds: since when the host has had this level.
    pub since_ns: u64,
    pub at_ns: u64,
    /// IP bytes (both ways) between the host and the verdict's peers, and
    /// with everyone, in the flows recorded since the judge first had
    /// evidence or a named flow for the host.
    pub bytes: u64,
    pub host_bytes: u64,
    /// Names of the peers, where known (filled by the pipeline).
    pub peer_names: std::collections::BTreeMap<IpAddr, String>,
    /// `--local`: the process behind the host's flows with its peers
    /// (filled by the pipeline).
    pub process: crate::model::ProcessField,
}

pub struct Judge {
    settings: JudgeSettings,
    hosts: LruCache<(Mode, IpAddr), HostState, FastBuild>,
}

impl Judge {
    pub fn new(settings: JudgeSettings, max_hosts: usize) -> Self {
        Self {
            settings,
            hosts: LruCache::with_hasher(max_hosts.max(1), FastBuild::default()),
        }
    }

    pub fn settings(&self) -> &JudgeSettings {
        &self.settings
    }

    fn host(&mut self, mode: Mode, host: IpAddr) -> &mut HostState {
        if self.hosts.get(&(mode, host)).is_none() {
            self.hosts.insert((mode, host), HostState::default());
        }
        self.hosts.get_mut(&(mode, host)).expect("just inserted")
    }

    fn add(&mut self, mode: Mode, host: IpAddr, e: Evidence, now_ns: u64) -> Option<Verdict> {
        let state = self.host(mode, host);
        match state
            .evidence
            .iter_mut()
            .find(|x| x.kind == e.kind && x.peer == e.peer && x.protocol == e.protocol)
        {
            Some(x) => {
                x.last_ns = x.last_ns.max(e.last_ns);
                x.reason = e.reason;
            }
            None => state.evidence.push(e),
        }
        self.judge(mode, host, now_ns)
    }

    /// A suspected-VPN window of the research's rule.
    pub fn research(
        &mut self,
        mode: Mode,
        host: IpAddr,
        peer: IpAddr,
        reason: &str,
        at_ns: u64,
    ) -> Option<Verdict> {
        let e = Evidence {
            kind: Kind::Research,
            peer,
            protocol: None,
            reason: format!("research:{reason}"),
            last_ns: at_ns,
        };
        self.add(mode, host, e, at_ns)
    }

    /// A closed concentration window.
    pub fn concentration(&mut self, mode: Mode, c: &ConcentrationClose<IpAddr>) -> Option<Verdict> {
        if c.share() < self.settings.concentration_share {
            return None;
        }
        let e = Evidence {
            kind: Kind::Concentration,
            peer: c.peer,
            protocol: None,
            reason: format!(
                "concentration:{:.0}%-of-packets-to-one-peer",
                (c.share() * 100.0).floor()
            ),
            last_ns: c.window_end_ns,
        };
        self.add(mode, c.host, e, c.window_end_ns)
    }

    /// A flow named a VPN or tunnel.
    pub fn detected(&mut self, d: &Detection) -> Option<Verdict> {
        let e = Evidence {
            kind: Kind::Identified {
                class: d.naming.class,
                confidence: d.naming.confidence,
            },
            peer: d.id.peer,
            protocol: Some(d.naming.protocol),
            reason: d.naming.reasons.join("+"),
            last_ns: d.at_ns,
        };
        self.add(d.mode, d.id.host, e, d.at_ns)
    }

    /// A flow named an ordinary protocol: it explains the host's traffic
    /// to that peer.
    pub fn explain(&mut self, d: &Detection) -> Option<Verdict> {
        let state = self.host(d.mode, d.id.host);
        if !state
            .explained
            .entry(d.id.peer)
            .or_default()
            .insert(d.naming.protocol)
        {
            return None;
        }
        self.judge(d.mode, d.id.host, d.at_ns)
    }

    /// A flow record: bytes, ordinary protocols that explain a peer, and
    /// fresh life for the identification it carries.
    pub fn flow(
        &mut self,
        mode: Mode,
        flow: &FlowEnded,
        naming: Option<&Naming>,
    ) -> Option<Verdict> {
        let v = &flow.value;
        let now_ns = v.last_seen_ns;
        // Hosts the judge knows nothing about stay unknown: most flows are
        // theirs, and a state per host would cost memory and time for
        // nothing (bytes count from the host's first evidence on).
        if naming.is_none() && self.hosts.get(&(mode, flow.id.host)).is_none() {
            return None;
        }
        let state = self.host(mode, flow.id.host);
        *state.bytes.entry(flow.id.peer).or_default() += v.bytes_up + v.bytes_down;
        if let Some(n) = naming {
            if n.class == Class::Benign {
                state
                    .explained
                    .entry(flow.id.peer)
                    .or_default()
                    .insert(n.protocol);
            } else {
                for e in &mut state.evidence {
                    if e.peer == flow.id.peer && e.protocol == Some(n.protocol) {
                        e.last_ns = e.last_ns.max(now_ns);
                    }
                }
            }
        }
        self.judge(mode, flow.id.host, now_ns)
    }

    /// Re-judges every host at `now_ns` (evidence ages out).
    pub fn tick(&mut self, now_ns: u64) -> Vec<Verdict> {
        let keys: Vec<_> = self.hosts.iter().map(|(k, _)| *k).collect();
        keys.into_iter()
            .filter_map(|(mode, host)| self.judge(mode, host, now_ns))
            .collect()
    }

    /// The host's verdict now; `Some` when it changed.
    fn judge(&mut self, mode: Mode, host: IpAddr, now_ns: u64) -> Option<Verdict> {
        let hold = self.settings.hold_ns;
        let state = self.hosts.get_mut(&(mode, host))?;
        state
            .evidence
            .retain(|e| now_ns.saturating_sub(e.last_ns) <= hold);
        if state.evidence.is_empty() && state.level == Level::None && state.protocols.is_empty() {
            return None;
        }
        let ev = &state.evidence;
        let rule_on = |peer: IpAddr| {
            ev.iter()
                .any(|e| e.peer == peer && matches!(e.kind, Kind::Research | Kind::Concentration))
        };
        let named_on = |peer: IpAddr| {
            ev.iter()
                .any(|e| e.peer == peer && matches!(e.kind, Kind::Identified { .. }))
        };
        let supports = |e: &Evidence, level: Level| match (level, e.kind) {
            (
                Level::Vpn,
                Kind::Identified {
                    class: Class::Vpn,
                    confidence,
                },
            ) => confidence == Confidence::High || rule_on(e.peer),
            (Level::Vpn, Kind::Research | Kind::Concentration) => ev.iter().any(|x| {
                x.peer == e.peer
                    && matches!(
                        x.kind,
                        Kind::Identified {
                            class: Class::Vpn,
                            ..
                        }
                    )
            }),
            (
                Level::Tunnel,
                Kind::Identified {
                    class: Class::Tunnel,
                    ..
                },
            ) => rule_on(e.peer),
            (Level::Tunnel, Kind::Research | Kind::Concentration) => ev.iter().any(|x| {
                x.peer == e.peer
                    && matches!(
                        x.kind,
                        Kind::Identified {
                            class: Class::Tunnel,
                            ..
                        }
                    )
            }),
            (Level::Suspected, Kind::Research | Kind::Concentration) => {
                named_on(e.peer) || !state.explained.contains_key(&e.peer)
            }
            // A hint, or a confirmed tunnel other than SSH (a DNS, ICMP
            // or home-made tunnel is suspicious where SSH is not).
            (Level::Suspected, Kind::Identified { class, confidence }) => {
                (confidence != Confidence::High || class == Class::Tunnel)
                    && e.protocol != Some("ssh")
            }
            _ => false,
        };
        let level = [Level::Vpn, Level::Tunnel, Level::Suspected]
            .into_iter()
            .find(|&level| ev.iter().any(|e| supports(e, level)))
            .unwrap_or(Level::None);
        let mut reasons = Vec::new();
        let mut peers = BTreeSet::new();
        let mut protocols = BTreeSet::new();
        for e in ev.iter().filter(|e| supports(e, level)) {
            reasons.push(match e.protocol {
                Some(p) => format!("{} ({p}, {})", e.reason, e.peer),
                None => format!("{} ({})", e.reason, e.peer),
            });
            peers.insert(e.peer);
        }
        // Every tunnel or VPN protocol the host was seen using.
        for e in ev {
            if let Some(p) = e.protocol {
                protocols.insert(p);
            }
        }
        // Flags explained away by ordinary protocols, said out loud.
        for e in ev.iter().filter(|e| {
            matches!(e.kind, Kind::Research | Kind::Concentration) && !supports(e, level)
        }) {
            if let Some(names) = state.explained.get(&e.peer)
                && !named_on(e.peer)
            {
                let names: Vec<_> = names.iter().copied().collect();
                reasons.push(format!(
                    "explained:{} ({}; {})",
                    names.join("+"),
                    e.reason,
                    e.peer
                ));
            }
        }
        reasons.sort();
        reasons.dedup();
        let protocols: Vec<_> = protocols.into_iter().collect();
        let peers: Vec<_> = peers.into_iter().collect();
        let changed = level != state.level || protocols != state.protocols || peers != state.peers;
        if !changed {
            return None;
        }
        let previous = state.level;
        if level != previous {
            state.since_ns = now_ns;
        }
        state.level = level;
        state.protocols.clone_from(&protocols);
        state.peers.clone_from(&peers);
        let bytes = peers
            .iter()
            .map(|p| state.bytes.get(p).copied().unwrap_or(0))
            .sum();
        Some(Verdict {
            mode,
            host,
            level,
            previous,
            reasons,
            protocols,
            peers,
            since_ns: state.since_ns,
            at_ns: now_ns,
            bytes,
            host_bytes: state.bytes.values().sum(),
            peer_names: Default::default(),
            process: Default::default(),
        })
    }

    /// The host's current level (without touching its recency).
    pub fn level(&self, mode: Mode, host: IpAddr) -> Level {
        self.hosts
            .peek(&(mode, host))
            .map_or(Level::None, |s| s.level)
    }

    /// Whether the host's verdict is `tunnel` or `vpn` through `peer`: what
    /// confirms a hint on a flow between them.
    pub fn confirms(&self, mode: Mode, host: IpAddr, peer: IpAddr) -> bool {
        self.hosts.peek(&(mode, host)).is_some_and(|s| {
            matches!(s.level, Level::Tunnel | Level::Vpn) && s.peers.contains(&peer)
        })
    }

    /// Every host's current verdict above `none` (for the end-of-run
    /// summary).
    pub fn current(&self) -> Vec<(Mode, IpAddr, Level, Vec<&'static str>)> {
        let mut v: Vec<_> = self
            .hosts
            .iter()
            .filter(|(_, s)| s.level != Level::None)
            .map(|((m, h), s)| (*m, *h, s.level, s.protocols.clone()))
            .collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{judge::identify::Naming, model::FlowId};
    use vpnfp_common::Scope;

    const S: u64 = 1_000_000_000;

    fn judge() -> Judge {
        Judge::new(
            JudgeSettings {
                concentration_share: 0.9,
                hold_ns: 600 * S,
            },
            100,
        )
    }

    fn host() -> IpAddr {
        "192.168.1.10".parse().unwrap()
    }

    fn peer() -> IpAddr {
        "198.51.100.7".parse().unwrap()
    }

    fn named(protocol: &'static str, class: Class, confidence: Confidence, at: u64) -> Detection {
        Detection {
            mode: Mode::Xdp,
            id: FlowId {
                host: host(),
                peer: peer(),
                proto: 17,
                host_port: 40000,
                peer_port: 443,
            },
            scope: Scope::External,
            naming: Naming {
                protocol,
                class,
                confidence,
                reasons: vec![format!("signature:{protocol}")],
                server_name: None,
                confirmed: false,
            },
            packets_seen: 2,
            at_ns: at,
            peer_name: None,
            process: Default::default(),
        }
    }

    fn concentrated(at: u64) -> ConcentrationClose<IpAddr> {
        ConcentrationClose {
            host: host(),
            peer: peer(),
            window_start_ns: at - 60 * S,
            window_end_ns: at,
            packets: 1000,
            peer_packets: 990,
        }
    }

    #[test]
    fn a_confirmed_vpn_protocol_is_a_vpn() {
        let mut j = judge();
        let v = j
            .detected(&named("wireguard", Class::Vpn, Confidence::High, 10 * S))
            .expect("a change");
        assert_eq!((v.level, v.previous), (Level::Vpn, Level::None));
        assert_eq!(v.protocols, vec!["wireguard"]);
        assert_eq!(v.peers, vec![peer()]);
        assert_eq!(v.since_ns, 10 * S);
        // The same evidence again changes nothing.
        assert!(
            j.detected(&named("wireguard", Class::Vpn, Confidence::High, 11 * S))
                .is_none()
        );
    }

    #[test]
    fn the_rule_alone_is_suspected_unless_ordinary_protocols_explain_it() {
        let mut j = judge();
        let v = j
            .research(Mode::Xdp, host(), peer(), "count", 5 * S)
            .unwrap();
        assert_eq!(v.level, Level::Suspected);
        assert_eq!(v.reasons, vec![format!("research:count ({})", peer())]);
        // Its flows to that peer turn out to be TLS: explained away.
        let v = j
            .explain(&named("tls", Class::Benign, Confidence::High, 6 * S))
            .unwrap();
        assert_eq!((v.level, v.previous), (Level::None, Level::Suspected));
        assert!(
            v.reasons[0].starts_with("explained:tls (research:count"),
            "{:?}",
            v.reasons
        );
        // Explained first, flagged after: never suspected.
        let mut j = judge();
        assert!(
            j.explain(&named("quic", Class::Benign, Confidence::High, S))
                .is_none()
        );
        assert!(j.concentration(Mode::Xdp, &concentrated(70 * S)).is_none());
        assert!(j.current().is_empty());
    }

    #[test]
    fn tunnels_need_the_traffic_to_go_there() {
        let mut j = judge();
        // An SSH session alone: listed, no verdict.
        let v = j
            .detected(&named("ssh", Class::Tunnel, Confidence::High, S))
            .unwrap();
        assert_eq!((v.level, v.protocols.clone()), (Level::None, vec!["ssh"]));
        // Most of the host's packets go to that SSH server: a tunnel.
        let v = j.concentration(Mode::Xdp, &concentrated(61 * S)).unwrap();
        assert_eq!(v.level, Level::Tunnel);
        assert!(
            v.reasons.iter().any(|r| r.starts_with("concentration:99%")),
            "{:?}",
            v.reasons
        );
        // A window below the share is not evidence.
        let mut low = concentrated(62 * S);
        low.peer_packets = 800;
        assert!(judge().concentration(Mode::Xdp, &low).is_none());
    }

    #[test]
    fn a_confirmed_tunnel_alone_is_suspected() {
        let mut j = judge();
        let v = j
            .detected(&named("dns_tunnel", Class::Tunnel, Confidence::High, S))
            .unwrap();
        assert_eq!(v.level, Level::Suspected);
        assert!(!j.confirms(Mode::Xdp, host(), peer()));
        let v = j.concentration(Mode::Xdp, &concentrated(61 * S)).unwrap();
        assert_eq!(v.level, Level::Tunnel);
        assert!(j.confirms(Mode::Xdp, host(), peer()));
    }

    #[test]
    fn one_way_evidence_needs_the_rule_for_a_vpn() {
        let mut j = judge();
        let one_way = named("openvpn", Class::Vpn, Confidence::OneWay, S);
        assert_eq!(j.detected(&one_way).unwrap().level, Level::Suspected);
        let v = j.concentration(Mode::Xdp, &concentrated(61 * S)).unwrap();
        assert_eq!(v.level, Level::Vpn);
    }

    #[test]
    fn a_heuristic_needs_a_second_signal() {
        let mut j = judge();
        let hint = named("openvpn", Class::Vpn, Confidence::Low, S);
        assert_eq!(j.detected(&hint).unwrap().level, Level::Suspected);
        assert_eq!(
            j.research(Mode::Xdp, host(), peer(), "overlap", 3 * S)
                .unwrap()
                .level,
            Level::Vpn
        );
    }

    #[test]
    fn verdicts_fall_back_when_the_evidence_is_old() {
        let mut j = judge();
        j.detected(&named("ipsec", Class::Vpn, Confidence::High, S))
            .unwrap();
        assert!(j.tick(500 * S).is_empty());
        let v = j.tick(700 * S);
        assert_eq!(v.len(), 1);
        assert_eq!((v[0].level, v[0].previous), (Level::None, Level::Vpn));
        assert!(v[0].protocols.is_empty());
    }
}
