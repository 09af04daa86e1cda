//! DNS messages (RFC 1035 section 4.1) on the ports DNS uses: 53, mDNS
//! (5353, RFC 6762) and LLMNR (5355, RFC 4795); over TCP with a 2-byte
//! length in front. A message is named when its header is sane (a known
//! opcode, one question; a query carries no answers) and its question's
//! name parses label by label to a type and class.
//!
//! DNS tunnels (iodine, dnscat2, dns2tcp) encode their data into the
//! query names under one domain: long labels of base32, base64, hex or raw
//! bytes. A message whose name carries at least 40 such bytes before its
//! last two labels, one label of at least 24, drawn from many different
//! characters and no spaces, or one asking for type NULL (iodine's), or
//! one asking for TXT or KEY with at least 8 bytes mixing upper case,
//! lower case and digits (dns2tcp's base64 polls), on port 53, looks like
//! a tunnel's. Three such names, all different and
//! under the same domain, in one flow rename a `dns` flow `dns_tunnel`
//! (ordinary resolvers send one question per source port, and ordinary
//! long names - CDN hosts, anti-virus hash look-ups - come one at a time).

use super::{Found, Packet, Protocol, bytes};
use crate::net::parse::ipproto;

const PORTS: [u16; 3] = [53, 5353, 5355];

/// Tunnel-like names seen on the flow.
#[derive(Clone, Debug, Default)]
pub struct State {
    names: [u32; TUNNEL_NAMES],
    seen: u8,
    domain: u32,
}

const TUNNEL_NAMES: usize = 3;

impl State {
    pub fn observe(&mut self, p: &Packet<'_>) -> (Option<Found>, bool) {
        if !PORTS.iter().any(|&port| p.port(port)) {
            return (None, false);
        }
        let message = if p.proto == ipproto::TCP {
            match bytes::u16be(p.payload, 0) {
                Some(len) if len as u32 + 2 <= p.payload_len => &p.payload[2..],
                _ => return (None, false),
            }
        } else {
            p.payload
        };
        let Some((name, qtype)) = question(message) else {
            return (None, true);
        };
        let dns = Some(Found::sure(Protocol::Dns, "signature:dns-message"));
        // Tunnels go through resolvers, on port 53; multicast DNS and
        // LLMNR carry long service instance names of their own.
        let tunnel = if p.port(53) {
            tunnel_like(name, qtype)
        } else {
            None
        };
        let Some((digest, domain)) = tunnel else {
            return (dns, true);
        };
        let seen = self.seen as usize;
        if seen > 0 && domain != self.domain {
            // Another domain: not this tunnel.
            return (dns, true);
        }
        if seen < TUNNEL_NAMES && !self.names[..seen].contains(&digest) {
            self.names[seen] = digest;
            self.seen += 1;
            self.domain = domain;
        }
        if self.seen as usize == TUNNEL_NAMES {
            return (
                Some(Found::sure(
                    Protocol::DnsTunnel,
                    "signature:dns-tunnel-names",
                )),
                true,
            );
        }
        (dns, true)
    }
}

/// FNV-1a, lowercased (DNS names compare without case).
fn digest(h: u32, b: &[u8]) -> u32 {
    b.iter().fold(h, |h, c| {
        (h ^ c.to_ascii_lowercase() as u32).wrapping_mul(0x0100_0193)
    })
}

/// RR type NULL (RFC 1035: experimental, "anything at all"): iodine's
/// default; ordinary resolvers never ask for it.
const QTYPE_NULL: u16 = 10;
/// TXT and KEY: what dns2tcp and dnscat2 ask for, to get bytes back.
const QTYPE_TXT: u16 = 16;
const QTYPE_KEY: u16 = 25;

