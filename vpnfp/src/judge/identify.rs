//! Per-flow identification in userspace: every source's payload samples go
//! through `vpnfp_common::identify` (the one engine), plus what needs
//! memory or lists: the TLS server name (reassembled across segments and
//! matched against the VPN name list), and AnyConnect's DTLS channel, named
//! by the TLS session the same host has with the same server.

use std::{collections::HashMap, net::IpAddr};

use crate::{
    hash::FastBuild,
    lru::{Inserted, SlabLru},
};
use vpnfp_common::{
    Direction, Scope,
    identify::{Class, Confidence, FlowState, Found, Packet, Protocol, Step, tls},
    net::parse::ipproto,
    record::sample_flags,
};

use crate::model::{FlowId, Mode, Sample};

use super::{names::PeerNames, providers::Providers};

/// Stop collecting a TLS ClientHello after this many bytes.
const MAX_HELLO: usize = 16 * 1024;

/// A flow's protocol as reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Naming {
    pub protocol: &'static str,
    pub class: Class,
    pub confidence: Confidence,
    pub reasons: Vec<String>,
    /// The TLS server name, when the flow sent one.
    pub server_name: Option<String>,
    /// A hint that the host's persistence to the peer confirmed (the
    /// research rule or the concentration mode agreed).
    pub confirmed: bool,
}

impl Naming {
    /// A weak pattern (fully encrypted payloads, the obfuscated-OpenVPN
    /// opcode pattern) not yet confirmed: it names nothing, the host is
    /// `suspected` at most, and nothing is blocked on it. Real traffic is
    /// full of such patterns (P2P handshakes, chat apps' own encryption,
    /// compressed payloads); only persistence to one peer tells a tunnel.
    pub fn is_hint(&self) -> bool {
        self.confidence == Confidence::Low && self.class != Class::Benign && !self.confirmed
    }
}

/// A flow named a VPN or a tunnel: the `vpn_detected` event.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    pub mode: Mode,
    pub id: FlowId,
    pub scope: Scope,
    pub naming: Naming,
    pub packets_seen: u32,
    /// Unix nanoseconds.
    pub at_ns: u64,
    /// The peer's name, where one was learnt.
    pub peer_name: Option<String>,
    /// `--local`: the process behind the flow (filled by the pipeline).
    pub process: crate::model::ProcessField,
}

#[derive(Debug)]
struct FlowEntry {
    state: FlowState,
    /// Boxed: most flows watched are never named, and the table's entries
    /// are written once per new flow (a churning replay's main cost).
    naming: Option<Box<Naming>>,
    /// The client's bytes of a TLS flow until its ClientHello is whole
    /// (boxed, as the naming: few flows are TLS in the making).
    #[expect(
        clippy::box_collection,
        reason = "8 bytes in every flow's entry instead of 24; the extra allocation is for TLS flows only"
    )]
    hello: Option<Box<Vec<u8>>>,
    reported: bool,
    scope: Scope,
    last_ns: u64,
}

/// Open flows by (mode, host, peer), indexes beside the flows' table.
#[derive(Default)]
struct Sessions {
    /// Open TLS flows by (mode, host, server), for AnyConnect.
    tls: FlowIndex,
    /// Open tinc meta connections, for the UDP data channel beside them
    /// (which shares the listening node's port).
    tinc_meta: FlowIndex,
    /// Open flows whose naming is a hint: what a verdict confirms (an
    /// index, so a verdict never walks every flow).
    hinted: FlowIndex,
}

type FlowIndex = HashMap<(Mode, IpAddr, IpAddr), Vec<FlowId>, FastBuild>;

impl Sessions {
    /// Takes an ended or forgotten flow out of every index.
    fn forget(&mut self, mode: Mode, id: &FlowId) {
        for sessions in [&mut self.tls, &mut self.tinc_meta, &mut self.hinted] {
            if sessions.is_empty() {
                continue;
            }
            if let Some(flows) = sessions.get_mut(&(mode, id.host, id.peer)) {
                flows.retain(|f| f != id);
                if flows.is_empty() {
                    sessions.remove(&(mode, id.host, id.peer));
                }
            }
        }
    }
}

