//! L2TP over UDP: version 2 (RFC 2661 section 3.1) and version 3's control
//! messages (RFC 3931 section 3.2.1 and 4.1.2). In practice L2TP runs
//! inside IPsec and shows as ESP; bare L2TP is named here.
//!
//! A control message has T, L and S set, O and P clear, the version, a
//! length equal to the payload's, and its first AVP is the Message Type
//! (vendor 0, attribute 0, mandatory, 8 bytes). Version 2 data messages
//! (T clear) on port 1701 are named when one side keeps its tunnel and
//! session ids over three PPP frames.

use super::{Found, Packet, Protocol, bytes};

pub const PORT: u16 = 1701;

/// An L2TP control message with its Message Type AVP.
pub fn control(b: &[u8], payload_len: u32) -> Option<Found> {
    let flags = bytes::u16be(b, 0)?;
    let version = flags & 0x000F;
    // T, L, S set; x bits, O and P clear.
    if flags & 0xFFF0 != 0xC800 || !(version == 2 || version == 3) {
        return None;
    }
    if bytes::u16be(b, 2)? as u32 != payload_len {
        return None;
    }
    // The first AVP: M set, H clear, length 8, vendor 0, type 0, and a
    // message type the RFCs define.
    let avp = 12;
    let head = bytes::u16be(b, avp)?;
    let ok = head & 0xC000 == 0x8000
        && head & 0x03FF == 8
        && bytes::u16be(b, avp + 2)? == 0
        && bytes::u16be(b, avp + 4)? == 0
        && (1..=20).contains(&bytes::u16be(b, avp + 6)?);
    ok.then_some(Found::sure(
        Protocol::L2tp,
        if version == 2 {
            "signature:l2tp-v2-control"
        } else {
            "signature:l2tp-v3-control"
        },
    ))
}

#[derive(Clone, Copy, Debug, Default)]
struct Side {
    ids: u32,
    count: u8,
}

#[derive(Clone, Debug, Default)]
pub struct State {
    sides: [Side; 2],
}

impl State {
    /// Version 2 data messages carrying PPP (address 0xFF, control 0x03).
    pub fn observe(&mut self, p: &Packet<'_>) -> (Option<Found>, bool) {
        if !p.port(PORT) {
            return (None, false);
        }
        let b = p.payload;
        let Some(flags) = bytes::u16be(b, 0) else {
            return (None, false);
        };
        if flags & 0x8000 != 0 {
            // Control: named (or not) by `control`.
            return (None, true);
        }
        if flags & 0x000F != 2 || flags & 0x34F0 != 0 {
            return (None, false);
        }
        // Optional fields: length (L), Ns/Nr (S), offset (O).
        let mut at = 2;
        if flags & 0x4000 != 0 {
            at += 2;
        }
        let Some(ids) = bytes::u32be(b, at) else {
            return (None, false);
        };
        at += 4;
        if flags & 0x0800 != 0 {
            at += 4;
        }
        if flags & 0x0200 != 0 {
            let Some(pad) = bytes::u16be(b, at) else {
                return (None, false);
            };
            at += 2 + pad as usize;
        }
        if bytes::u16be(b, at) != Some(0xFF03) {
            return (None, false);
        }
        let s = &mut self.sides[p.side()];
        if s.count > 0 && s.ids != ids {
            s.count = 0;
        }
        s.ids = ids;
        s.count = s.count.saturating_add(1);
        if s.count >= 3 {
            return (
                Some(Found::sure(Protocol::L2tp, "signature:l2tp-v2-data-ppp")),
                true,
            );
        }
        (None, true)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, udp};
    use super::*;
    use std::vec::Vec;

    fn sccrq(version: u16) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&(0xC800 | version).to_be_bytes());
        m.extend_from_slice(&0u16.to_be_bytes()); // length, set below
        m.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]); // ids, Ns, Nr
        m.extend_from_slice(&[0x80, 8, 0, 0, 0, 0, 0, 1]); // Message Type: SCCRQ
        m.extend_from_slice(&[0x80, 8, 0, 0, 0, 2, 1, 0]); // Protocol Version
        let len = m.len() as u16;
        m[2..4].copy_from_slice(&len.to_be_bytes());
        m
    }

    #[test]
    fn control_messages() {
        let f = run(&[udp(true, PORT, &sccrq(2))]).unwrap();
        assert_eq!(
            (f.protocol, f.reason),
            (Protocol::L2tp, "signature:l2tp-v2-control")
        );
        assert_eq!(
            run(&[udp(true, 9999, &sccrq(3))]).map(|f| f.reason),
            Some("signature:l2tp-v3-control")
        );
        let mut bad = sccrq(2);
        bad[3] += 1;
        assert_eq!(run(&[udp(true, PORT, &bad)]), None);
        let mut not_message_type = sccrq(2);
        not_message_type[17] = 2;
        assert_eq!(run(&[udp(true, PORT, &not_message_type)]), None);
    }

    #[test]
    fn data_messages_carry_ppp() {
        let data = [
            0x00, 0x02, 0x12, 0x34, 0x00, 0x01, 0xFF, 0x03, 0x00, 0x21, 0x45, 0,
        ];
        let packets = [
            udp(true, PORT, &data),
            udp(true, PORT, &data),
            udp(true, PORT, &data),
        ];
        assert_eq!(
            run(&packets).map(|f| f.reason),
            Some("signature:l2tp-v2-data-ppp")
        );
        let mut no_ppp = data;
        no_ppp[6] = 0;
        assert_eq!(
            run(&[
                udp(true, PORT, &no_ppp),
                udp(true, PORT, &no_ppp),
                udp(true, PORT, &no_ppp)
            ]),
            None
        );
    }
}
