//! Tailscale's discovery messages (tailscale.com/disco, disco.go): the
//! magic "TS" followed by U+1F4AC in UTF-8, the sender's 32-byte disco
//! public key, a 24-byte nonce and a NaCl box (16 bytes of overhead, then
//! at least a type and a version byte). Its data traffic is WireGuard and
//! is named as such.

use super::{Found, Protocol};

pub const MAGIC: [u8; 6] = [0x54, 0x53, 0xF0, 0x9F, 0x92, 0xAC];
const MIN_LEN: u32 = 6 + 32 + 24 + 16 + 2;

pub fn disco(b: &[u8], payload_len: u32) -> Option<Found> {
    (payload_len >= MIN_LEN && b.starts_with(&MAGIC)).then_some(Found::sure(
        Protocol::Tailscale,
        "signature:tailscale-disco",
    ))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{noise, run, udp};
    use super::*;

    #[test]
    fn disco_ping() {
        let mut m = MAGIC.to_vec();
        m.extend_from_slice(&noise(1, 32 + 24 + 16 + 46));
        let f = run(&[udp(true, 41641, &m)]).unwrap();
        assert_eq!(
            (f.protocol, f.reason),
            (Protocol::Tailscale, "signature:tailscale-disco")
        );
        // On any port: nDPI's demand for 41641 misses the others.
        assert!(run(&[udp(true, 55555, &m)]).is_some());
        // The magic alone, too short to hold a key, nonce and box.
        assert_eq!(run(&[udp(true, 41641, &m[..40])]), None);
    }
}