/// Flows still being looked at, and what each was named.
pub struct Identifier {
    flows: SlabLru<(Mode, FlowId), FlowEntry>,
    providers: Providers,
    sessions: Sessions,
    /// Flows forgotten to stay within the limit before they ended.
    pub forgotten: u64,
    /// Peer names learnt from DNS answers and TLS server names.
    pub names: PeerNames,
}

impl Identifier {
    /// `max_flows`: flows tracked at once (the oldest are forgotten).
    pub fn new(providers: Providers, max_flows: usize, resolve: bool) -> Self {
        Self {
            flows: SlabLru::new(max_flows),
            providers,
            sessions: Sessions::default(),
            forgotten: 0,
            names: PeerNames::new(resolve),
        }
    }

    /// DNS answers name the addresses the hosts looked up.
    fn learn_names(&mut self, s: &Sample<'_>, from_client: bool) {
        let dns = s.id.host_port == 53 || s.id.peer_port == 53 || s.id.peer_port == 5353;
        if !dns || from_client {
            return;
        }
        let msg: &[u8] = match s.id.proto {
            ipproto::UDP => &s.payload,
            ipproto::TCP => s.payload.get(2..).unwrap_or(&[]),
            _ => return,
        };
        self.names.learn_dns(msg, s.ts_ns);
    }

    /// One payload sample. Returns the namings it completes, each flow's
    /// once (ordinary protocols too: they explain a host's traffic;
    /// AnyConnect may name two flows at once).
    pub fn sample(&mut self, mode: Mode, s: &Sample<'_>) -> Vec<Detection> {
        let key = (mode, s.id);
        let from_client = s.has(sample_flags::FROM_INITIATOR);
        self.learn_names(s, from_client);
        // One lookup whether the flow is new or known, and when the oldest
        // is forgotten to make room (samples of churning flows spent a
        // quarter of replay's time in this table's lookups).
        let (entry, inserted) = self.flows.get_or_insert_with(key, || FlowEntry {
            state: FlowState::new(),
            naming: None,
            hello: None,
            reported: false,
            scope: s.scope,
            last_ns: s.ts_ns,
        });
        if let Inserted::Evicting((old_mode, old_id), _) = inserted {
            self.forgotten += 1;
            self.sessions.forget(old_mode, &old_id);
        }
        entry.last_ns = s.ts_ns;
        let (sender_port, receiver_port) = match s.direction {
            Direction::Outbound => (s.id.host_port, s.id.peer_port),
            Direction::Inbound => (s.id.peer_port, s.id.host_port),
        };
        let (client_port, server_port) = if from_client {
            (sender_port, receiver_port)
        } else {
            (receiver_port, sender_port)
        };
        let packet = Packet {
            proto: s.id.proto,
            ah: s.has(sample_flags::AH),
            from_client,
            client_port,
            server_port,
            payload: &s.payload,
            payload_len: s.payload_len,
            start_seen: s.has(sample_flags::START_SEEN),
            unix_secs: s.ts_ns / 1_000_000_000,
        };
        // The TLS ClientHello's bytes, until it is whole. The flow's state
        // still follows the records (a proxy may be inside).
        if let Some(hello) = &mut entry.hello {
            if from_client {
                hello.extend_from_slice(&s.payload);
            }
            entry.state.observe(&packet);
            return self.tls_progress(key, s.ts_ns, false);
        }
        if let Some(n) = &entry.naming {
            // A DNS flow stays watched for a tunnel's names, and evidence
            // seen one way for the other side's answer (the kernel hands
            // over the first K packets either way).
            // A VPN's server name is what the client asked for: the
            // server's handshake answering it is the other side.
            if n.confidence == Confidence::OneWay
                && n.server_name.is_some()
                && !from_client
                && s.payload.starts_with(&[0x16, 0x03])
            {
                let n = entry.naming.as_mut().expect("named");
                n.confidence = Confidence::High;
                n.reasons.push("signature:tls-server-answered".to_string());
                entry.reported = false;
                return self.report(key, s.ts_ns).into_iter().collect();
            }
            // DNS, TLS and HTTP flows may turn out to carry a tunnel.
            let watched = [Protocol::Dns, Protocol::Tls, Protocol::Http]
                .iter()
                .any(|p| n.protocol == p.name())
                || n.confidence == Confidence::OneWay
                || (n.protocol == Protocol::HttpCamouflage.name()
                    && n.confidence == Confidence::Low);
            let before = entry.state.found();
            if watched
                && let Step::Named(f) = entry.state.observe(&packet)
                && Some(f) != before
            {
                entry.reported = false;
                return self.named(key, f, &s.payload, s.ts_ns);
            }
            return Vec::new();
        }
        let step = entry.state.observe(&packet);
        if s.id.proto == ipproto::UDP
            && !matches!(step, Step::Named(_))
            && self.beside_tinc_meta(mode, &s.id)
        {
            let found = Found::sure(
                Protocol::Tinc,
                "correlation:udp-beside-tinc-meta-connection",
            );
            return self.named(key, found, &s.payload, s.ts_ns);
        }
        match step {
            Step::Named(found) => self.named(key, found, &s.payload, s.ts_ns),
            Step::Pending | Step::Unknown => Vec::new(),
        }
    }

