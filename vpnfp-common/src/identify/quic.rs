//! QUIC client Initial packets (RFC 9000 sections 17.2 and 14.1, RFC 9369
//! for version 2): a long header (form and fixed bits set), a known
//! version, an Initial packet type, a destination connection id of 8..=20
//! bytes, a source connection id of at most 20, and a datagram padded to at
//! least 1200 bytes.

use super::{Found, Packet, Protocol, bytes};

const V1: u32 = 0x0000_0001;
const V2: u32 = 0x6b33_43cf;

/// The Initial packet type bits for a version, if QUIC knows it.
fn initial_type(version: u32) -> Option<u8> {
    match version {
        V1 => Some(0),
        V2 => Some(1),
        // IETF drafts 27 to 34, the versions browsers shipped.
        0xff00_001b..=0xff00_0022 => Some(0),
        _ => None,
    }
}

pub fn client_initial(p: &Packet<'_>) -> Option<Found> {
    if !p.from_client || p.payload_len < 1200 {
        return None;
    }
    let b = p.payload;
    let first = *b.first()?;
    if first & 0xC0 != 0xC0 {
        return None;
    }
    let version = bytes::u32be(b, 1)?;
    if (first >> 4) & 0x3 != initial_type(version)? {
        return None;
    }
    let dcid = *b.get(5)? as usize;
    if !(8..=20).contains(&dcid) {
        return None;
    }
    let scid = *b.get(6 + dcid)? as usize;
    if scid > 20 || b.len() < 7 + dcid + scid {
        return None;
    }
    Some(Found::sure(Protocol::Quic, "signature:quic-initial"))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{noise, run, udp};
    use super::*;
    use std::vec::Vec;

    fn initial(version: u32, first: u8) -> Vec<u8> {
        let mut v = vec![first];
        v.extend_from_slice(&version.to_be_bytes());
        v.push(8);
        v.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        v.push(0);
        v.extend_from_slice(&noise(5, 1200 - v.len()));
        v
    }

    #[test]
    fn initials() {
        let f = run(&[udp(true, 443, &initial(V1, 0xC3))]).unwrap();
        assert_eq!(
            (f.protocol, f.reason),
            (Protocol::Quic, "signature:quic-initial")
        );
        assert!(run(&[udp(true, 443, &initial(V2, 0xD3))]).is_some());
        // Version 2's Initial type is 1: type 0 is its 0-RTT.
        assert_eq!(run(&[udp(true, 443, &initial(V2, 0xC3))]), None);
        // Unpadded, from the server, or an unknown version.
        let short = &initial(V1, 0xC3)[..600];
        assert_eq!(run(&[udp(true, 443, short)]), None);
        assert_eq!(run(&[udp(false, 443, &initial(V1, 0xC3))]), None);
        assert_eq!(run(&[udp(true, 443, &initial(0x0a0a0a0a, 0xC3))]), None);
    }
}
