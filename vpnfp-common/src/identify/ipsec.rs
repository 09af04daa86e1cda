//! IPsec: IKE (RFC 7296 section 3.1 for IKEv2, RFC 2408 section 3.1 for
//! ISAKMP/IKEv1), ESP in UDP and NAT-T keepalives (RFC 3948). ESP and AH
//! as IP protocols (50, 51) are named from the IP header alone.
//!
//! IKE's header: two 8-byte SPIs, next payload, version (0x20 for IKEv2,
//! 0x10 for IKEv1), exchange type, flags, message id and the message's
//! length, which must equal the UDP payload's (after the 4-byte zero
//! "non-ESP marker" on port 4500). That equality plus the version and
//! exchange ranges is the confirmation.
//!
//! ESP in UDP (port 4500): a non-zero SPI and a sequence number; named
//! when one side shows three packets with one SPI and rising sequence
//! numbers.

use super::{Found, Packet, Protocol, bytes};

pub const IKE_PORT: u16 = 500;
pub const NAT_T_PORT: u16 = 4500;
const IKE_HEADER: usize = 28;

fn ike_header(b: &[u8], len: u32) -> Option<&'static str> {
    if b.len() < IKE_HEADER || bytes::u32be(b, 24)? != len || bytes::u64be(b, 0)? == 0 {
        return None;
    }
    let (next, version, exchange, flags) = (b[16], b[17], b[18], b[19]);
    match version {
        0x20 => {
            let next_ok = next == 0 || (33..=54).contains(&next);
            let exchange_ok = (34..=37).contains(&exchange) || (43..=44).contains(&exchange);
            let flags_ok = flags & !0x38 == 0;
            (next_ok && exchange_ok && flags_ok).then_some("signature:ikev2-header")
        }
        0x10 => {
            let next_ok = (1..=13).contains(&next) || matches!(next, 20 | 21 | 130..=132);
            let exchange_ok = (1..=5).contains(&exchange) || (32..=33).contains(&exchange);
            let flags_ok = flags & !0x07 == 0;
            (next_ok && exchange_ok && flags_ok).then_some("signature:ikev1-header")
        }
        _ => None,
    }
}

/// An IKE message, bare (port 500) or behind the non-ESP marker (4500):
/// one way until the peer answers in the same exchange.
pub fn ike(b: &[u8], payload_len: u32) -> Option<Found> {
    if let Some(reason) = ike_header(b, payload_len) {
        return Some(Found::one_way(Protocol::Ipsec, reason));
    }
    if bytes::u32be(b, 0)? == 0
        && let Some(reason) = ike_header(&b[4..], payload_len.checked_sub(4)?)
    {
        return Some(Found::one_way(
            Protocol::Ipsec,
            if reason == "signature:ikev2-header" {
                "signature:ikev2-nat-t"
            } else {
                "signature:ikev1-nat-t"
            },
        ));
    }
    None
}

/// The initiator's SPI of an IKE message (bare or behind the marker): the
/// responder's messages carry it back.
pub fn initiator_spi(b: &[u8], payload_len: u32) -> Option<u64> {
    if ike_header(b, payload_len).is_some() {
        return bytes::u64be(b, 0);
    }
    if bytes::u32be(b, 0)? == 0 && ike_header(&b[4..], payload_len.checked_sub(4)?).is_some() {
        return bytes::u64be(b, 4);
    }
    None
}

/// An ESP-in-UDP packet's shape: a non-zero SPI and room for a sequence
/// number, an IV and an ICV.
pub fn esp_in_udp_shaped(p: &Packet<'_>) -> bool {
    p.port(NAT_T_PORT)
        && p.payload_len >= 8 + 8 + 12
        && bytes::u32be(p.payload, 0).is_some_and(|spi| spi != 0)
}

#[derive(Clone, Copy, Debug, Default)]
struct Side {
    spi: u32,
    seq: u32,
    count: u8,
}

/// ESP-in-UDP state.
#[derive(Clone, Debug, Default)]
pub struct EspState {
    sides: [Side; 2],
}