    /// tinc sends its packets over UDP between the same two nodes and the
    /// same port as its meta connection (tinc.conf `Port`, 655 by default).
    fn beside_tinc_meta(&self, mode: Mode, id: &FlowId) -> bool {
        self.sessions
            .tinc_meta
            .get(&(mode, id.host, id.peer))
            .is_some_and(|meta| {
                meta.iter().any(|m| {
                    [m.host_port, m.peer_port]
                        .iter()
                        .any(|p| *p == id.host_port || *p == id.peer_port)
                })
            })
    }

    fn named(
        &mut self,
        key: (Mode, FlowId),
        found: Found,
        payload: &[u8],
        now_ns: u64,
    ) -> Vec<Detection> {
        match found.protocol {
            Protocol::Tls => {
                let entry = self.flows.get_mut(&key).expect("present");
                entry.naming = Some(Box::new(naming(found, found.protocol.name())));
                entry.hello = Some(Box::new(payload.to_vec()));
                self.tls_progress(key, now_ns, false)
            }
            Protocol::Dtls => {
                let (mode, id) = key;
                // A TLS session to the same server and port that is still
                // open: AnyConnect keeps it for the whole tunnel. (WebRTC's
                // DTLS follows STUN on its flow, which names it `stun`.)
                let session = self
                    .sessions
                    .tls
                    .get(&(mode, id.host, id.peer))
                    .filter(|flows| flows.iter().any(|f| f.peer_port == id.peer_port))
                    .cloned();
                let Some(tls_flows) = session else {
                    self.set(key, naming(found, "dtls"));
                    return self.report(key, now_ns).into_iter().collect();
                };
                let anyconnect = Naming {
                    protocol: Protocol::AnyConnect.name(),
                    class: Class::Vpn,
                    confidence: Confidence::High,
                    reasons: vec![
                        found.reason.to_string(),
                        "correlation:dtls-after-tls-to-same-server".to_string(),
                    ],
                    server_name: None,
                    confirmed: false,
                };
                let mut out = Vec::new();
                // The TLS session is AnyConnect's control channel.
                for tls_id in tls_flows {
                    let tls_key = (mode, tls_id);
                    if let Some(entry) = self.flows.get_mut(&tls_key)
                        && entry
                            .naming
                            .as_ref()
                            .is_some_and(|n| n.class == Class::Benign)
                    {
                        // Reported as plain TLS before: now as AnyConnect.
                        entry.reported = false;
                        let server_name = entry.naming.as_ref().and_then(|n| n.server_name.clone());
                        entry.naming = Some(Box::new(Naming {
                            reasons: vec![
                                "signature:tls-client-hello".to_string(),
                                "correlation:tls-then-dtls-to-same-server".to_string(),
                            ],
                            server_name,
                            ..anyconnect.clone()
                        }));
                        out.extend(self.report(tls_key, now_ns));
                    }
                }
                self.set(key, anyconnect);
                out.extend(self.report(key, now_ns));
                out
            }
            _ => {
                if found.protocol == Protocol::Tinc && key.1.proto == ipproto::TCP {
                    let (mode, id) = key;
                    let meta = self
                        .sessions
                        .tinc_meta
                        .entry((mode, id.host, id.peer))
                        .or_default();
                    if !meta.contains(&id) {
                        meta.push(id);
                    }
                }
                let named = naming(found, found.protocol.name());
                if named.is_hint() {
                    let (mode, id) = key;
                    let flows = self
                        .sessions
                        .hinted
                        .entry((mode, id.host, id.peer))
                        .or_default();
                    if !flows.contains(&id) {
                        flows.push(id);
                    }
                }
                self.set(key, named);
                self.report(key, now_ns).into_iter().collect()
            }
        }
    }

