//! OpenVPN, from its reliability layer (OpenVPN's `ssl_pkt.h`,
//! `reliable.c`, `tls_crypt.c`; the protocol as documented in
//! "OpenVPN wire protocol", doc/doxygen/doc_protocol_overview.h).
//!
//! A control packet is `opcode<<3 | key_id`, an 8-byte session id, then,
//! with `--tls-auth`, an HMAC of 16/20/32/64 bytes, a 4-byte packet id
//! (starting at 1) and a 4-byte time; an ACK array (a count, that many
//! 4-byte ids and, if any, the peer's session id); and a 4-byte message id.
//! With `--tls-crypt` the packet id and time follow the session id
//! directly, then a 32-byte HMAC, and the rest is encrypted. Over TCP each
//! packet has a 2-byte length in front.
//!
//! Confirmations, strongest first:
//! - the server's reset acknowledges the client's reset and echoes its
//!   session id (plain and tls-auth);
//! - with tls-crypt, both resets carry packet id 1 and times within two
//!   minutes of each other;
//! - mid-handshake: both sides keep one session id each over 3+ control
//!   packets;
//! - mid-session (AEAD data channel, `P_DATA_V2`): one peer id and a
//!   rising packet id per side.
//!
//! Obfuscated OpenVPN (the "XOR patch", Tunnelblick's scramble options)
//! keeps the opcode byte a fixed function of the opcode, so the pattern of
//! Xue et al. (USENIX Security 2022) survives: two reset values that never
//! come back, then a handful of values shared by both sides.

use super::{Found, Packet, Protocol, bytes};

pub mod opcode {
    pub const CONTROL_HARD_RESET_CLIENT_V1: u8 = 1;
    pub const CONTROL_HARD_RESET_SERVER_V1: u8 = 2;
    pub const CONTROL_SOFT_RESET_V1: u8 = 3;
    pub const CONTROL_V1: u8 = 4;
    pub const ACK_V1: u8 = 5;
    pub const DATA_V1: u8 = 6;
    pub const CONTROL_HARD_RESET_CLIENT_V2: u8 = 7;
    pub const CONTROL_HARD_RESET_SERVER_V2: u8 = 8;
    pub const DATA_V2: u8 = 9;
    pub const CONTROL_HARD_RESET_CLIENT_V3: u8 = 10;
    pub const CONTROL_WKC_V1: u8 = 11;
}

const SESSION_ID: usize = 8;
/// Data packets of one side, with no packet of the other, for a hint.
const ONE_WAY_DATA: u8 = 6;
/// The HMAC sizes `--tls-auth` can use (MD5, SHA1, SHA256, SHA512).
const HMAC_SIZES: [u8; 4] = [16, 20, 32, 64];
const TLS_CRYPT_HMAC: usize = 32;
/// Smallest control packet: opcode, session id, ack count, message id.
const MIN_CONTROL: usize = 1 + SESSION_ID + 1 + 4;
/// A reset this large is a QUIC Initial (padded to 1200), not OpenVPN.
const MAX_RESET: u32 = 1200;
/// STUN's magic cookie at offset 4 rules out any OpenVPN reading.
const STUN_MAGIC: u32 = 0x2112_A442;
/// Seconds between the two resets' tls-crypt times.
const TLS_CRYPT_TIME_SLACK: u32 = 120;

/// How the client's reset was authenticated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Auth {
    #[default]
    Unknown,
    Plain,
    Hmac(u8),
    TlsCrypt {
        time: u32,
    },
}

#[derive(Clone, Copy, Debug, Default)]
struct DataSide {
    peer_id: u32,
    packet_id: u32,
    count: u8,
}

#[derive(Clone, Copy, Debug, Default)]
struct PatternSide {
    first: u8,
    count: u8,
}

