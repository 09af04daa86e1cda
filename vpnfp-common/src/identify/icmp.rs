//! ICMP tunnels (ptunnel, hans, icmptunnel) carry data in echo requests
//! and replies. RFC 792 (and RFC 4443 for ICMPv6) says an echo reply
//! returns the request's data unchanged: a ping's reply always does. A
//! tunnel's server answers with its own data. So:
//! - two replies whose data start differently from their request's
//!   (matched by identifier and sequence number), or that come ahead of
//!   every request of an identifier the host used, name the flow;
//! - ptunnel's magic number (0xD5200880; ptunnel-ng's 0xDEADC0DE, as its
//!   real traffic shows) in front of two echo payloads names it too;
//! - seen one way only, echo requests of many different sizes are a hint.

use super::{Found, Packet, Protocol, bytes};
use crate::net::parse::ipproto;

const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;
const PTUNNEL_MAGICS: [u32; 2] = [0xD520_0880, 0xDEAD_C0DE];
const HEADER: usize = 8;
/// Requests remembered until their reply.
const PENDING: usize = 8;

/// Echo data compared: its start. A large ping can come back fragmented
/// differently (another path MTU), so lengths may differ; its first bytes
/// never do.
const COMPARED: usize = 32;

/// FNV-1a over the start of the echo data.
fn digest(data: &[u8]) -> u32 {
    data.iter().take(COMPARED).fold(0x811c_9dc5u32, |h, &b| {
        (h ^ b as u32).wrapping_mul(0x0100_0193)
    })
}

#[derive(Clone, Debug, Default)]
pub struct State {
    /// (identifier << 16 | sequence, digest) of recent requests.
    pending: [(u32, u32); PENDING],
    next: u8,
    /// Replies that did not echo their request.
    differing: u8,
    magic: u8,
    /// Distinct request sizes seen (a small set, as bits of size / 16).
    sizes: u64,
    requests: u8,
}

impl State {
    pub fn observe(&mut self, p: &Packet<'_>) -> (Option<Found>, bool) {
        let b = p.payload;
        let (Some(&kind), Some(id_seq)) = (b.first(), bytes::u32be(b, 4)) else {
            return (None, false);
        };
        let (request, reply) = match p.proto {
            ipproto::ICMP => (ECHO_REQUEST_V4, ECHO_REPLY_V4),
            _ => (ECHO_REQUEST_V6, ECHO_REPLY_V6),
        };
        if kind != request && kind != reply {
            // Errors, router adverts, ...: not the echo a tunnel uses; the
            // flow may still carry echoes later.
            return (None, true);
        }
        let data = b.get(HEADER..).unwrap_or(&[]);
        let data_len = p.payload_len.saturating_sub(HEADER as u32);
        if bytes::u32be(data, 0).is_some_and(|m| PTUNNEL_MAGICS.contains(&m)) {
            self.magic = self.magic.saturating_add(1);
            if self.magic >= 2 {
                return (
                    Some(Found::sure(Protocol::IcmpTunnel, "signature:ptunnel-magic")),
                    true,
                );
            }
        }
        let d = digest(data);
        if kind == request {
            self.pending[self.next as usize % PENDING] = (id_seq, d);
            self.next = self.next.wrapping_add(1);
            self.requests = self.requests.saturating_add(1);
            self.sizes |= 1 << (data_len / 16).min(63);
            if self.requests >= 6 && self.sizes.count_ones() >= 4 {
                return (
                    Some(Found::hint(
                        Protocol::IcmpTunnel,
                        "heuristic:icmp-echo-sizes-vary",
                    )),
                    true,
                );
            }
            return (None, true);
        }
        let requested = self.requests.min(PENDING as u8) as usize;
        let asked = self.pending[..requested].iter().find(|(k, _)| *k == id_seq);
        let not_an_echo = match asked {
            Some(&(_, asked)) => asked != d,
            // A reply ahead of every request of the identifier: nothing
            // asked for it (a late reply to an old request is behind).
            None => {
                self.pending[..requested]
                    .iter()
                    .filter(|(k, _)| k >> 16 == id_seq >> 16)
                    .all(|(k, _)| k & 0xffff < id_seq & 0xffff)
                    && self.pending[..requested]
                        .iter()
                        .any(|(k, _)| k >> 16 == id_seq >> 16)
            }
        };
        if not_an_echo {
            self.differing = self.differing.saturating_add(1);
            if self.differing >= 2 {
                return (
                    Some(Found::sure(
                        Protocol::IcmpTunnel,
                        "signature:icmp-echo-reply-not-echoed",
                    )),
                    true,
                );
            }
        }
        (None, true)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{noise, run, udp};
    use super::*;
    use std::vec::Vec;

    fn echo(kind: u8, seq: u16, data: &[u8]) -> Vec<u8> {
        let mut m = vec![kind, 0, 0, 0, 0x12, 0x34];
        m.extend_from_slice(&seq.to_be_bytes());
        m.extend_from_slice(data);
        m
    }

    fn icmp(from_client: bool, payload: &[u8]) -> Packet<'_> {
        Packet {
            proto: ipproto::ICMP,
            client_port: 0,
            server_port: 0,
            ..udp(from_client, 0, payload)
        }
    }