    fn set(&mut self, key: (Mode, FlowId), naming: Naming) {
        if let Some(entry) = self.flows.get_mut(&key) {
            entry.naming = Some(Box::new(naming));
        }
    }

    /// Parses the ClientHello once it is whole (or gives up on it), then
    /// names the flow by its server name.
    fn tls_progress(&mut self, key: (Mode, FlowId), now_ns: u64, give_up: bool) -> Vec<Detection> {
        let entry = self.flows.get_mut(&key).expect("present");
        let Some(stream) = &entry.hello else {
            return Vec::new();
        };
        let mut handshake = Vec::new();
        tls::handshake_fragments(stream, |f| handshake.extend_from_slice(f));
        let server_name = match tls::client_hello(&handshake) {
            tls::Hello::Incomplete if !give_up && stream.len() < MAX_HELLO => {
                return Vec::new();
            }
            tls::Hello::Parsed {
                server_name: Some(name),
            } => std::str::from_utf8(name)
                .ok()
                .map(super::names::escape_controls),
            _ => None,
        };
        entry.hello = None;
        let (mode, id) = key;
        let session = self
            .sessions
            .tls
            .entry((mode, id.host, id.peer))
            .or_default();
        if !session.contains(&id) {
            session.push(id);
        }
        let naming = entry.naming.as_mut().expect("named tls");
        naming.server_name.clone_from(&server_name);
        if let Some(name) = &server_name {
            self.names.learn(id.peer, name, None, now_ns);
        }
        let naming = self
            .flows
            .get_mut(&key)
            .and_then(|e| e.naming.as_mut())
            .expect("named tls");
        if let Some(name) = &server_name
            && let Some(protocol) = self.providers.lookup(name)
        {
            // The client's word alone, until the server answers.
            naming.protocol = protocol;
            naming.class = Class::Vpn;
            naming.confidence = Confidence::OneWay;
            naming.reasons.push(format!("sni:{name}"));
        }
        self.report(key, now_ns).into_iter().collect()
    }

    /// The flow's naming, once.
    fn report(&mut self, key: (Mode, FlowId), now_ns: u64) -> Option<Detection> {
        let entry = self.flows.get_mut(&key)?;
        let naming = entry.naming.as_ref()?;
        if entry.reported || entry.hello.is_some() {
            return None;
        }
        entry.reported = true;
        let (scope, naming, packets_seen) = (
            entry.scope,
            Naming::clone(naming),
            entry.state.packets_seen(),
        );
        Some(Detection {
            mode: key.0,
            id: key.1,
            scope,
            naming,
            packets_seen,
            at_ns: now_ns,
            peer_name: self.names.peek(&key.1.peer, now_ns).map(str::to_string),
            process: Default::default(),
        })
    }

    /// What a flow was named, for its record. A flow that ends (not an
    /// active-timeout delta) is forgotten; a TLS flow whose hello never
    /// completed is named now.
    pub fn flow_record(
        &mut self,
        mode: Mode,
        id: &FlowId,
        ended: bool,
        now_ns: u64,
    ) -> (Option<Naming>, Vec<Detection>) {
        let key = (mode, *id);
        let mut detections = Vec::new();
        match self.flows.peek(&key) {
            // Never sampled, or forgotten (which left the indexes then).
            None => return (None, detections),
            Some(e) if e.hello.is_some() => detections = self.tls_progress(key, now_ns, true),
            Some(_) => {}
        }
        let naming = if ended {
            self.flows.remove(&key).and_then(|e| e.naming).map(|n| *n)
        } else {
            self.flows
                .get_mut(&key)
                .and_then(|e| e.naming.as_deref().cloned())
        };
        if ended {
            self.sessions.forget(mode, id);
        }
        (naming, detections)
    }