/// Per-flow OpenVPN state.
#[derive(Clone, Debug, Default)]
pub struct State {
    /// Session ids of the client and of the server, once seen.
    session: [[u8; SESSION_ID]; 2],
    /// Control packets per side that kept the side's session id.
    control: [u8; 2],
    /// Sides whose control packets showed more than a constant header: an
    /// ACK of the other side's session id, or a tls-auth/tls-crypt time
    /// near the capture's clock (bit per side).
    confirmed: u8,
    auth: Auth,
    client_reset: bool,
    data: [DataSide; 2],
    pattern: [PatternSide; 2],
    /// Opcode-byte values after each side's first packet, and in which
    /// sides they appeared (bit 0 client, bit 1 server).
    later: [(u8, u8); 6],
    later_len: u8,
    later_count: u8,
}

/// The OpenVPN packet behind a TCP segment's 2-byte length, if the length
/// fits the segment.
pub fn tcp_frame(payload: &[u8], payload_len: u32) -> Option<&[u8]> {
    let len = bytes::u16be(payload, 0)? as usize;
    if len < MIN_CONTROL.min(24) || len + 2 > payload_len as usize {
        return None;
    }
    Some(&payload[2..payload.len().min(2 + len)])
}

fn is_control(op: u8) -> bool {
    matches!(
        op,
        opcode::CONTROL_HARD_RESET_CLIENT_V1
            | opcode::CONTROL_HARD_RESET_SERVER_V1
            | opcode::CONTROL_SOFT_RESET_V1
            | opcode::CONTROL_V1
            | opcode::ACK_V1
            | opcode::CONTROL_HARD_RESET_CLIENT_V2
            | opcode::CONTROL_HARD_RESET_SERVER_V2
            | opcode::CONTROL_HARD_RESET_CLIENT_V3
            | opcode::CONTROL_WKC_V1
    )
}

fn is_client_reset(op: u8) -> bool {
    matches!(
        op,
        opcode::CONTROL_HARD_RESET_CLIENT_V1
            | opcode::CONTROL_HARD_RESET_CLIENT_V2
            | opcode::CONTROL_HARD_RESET_CLIENT_V3
    )
}

fn is_server_reset(op: u8) -> bool {
    matches!(
        op,
        opcode::CONTROL_HARD_RESET_SERVER_V1 | opcode::CONTROL_HARD_RESET_SERVER_V2
    )
}

/// Which authentication the client's reset shows: the fields after it
/// must be a fresh packet id (1), an empty ACK array and message id 0.
fn client_auth(b: &[u8], now: u64) -> Auth {
    let after = 1 + SESSION_ID;
    if b.get(after) == Some(&0) && bytes::u32be(b, after + 1) == Some(0) {
        return Auth::Plain;
    }
    for h in HMAC_SIZES {
        let at = after + h as usize;
        if bytes::u32be(b, at) == Some(1)
            && b.get(at + 8) == Some(&0)
            && bytes::u32be(b, at + 9) == Some(0)
        {
            return Auth::Hmac(h);
        }
    }
    // tls-crypt: packet id 1, a plausible time, the HMAC, then ciphertext.
    if bytes::u32be(b, after) == Some(1)
        && b.len() > after + 8 + TLS_CRYPT_HMAC
        && let Some(time) = bytes::u32be(b, after + 4)
        && time_plausible(time, now)
    {
        return Auth::TlsCrypt { time };
    }
    Auth::Unknown
}

/// A control packet's fields after the session id, for each way it can
/// be authenticated: an ACK array (1 to 8 ids) followed by the other
/// side's session id, or a tls-auth / tls-crypt time within a day of the
/// capture's clock.
fn mid_handshake_fields(b: &[u8], other: &[u8; SESSION_ID], now: u64) -> bool {
    let after = 1 + SESSION_ID;
    // Plain: the ACK array follows at once; tls-auth: after the HMAC, the
    // packet id and the time.
    let ack_at = core::iter::once(after).chain(HMAC_SIZES.iter().map(|&h| after + h as usize + 8));
    for at in ack_at {
        if let Some(&n) = b.get(at)
            && (1..=8).contains(&n)
            && b.get(at + 1 + 4 * n as usize..at + 1 + 4 * n as usize + SESSION_ID)
                == Some(&other[..])
        {
            return true;
        }
    }
    // tls-crypt: packet id then time right after the session id.
    let time_at =
        core::iter::once(after + 4).chain(HMAC_SIZES.iter().map(|&h| after + h as usize + 4));
    time_at
        .filter_map(|at| bytes::u32be(b, at))
        .any(|t| time_plausible(t, now))
}

