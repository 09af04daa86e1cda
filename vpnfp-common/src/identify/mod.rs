//! Naming the protocol of a flow from its first payload-carrying packets.
//!
//! One implementation for every mode: the kernel programs hand the first K
//! payloads of each flow to userspace (the sample ring), the NFQUEUE and
//! replay paths take the same K from the shared engine, and all of them
//! feed [`FlowState::observe`]. It is `no_std` and allocation-free so it
//! could equally run in the kernel; its state is a small fixed struct per
//! flow.
//!
//! Every VPN signature demands a confirmation that one byte cannot give:
//! a session id echoed or kept, an index paired, a counter rising, a length
//! field equal to the payload's length. The benign protocols (TLS, QUIC,
//! DNS, HTTP, STUN, DTLS) are named too, so that a judge can explain a
//! host's traffic away instead of guessing.
//!
//! Each protocol's module cites the specification it implements.

pub mod dns;
pub mod encrypted;
pub mod http;
pub mod icmp;
pub mod ipsec;
pub mod kcp;
pub mod l2tp;
pub mod openvpn;
pub mod pptp;
pub mod quic;
pub mod softether;
pub mod ssh;
pub mod stun;
pub mod tailscale;
pub mod tinc;
pub mod tls;
pub mod tls_in_tls;
pub mod tunnel;
pub mod ultrasurf;
pub mod websocket;
pub mod wireguard;

use crate::net::parse::ipproto;

/// A protocol vpnfp can name. Names are lowercase snake_case.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    OpenVpn = 1,
    WireGuard = 2,
    Ipsec = 3,
    Pptp = 4,
    L2tp = 5,
    Tailscale = 6,
    Ssh = 7,
    AnyConnect = 8,
    FullyEncrypted = 9,
    Tls = 10,
    Dtls = 11,
    Quic = 12,
    Dns = 13,
    Http = 14,
    Stun = 15,
    IpInIp = 16,
    Gre = 17,
    IpInUdp = 18,
    Tinc = 19,
    SoftEther = 20,
    DnsTunnel = 21,
    IcmpTunnel = 22,
    UltraSurf = 23,
    TlsInTls = 24,
    WebSocketTunnel = 25,
    HttpCamouflage = 26,
    Kcp = 27,
}

/// What naming a protocol says about the host that uses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// A VPN protocol: the host's traffic goes through it.
    Vpn,
    /// A tunnel, not necessarily a VPN (SSH, fully encrypted proxies).
    Tunnel,
    /// Ordinary traffic: it explains a host's traffic to its peer.
    Benign,
}

impl Class {
    pub const fn as_str(self) -> &'static str {
        match self {
            Class::Vpn => "vpn",
            Class::Tunnel => "tunnel",
            Class::Benign => "benign",
        }
    }
}

