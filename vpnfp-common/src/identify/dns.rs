//! DNS messages (RFC 1035 section 4.1) on the ports DNS uses: 53, mDNS
//! (5353, RFC 6762) and LLMNR (5355, RFC 4795); over TCP with a 2-byte
//! length in front. A message is named when its header is sane (a known
//! opcode, one question; a query carries no answers) and its question's
//! name parses label by label to a type and class.

use super::{Found, Packet, Protocol, bytes};
use crate::net::parse::ipproto;

const PORTS: [u16; 3] = [53, 5353, 5355];

/// DNS needs no state across packets; the struct keeps the call shape of
/// the other candidates.
#[derive(Clone, Debug, Default)]
pub struct State;

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
        (
            message_ok(message).then_some(Found::sure(Protocol::Dns, "signature:dns-message")),
            true,
        )
    }
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
}