/// Within a day of the capture's clock: clients' clocks drift, but a
/// random word is almost never this close.
fn time_plausible(time: u32, now: u64) -> bool {
    (time as u64).abs_diff(now) <= 86_400
}

impl State {
    /// One packet (the payload behind any TCP length). Returns a naming,
    /// and whether the control-channel and data-channel readings are
    /// still possible.
    pub fn observe(&mut self, p: &Packet<'_>, b: &[u8]) -> (Option<Found>, bool, bool) {
        let Some(&first) = b.first() else {
            return (None, false, false);
        };
        if bytes::u32be(b, 4) == Some(STUN_MAGIC) {
            return (None, false, false);
        }
        let op = first >> 3;
        let side = p.side();
        if op == opcode::DATA_V2 {
            return (self.data(side, b), true, true);
        }
        if !is_control(op) || b.len() < MIN_CONTROL {
            return (None, false, false);
        }
        let sid: [u8; SESSION_ID] = b[1..1 + SESSION_ID].try_into().unwrap_or_default();
        if sid == [0; SESSION_ID] {
            return (None, false, false);
        }
        let first_of_side = self.control[side] == 0;
        if first_of_side {
            self.session[side] = sid;
        } else if self.session[side] != sid {
            return (None, false, false);
        }
        self.control[side] = self.control[side].saturating_add(1);
        let len = if p.proto == crate::net::parse::ipproto::TCP {
            b.len() as u32
        } else {
            p.payload_len
        };
        if first_of_side && p.from_client && is_client_reset(op) {
            if len >= MAX_RESET {
                return (None, false, false);
            }
            self.client_reset = true;
            self.auth = client_auth(b, p.unix_secs);
        }
        if first_of_side && !p.from_client && is_server_reset(op) && self.client_reset {
            if len >= MAX_RESET || sid == self.session[0] {
                return (None, false, false);
            }
            if let Some(found) = self.server_reset(b) {
                return (Some(found), true, false);
            }
        }
        if self.control[1 - side] > 0
            && mid_handshake_fields(b, &self.session[1 - side], p.unix_secs)
        {
            self.confirmed |= 1 << side;
        }
        // Mid-handshake: three control packets each way, one session id
        // per side, the two different. A constant 8 bytes per side is
        // also what many fixed headers look like (PTP, Megaco): only the
        // reliability layer's own fields make it OpenVPN.
        if self.control[0] >= 3 && self.control[1] >= 3 && self.session[0] != self.session[1] {
            let found = if self.confirmed != 0 {
                Found::sure(Protocol::OpenVpn, "signature:openvpn-session-ids-acked")
            } else {
                Found::hint(Protocol::OpenVpn, "heuristic:openvpn-session-ids")
            };
            return (Some(found), true, false);
        }
        (None, true, true)
    }

    /// The server's reset against the client's.
    fn server_reset(&self, b: &[u8]) -> Option<Found> {
        let client = &self.session[0];
        let echoes_at = |ack: usize| {
            b.get(ack) == Some(&1) && b.get(ack + 5..ack + 5 + SESSION_ID) == Some(&client[..])
        };
        match self.auth {
            Auth::Plain if echoes_at(1 + SESSION_ID) => Some(Found::sure(
                Protocol::OpenVpn,
                "signature:openvpn-reset-echo",
            )),
            Auth::Hmac(h) => {
                let at = 1 + SESSION_ID + h as usize;
                (bytes::u32be(b, at) == Some(1) && echoes_at(at + 8)).then_some(Found::sure(
                    Protocol::OpenVpn,
                    "signature:openvpn-reset-echo-tls-auth",
                ))
            }
            Auth::TlsCrypt { time } => {
                let after = 1 + SESSION_ID;
                let server_time = bytes::u32be(b, after + 4)?;
                (bytes::u32be(b, after) == Some(1)
                    && server_time.abs_diff(time) <= TLS_CRYPT_TIME_SLACK
                    && b.len() > after + 8 + TLS_CRYPT_HMAC)
                    .then_some(Found::sure(
                        Protocol::OpenVpn,
                        "signature:openvpn-tls-crypt-resets",
                    ))
            }
            _ => None,
        }
    }