impl Protocol {
    pub const ALL: [Protocol; 27] = [
        Protocol::OpenVpn,
        Protocol::WireGuard,
        Protocol::Ipsec,
        Protocol::Pptp,
        Protocol::L2tp,
        Protocol::Tailscale,
        Protocol::Ssh,
        Protocol::AnyConnect,
        Protocol::FullyEncrypted,
        Protocol::Tls,
        Protocol::Dtls,
        Protocol::Quic,
        Protocol::Dns,
        Protocol::Http,
        Protocol::Stun,
        Protocol::IpInIp,
        Protocol::Gre,
        Protocol::IpInUdp,
        Protocol::Tinc,
        Protocol::SoftEther,
        Protocol::DnsTunnel,
        Protocol::IcmpTunnel,
        Protocol::UltraSurf,
        Protocol::TlsInTls,
        Protocol::WebSocketTunnel,
        Protocol::HttpCamouflage,
        Protocol::Kcp,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Protocol::OpenVpn => "openvpn",
            Protocol::WireGuard => "wireguard",
            Protocol::Ipsec => "ipsec",
            Protocol::Pptp => "pptp",
            Protocol::L2tp => "l2tp",
            Protocol::Tailscale => "tailscale",
            Protocol::Ssh => "ssh",
            Protocol::AnyConnect => "anyconnect",
            Protocol::FullyEncrypted => "fully_encrypted",
            Protocol::Tls => "tls",
            Protocol::Dtls => "dtls",
            Protocol::Quic => "quic",
            Protocol::Dns => "dns",
            Protocol::Http => "http",
            Protocol::Stun => "stun",
            Protocol::IpInIp => "ip_in_ip",
            Protocol::Gre => "gre",
            Protocol::IpInUdp => "ip_in_udp",
            Protocol::Tinc => "tinc",
            Protocol::SoftEther => "softether",
            Protocol::DnsTunnel => "dns_tunnel",
            Protocol::IcmpTunnel => "icmp_tunnel",
            Protocol::UltraSurf => "ultrasurf",
            Protocol::TlsInTls => "tls_in_tls",
            Protocol::WebSocketTunnel => "websocket_tunnel",
            Protocol::HttpCamouflage => "http_camouflage",
            Protocol::Kcp => "kcp",
        }
    }

    pub const fn class(self) -> Class {
        match self {
            Protocol::OpenVpn
            | Protocol::WireGuard
            | Protocol::Ipsec
            | Protocol::Pptp
            | Protocol::L2tp
            | Protocol::Tailscale
            | Protocol::AnyConnect
            | Protocol::Tinc
            | Protocol::SoftEther => Class::Vpn,
            // Tunnels that hide nothing (IP in the clear) or that carry a
            // proxy rather than the host's whole traffic.
            Protocol::Ssh
            | Protocol::FullyEncrypted
            | Protocol::IpInIp
            | Protocol::Gre
            | Protocol::IpInUdp
            | Protocol::DnsTunnel
            | Protocol::IcmpTunnel
            | Protocol::UltraSurf
            | Protocol::TlsInTls
            | Protocol::WebSocketTunnel
            | Protocol::HttpCamouflage
            | Protocol::Kcp => Class::Tunnel,
            Protocol::Tls
            | Protocol::Dtls
            | Protocol::Quic
            | Protocol::Dns
            | Protocol::Http
            | Protocol::Stun => Class::Benign,
        }
    }

    pub fn from_u8(v: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|p| *p as u8 == v)
    }
}

/// How sure a naming is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Confidence {
    /// A statistical pattern (obfuscated OpenVPN, fully encrypted
    /// payloads): a hint that needs another signal before a verdict.
    Low,
    /// A protocol's own structure, but seen one way only: the flow is
    /// named, yet a device that forges packets could show the same, so
    /// the host stays `suspected` until the rule or the concentration mode
    /// agrees, and nothing is blocked on it.
    OneWay,
    /// A protocol's own structure, confirmed across fields or packets.
    High,
}

impl Confidence {
    pub const fn as_str(self) -> &'static str {
        match self {
            Confidence::Low => "low",
            Confidence::OneWay => "one_way",
            Confidence::High => "high",
        }
    }
}

/// A flow's protocol and the evidence for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    pub protocol: Protocol,
    /// `signature:...` (the protocol's structure), `heuristic:...`
    /// (a pattern), or `transport:...` (the IP protocol itself).
    pub reason: &'static str,
    pub confidence: Confidence,
}

impl Found {
    pub const fn sure(protocol: Protocol, reason: &'static str) -> Self {
        Self {
            protocol,
            reason,
            confidence: Confidence::High,
        }
    }

    pub const fn one_way(protocol: Protocol, reason: &'static str) -> Self {
        Self {
            protocol,
            reason,
            confidence: Confidence::OneWay,
        }
    }

    pub const fn hint(protocol: Protocol, reason: &'static str) -> Self {
        Self {
            protocol,
            reason,
            confidence: Confidence::Low,
        }
    }
}

/// One payload-carrying packet of a flow, as identification sees it.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    /// IP protocol number (after any extension headers).
    pub proto: u8,
    /// An IPsec authentication header came before the transport header.
    pub ah: bool,
    /// Sent by the side that started the flow (the TCP SYN's sender, or
    /// the sender of the first packet seen).
    pub from_client: bool,
    pub client_port: u16,
    pub server_port: u16,
    /// The captured payload: possibly shorter than `payload_len`.
    pub payload: &'a [u8],
    /// The payload's length as the IP header says.
    pub payload_len: u32,
    /// TCP: the connection's handshake was seen, so the first payload is
    /// the stream's start.
    pub start_seen: bool,
    /// Capture time, Unix seconds (OpenVPN's tls-crypt timestamps).
    pub unix_secs: u64,
}

impl Packet<'_> {
    /// The whole payload was captured.
    pub fn complete(&self) -> bool {
        self.payload.len() as u32 == self.payload_len
    }

    /// Either end uses `port`.
    pub fn port(&self, port: u16) -> bool {
        self.client_port == port || self.server_port == port
    }

    fn side(&self) -> usize {
        if self.from_client { 0 } else { 1 }
    }
}

