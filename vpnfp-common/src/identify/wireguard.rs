//! WireGuard, from the protocol paper (Donenfeld, NDSS 2017, section 5.4)
//! and wireguard.com/protocol: every message starts with a type byte and
//! three reserved zero bytes.
//! - handshake initiation: type 1, exactly 148 bytes, sender index at 4;
//! - handshake response: type 2, exactly 92 bytes, sender index at 4,
//!   receiver index (the initiator's sender index) at 8;
//! - cookie reply: type 3, exactly 64 bytes;
//! - transport data: type 4, receiver index at 4, a 64-bit little-endian
//!   counter at 8, then ciphertext padded to 16 bytes plus a 16-byte tag:
//!   at least 32 bytes, a multiple of 16.
//!
//! Confirmed by the response (or cookie reply) pairing with the
//! initiation, or by three data
//! packets of one side with one receiver index and a rising counter (a
//! flow first seen mid-session). Variants: reserved bytes that are not
//! zero (Cloudflare WARP puts a client id there) are accepted only with the
//! exact sizes and the index pairing; a type word other than 4 on data
//! (AmneziaWG's configurable headers) only when both sides use the same
//! word and each shows three rising counters.

use super::{Found, Packet, Protocol, bytes};

pub const INITIATION: u8 = 1;
pub const RESPONSE: u8 = 2;
pub const COOKIE_REPLY: u8 = 3;
pub const DATA: u8 = 4;
pub const INITIATION_LEN: usize = 148;
pub const RESPONSE_LEN: usize = 92;
pub const COOKIE_REPLY_LEN: usize = 64;
pub const DATA_MIN: usize = 32;
/// Padding some clients add to handshake messages (TunnelBear's are 56
/// and 8 bytes longer).
const MAX_PADDING: usize = 64;

/// Counters of one side's data packets.
#[derive(Clone, Copy, Debug, Default)]
struct DataSide {
    word: u32,
    receiver: u32,
    counter: u64,
    count: u8,
}

#[derive(Clone, Debug, Default)]
pub struct State {
    /// The initiation's sender index and which side sent it.
    initiation: Option<(u32, usize, bool)>,
    data: [DataSide; 2],
}

/// A transport data message's shape: type 4, at least 32 bytes, a
/// multiple of 16.
pub fn data_shaped(p: &Packet<'_>) -> bool {
    let len = p.payload_len as usize;
    p.payload.first() == Some(&DATA) && len >= DATA_MIN && len.is_multiple_of(16)
}

