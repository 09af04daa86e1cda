//! PPTP (RFC 2637): a TCP control connection (port 1723) and the tunnel's
//! data in enhanced GRE, version 1, carrying PPP.
//!
//! A control message starts with its length (equal to the message's
//! size), message type 1 (control), the magic cookie 0x1A2B3C4D, a control
//! message type (1..=15) and a zero reserved word. The GRE header has the
//! key bit set (payload length and call id), no checksum or routing,
//! version 1 and protocol type 0x880B (PPP).

use super::{Found, Protocol, bytes};

pub const MAGIC_COOKIE: u32 = 0x1A2B_3C4D;
pub const PPP: u16 = 0x880B;

/// A PPTP control message at the start of a TCP segment.
pub fn control(b: &[u8], payload_len: u32) -> Option<Found> {
    let len = bytes::u16be(b, 0)? as u32;
    let ok = len >= 16
        && len <= payload_len
        && bytes::u16be(b, 2)? == 1
        && bytes::u32be(b, 4)? == MAGIC_COOKIE
        && (1..=15).contains(&bytes::u16be(b, 8)?)
        && bytes::u16be(b, 10)? == 0;
    ok.then_some(Found::sure(Protocol::Pptp, "signature:pptp-control"))
}

/// An enhanced GRE (version 1) packet carrying PPP.
pub fn gre(b: &[u8]) -> Option<Found> {
    let (flags, version) = (*b.first()?, *b.get(1)?);
    // C, R, s and the recursion count clear, K set (S may be set).
    let ok = flags & 0xEF == 0x20 && version & 0x7F == 0x01 && bytes::u16be(b, 2)? == PPP;
    ok.then_some(Found::sure(Protocol::Pptp, "signature:gre-v1-ppp"))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, tcp};
    use super::super::{FlowState, Packet, Step};
    use super::*;
    use crate::net::parse::ipproto;

    fn sccrq() -> std::vec::Vec<u8> {
        let mut m = vec![0u8; 156];
        m[..2].copy_from_slice(&156u16.to_be_bytes());
        m[2..4].copy_from_slice(&1u16.to_be_bytes());
        m[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        m[8..10].copy_from_slice(&1u16.to_be_bytes());
        m[12..14].copy_from_slice(&0x0100u16.to_be_bytes()); // protocol version 1.0
        m
    }

    #[test]
    fn control_connection_request() {
        let f = run(&[tcp(true, 1723, &sccrq())]).unwrap();
        assert_eq!(
            (f.protocol, f.reason),
            (Protocol::Pptp, "signature:pptp-control")
        );
        let mut wrong = sccrq();
        wrong[7] ^= 1; // the cookie
        assert_eq!(run(&[tcp(true, 1723, &wrong)]), None);
        let mut long = sccrq();
        long[1] = 200; // longer than the segment
        assert_eq!(run(&[tcp(true, 1723, &long)]), None);
    }

    fn gre_packet(b: &[u8]) -> Option<Step> {
        let p = Packet {
            proto: ipproto::GRE,
            ..super::super::testing::udp(true, 0, b)
        };
        Some(FlowState::new().observe(&p))
    }

    #[test]
    fn gre_version_1() {
        let enhanced = [0x30, 0x81, 0x88, 0x0b, 0, 20, 0x12, 0x34, 0, 0, 0, 1];
        assert!(
            matches!(gre_packet(&enhanced), Some(Step::Named(f)) if f.reason == "signature:gre-v1-ppp")
        );
        // Plain GRE (version 0) carrying IPv4 is not PPTP.
        let plain = [0x00, 0x00, 0x08, 0x00, 0x45, 0];
        assert!(matches!(
            gre_packet(&plain),
            Some(Step::Pending | Step::Unknown)
        ));
    }
}