    /// An AEAD `P_DATA_V2` packet: opcode, 3-byte peer id, 4-byte packet
    /// id, ciphertext and a 16-byte tag.
    fn data(&mut self, side: usize, b: &[u8]) -> Option<Found> {
        let (Some(word), Some(packet_id)) = (bytes::u32be(b, 0), bytes::u32be(b, 4)) else {
            return None;
        };
        if b.len() < 8 + 16 + 1 {
            return None;
        }
        let d = &mut self.data[side];
        // Packet ids rise; losses and reordering leave gaps, never jumps
        // of thousands within a flow's first packets.
        let consistent = d.count == 0
            || (d.peer_id == word && packet_id > d.packet_id && packet_id - d.packet_id < 4096);
        if !consistent {
            d.count = 0;
        }
        d.peer_id = word;
        d.packet_id = packet_id;
        d.count = d.count.saturating_add(1);
        let [a, b] = [self.data[0].count, self.data[1].count];
        if (a >= 3 && b >= 2) || (a >= 2 && b >= 3) {
            return Some(Found::sure(
                Protocol::OpenVpn,
                "signature:openvpn-data-v2-packet-ids",
            ));
        }
        // Seen one way only (an asymmetric route, a capture of one
        // direction): a long run of one peer id and rising packet ids is
        // OpenVPN's structure, but one forged direction could give it too.
        (a.max(b) >= ONE_WAY_DATA && a.min(b) == 0).then_some(Found::one_way(
            Protocol::OpenVpn,
            "signature:openvpn-data-v2-one-way",
        ))
    }

