//! Fully encrypted first payloads: the rule the Great Firewall applies
//! (Wu et al., "How the Great Firewall of China Detects and Blocks Fully
//! Encrypted Traffic", USENIX Security 2023, section 4). A TCP connection's
//! first payload is exempt when:
//! - Ex1: its average set bits per byte is at most 3.4 or at least 4.6;
//! - Ex2: its first 6 bytes are printable ASCII (0x20..=0x7E);
//! - Ex3: more than half its bytes are printable;
//! - Ex4: it has more than 20 contiguous printable bytes;
//! - Ex5: it starts like TLS (`[16-17] 03 [00-09]`) or an HTTP method.
//!
//! Otherwise it looks fully encrypted (Shadowsocks, VMess, obfs4). The GFW
//! judges the client's payload alone and the paper estimates 0.6% of
//! ordinary connections match; vpnfp also demands that the server's first
//! payload matches, only on connections whose start it saw, and reports it
//! as a low-confidence tunnel.

use super::{Found, Packet, Protocol, http};

pub fn exempt(b: &[u8]) -> bool {
    if b.is_empty() {
        return true;
    }
    let bits: u32 = b.iter().map(|c| c.count_ones()).sum();
    // Ex1, in integers: bits/len <= 3.4  <=>  10*bits <= 34*len.
    let (bits10, len) = (bits as u64 * 10, b.len() as u64);
    if bits10 <= 34 * len || bits10 >= 46 * len {
        return true;
    }
    let printable = |c: &u8| (0x20..=0x7E).contains(c);
    if b.len() >= 6 && b[..6].iter().all(printable) {
        return true;
    }
    if b.iter().filter(|c| printable(c)).count() * 2 > b.len() {
        return true;
    }
    let mut run = 0;
    for c in b {
        run = if printable(c) { run + 1 } else { 0 };
        if run > 20 {
            return true;
        }
    }
    let tls = b.len() >= 3 && (0x16..=0x17).contains(&b[0]) && b[1] == 3 && b[2] <= 9;
    tls || http::starts_with_method(b)
}

#[derive(Clone, Debug, Default)]
pub struct State {
    /// Sides whose first payload looked fully encrypted (bit per side).
    encrypted: u8,
}

impl State {
    /// `index`: how many payloads this side sent before this one.
    pub fn observe(&mut self, p: &Packet<'_>, index: u8) -> (Option<Found>, bool) {
        if index > 0 {
            // Waiting for the other side's first payload.
            return (None, true);
        }
        if !p.start_seen || exempt(p.payload) {
            return (None, false);
        }
        self.encrypted |= 1 << p.side();
        if self.encrypted == 3 {
            return (
                Some(Found::hint(
                    Protocol::FullyEncrypted,
                    "heuristic:fully-encrypted-both-ways",
                )),
                true,
            );
        }
        (None, true)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Confidence;
    use super::super::testing::{noise, run, tcp};
    use super::*;

    #[test]
    fn the_gfw_exemptions() {
        assert!(exempt(b"GET / HTTP/1.1\r\n"));
        assert!(exempt(&[0x16, 3, 1, 0x80, 0x9c, 0x33, 0xfe]));
        assert!(exempt(&[0u8; 100])); // Ex1: few set bits
        assert!(exempt(&[0xffu8; 100])); // Ex1: many
        let mut printable_head = noise(1, 100);
        printable_head[..6].copy_from_slice(b"abcdef");
        assert!(exempt(&printable_head));
        let mut long_text = noise(2, 100);
        long_text[40..62].copy_from_slice(b"0123456789012345678901");
        assert!(exempt(&long_text));
        assert!(!exempt(&noise(3, 100)), "random bytes are fully encrypted");
    }

    #[test]
    fn both_first_payloads() {
        let (c, s) = (noise(10, 120), noise(11, 90));
        let f = run(&[tcp(true, 8388, &c), tcp(false, 8388, &s)]).unwrap();
        assert_eq!(f.protocol, Protocol::FullyEncrypted);
        assert_eq!(f.confidence, Confidence::Low);
        // The client alone is not enough; a plaintext reply exempts it; a
        // connection joined mid-stream is never judged.
        assert_eq!(run(&[tcp(true, 8388, &c)]), None);
        assert_eq!(
            run(&[
                tcp(true, 8388, &c),
                tcp(false, 8388, b"HTTP/1.1 200 OK\r\n")
            ]),
            None
        );
        let mut mid = tcp(true, 8388, &c);
        mid.start_seen = false;
        assert_eq!(run(&[mid, tcp(false, 8388, &s)]), None);
    }
}