    #[test]
    fn a_reply_that_is_not_an_echo() {
        let ping: Vec<u8> = (0x10..0x38).collect();
        let pings: Vec<Vec<u8>> = (0..6)
            .flat_map(|i| [echo(8, i, &ping), echo(0, i, &ping)])
            .collect();
        let packets: Vec<Packet<'_>> = pings
            .iter()
            .enumerate()
            .map(|(i, m)| icmp(i % 2 == 0, m))
            .collect();
        assert_eq!(run(&packets), None, "a ping is a ping");
        // A large ping whose reply comes back fragmented otherwise: the
        // first fragment is shorter, its data starts the same.
        let big = noise(9, 1400);
        let frag: Vec<Vec<u8>> = (0..3)
            .flat_map(|i| [echo(8, i, &big), echo(0, i, &big[..1000])])
            .collect();
        let packets: Vec<Packet<'_>> = frag
            .iter()
            .enumerate()
            .map(|(i, m)| icmp(i % 2 == 0, m))
            .collect();
        assert_eq!(run(&packets), None, "a fragmented reply is an echo");
        let msgs: Vec<Vec<u8>> = (0..3)
            .flat_map(|i| {
                [
                    echo(8, i, &noise(i as u64, 100)),
                    echo(0, i, &noise(i as u64 + 50, 200)),
                ]
            })
            .collect();
        let packets: Vec<Packet<'_>> = msgs
            .iter()
            .enumerate()
            .map(|(i, m)| icmp(i % 2 == 0, m))
            .collect();
        let f = run(&packets).unwrap();
        assert_eq!(
            (f.protocol, f.reason),
            (Protocol::IcmpTunnel, "signature:icmp-echo-reply-not-echoed")
        );
    }

    /// As ptunnel-ng's real traffic goes (magic aside): the server's
    /// kernel echoes each request, and the tunnel server sends replies of
    /// its own, some ahead of any request.
    #[test]
    fn replies_of_a_tunnel_server() {
        let (q0, q1) = (noise(1, 28), noise(2, 106));
        let msgs = [
            (true, echo(8, 0, &q0)),
            (false, echo(0, 0, &q0)),
            (true, echo(8, 1, &q1)),
            (false, echo(0, 1, &q1)),
            (false, echo(0, 1, &noise(3, 28))),
            (false, echo(0, 2, &noise(4, 184))),
        ];
        let packets: Vec<Packet<'_>> = msgs.iter().map(|(c, m)| icmp(*c, m)).collect();
        assert_eq!(
            run(&packets).map(|f| f.reason),
            Some("signature:icmp-echo-reply-not-echoed")
        );
        // A late reply (behind newer requests) is no evidence.
        let late = [
            (true, echo(8, 5, &q0)),
            (true, echo(8, 6, &q0)),
            (false, echo(0, 4, &q0)),
            (false, echo(0, 3, &q0)),
        ];
        let packets: Vec<Packet<'_>> = late.iter().map(|(c, m)| icmp(*c, m)).collect();
        assert_eq!(run(&packets), None);
    }

    #[test]
    fn ptunnel_magic_and_one_way_sizes() {
        let mut data = PTUNNEL_MAGICS[1].to_be_bytes().to_vec();
        data.extend_from_slice(&[0; 24]);
        let (a, b) = (echo(8, 1, &data), echo(8, 2, &data));
        let f = run(&[icmp(true, &a), icmp(true, &b)]).unwrap();
        assert_eq!(f.reason, "signature:ptunnel-magic");
        let msgs: Vec<Vec<u8>> = (0..6)
            .map(|i| echo(8, i, &noise(i as u64, 40 + 100 * i as usize)))
            .collect();
        let packets: Vec<Packet<'_>> = msgs.iter().map(|m| icmp(true, m)).collect();
        let f = run(&packets).unwrap();
        assert_eq!(f.confidence, super::super::Confidence::Low);
    }
}
