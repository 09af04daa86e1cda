//! Tunnels that carry IP packets in the clear: IP in IP (IP protocol 4,
//! RFC 2003), IPv6 in IPv4 (41, RFC 4213), GRE version 0 (47, RFC 2784
//! and 2890) and plain IP in UDP, the simplest home-made tunnel (a TUN
//! device forwarded over a UDP socket, with or without the 4-byte packet
//! information header Linux's TUN adds unless `IFF_NO_PI`), and Teredo
//! (RFC 4380: IPv6 in UDP, behind its optional authentication and origin
//! indication headers).
//!
//! The inner packet must parse and its lengths must agree with the outer
//! payload's: an IPv4 header with a valid checksum and a total length
//! equal to what carries it, or an IPv6 header whose payload length plus
//! 40 is that length. One such packet names an IP-in-IP or GRE flow (its
//! IP protocol says "tunnel"); a UDP flow needs two, so one stray datagram
//! cannot.

use super::{Found, Packet, Protocol, bytes};
use crate::net::parse::ipproto;

pub const IPIP: u8 = 4;
pub const IPV6_IN_IP: u8 = 41;

const GRE_CHECKSUM: u8 = 0x80;
const GRE_KEY: u8 = 0x20;
const GRE_SEQUENCE: u8 = 0x10;
/// GRE payload types: IPv4, IPv6, transparent Ethernet bridging, MPLS.
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_TEB: u16 = 0x6558;
const ETH_P_MPLS: u16 = 0x8847;

/// An IP packet that exactly fills `b` (whose true length is `len`).
pub fn ip_packet(b: &[u8], len: u32) -> bool {
    let Some(&first) = b.first() else {
        return false;
    };
    match first >> 4 {
        4 => {
            let ihl = (first & 0x0f) as usize * 4;
            let Some(header) = b.get(..ihl) else {
                return false;
            };
            // The one's-complement sum over a valid header is 0xffff.
            ihl >= 20
                && bytes::u16be(b, 2) == Some(len as u16)
                && len <= 0xffff
                && ones_complement_sum(header) == 0xffff
                && header[8] > 0
        }
        6 => b.len() >= 40 && bytes::u16be(b, 4).is_some_and(|p| p as u32 + 40 == len) && b[7] > 0,
        _ => false,
    }
}