/// What identification knows about a flow after a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Still looking.
    Pending,
    /// Named; every later packet answers the same.
    Named(Found),
    /// Nothing can match any more.
    Unknown,
}

/// Candidate bits: a protocol drops out when a packet rules it out.
mod candidate {
    pub const OPENVPN: u32 = 1 << 0;
    pub const OPENVPN_DATA: u32 = 1 << 1;
    pub const OPENVPN_PATTERN: u32 = 1 << 2;
    pub const WIREGUARD: u32 = 1 << 3;
    pub const ESP_IN_UDP: u32 = 1 << 4;
    pub const L2TP_DATA: u32 = 1 << 5;
    pub const ENCRYPTED: u32 = 1 << 6;
    pub const DNS: u32 = 1 << 7;
    pub const CLEAR_TUNNEL: u32 = 1 << 8;
    pub const ICMP_TUNNEL: u32 = 1 << 9;
    pub const TINC: u32 = 1 << 10;
    pub const KCP: u32 = 1 << 11;
    pub const ALL: u32 = u32::MAX;
}

/// Per-flow identification state. Small and fixed: it lives beside the
/// flow.
#[derive(Clone, Debug, Default)]
pub struct FlowState {
    /// Payload-carrying packets seen from the client and from the server.
    seen: [u8; 2],
    /// Candidate bits still alive (see [`candidate`]); 0 before the first
    /// packet means all.
    alive: u32,
    started: bool,
    found: Option<Found>,
    /// The side whose packet named the flow.
    named_by: u8,
    /// The initiator SPI of the IKE message that named the flow.
    ike_spi: u64,
    openvpn: openvpn::State,
    dns: dns::State,
    tunnel: tunnel::State,
    /// The detectors of one transport only: a flow keeps its transport,
    /// and the identifier holds one state per flow it watches (replaying
    /// churning flows spent most of its time writing these states).
    transport: Transport,
}

#[derive(Clone, Debug, Default)]
enum Transport {
    #[default]
    Unset,
    Udp(UdpState),
    Tcp(TcpState),
    Icmp(icmp::State),
}

#[derive(Clone, Debug, Default)]
struct UdpState {
    wireguard: wireguard::State,
    esp: ipsec::EspState,
    l2tp: l2tp::State,
    kcp: kcp::State,
}

#[derive(Clone, Debug, Default)]
struct TcpState {
    encrypted: encrypted::State,
    tinc: tinc::State,
    /// Proxies inside a flow first named TLS or HTTP.
    tls_in_tls: tls_in_tls::State,
    websocket: websocket::State,
}

impl FlowState {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn found(&self) -> Option<Found> {
        self.found
    }

    fn udp_state(&mut self) -> &mut UdpState {
        if !matches!(self.transport, Transport::Udp(_)) {
            self.transport = Transport::Udp(UdpState::default());
        }
        match &mut self.transport {
            Transport::Udp(s) => s,
            _ => unreachable!("just set"),
        }
    }

    fn tcp_state(&mut self) -> &mut TcpState {
        if !matches!(self.transport, Transport::Tcp(_)) {
            self.transport = Transport::Tcp(TcpState::default());
        }
        match &mut self.transport {
            Transport::Tcp(s) => s,
            _ => unreachable!("just set"),
        }
    }

    fn icmp_state(&mut self) -> &mut icmp::State {
        if !matches!(self.transport, Transport::Icmp(_)) {
            self.transport = Transport::Icmp(icmp::State::default());
        }
        match &mut self.transport {
            Transport::Icmp(s) => s,
            _ => unreachable!("just set"),
        }
    }

    /// Payload packets seen so far (both directions).
    pub fn packets_seen(&self) -> u32 {
        self.seen[0] as u32 + self.seen[1] as u32
    }

