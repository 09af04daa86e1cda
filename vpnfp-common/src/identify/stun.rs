//! STUN (RFC 8489 section 5): the two top bits zero, a message length equal
//! to the payload minus the 20-byte header and a multiple of 4, and the
//! magic cookie 0x2112A442 at offset 4. WebRTC's connectivity checks: not a
//! VPN, and the classic false positive of one-byte OpenVPN signatures.

use super::{Found, Protocol, bytes};

pub const MAGIC_COOKIE: u32 = 0x2112_A442;

pub fn message(b: &[u8], payload_len: u32) -> Option<Found> {
    let len = bytes::u16be(b, 2)? as u32;
    let ok = b[0] & 0xC0 == 0
        && len.is_multiple_of(4)
        && len + 20 == payload_len
        && bytes::u32be(b, 4)? == MAGIC_COOKIE;
    ok.then_some(Found::sure(Protocol::Stun, "signature:stun-message"))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{run, udp};
    use super::*;

    #[test]
    fn binding_request() {
        let mut m = vec![0x00, 0x01, 0x00, 0x08];
        m.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&[0x80, 0x28, 0, 4, 1, 2, 3, 4]);
        assert_eq!(
            run(&[udp(true, 3478, &m)]).map(|f| f.protocol),
            Some(Protocol::Stun)
        );
        m[3] = 12;
        assert_eq!(run(&[udp(true, 3478, &m)]), None);
    }
}