impl EspState {
    pub fn observe(&mut self, p: &Packet<'_>) -> (Option<Found>, bool) {
        if !p.port(NAT_T_PORT) {
            return (None, false);
        }
        let b = p.payload;
        // A NAT-keepalive, or the non-ESP marker of an IKE message.
        if p.payload_len == 1 && b.first() == Some(&0xff) {
            return (None, true);
        }
        let (Some(spi), Some(seq)) = (bytes::u32be(b, 0), bytes::u32be(b, 4)) else {
            return (None, false);
        };
        if spi == 0 {
            return (None, true);
        }
        // SPI, sequence, at least an 8-byte IV or block and a 12-byte ICV.
        if p.payload_len < 8 + 8 + 12 {
            return (None, false);
        }
        let s = &mut self.sides[p.side()];
        let rising = seq > s.seq && seq - s.seq < 4096;
        if s.count > 0 && (s.spi != spi || !rising) {
            s.count = 0;
        }
        s.spi = spi;
        s.seq = seq;
        s.count = s.count.saturating_add(1);
        if s.count >= 3 {
            // One side's packets: one way until the other side's.
            return (
                Some(Found::one_way(
                    Protocol::Ipsec,
                    "signature:esp-in-udp-sequence",
                )),
                true,
            );
        }
        (None, true)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{noise, run, udp};
    use super::*;
    use std::vec::Vec;

    fn ike_init(version: u8, exchange: u8, next: u8) -> Vec<u8> {
        let mut v = noise(9, 300);
        v[8..16].fill(0); // responder SPI: 0 in the first request
        v[16] = next;
        v[17] = version;
        v[18] = exchange;
        v[19] = 0x08;
        v[20..24].fill(0);
        let len = v.len() as u32;
        v[24..28].copy_from_slice(&len.to_be_bytes());
        v
    }

    #[test]
    fn ikev2_sa_init_and_nat_t() {
        let m = ike_init(0x20, 34, 33);
        let f = run(&[udp(true, IKE_PORT, &m)]).unwrap();
        assert_eq!(
            (f.protocol, f.reason),
            (Protocol::Ipsec, "signature:ikev2-header")
        );
        let mut marked = vec![0, 0, 0, 0];
        marked.extend_from_slice(&ike_init(0x20, 35, 46));
        let f = run(&[udp(true, NAT_T_PORT, &marked)]).unwrap();
        assert_eq!(f.reason, "signature:ikev2-nat-t");
    }

    #[test]
    fn ikev1_main_mode() {
        let mut m = ike_init(0x10, 2, 1);
        m[19] = 0;
        assert_eq!(
            run(&[udp(true, IKE_PORT, &m)]).map(|f| f.reason),
            Some("signature:ikev1-header")
        );
    }

    #[test]
    fn ike_near_misses() {
        // The length field one off.
        let mut m = ike_init(0x20, 34, 33);
        m[27] ^= 1;
        assert_eq!(run(&[udp(true, IKE_PORT, &m)]), None);
        // An exchange type IKEv2 does not have.
        let m = ike_init(0x20, 40, 33);
        assert_eq!(run(&[udp(true, IKE_PORT, &m)]), None);
        // Version 3.
        let m = ike_init(0x30, 34, 33);
        assert_eq!(run(&[udp(true, IKE_PORT, &m)]), None);
    }

    fn esp(spi: u32, seq: u32) -> Vec<u8> {
        let mut v = spi.to_be_bytes().to_vec();
        v.extend_from_slice(&seq.to_be_bytes());
        v.extend_from_slice(&noise(seq as u64, 120));
        v
    }

    #[test]
    fn esp_in_udp_sequence() {
        let p: Vec<_> = (7..10).map(|s| esp(0xc0ffee, s)).collect();
        let keepalive = [0xffu8];
        let packets = [
            udp(true, NAT_T_PORT, &keepalive),
            udp(true, NAT_T_PORT, &p[0]),
            udp(true, NAT_T_PORT, &p[1]),
            udp(true, NAT_T_PORT, &p[2]),
        ];
        assert_eq!(
            run(&packets).map(|f| f.reason),
            Some("signature:esp-in-udp-sequence")
        );
        // Not on port 4500: not ESP in UDP.
        let off: Vec<_> = p.iter().map(|b| udp(true, 4501, b)).collect();
        assert_eq!(run(&off), None);
        // Two SPIs alternating.
        let q = [esp(1, 1), esp(2, 2), esp(1, 3)];
        let packets: Vec<_> = q.iter().map(|b| udp(true, NAT_T_PORT, b)).collect();
        assert_eq!(run(&packets), None);
    }
}