    /// The opcode-byte pattern of (possibly obfuscated) OpenVPN: each
    /// side's first value (its reset) never comes back, and after them
    /// the sides use 2 to 4 values (control, ack, data), at least one of
    /// them both. Needs
    /// 10 packets; a hint, not a verdict (the paper's filter alone flagged
    /// 0.75% of long flows).
    pub fn pattern(&mut self, p: &Packet<'_>) -> (Option<Found>, bool) {
        let Some(&value) = p.payload.first() else {
            return (None, false);
        };
        let side = p.side();
        let s = &mut self.pattern[side];
        if s.count == 0 {
            s.first = value;
            s.count = 1;
            return (None, true);
        }
        s.count = s.count.saturating_add(1);
        let [c, srv] = self.pattern;
        let is_reset_value =
            (c.count > 0 && value == c.first) || (srv.count > 0 && value == srv.first);
        if is_reset_value || (c.count > 0 && srv.count > 0 && c.first == srv.first) {
            return (None, false);
        }
        let bit = 1u8 << side;
        let n = self.later_len as usize;
        let room = n < self.later.len();
        match self.later[..n].iter_mut().find(|(v, _)| *v == value) {
            Some((_, sides)) => *sides |= bit,
            None if room => {
                self.later[n] = (value, bit);
                self.later_len += 1;
            }
            None => return (None, false),
        }
        self.later_count = self.later_count.saturating_add(1);
        let distinct = self.later_len;
        if distinct > 4 {
            return (None, false);
        }
        let shared = self.later[..self.later_len as usize]
            .iter()
            .filter(|(_, sides)| *sides == 3)
            .count();
        let total = c.count as u32 + srv.count as u32;
        if total >= 10 && c.count >= 3 && srv.count >= 3 && distinct >= 2 && shared >= 1 {
            return (
                Some(Found::hint(
                    Protocol::OpenVpn,
                    "heuristic:openvpn-opcode-pattern",
                )),
                true,
            );
        }
        (None, true)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{noise, run, tcp, udp};
    use super::super::{Confidence, Protocol};
    use super::*;
    use std::vec::Vec;

    const CLIENT_SID: [u8; 8] = [0x76, 0xe4, 0xed, 0x74, 0x1f, 0x20, 0xa2, 0xfd];
    const SERVER_SID: [u8; 8] = [0xef, 0xf5, 0xc6, 0xf8, 0x26, 0x12, 0x40, 0x7a];

    fn packet(op: u8, sid: &[u8; 8], rest: &[u8]) -> Vec<u8> {
        let mut v = vec![op << 3];
        v.extend_from_slice(sid);
        v.extend_from_slice(rest);
        v
    }

    /// Plain resets, as OpenVPN 2.6 sends them (one of our captures).
    fn plain_resets() -> (Vec<u8>, Vec<u8>) {
        let client = packet(
            opcode::CONTROL_HARD_RESET_CLIENT_V2,
            &CLIENT_SID,
            &[0, 0, 0, 0, 0],
        );
        let mut rest = vec![1, 0, 0, 0, 0];
        rest.extend_from_slice(&CLIENT_SID);
        rest.extend_from_slice(&[0, 0, 0, 0]);
        let server = packet(opcode::CONTROL_HARD_RESET_SERVER_V2, &SERVER_SID, &rest);
        (client, server)
    }

    #[test]
    fn plain_reset_echo() {
        let (c, s) = plain_resets();
        let f = run(&[udp(true, 1194, &c), udp(false, 1194, &s)]).unwrap();
        assert_eq!(f.protocol, Protocol::OpenVpn);
        assert_eq!(f.reason, "signature:openvpn-reset-echo");
        assert_eq!(f.confidence, Confidence::High);
    }

    #[test]
    fn one_reset_is_not_enough_and_a_wrong_echo_is_not_a_match() {
        let (c, mut s) = plain_resets();
        assert_eq!(run(&[udp(true, 1194, &c)]), None);
        s[15] ^= 1; // the echoed session id
        assert_eq!(run(&[udp(true, 1194, &c), udp(false, 1194, &s)]), None);
    }

    #[test]
    fn tls_auth_with_every_hmac_size() {
        for h in HMAC_SIZES {
            let h = h as usize;
            let mut rest = noise(h as u64, h);
            rest.extend_from_slice(&1u32.to_be_bytes());
            rest.extend_from_slice(&1_800_000_000u32.to_be_bytes());
            rest.extend_from_slice(&[0, 0, 0, 0, 0]);
            let c = packet(opcode::CONTROL_HARD_RESET_CLIENT_V2, &CLIENT_SID, &rest);
            let mut rest = noise(7 + h as u64, h);
            rest.extend_from_slice(&1u32.to_be_bytes());
            rest.extend_from_slice(&1_800_000_001u32.to_be_bytes());
            rest.extend_from_slice(&[1, 0, 0, 0, 0]);
            rest.extend_from_slice(&CLIENT_SID);
            rest.extend_from_slice(&[0, 0, 0, 0]);
            let s = packet(opcode::CONTROL_HARD_RESET_SERVER_V2, &SERVER_SID, &rest);
            let f = run(&[udp(true, 1194, &c), udp(false, 1194, &s)]);
            assert_eq!(
                f.map(|f| f.reason),
                Some("signature:openvpn-reset-echo-tls-auth"),
                "hmac {h}"
            );
        }
    }

    fn tls_crypt_reset(op: u8, sid: &[u8; 8], time: u32) -> Vec<u8> {
        let mut rest = 1u32.to_be_bytes().to_vec();
        rest.extend_from_slice(&time.to_be_bytes());
        rest.extend_from_slice(&noise(time as u64, 32 + 22));
        packet(op, sid, &rest)
    }

    #[test]
    fn tls_crypt_over_tcp_with_its_length_prefix() {
        let framed = |b: Vec<u8>| {
            let mut v = (b.len() as u16).to_be_bytes().to_vec();
            v.extend_from_slice(&b);
            v
        };
        let c = framed(tls_crypt_reset(
            opcode::CONTROL_HARD_RESET_CLIENT_V2,
            &CLIENT_SID,
            1_800_000_000,
        ));
        let s = framed(tls_crypt_reset(
            opcode::CONTROL_HARD_RESET_SERVER_V2,
            &SERVER_SID,
            1_800_000_002,
        ));
        let f = run(&[tcp(true, 443, &c), tcp(false, 443, &s)]).unwrap();
        assert_eq!(f.reason, "signature:openvpn-tls-crypt-resets");
        // V3 (tls-crypt-v2) client resets too.
        let c3 = framed(tls_crypt_reset(
            opcode::CONTROL_HARD_RESET_CLIENT_V3,
            &CLIENT_SID,
            1_800_000_000,
        ));
        assert!(run(&[tcp(true, 443, &c3), tcp(false, 443, &s)]).is_some());
        // Times an hour apart are not one handshake; a length prefix that
        // does not fit is not OpenVPN's framing.
        let late = framed(tls_crypt_reset(
            opcode::CONTROL_HARD_RESET_SERVER_V2,
            &SERVER_SID,
            1_800_003_600,
        ));
        // (Their random-looking bytes do meet the fully-encrypted rule.)
        let not_openvpn = |f: Option<Found>| f.is_none_or(|f| f.protocol != Protocol::OpenVpn);
        assert!(not_openvpn(run(&[
            tcp(true, 443, &c),
            tcp(false, 443, &late)
        ])));
        let mut bad = c.clone();
        bad[1] = bad[1].wrapping_add(9);
        assert!(not_openvpn(run(&[
            tcp(true, 443, &bad),
            tcp(false, 443, &s)
        ])));
    }

    #[test]
    fn mid_handshake_session_ids() {
        // P_ACK_V1: one acknowledged message id, then the session id of
        // the side it acknowledges.
        let ack = |sid: &[u8; 8], n: u8| {
            let other = if *sid == CLIENT_SID {
                SERVER_SID
            } else {
                CLIENT_SID
            };
            let mut rest = vec![1, 0, 0, 0, n];
            rest.extend_from_slice(&other);
            packet(opcode::ACK_V1, sid, &rest)
        };
        let ctl = |sid, n: u8| {
            let mut rest = vec![0, 0, 0, 0, n];
            rest.extend_from_slice(&noise(n as u64, 100));
            packet(opcode::CONTROL_V1, sid, &rest)
        };
        let (c1, s1, c2, s2, c3, s3) = (
            ctl(&CLIENT_SID, 1),
            ctl(&SERVER_SID, 1),
            ack(&CLIENT_SID, 1),
            ack(&SERVER_SID, 1),
            ctl(&CLIENT_SID, 2),
            ctl(&SERVER_SID, 2),
        );
        let packets = [
            udp(true, 1194, &c1),
            udp(false, 1194, &s1),
            udp(true, 1194, &c2),
            udp(false, 1194, &s2),
            udp(true, 1194, &c3),
            udp(false, 1194, &s3),
        ];
        assert_eq!(
            run(&packets).map(|f| f.reason),
            Some("signature:openvpn-session-ids-acked")
        );
        // Constant headers both ways without an ACK of the other side (a
        // fixed-header protocol such as PTP): a hint only.
        let (a, b) = (ctl(&CLIENT_SID, 3), ctl(&SERVER_SID, 3));
        let fixed = [
            udp(true, 1194, &c1),
            udp(false, 1194, &s1),
            udp(true, 1194, &a),
            udp(false, 1194, &b),
            udp(true, 1194, &c3),
            udp(false, 1194, &s3),
        ];
        let f = run(&fixed).unwrap();
        assert_eq!(
            (f.reason, f.confidence),
            ("heuristic:openvpn-session-ids", Confidence::Low)
        );
        // Five of them are not enough; a changed session id breaks it.
        assert_eq!(run(&packets[..5]), None);
        let other = ctl(&[1; 8], 2);
        let mut broken = packets;
        broken[4] = udp(true, 1194, &other);
        assert_eq!(run(&broken), None);
    }

    fn data_v2(peer: u32, id: u32, len: usize) -> Vec<u8> {
        let mut v = ((opcode::DATA_V2 as u32) << 27 | peer)
            .to_be_bytes()
            .to_vec();
        v.extend_from_slice(&id.to_be_bytes());
        v.extend_from_slice(&noise(id as u64, len));
        v
    }

    #[test]
    fn mid_session_data_channel() {
        let p = [
            data_v2(0x02f6bc, 1, 72),
            data_v2(0x02f6bc, 1, 72),
            data_v2(0x02f6bc, 2, 108),
            data_v2(0x02f6bc, 2, 108),
            data_v2(0x02f6bc, 3, 108),
        ];
        let f = run(&[
            udp(false, 1194, &p[0]),
            udp(true, 1194, &p[1]),
            udp(true, 1194, &p[2]),
            udp(false, 1194, &p[3]),
            udp(true, 1194, &p[4]),
        ]);
        assert_eq!(
            f.map(|f| f.reason),
            Some("signature:openvpn-data-v2-packet-ids")
        );
        // Falling packet ids are not a counter.
        let q = [data_v2(5, 9, 72), data_v2(5, 8, 72), data_v2(5, 7, 72)];
        let packets: Vec<_> = q
            .iter()
            .chain(q.iter())
            .enumerate()
            .map(|(i, b)| udp(i < 3, 1194, b))
            .collect();
        assert_eq!(run(&packets), None);
    }

    #[test]
    fn one_way_data_is_named_one_way() {
        let d: Vec<_> = (1..=6).map(|id| data_v2(0x0a0b0c, id, 90)).collect();
        let packets: Vec<_> = d.iter().map(|b| udp(false, 1194, b)).collect();
        let f = run(&packets).unwrap();
        assert_eq!(
            (f.reason, f.confidence),
            ("signature:openvpn-data-v2-one-way", Confidence::OneWay)
        );
        assert_eq!(run(&packets[..5]), None, "five are not enough");
    }

    #[test]
    fn near_misses() {
        // A STUN binding request whose byte 0 looks like a reset.
        let mut stun = vec![0x38, 0x01, 0, 8];
        stun.extend_from_slice(&STUN_MAGIC.to_be_bytes());
        stun.extend_from_slice(&noise(3, 20));
        let (_, s) = plain_resets();
        let f = run(&[udp(true, 3478, &stun), udp(false, 3478, &s)]);
        assert_eq!(f.map(|f| f.protocol), Some(Protocol::Stun));
        // A QUIC-sized "reset".
        let mut big = plain_resets().0;
        big.resize(1250, 0);
        assert_eq!(run(&[udp(true, 443, &big), udp(false, 443, &s)]), None);
        // Random datagrams never get through 12 packets.
        for seed in 1..200u64 {
            let d: Vec<Vec<u8>> = (0..12).map(|i| noise(seed * 100 + i, 60)).collect();
            let packets: Vec<_> = d
                .iter()
                .enumerate()
                .map(|(i, b)| udp(i % 2 == 0, 5000, b))
                .collect();
            assert_eq!(run(&packets), None, "seed {seed}");
        }
    }

    /// A real 2.6 handshake (our capture, first bytes) with every payload
    /// XORed by a key, as the obfuscation patch does.
    #[test]
    fn obfuscated_pattern() {
        let mut values = vec![(true, 0x38u8), (false, 0x40)];
        for i in 0..10 {
            values.push((i % 2 == 0, [0x20, 0x28, 0x48][i % 3]));
        }
        let bodies: Vec<(bool, Vec<u8>)> = values
            .iter()
            .enumerate()
            .map(|(i, (c, v))| {
                let mut b = noise(i as u64 + 50, 80);
                b[0] = v ^ 0x5a;
                (*c, b)
            })
            .collect();
        let packets: Vec<_> = bodies.iter().map(|(c, b)| udp(*c, 1194, b)).collect();
        let f = run(&packets).unwrap();
        assert_eq!(f.reason, "heuristic:openvpn-opcode-pattern");
        assert_eq!(f.confidence, Confidence::Low);
        // A reset value that comes back breaks the pattern.
        let mut again = bodies.clone();
        again[6].1[0] = 0x38 ^ 0x5a;
        let packets: Vec<_> = again.iter().map(|(c, b)| udp(*c, 1194, b)).collect();
        assert_eq!(run(&packets), None);
    }
}
