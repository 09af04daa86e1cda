//! KCP, the ARQ protocol over UDP that kcptun and many game and proxy
//! tools use (github.com/skywind3000/kcp, `ikcp.c`; kcp-go's framing for
//! kcptun).
//!
//! A KCP segment is 24 bytes of header, little-endian: `conv` (4, fixed
//! for the session), `cmd` (1: 81 push, 82 ack, 83 window probe, 84 window
//! answer), `frg` (1), `wnd` (2), `ts` (4), `sn` (4), `una` (4), `len`
//! (4), then `len` bytes of data; a datagram holds segments back to back.
//! kcp-go (kcptun) puts a 16-byte nonce and a CRC-32 (IEEE) of the rest in
//! front, then, with forward error correction on (kcptun's default), an
//! 8-byte FEC header: sequence (4), kind (2: 0xf1 data, 0xf2 parity) and
//! the size of what follows plus 2 (2). With `--crypt none` all of it is
//! in the clear.
//!
//! - kcptun's framing: the CRC-32 over the rest of the datagram matches
//!   and the segments fill it exactly. One such datagram each way with the
//!   same `conv` names the flow with high confidence.
//! - Bare KCP: segments that fill the datagram exactly under one `conv`,
//!   four datagrams with both sides among them: a hint.
//!
//! kcptun's default (`--crypt aes`) encrypts all of it: those flows are
//! random UDP, left to the host's persistence.

use super::{Found, Packet, Protocol, bytes};

const SEGMENT_HEADER: usize = 24;
const KCP_GO_HEADER: usize = 20;
const FEC_HEADER: usize = 8;
const FEC_DATA: u16 = 0xf1;
const FEC_PARITY: u16 = 0xf2;

/// What follows a kcp-go header whose CRC matched.
enum Framed {
    Segments(u32),
    /// FEC parity: XOR of data shards, nothing to read.
    Parity,
}

/// The kcp-go framing of a datagram (complete, `rest` after the nonce and
/// CRC): segments directly, or behind an FEC header.
fn kcp_go(b: &[u8], datagram_len: u32) -> Option<Framed> {
    let rest = b.get(KCP_GO_HEADER..)?;
    let crc = bytes::u32le(b, 16)?;
    if b.len() as u32 != datagram_len || crc32(rest) != crc {
        return None;
    }
    if let Some(conv) = segments(rest, rest.len() as u32) {
        return Some(Framed::Segments(conv));
    }
    let kind = u16::from_le_bytes([*rest.get(4)?, *rest.get(5)?]);
    let size = u16::from_le_bytes([*rest.get(6)?, *rest.get(7)?]) as usize;
    let shard = rest.get(FEC_HEADER..)?;
    match kind {
        FEC_DATA if size == shard.len() + 2 => {
            segments(shard, shard.len() as u32).map(Framed::Segments)
        }
        FEC_PARITY => Some(Framed::Parity),
        _ => None,
    }
}
const BARE_DATAGRAMS: u8 = 4;

#[derive(Clone, Debug, Default)]
pub struct State {
    conv: u32,
    /// Sides seen with a framed datagram (kcp-go, CRC checked).
    framed: u8,
    /// Sides and count of bare datagrams.
    bare_sides: u8,
    bare: u8,
}

/// The `conv` of a datagram made only of whole KCP segments.
fn segments(b: &[u8], datagram_len: u32) -> Option<u32> {
    if b.len() as u32 != datagram_len || b.len() < SEGMENT_HEADER {
        return None;
    }
    let conv = bytes::u32le(b, 0)?;
    let mut at = 0;
    while at < b.len() {
        if bytes::u32le(b, at)? != conv || !(81..=84).contains(b.get(at + 4)?) {
            return None;
        }
        let len = bytes::u32le(b, at + 20)? as usize;
        at = at.checked_add(SEGMENT_HEADER + len)?;
    }
    (at == b.len()).then_some(conv)
}