/// For a question that looks like encoded data (a long, varied name, or
/// type NULL): the digest of the whole name and of its domain (last two
/// labels).
fn tunnel_like(name: &[u8], qtype: u16) -> Option<(u32, u32)> {
    let mut labels = 0;
    let mut at = 0;
    while let Some(&len) = name.get(at) {
        if len == 0 {
            break;
        }
        labels += 1;
        at += 1 + len as usize;
    }
    if labels < 3 {
        return None;
    }
    let (mut data, mut longest, mut seen) = (0usize, 0usize, [0u64; 4]);
    // Upper case, lower case, digits: base64 (DNS names compare without
    // case, and people write them in lower case).
    let mut cases = 0u8;
    let (mut whole, mut domain) = (0x811c_9dc5u32, 0x811c_9dc5u32);
    let mut at = 0;
    for i in 0..labels {
        let len = name[at] as usize;
        let label = name.get(at + 1..at + 1 + len)?;
        whole = digest(whole, label);
        if i + 2 < labels {
            data += len;
            longest = longest.max(len);
            for &c in label {
                if c == b' ' {
                    return None; // a name for people, not an encoding
                }
                cases |= (c.is_ascii_uppercase() as u8)
                    | ((c.is_ascii_lowercase() as u8) << 1)
                    | ((c.is_ascii_digit() as u8) << 2);
                let c = c.to_ascii_lowercase();
                seen[(c >> 6) as usize] |= 1 << (c & 63);
            }
        } else {
            domain = digest(domain, label);
        }
        at += 1 + len;
    }
    let distinct: u32 = seen.iter().map(|w| w.count_ones()).sum();
    let encoded = data >= 40 && longest >= 24 && distinct >= 14;
    // dns2tcp's short polls: a few base64 bytes, asking for text back.
    let base64_text = matches!(qtype, QTYPE_TXT | QTYPE_KEY) && data >= 8 && cases == 7;
    (encoded || base64_text || qtype == QTYPE_NULL).then_some((whole, domain))
}

/// The question's name (its labels, up to and with the root) and type, of
/// a sane message.
fn question(b: &[u8]) -> Option<(&[u8], u16)> {
    if !message_ok(b) {
        return None;
    }
    let mut at = 12;
    while *b.get(at)? != 0 {
        at += 1 + b[at] as usize;
    }
    Some((b.get(12..=at)?, bytes::u16be(b, at + 1)?))
}