    /// Confirms the hints on the host's open flows to `peers` (its verdict
    /// became `tunnel` or `vpn` through them): each is reported again, now
    /// as a name.
    pub fn confirm_hints(
        &mut self,
        mode: Mode,
        host: IpAddr,
        peers: &[IpAddr],
        reason: &str,
        now_ns: u64,
    ) -> Vec<Detection> {
        let keys: Vec<(Mode, FlowId)> = peers
            .iter()
            .filter_map(|peer| self.sessions.hinted.remove(&(mode, host, *peer)))
            .flatten()
            .map(|id| (mode, id))
            .collect();
        let mut out = Vec::new();
        for key in keys {
            if let Some(entry) = self.flows.peek_mut(&key)
                && let Some(n) = &mut entry.naming
                && n.is_hint()
            {
                n.confirmed = true;
                n.reasons.push(format!("confirmed:{reason}"));
                entry.reported = false;
                out.extend(self.report(key, now_ns));
            }
        }
        out
    }

    /// Flows being tracked.
    pub fn tracked(&self) -> usize {
        self.flows.len()
    }
}

fn naming(found: Found, protocol: &'static str) -> Naming {
    Naming {
        protocol,
        class: found.protocol.class(),
        confidence: found.confidence,
        reasons: vec![found.reason.to_string()],
        server_name: None,
        confirmed: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn id(proto: u8, host_port: u16, peer_port: u16) -> FlowId {
        FlowId {
            host: "192.168.1.10".parse().unwrap(),
            peer: "198.51.100.4".parse().unwrap(),
            proto,
            host_port,
            peer_port,
        }
    }

    fn sample(id: FlowId, up: bool, payload: &[u8]) -> Sample<'_> {
        Sample {
            id,
            direction: if up {
                Direction::Outbound
            } else {
                Direction::Inbound
            },
            ts_ns: 1_800_000_000_000_000_000,
            payload_len: payload.len() as u32,
            payload: Cow::Borrowed(payload),
            flags: if up {
                sample_flags::FROM_INITIATOR | sample_flags::START_SEEN
            } else {
                sample_flags::START_SEEN
            },
            scope: Scope::External,
            sender: None,
        }
    }

    /// A ClientHello record naming `name`, with `pad` bytes of padding
    /// extension (to make it span segments).
    fn hello(name: &str, pad: usize) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7; 32]);
        body.push(0);
        body.extend_from_slice(&[0, 2, 0x13, 0x01, 1, 0]);
        let mut ext = vec![0x00, 0x15];
        ext.extend_from_slice(&(pad as u16).to_be_bytes());
        ext.extend(std::iter::repeat_n(0u8, pad));
        let mut sni = vec![];
        sni.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
        sni.push(0);
        sni.extend_from_slice(&(name.len() as u16).to_be_bytes());
        sni.extend_from_slice(name.as_bytes());
        ext.extend_from_slice(&[0, 0]);
        ext.extend_from_slice(&(sni.len() as u16).to_be_bytes());
        ext.extend_from_slice(&sni);
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
        let mut hs = vec![1, 0];
        hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
        hs.extend_from_slice(&body);
        let mut rec = vec![22, 3, 1];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }

    #[test]
    fn a_vpn_server_name_split_over_two_segments() {
        let mut ident = Identifier::new(Providers::built_in(), 100, false);
        let flow = id(ipproto::TCP, 40000, 443);
        let rec = hello("de0.sec-tunnel.com", 1800);
        let (a, b) = rec.split_at(1400);
        assert!(ident.sample(Mode::Xdp, &sample(flow, true, a)).is_empty());
        let out = ident.sample(Mode::Xdp, &sample(flow, true, b));
        assert_eq!(out.len(), 1);
        let n = &out[0].naming;
        assert_eq!((n.protocol, n.class), ("opera_vpn", Class::Vpn));
        assert_eq!(n.confidence, Confidence::OneWay);
        assert_eq!(n.server_name.as_deref(), Some("de0.sec-tunnel.com"));
        assert!(n.reasons.contains(&"sni:de0.sec-tunnel.com".to_string()));
        // The server's handshake answers it: now both ways.
        let out = ident.sample(Mode::Xdp, &sample(flow, false, &[0x16, 3, 3, 0, 90, 2]));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].naming.confidence, Confidence::High);
        // An ordinary name stays TLS, reported once as ordinary.
        let other = id(ipproto::TCP, 40001, 443);
        let out = ident.sample(
            Mode::Xdp,
            &sample(other, true, &hello("www.example.com", 0)),
        );
        assert_eq!(out[0].naming.protocol, "tls");
        assert_eq!(out[0].naming.class, Class::Benign);
        let (naming, _) = ident.flow_record(Mode::Xdp, &other, true, 0);
        assert_eq!(
            naming.unwrap().server_name.as_deref(),
            Some("www.example.com")
        );
        assert_eq!(ident.tracked(), 1);
    }

    #[test]
    fn dtls_beside_an_open_tls_session_is_anyconnect() {
        let mut ident = Identifier::new(Providers::built_in(), 100, false);
        let tls = id(ipproto::TCP, 40000, 443);
        ident.sample(Mode::Xdp, &sample(tls, true, &hello("vpn.corp.example", 0)));
        let mut dtls = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 40];
        dtls.extend_from_slice(&[1; 40]);
        let out = ident.sample(
            Mode::Xdp,
            &sample(id(ipproto::UDP, 50000, 443), true, &dtls),
        );
        let names: Vec<_> = out
            .iter()
            .map(|d| (d.id.proto, d.naming.protocol))
            .collect();
        assert_eq!(
            names,
            vec![(ipproto::TCP, "anyconnect"), (ipproto::UDP, "anyconnect")]
        );
        // DTLS to another port of that server, or with no TLS session: DTLS.
        let out = ident.sample(
            Mode::Xdp,
            &sample(id(ipproto::UDP, 50001, 4433), true, &dtls),
        );
        assert_eq!(out[0].naming.protocol, "dtls");
        ident.flow_record(Mode::Xdp, &tls, true, 0);
        let out = ident.sample(
            Mode::Xdp,
            &sample(id(ipproto::UDP, 50002, 443), true, &dtls),
        );
        assert_eq!(out[0].naming.protocol, "dtls");
    }

    #[test]
    fn tinc_udp_beside_its_meta_connection() {
        let mut ident = Identifier::new(Providers::built_in(), 100, false);
        let meta = id(ipproto::TCP, 40000, 655);
        assert!(
            ident
                .sample(Mode::Xdp, &sample(meta, true, b"0 alice 17.7\n"))
                .is_empty()
        );
        let out = ident.sample(Mode::Xdp, &sample(meta, false, b"0 bob 17.7\n"));
        assert_eq!(out[0].naming.protocol, "tinc");
        let data = id(ipproto::UDP, 655, 655);
        let out = ident.sample(Mode::Xdp, &sample(data, true, &[0x42; 60]));
        assert_eq!(out[0].naming.protocol, "tinc");
        assert_eq!(
            out[0].naming.reasons,
            vec!["correlation:udp-beside-tinc-meta-connection"]
        );
        // Once the meta connection ends, UDP on that port is nothing.
        ident.flow_record(Mode::Xdp, &meta, true, 0);
        let other = id(ipproto::UDP, 655, 656);
        assert!(
            ident
                .sample(Mode::Xdp, &sample(other, true, &[0x42; 60]))
                .is_empty()
        );
    }

    #[test]
    fn forgotten_flows_leave_the_indexes() {
        let mut ident = Identifier::new(Providers::built_in(), 1, false);
        let meta = id(ipproto::TCP, 40000, 655);
        ident.sample(Mode::Xdp, &sample(meta, true, b"0 alice 17.7\n"));
        ident.sample(Mode::Xdp, &sample(meta, false, b"0 bob 17.7\n"));
        assert_eq!(ident.sessions.tinc_meta.len(), 1);
        // A second flow pushes the first out of a table of one.
        ident.sample(
            Mode::Xdp,
            &sample(id(ipproto::UDP, 5000, 53), true, &[1; 20]),
        );
        assert_eq!(ident.forgotten, 1);
        assert!(
            ident.sessions.tinc_meta.is_empty(),
            "{:?}",
            ident.sessions.tinc_meta
        );
    }
}
