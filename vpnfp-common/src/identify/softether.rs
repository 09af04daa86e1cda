//! SoftEther VPN over UDP (its NAT traversal and UDP acceleration, from
//! SoftEther's source, `Mayaqua/Pack.c` and `Cedar/NativeStack`/`UdpAccel`):
//! - a serialised PACK: a u32 element count, then per element its name
//!   (u32 length + 1, the bytes), its value type (0 int, 1 data, 2 string,
//!   3 unicode string, 4 int64), a u32 value count and the values, each
//!   int 4 bytes, int64 8, the others a u32 length and the bytes; big
//!   endian. The whole datagram must parse, to its last byte;
//! - the rendezvous answer `IP=<address>,PORT=<port>`, in clear.
//!
//! (SoftEther over TCP speaks TLS and is named by its server names.)

use super::{Found, Packet, Protocol, bytes};

const MAX_ELEMENTS: u32 = 64;
const MAX_VALUES: u32 = 64;
/// Bounded so the walk stays cheap on any input.
const MAX_STEPS: usize = 512;

/// A whole PACK, with at least one element whose name is printable.
pub fn pack(b: &[u8]) -> bool {
    let Some(count) = bytes::u32be(b, 0) else {
        return false;
    };
    if count == 0 || count > MAX_ELEMENTS {
        return false;
    }
    let mut at = 4usize;
    let mut steps = 0;
    for _ in 0..count {
        let Some(name_len) = bytes::u32be(b, at) else {
            return false;
        };
        // The length counts a terminating zero that is not sent.
        let name_len = name_len as usize;
        if !(2..=64).contains(&name_len) {
            return false;
        }
        let Some(name) = b.get(at + 4..at + 3 + name_len) else {
            return false;
        };
        if !name.iter().all(|c| c.is_ascii_graphic()) {
            return false;
        }
        at += 3 + name_len;
        let (Some(kind), Some(values)) = (bytes::u32be(b, at), bytes::u32be(b, at + 4)) else {
            return false;
        };
        at += 8;
        if kind > 4 || values == 0 || values > MAX_VALUES {
            return false;
        }
        for _ in 0..values {
            steps += 1;
            if steps > MAX_STEPS {
                return false;
            }
            at += match kind {
                0 => 4,
                4 => 8,
                _ => match bytes::u32be(b, at) {
                    Some(len) if (len as usize) <= b.len() => 4 + len as usize,
                    _ => return false,
                },
            };
            if at > b.len() {
                return false;
            }
        }
    }
    at == b.len()
}

/// `IP=<v4 or v6 literal>,PORT=<digits>`, nothing else.
pub fn rendezvous(b: &[u8]) -> bool {
    let Some(rest) = b.strip_prefix(b"IP=") else {
        return false;
    };
    let Some(comma) = rest.iter().position(|&c| c == b',') else {
        return false;
    };
    let (addr, port) = (&rest[..comma], &rest[comma..]);
    let Some(port) = port.strip_prefix(b",PORT=") else {
        return false;
    };
    let addr_ok = !addr.is_empty()
        && addr
            .iter()
            .all(|c| c.is_ascii_hexdigit() || *c == b'.' || *c == b':');
    addr_ok && (1..=5).contains(&port.len()) && port.iter().all(u8::is_ascii_digit)
}

pub fn datagram(p: &Packet<'_>) -> Option<Found> {
    if !p.complete() {
        return None;
    }
    if rendezvous(p.payload) {
        return Some(Found::sure(
            Protocol::SoftEther,
            "signature:softether-rendezvous",
        ));
    }
    pack(p.payload).then_some(Found::sure(Protocol::SoftEther, "signature:softether-pack"))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{noise, udp};
    use super::*;
    use std::vec::Vec;

    fn element(name: &str, kind: u32, values: &[&[u8]]) -> Vec<u8> {
        let mut e = ((name.len() + 1) as u32).to_be_bytes().to_vec();
        e.extend_from_slice(name.as_bytes());
        e.extend_from_slice(&kind.to_be_bytes());
        e.extend_from_slice(&(values.len() as u32).to_be_bytes());
        for v in values {
            if kind != 0 && kind != 4 {
                e.extend_from_slice(&(v.len() as u32).to_be_bytes());
            }
            e.extend_from_slice(v);
        }
        e
    }

    #[test]
    fn packs_and_rendezvous() {
        let mut m = 2u32.to_be_bytes().to_vec();
        m.extend(element("host_name", 2, &[b"vpn1"]));
        m.extend(element("port", 0, &[&443u32.to_be_bytes()]));
        assert!(datagram(&udp(true, 5004, &m)).is_some());
        // One byte more or less and it is not a PACK.
        let mut longer = m.clone();
        longer.push(0);
        assert!(!pack(&longer));
        assert!(!pack(&m[..m.len() - 1]));
        assert!(rendezvous(b"IP=203.0.113.5,PORT=40001"));
        assert!(!rendezvous(b"IP=203.0.113.5,PORT=4000x"));
        for seed in 0..500 {
            assert!(datagram(&udp(true, 5004, &noise(seed, 80))).is_none());
        }
    }
}