    /// One payload-carrying packet of the flow, in the order seen.
    pub fn observe(&mut self, p: &Packet<'_>) -> Step {
        if let Some(found) = self.found {
            // Counted so that a renaming says how many packets it took.
            let side = p.side();
            self.seen[side] = self.seen[side].saturating_add(1);
            if let Some(stronger) = self.strengthen(found, p) {
                self.found = Some(stronger);
                return Step::Named(stronger);
            }
            return Step::Named(found);
        }
        if !self.started {
            self.started = true;
            self.alive = candidate::ALL;
        }
        let side = p.side();
        let index = self.seen[side];
        self.seen[side] = index.saturating_add(1);
        // ESP and AH say IPsec by their IP protocol, but one packet is
        // what anyone can forge: one way, until the other side answers.
        let found = if p.ah || p.proto == ipproto::AH {
            Some(Found::one_way(Protocol::Ipsec, "transport:ah"))
        } else {
            match p.proto {
                ipproto::ESP => Some(Found::one_way(Protocol::Ipsec, "transport:esp")),
                ipproto::GRE => pptp::gre(p.payload)
                    .or_else(|| self.confirm(candidate::CLEAR_TUNNEL, |s| s.tunnel.observe(p))),
                tunnel::IPIP | tunnel::IPV6_IN_IP => {
                    self.confirm(candidate::CLEAR_TUNNEL, |s| s.tunnel.observe(p))
                }
                ipproto::ICMP | ipproto::ICMPV6 => {
                    self.confirm(candidate::ICMP_TUNNEL, |s| s.icmp_state().observe(p))
                }
                ipproto::UDP => self.udp(p),
                ipproto::TCP => self.tcp(p, index),
                _ => None,
            }
        };
        if let Some(found) = found {
            self.found = Some(found);
            self.named_by = side as u8;
            return Step::Named(found);
        }
        if self.alive == 0 && index > 0 {
            return Step::Unknown;
        }
        Step::Pending
    }

    /// A later packet of a named flow that makes its naming stronger: a
    /// DNS flow turns out to carry a tunnel's names; a TLS or HTTP flow a
    /// proxy; evidence seen one way is answered by the other side.
    fn strengthen(&mut self, found: Found, p: &Packet<'_>) -> Option<Found> {
        match found.protocol {
            Protocol::Tls => return self.tcp_state().tls_in_tls.observe(p),
            Protocol::Http => return self.tcp_state().websocket.observe(p),
            Protocol::HttpCamouflage => {
                return self
                    .tcp_state()
                    .websocket
                    .observe(p)
                    .filter(|f| f.confidence > found.confidence);
            }
            _ => {}
        }
        if found.protocol == Protocol::Dns {
            return match self.dns.observe(p) {
                (Some(f), _) if f.protocol == Protocol::DnsTunnel => Some(f),
                _ => None,
            };
        }
        if found.confidence != Confidence::OneWay || p.side() as u8 == self.named_by {
            return None;
        }
        let both_ways = |reason| Some(Found::sure(found.protocol, reason));
        match (found.protocol, p.proto) {
            (Protocol::Ipsec, _) if p.ah => both_ways("transport:ah-both-ways"),
            (Protocol::Ipsec, ipproto::ESP) => both_ways("transport:esp-both-ways"),
            (Protocol::Ipsec, ipproto::UDP) => {
                if ipsec::initiator_spi(p.payload, p.payload_len)
                    .is_some_and(|spi| spi != 0 && spi == self.ike_spi)
                {
                    both_ways("signature:ike-exchange")
                } else if found.reason == "signature:esp-in-udp-sequence"
                    && ipsec::esp_in_udp_shaped(p)
                {
                    both_ways("signature:esp-in-udp-both-ways")
                } else {
                    None
                }
            }
            (Protocol::WireGuard, ipproto::UDP) if wireguard::data_shaped(p) => {
                both_ways("signature:wireguard-data-both-ways")
            }
            (Protocol::OpenVpn, ipproto::UDP) => match self.openvpn.observe(p, p.payload) {
                (Some(f), ..) if f.confidence == Confidence::High => Some(f),
                _ => None,
            },
            _ => None,
        }
    }

    fn keep(&mut self, bit: u32, alive: bool) {
        if !alive {
            self.alive &= !bit;
        }
    }

    fn is_alive(&self, bit: u32) -> bool {
        self.alive & bit != 0
    }

    /// Hands the packet to a multi-packet candidate still alive: what it
    /// found, or nothing (and the candidate dropped once it says so).
    fn confirm(
        &mut self,
        bit: u32,
        observe: impl FnOnce(&mut Self) -> (Option<Found>, bool),
    ) -> Option<Found> {
        if !self.is_alive(bit) {
            return None;
        }
        let (found, alive) = observe(self);
        if found.is_none() {
            self.keep(bit, alive);
        }
        found
    }