/// CRC-32 (IEEE 802.3, reflected): bitwise, since a datagram is checked
/// at most twice per flow.
fn crc32(b: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in b {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

impl State {
    pub fn observe(&mut self, p: &Packet<'_>) -> (Option<Found>, bool) {
        let b = p.payload;
        let bit = 1 << p.side();
        match kcp_go(b, p.payload_len) {
            Some(Framed::Segments(conv)) => {
                if self.framed != 0 && conv != self.conv {
                    return (None, false);
                }
                self.conv = conv;
                self.framed |= bit;
                let found = (self.framed == 3).then_some(Found::sure(
                    Protocol::Kcp,
                    "signature:kcp-go-crc-and-segments",
                ));
                return (found, true);
            }
            Some(Framed::Parity) => return (None, true),
            None => {}
        }
        if self.framed != 0 {
            return (None, false);
        }
        let Some(conv) = segments(b, p.payload_len) else {
            return (None, false);
        };
        if self.bare != 0 && conv != self.conv {
            return (None, false);
        }
        self.conv = conv;
        self.bare_sides |= bit;
        self.bare = self.bare.saturating_add(1);
        let found = (self.bare >= BARE_DATAGRAMS && self.bare_sides == 3)
            .then_some(Found::hint(Protocol::Kcp, "heuristic:kcp-segments"));
        (found, true)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{noise, udp};
    use super::*;

    fn segment(conv: u32, cmd: u8, data: &[u8]) -> Vec<u8> {
        let mut s = conv.to_le_bytes().to_vec();
        s.extend_from_slice(&[cmd, 0, 0, 1]);
        s.extend_from_slice(&[0; 12]);
        s.extend_from_slice(&(data.len() as u32).to_le_bytes());
        s.extend_from_slice(data);
        s
    }

    fn kcp_go(seed: u64, segments: &[u8]) -> Vec<u8> {
        let mut d = noise(seed, 16);
        d.extend_from_slice(&crc32(segments).to_le_bytes());
        d.extend_from_slice(segments);
        d
    }

    /// kcptun's default framing: an FEC data shard.
    fn kcp_go_fec(seed: u64, segments: &[u8]) -> Vec<u8> {
        let mut rest = vec![seed as u8, 0, 0, 0, 0xf1, 0];
        rest.extend_from_slice(&(segments.len() as u16 + 2).to_le_bytes());
        rest.extend_from_slice(segments);
        let mut d = noise(seed, 16);
        d.extend_from_slice(&crc32(&rest).to_le_bytes());
        d.extend_from_slice(&rest);
        d
    }

    fn run(packets: &[(bool, Vec<u8>)]) -> Option<Found> {
        let mut s = State::default();
        packets
            .iter()
            .find_map(|(c, b)| s.observe(&udp(*c, 29900, b)).0)
    }

    #[test]
    fn the_crc_is_ieee() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn kcptun_in_the_clear_is_named_both_ways() {
        let push = segment(7, 81, &noise(1, 300));
        let ack = segment(7, 82, &[]);
        let found = run(&[(true, kcp_go(1, &push)), (false, kcp_go(2, &ack))]).expect("named");
        assert_eq!(found.confidence, super::super::Confidence::High);
        let found = run(&[(true, kcp_go_fec(1, &push)), (false, kcp_go_fec(2, &ack))]);
        assert_eq!(found.map(|f| f.protocol), Some(Protocol::Kcp));
        // A wrong CRC, or another session's conv, is not.
        let mut bad = kcp_go(3, &push);
        bad[16] ^= 1;
        assert_eq!(run(&[(true, bad), (false, kcp_go(2, &ack))]), None);
        let other = segment(8, 82, &[]);
        assert_eq!(
            run(&[(true, kcp_go(1, &push)), (false, kcp_go(2, &other))]),
            None
        );
    }

    #[test]
    fn bare_kcp_is_a_hint_and_noise_is_nothing() {
        let push = [
            segment(9, 81, &noise(4, 100)),
            segment(9, 81, &noise(5, 60)),
        ]
        .concat();
        let ack = segment(9, 82, &[]);
        let found = run(&[
            (true, push.clone()),
            (false, ack.clone()),
            (true, push),
            (false, ack),
        ])
        .expect("named");
        assert_eq!(found.confidence, super::super::Confidence::Low);
        assert_eq!(run(&[(true, noise(6, 200)), (false, noise(7, 200))]), None);
    }
}