impl State {
    /// A naming, and whether WireGuard is still possible.
    pub fn observe(&mut self, p: &Packet<'_>) -> (Option<Found>, bool) {
        let b = p.payload;
        let len = p.payload_len as usize;
        let (Some(word), Some(&kind)) = (bytes::u32le(b, 0), b.first()) else {
            return (None, false);
        };
        let reserved_zero = word >> 8 == 0;
        let side = p.side();
        match kind {
            INITIATION if (INITIATION_LEN..=INITIATION_LEN + MAX_PADDING).contains(&len) => {
                if let Some(sender) = bytes::u32le(b, 4) {
                    self.initiation = Some((sender, side, reserved_zero && len == INITIATION_LEN));
                }
                return (None, true);
            }
            RESPONSE | COOKIE_REPLY => {
                let exact = if kind == RESPONSE {
                    RESPONSE_LEN
                } else {
                    COOKIE_REPLY_LEN
                };
                if !(exact..=exact + MAX_PADDING).contains(&len) {
                    return (None, true);
                }
                // The response names the initiation's sender at 8, the
                // cookie reply at 4.
                let receiver_at = if kind == RESPONSE { 8 } else { 4 };
                let Some((sender, init_side, init_plain)) = self.initiation else {
                    return (None, true);
                };
                if init_side == side {
                    return (None, true);
                }
                let paired = bytes::u32le(b, receiver_at) == Some(sender);
                let plain = init_plain && reserved_zero && len == exact;
                let reason = match (paired, plain, kind) {
                    (true, true, RESPONSE) => "signature:wireguard-handshake",
                    (true, true, _) => "signature:wireguard-cookie-reply",
                    // Padded handshakes (TunnelBear) or a client id in the
                    // reserved bytes (Cloudflare WARP): the pairing decides.
                    (true, false, _) => "signature:wireguard-handshake-variant",
                    // A real peer answers the initiation's own index.
                    (false, _, _) => return (None, true),
                };
                return (Some(Found::sure(Protocol::WireGuard, reason)), true);
            }
            _ => {}
        }
        if len < DATA_MIN || !len.is_multiple_of(16) {
            return (None, false);
        }
        let (Some(receiver), Some(counter)) = (bytes::u32le(b, 4), bytes::u64le(b, 8)) else {
            return (None, false);
        };
        let d = &mut self.data[side];
        let rising = counter > d.counter && counter - d.counter < 1 << 20;
        if d.count > 0 && (d.word != word || d.receiver != receiver || !rising) {
            d.count = 0;
        }
        d.word = word;
        d.receiver = receiver;
        d.counter = counter;
        d.count = d.count.saturating_add(1);
        let d = self.data[side];
        // One side's data: WireGuard's structure, but one way (a forger's
        // three packets would show it too) until the other side's data.
        let other = self.data[1 - side];
        if kind == DATA && d.count >= 3 {
            let reason = match (word == DATA as u32, other.count > 0) {
                (true, true) => {
                    return (
                        Some(Found::sure(
                            Protocol::WireGuard,
                            "signature:wireguard-data-both-ways",
                        )),
                        true,
                    );
                }
                (false, true) => {
                    return (
                        Some(Found::sure(
                            Protocol::WireGuard,
                            "signature:wireguard-data-variant",
                        )),
                        true,
                    );
                }
                (true, false) => "signature:wireguard-data",
                // Type 4 with a client id in the reserved bytes (WARP).
                (false, false) => "signature:wireguard-data-variant",
            };
            return (Some(Found::one_way(Protocol::WireGuard, reason)), true);
        }
        if word != DATA as u32
            && word > COOKIE_REPLY as u32
            && d.count >= 3
            && other.count >= 3
            && other.word == word
        {
            return (
                Some(Found::sure(
                    Protocol::WireGuard,
                    "signature:wireguard-data-variant",
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

    fn message(kind: u8, len: usize, fields: &[(usize, &[u8])]) -> Vec<u8> {
        let mut v = noise(len as u64 + kind as u64, len);
        v[..4].copy_from_slice(&[kind, 0, 0, 0]);
        for (at, f) in fields {
            v[*at..*at + f.len()].copy_from_slice(f);
        }
        v
    }

    fn handshake(sender: u32, receiver: u32) -> (Vec<u8>, Vec<u8>) {
        (
            message(INITIATION, INITIATION_LEN, &[(4, &sender.to_le_bytes())]),
            message(
                RESPONSE,
                RESPONSE_LEN,
                &[(4, &0x1111u32.to_le_bytes()), (8, &receiver.to_le_bytes())],
            ),
        )
    }

    fn data(receiver: u32, counter: u64, len: usize) -> Vec<u8> {
        message(
            DATA,
            len,
            &[(4, &receiver.to_le_bytes()), (8, &counter.to_le_bytes())],
        )
    }

    #[test]
    fn handshake_pairs_indexes() {
        let (i, r) = handshake(0xdead_beef, 0xdead_beef);
        let f = run(&[udp(true, 51820, &i), udp(false, 51820, &r)]).unwrap();
        assert_eq!(f.protocol, Protocol::WireGuard);
        assert_eq!(f.reason, "signature:wireguard-handshake");
        // The right sizes but the wrong receiver: no pairing, no name.
        let (i, r) = handshake(0xdead_beef, 0xdead_bee0);
        assert_eq!(run(&[udp(true, 51820, &i), udp(false, 51820, &r)]), None);
        // A response from the initiator's own side is not a response.
        let (i, r) = handshake(7, 7);
        assert_eq!(run(&[udp(true, 51820, &i), udp(true, 51820, &r)]), None);
    }

    #[test]
    fn reserved_bytes_variant_needs_the_pairing() {
        let (mut i, mut r) = handshake(42, 42);
        i[1..4].copy_from_slice(&[0xab, 0xcd, 0xef]);
        r[1..4].copy_from_slice(&[0xab, 0xcd, 0xef]);
        let f = run(&[udp(true, 2408, &i), udp(false, 2408, &r)]).unwrap();
        assert_eq!(f.reason, "signature:wireguard-handshake-variant");
    }

    #[test]
    fn mid_session_data() {
        let d: Vec<_> = (100..103).map(|c| data(0x55, c, 96)).collect();
        let f = run(&[
            udp(true, 51820, &d[0]),
            udp(true, 51820, &d[1]),
            udp(true, 51820, &d[2]),
        ]);
        assert_eq!(
            f.map(|f| (f.reason, f.confidence)),
            Some(("signature:wireguard-data", super::super::Confidence::OneWay))
        );
        // The other side's data makes it both ways.
        let back = data(0x77, 5, 64);
        let mut state = super::super::FlowState::new();
        let mut last = None;
        for p in [
            udp(true, 51820, &d[0]),
            udp(true, 51820, &d[1]),
            udp(true, 51820, &d[2]),
            udp(false, 51820, &back),
        ] {
            if let super::super::Step::Named(f) = state.observe(&p) {
                last = Some(f);
            }
        }
        assert_eq!(
            last.map(|f| (f.reason, f.confidence)),
            Some((
                "signature:wireguard-data-both-ways",
                super::super::Confidence::High
            ))
        );
        // Two are not enough, a changing receiver breaks it, a length that is
        // not a multiple of 16 rules it out.
        assert_eq!(
            run(&[udp(true, 51820, &d[0]), udp(true, 51820, &d[1])]),
            None
        );
        let other = data(0x56, 102, 96);
        assert_eq!(
            run(&[
                udp(true, 51820, &d[0]),
                udp(true, 51820, &d[1]),
                udp(true, 51820, &other)
            ]),
            None
        );
        let odd = data(0x55, 102, 97);
        assert_eq!(
            run(&[
                udp(true, 51820, &d[0]),
                udp(true, 51820, &d[1]),
                udp(true, 51820, &odd)
            ]),
            None
        );
    }

    #[test]
    fn amnezia_style_headers_need_both_sides() {
        let word = 0x1a2b_3c4du32;
        let pkt = |recv: u32, c: u64| {
            let mut v = data(recv, c, 128);
            v[..4].copy_from_slice(&word.to_le_bytes());
            v
        };
        let up: Vec<_> = (1..4).map(|c| pkt(9, c)).collect();
        let down: Vec<_> = (1..4).map(|c| pkt(10, c)).collect();
        let mut packets = Vec::new();
        for k in 0..3 {
            packets.push(udp(true, 3000, &up[k]));
            packets.push(udp(false, 3000, &down[k]));
        }
        assert_eq!(
            run(&packets).map(|f| f.reason),
            Some("signature:wireguard-data-variant")
        );
        assert_eq!(run(&packets[..5]), None);
    }
}