    fn udp(&mut self, p: &Packet<'_>) -> Option<Found> {
        let payload = p.payload;
        // One-packet signatures whose structure confirms itself (a length
        // field equal to the payload, a 6-byte magic plus sizes).
        if let Some(f) = ipsec::ike(payload, p.payload_len) {
            self.ike_spi = ipsec::initiator_spi(payload, p.payload_len).unwrap_or(0);
            return Some(f);
        }
        if let Some(f) = tailscale::disco(payload, p.payload_len) {
            return Some(f);
        }
        if let Some(f) = l2tp::control(payload, p.payload_len) {
            return Some(f);
        }
        if let Some(f) = stun::message(payload, p.payload_len) {
            return Some(f);
        }
        if let Some(f) = quic::client_initial(p) {
            return Some(f);
        }
        if let Some(f) = softether::datagram(p) {
            return Some(f);
        }
        if let Some(f) = self.confirm(candidate::DNS, |s| s.dns.observe(p)) {
            return Some(f);
        }
        if let Some(f) = self.confirm(candidate::CLEAR_TUNNEL, |s| s.tunnel.observe(p)) {
            return Some(f);
        }
        // Multi-packet confirmations.
        if let Some(f) = self.confirm(candidate::WIREGUARD, |s| s.udp_state().wireguard.observe(p))
        {
            return Some(f);
        }
        if self.is_alive(candidate::OPENVPN | candidate::OPENVPN_DATA) {
            let (f, control, data) = self.openvpn.observe(p, payload);
            if f.is_some() {
                return f;
            }
            self.keep(candidate::OPENVPN, control);
            self.keep(candidate::OPENVPN_DATA, data);
        }
        if let Some(f) = self.confirm(candidate::ESP_IN_UDP, |s| s.udp_state().esp.observe(p)) {
            return Some(f);
        }
        if self.is_alive(candidate::L2TP_DATA) {
            let (f, alive) = self.udp_state().l2tp.observe(p);
            if f.is_some() {
                return f;
            }
            self.keep(candidate::L2TP_DATA, alive);
        }
        if let Some(f) = self.confirm(candidate::KCP, |s| s.udp_state().kcp.observe(p)) {
            return Some(f);
        }
        // DTLS last: OpenConnect's DTLS is named by the userspace
        // correlation with a TLS session to the same server.
        if let Some(f) = tls::dtls(payload, p.payload_len) {
            return Some(f);
        }
        // The pattern of obfuscated OpenVPN needs many packets; only
        // when nothing above could name the flow.
        if self.is_alive(candidate::OPENVPN_PATTERN) {
            let (f, alive) = self.openvpn.pattern(p);
            if f.is_some() {
                return f;
            }
            self.keep(candidate::OPENVPN_PATTERN, alive);
        }
        None
    }

    fn tcp(&mut self, p: &Packet<'_>, index: u8) -> Option<Found> {
        let payload = p.payload;
        if index == 0 {
            if let Some(f) = ssh::banner(payload) {
                return Some(f);
            }
            if let Some(f) = ultrasurf::first_payload(p) {
                return Some(f);
            }
            if let Some(f) = pptp::control(payload, p.payload_len) {
                return Some(f);
            }
            if p.from_client {
                // The proxies' watchers start at the first payload.
                if let Some(f) = tls::client_hello_start(payload) {
                    self.tcp_state().tls_in_tls.observe(p);
                    return Some(f);
                }
                if let Some(f) = http::request(payload) {
                    return self.tcp_state().websocket.observe(p).or(Some(f));
                }
            }
        }
        if let Some(f) = self.confirm(candidate::DNS, |s| s.dns.observe(p)) {
            return Some(f);
        }
        if let Some(f) = self.confirm(candidate::TINC, |s| s.tcp_state().tinc.observe(p, index)) {
            return Some(f);
        }
        if self.is_alive(candidate::OPENVPN | candidate::OPENVPN_DATA) {
            // OpenVPN over TCP: each packet behind a 2-byte length.
            let framed = openvpn::tcp_frame(payload, p.payload_len);
            let (f, control, data) = match framed {
                Some(inner) => self.openvpn.observe(p, inner),
                None => (None, false, false),
            };
            if f.is_some() {
                return f;
            }
            self.keep(candidate::OPENVPN, control);
            self.keep(candidate::OPENVPN_DATA, data);
        }
        if let Some(f) = self.confirm(candidate::ENCRYPTED, |s| {
            s.tcp_state().encrypted.observe(p, index)
        }) {
            return Some(f);
        }
        let pattern = self.confirm(candidate::OPENVPN_PATTERN, |s| {
            match openvpn::tcp_frame(payload, p.payload_len) {
                Some(inner) => s.openvpn.pattern(&Packet {
                    payload: inner,
                    payload_len: inner.len() as u32,
                    ..*p
                }),
                None => (None, false),
            }
        });
        if pattern.is_some() {
            return pattern;
        }
        None
    }
}