/// The Internet checksum's sum (RFC 1071) over 16-bit words.
pub fn ones_complement_sum(b: &[u8]) -> u16 {
    let mut sum: u32 = b
        .chunks(2)
        .map(|w| u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]) as u32)
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// What a clear tunnel's packet holds, if it is one.
fn carried(p: &Packet<'_>) -> Option<&'static str> {
    let (b, len) = (p.payload, p.payload_len);
    match p.proto {
        IPIP | IPV6_IN_IP => ip_packet(b, len).then_some(if p.proto == IPIP {
            "signature:ip-in-ip"
        } else {
            "signature:ipv6-in-ipv4"
        }),
        ipproto::GRE => {
            let (flags, version) = (*b.first()?, *b.get(1)?);
            if flags & 0x4f != 0 || version & 0x07 != 0 {
                return None; // routing, strict source route or recursion set; version 0 only
            }
            let header = 4 + 4 * [GRE_CHECKSUM, GRE_KEY, GRE_SEQUENCE]
                .iter()
                .filter(|&&bit| flags & bit != 0)
                .count();
            let inner = b.get(header..)?;
            let inner_len = len.checked_sub(header as u32)?;
            match bytes::u16be(b, 2)? {
                ETH_P_IP | ETH_P_IPV6 => ip_packet(inner, inner_len).then_some("signature:gre-ip"),
                ETH_P_TEB => (inner_len >= 14).then_some("signature:gre-ethernet"),
                ETH_P_MPLS => (inner_len >= 24).then_some("signature:gre-mpls"),
                _ => None,
            }
        }
        ipproto::UDP => {
            if ip_packet(b, len) {
                return Some("signature:ip-in-udp");
            }
            let at = |offset: usize| {
                len.checked_sub(offset as u32)
                    .zip(b.get(offset..))
                    .is_some_and(|(inner_len, inner)| ip_packet(inner, inner_len))
            };
            // Linux TUN's packet information: 2 bytes of flags, then the
            // Ethernet type of the packet behind it.
            let pi = bytes::u16be(b, 2)?;
            if (pi == ETH_P_IP || pi == ETH_P_IPV6) && bytes::u16be(b, 0) == Some(0) && at(4) {
                return Some("signature:ip-in-udp");
            }
            // Teredo (RFC 4380 section 5.1.1): an authentication header
            // (`00 01`, id and value lengths, a nonce and a confirmation
            // byte) and/or an origin indication (`00 00`, 6 bytes) before
            // the IPv6 packet.
            let mut offset = 0;
            if bytes::u16be(b, 0) == Some(1) {
                offset = 13 + *b.get(2)? as usize + *b.get(3)? as usize;
            }
            if bytes::u16be(b, offset) == Some(0) {
                offset += 8;
            }
            (offset > 0 && b.get(offset).is_some_and(|v| v >> 4 == 6) && at(offset))
                .then_some("signature:teredo")
        }
        _ => None,
    }
}

#[derive(Clone, Debug, Default)]
pub struct State {
    carried: u8,
}

impl State {
    pub fn observe(&mut self, p: &Packet<'_>) -> (Option<Found>, bool) {
        let Some(reason) = carried(p) else {
            return (None, false);
        };
        self.carried = self.carried.saturating_add(1);
        // IP protocols 4, 41 and 47 say "tunnel" themselves (as 50 says
        // ESP); UDP says nothing, so one datagram is not enough.
        if p.proto == ipproto::UDP && self.carried < 2 {
            return (None, true);
        }
        let protocol = match p.proto {
            ipproto::GRE => Protocol::Gre,
            ipproto::UDP => Protocol::IpInUdp,
            _ => Protocol::IpInIp,
        };
        (Some(Found::sure(protocol, reason)), true)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{noise, run, udp};
    use super::*;
    use std::vec::Vec;

    /// An IPv4 UDP packet with `n` payload bytes and a correct checksum.
    pub fn inner_v4(n: usize) -> Vec<u8> {
        let total = 28 + n;
        let mut h = vec![
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            1,
            0x40,
            0,
            64,
            17,
            0,
            0,
            10,
            8,
            0,
            2,
            10,
            8,
            0,
            1,
        ];
        let sum = ones_complement_sum(&h);
        h[10..12].copy_from_slice(&(!sum).to_be_bytes());
        h.extend_from_slice(&[0x30, 0x39, 0, 53, 0, (8 + n) as u8, 0, 0]);
        h.extend(noise(n as u64, n));
        h
    }

    fn proto(proto: u8, payload: &[u8]) -> Packet<'_> {
        Packet {
            proto,
            client_port: 0,
            server_port: 0,
            ..udp(true, 0, payload)
        }
    }

    #[test]
    fn ip_in_ip_gre_and_udp() {
        let a = inner_v4(20);
        let b = inner_v4(40);
        let f = run(&[proto(IPIP, &a), proto(IPIP, &b)]).unwrap();
        assert_eq!(
            (f.protocol, f.reason),
            (Protocol::IpInIp, "signature:ip-in-ip")
        );
        // A broken checksum never counts; one datagram is not enough on UDP.
        let mut bad = b.clone();
        bad[10] ^= 1;
        assert_eq!(run(&[proto(IPIP, &bad)]), None);
        assert_eq!(run(&[udp(true, 5000, &a)]), None);
        // GRE with a key, carrying IPv4.
        let gre = |inner: &[u8]| [&[0x20, 0, 0x08, 0x00, 0, 0, 0, 7][..], inner].concat();
        let (ga, gb) = (gre(&a), gre(&b));
        let f = run(&[proto(ipproto::GRE, &ga), proto(ipproto::GRE, &gb)]).unwrap();
        assert_eq!((f.protocol, f.reason), (Protocol::Gre, "signature:gre-ip"));
        // IP in UDP, bare and behind TUN's packet information.
        let f = run(&[udp(true, 5000, &a), udp(false, 5000, &b)]).unwrap();
        assert_eq!(f.protocol, Protocol::IpInUdp);
        let pi = |inner: &[u8]| [&[0, 0, 0x08, 0x00][..], inner].concat();
        let f = run(&[udp(true, 5000, &pi(&a)), udp(true, 5000, &pi(&b))]).unwrap();
        assert_eq!(f.protocol, Protocol::IpInUdp);
        // Teredo: a bubble (IPv6, no payload) behind an origin indication.
        let mut bubble = vec![0, 0, 0x8c, 0x2f, 0x3f, 0x57, 0xc6, 0x8d];
        bubble.extend_from_slice(&[0x60, 0, 0, 0, 0, 0, 59, 21]);
        bubble.extend_from_slice(&[0x20; 32]);
        let f = run(&[udp(true, 3544, &bubble), udp(true, 3544, &bubble)]).unwrap();
        assert_eq!(
            (f.protocol, f.reason),
            (Protocol::IpInUdp, "signature:teredo")
        );
        // Random datagrams are not IP.
        for seed in 0..200 {
            let (x, y) = (noise(seed, 60), noise(seed + 1000, 60));
            assert_ne!(
                run(&[udp(true, 5000, &x), udp(true, 5000, &y)]).map(|f| f.protocol),
                Some(Protocol::IpInUdp)
            );
        }
    }
}