fn message_ok(b: &[u8]) -> bool {
    let (Some(flags), Some(qd), Some(an), Some(ns)) = (
        bytes::u16be(b, 2),
        bytes::u16be(b, 4),
        bytes::u16be(b, 6),
        bytes::u16be(b, 8),
    ) else {
        return false;
    };
    let response = flags & 0x8000 != 0;
    let opcode = (flags >> 11) & 0xF;
    let z = flags & 0x0040;
    if !matches!(opcode, 0 | 2 | 4 | 5) || z != 0 || qd != 1 {
        return false;
    }
    if !response && opcode == 0 && (an != 0 || ns != 0) {
        return false;
    }
    // The question: labels of 1..=63 bytes up to the root, at most 255
    // bytes, then type and class.
    let mut at = 12;
    let mut name_len = 0usize;
    loop {
        let Some(&label) = b.get(at) else {
            return false;
        };
        if label == 0 {
            at += 1;
            break;
        }
        if label > 63 {
            return false;
        }
        name_len += label as usize + 1;
        if name_len > 255 {
            return false;
        }
        at += 1 + label as usize;
    }
    let (Some(qtype), Some(qclass)) = (bytes::u16be(b, at), bytes::u16be(b, at + 2)) else {
        return false;
    };
    // Class IN, CH, HS or ANY (mDNS sets the top "unicast response" bit).
    qtype != 0 && matches!(qclass & 0x7FFF, 1 | 3 | 4 | 255)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{noise, run, tcp, udp};
    use super::*;
    use std::vec::Vec;

    /// A query for `labels` of `qtype`.
    fn query_for(id: u16, labels: &[&str], qtype: u16) -> Vec<u8> {
        let mut q = id.to_be_bytes().to_vec();
        q.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        for l in labels {
            q.push(l.len() as u8);
            q.extend_from_slice(l.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&[0, 1]);
        q
    }

    #[test]
    fn base64_text_polls_are_a_tunnel_and_ordinary_text_is_not() {
        let polls: Vec<Vec<u8>> = ["AAAAAB9dAA", "AAAAAPdSAA", "diYAAAABBA"]
            .iter()
            .enumerate()
            .map(|(i, l)| query_for(i as u16, &[l, "t2", "lab", "example"], QTYPE_TXT))
            .collect();
        let last = |queries: &[Vec<u8>]| {
            let mut state = crate::identify::FlowState::new();
            queries
                .iter()
                .filter_map(|q| match state.observe(&udp(true, 53, q)) {
                    crate::identify::Step::Named(f) => Some(f.protocol),
                    _ => None,
                })
                .last()
        };
        assert_eq!(last(&polls), Some(Protocol::DnsTunnel));
        // SPF and site-verification look-ups: lower case, or not text.
        let ordinary: Vec<Vec<u8>> = [
            (&["_dmarc", "mail", "example", "com"][..], QTYPE_TXT),
            (
                &["selector1", "_domainkey", "example", "com"][..],
                QTYPE_TXT,
            ),
            (&["Www2Shop", "example", "com"][..], 1),
            (&["Www3Shop", "example", "com"][..], 1),
        ]
        .iter()
        .enumerate()
        .map(|(i, (l, t))| query_for(i as u16, l, *t))
        .collect();
        assert_eq!(last(&ordinary), Some(Protocol::Dns));
    }

    fn query(name: &str) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            m.push(label.len() as u8);
            m.extend_from_slice(label.as_bytes());
        }
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        m
    }

    #[test]
    fn queries_on_dns_ports() {
        let q = query("example.org");
        let f = run(&[udp(true, 53, &q)]).unwrap();
        assert_eq!(
            (f.protocol, f.reason),
            (Protocol::Dns, "signature:dns-message")
        );
        let mut framed = (q.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&q);
        assert!(run(&[tcp(true, 53, &framed)]).is_some());
        // Elsewhere it is not named DNS; random bytes on 53 are not DNS.
        assert_eq!(run(&[udp(true, 9999, &q)]), None);
        for seed in 0..100 {
            assert_eq!(run(&[udp(true, 53, &noise(seed, 40))]), None);
        }
        // A label running past the end.
        let mut cut = query("example.org");
        cut.truncate(16);
        assert_eq!(run(&[udp(true, 53, &cut)]), None);
    }

    /// The flow's name after all the packets (DNS may be renamed).
    fn last(packets: &[Packet<'_>]) -> Option<Protocol> {
        let mut state = super::super::FlowState::new();
        let mut name = None;
        for p in packets {
            if let super::super::Step::Named(f) = state.observe(p) {
                name = Some(f.protocol);
            }
        }
        name
    }

    #[test]
    fn tunnel_names_under_one_domain() {
        let names = [
            "paaaakbrmdu3ohdwm5oyxqb4h2ezj3npvf2kt7.a0x9qlbzbmfu5e.t.example.org",
            "paaabkbqwe2g5kfjpcmy6tyzkxfb3jsyovh4mr.ho7qkbm2xbfzdq.t.example.org",
            "paaackfmc2gb7fyn3zlsk5rh6dqpqe4wxm3a1v.6cz0nd2lxa7w3y.t.example.org",
        ];
        let msgs: Vec<Vec<u8>> = names.iter().map(|n| query(n)).collect();
        let packets: Vec<_> = msgs.iter().map(|m| udp(true, 53, m)).collect();
        assert_eq!(last(&packets), Some(Protocol::DnsTunnel));
        // Named DNS at once, renamed on the third name; two are not enough;
        // the same name thrice is a retry; names under other domains do not
        // add up.
        assert_eq!(run(&packets[..1]).unwrap().protocol, Protocol::Dns);
        assert_eq!(last(&packets[..2]), Some(Protocol::Dns));
        assert_eq!(
            last(&[packets[0], packets[0], packets[0]]),
            Some(Protocol::Dns)
        );
        let other = query("paaackfmc2gb7fyn3zlsk5rh6dqpqe4wxm3a1v.6cz0nd2lxa7w3y.t.example.net");
        let mixed = [packets[0], packets[1], udp(true, 53, &other)];
        assert_eq!(last(&mixed), Some(Protocol::Dns));
        // iodine asks for type NULL, even with short names.
        let mut null: Vec<Vec<u8>> = ["yrbd2b", "vaaaakaupqi", "lacjolntc0"]
            .iter()
            .map(|n| query(&format!("{n}.t.example.org")))
            .collect();
        for m in &mut null {
            let at = m.len() - 3;
            m[at] = 10;
        }
        let null: Vec<_> = null.iter().map(|m| udp(true, 53, m)).collect();
        assert_eq!(last(&null), Some(Protocol::DnsTunnel));
        // A long CDN name is DNS at once.
        let cdn = query("rr3---sn-4g5e6nz7.googlevideo.com");
        assert_eq!(run(&[udp(true, 53, &cdn)]).unwrap().protocol, Protocol::Dns);
    }
}