/// Big-endian and little-endian reads that never panic.
pub(crate) mod bytes {
    #[inline]
    pub fn u16be(b: &[u8], at: usize) -> Option<u16> {
        Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
    }

    #[inline]
    pub fn u32be(b: &[u8], at: usize) -> Option<u32> {
        let s = b.get(at..at + 4)?;
        Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }

    #[inline]
    pub fn u32le(b: &[u8], at: usize) -> Option<u32> {
        let s = b.get(at..at + 4)?;
        Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }

    #[inline]
    pub fn u64le(b: &[u8], at: usize) -> Option<u64> {
        let s = b.get(at..at + 8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Some(u64::from_le_bytes(a))
    }

    #[inline]
    pub fn u64be(b: &[u8], at: usize) -> Option<u64> {
        let s = b.get(at..at + 8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Some(u64::from_be_bytes(a))
    }
}

#[cfg(test)]
mod strengthen_tests {
    use super::testing::udp;
    use super::*;

    fn esp(from_client: bool) -> Packet<'static> {
        Packet {
            proto: ipproto::ESP,
            client_port: 0,
            server_port: 0,
            ..udp(from_client, 0, &[0, 0, 0, 7, 0, 0, 0, 1, 9, 9, 9, 9])
        }
    }

    #[test]
    fn an_ike_request_is_one_way_until_answered() {
        let mut request = vec![7u8; 28];
        request[8..16].fill(0);
        request[16] = 33;
        request[17] = 0x20;
        request[18] = 34;
        request[19] = 0x08;
        request[20..24].fill(0);
        request[24..28].copy_from_slice(&28u32.to_be_bytes());
        let mut response = request.clone();
        response[8..16].fill(9);
        response[19] = 0x20;
        let mut state = FlowState::new();
        let Step::Named(f) = state.observe(&udp(true, 500, &request)) else {
            panic!("IKE names at once");
        };
        assert_eq!(f.confidence, Confidence::OneWay);
        let mut other = response.clone();
        other[0] ^= 1; // another exchange's SPI
        assert_eq!(state.observe(&udp(false, 500, &other)), Step::Named(f));
        let Step::Named(f) = state.observe(&udp(false, 500, &response)) else {
            panic!("still named");
        };
        assert_eq!(
            (f.reason, f.confidence),
            ("signature:ike-exchange", Confidence::High)
        );
    }

    #[test]
    fn esp_one_way_then_both_ways() {
        let mut state = FlowState::new();
        let Step::Named(f) = state.observe(&esp(true)) else {
            panic!("ESP names at once");
        };
        assert_eq!(
            (f.reason, f.confidence),
            ("transport:esp", Confidence::OneWay)
        );
        // More of the same side changes nothing; the other side does.
        assert_eq!(state.observe(&esp(true)), Step::Named(f));
        let Step::Named(f) = state.observe(&esp(false)) else {
            panic!("still named");
        };
        assert_eq!(
            (f.reason, f.confidence),
            ("transport:esp-both-ways", Confidence::High)
        );
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A packet of a UDP flow between ports 40000 (client) and `port`.
    pub fn udp(from_client: bool, port: u16, payload: &[u8]) -> Packet<'_> {
        Packet {
            proto: ipproto::UDP,
            ah: false,
            from_client,
            client_port: 40000,
            server_port: port,
            payload,
            payload_len: payload.len() as u32,
            start_seen: false,
            unix_secs: 1_800_000_000,
        }
    }

    pub fn tcp(from_client: bool, port: u16, payload: &[u8]) -> Packet<'_> {
        Packet {
            proto: ipproto::TCP,
            start_seen: true,
            ..udp(from_client, port, payload)
        }
    }

    /// Feeds packets in order; the first naming, if any.
    pub fn run(packets: &[Packet<'_>]) -> Option<Found> {
        let mut state = FlowState::new();
        for p in packets {
            if let Step::Named(f) = state.observe(p) {
                return Some(f);
            }
        }
        None
    }

    /// Deterministic pseudo-random bytes (xorshift), for ciphertext.
    pub fn noise(seed: u64, len: usize) -> std::vec::Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }
}
