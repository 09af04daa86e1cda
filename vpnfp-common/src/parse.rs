//! Header parsing shared by every mode: Ethernet (or another link header that
//! ends in an ethertype), 0 to 3 VLAN tags, the first 20 bytes of IPv4.
//!
//! Written once over [`Bytes`], so the XDP program (packet pointers checked
//! against `data_end`) and userspace (slices) parse every frame the same way.

use crate::{Outcome, counters::MAX_VLAN_TAGS};

pub const ETH_HLEN: usize = 14;
pub const VLAN_HLEN: usize = 4;
pub const IPV4_MIN_HLEN: usize = 20;
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;

/// Bounds-checked access to a frame.
pub trait Bytes {
    /// The `N` bytes at `offset`, or `None` past the end of the frame.
    fn array<const N: usize>(&self, offset: usize) -> Option<[u8; N]>;
}

impl Bytes for [u8] {
    #[inline(always)]
    fn array<const N: usize>(&self, offset: usize) -> Option<[u8; N]> {
        let end = offset.checked_add(N)?;
        let bytes = self.get(offset..end)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Some(out)
    }
}

/// The IPv4 fields the fingerprint uses, host byte order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Fields {
    pub src: u32,
    pub dst: u32,
    pub total_len: u16,
}

#[inline(always)]
fn be16<B: Bytes + ?Sized>(frame: &B, offset: usize) -> Result<u16, Outcome> {
    frame
        .array::<2>(offset)
        .map(u16::from_be_bytes)
        .ok_or(Outcome::MalformedTruncated)
}

#[inline(always)]
const fn is_vlan(ethertype: u16) -> bool {
    ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD
}

/// An Ethernet frame.
#[inline(always)]
pub fn ethernet<B: Bytes + ?Sized>(frame: &B) -> Result<Ipv4Fields, Outcome> {
    let ethertype = be16(frame, ETH_HLEN - 2)?;
    after_ethertype(frame, ethertype, ETH_HLEN)
}

/// What follows a link header whose last field was `ethertype` and whose
/// payload starts at `payload`: up to three VLAN tags (TCI, then the next
/// ethertype), then IPv4.
#[inline(always)]
pub fn after_ethertype<B: Bytes + ?Sized>(
    frame: &B,
    mut ethertype: u16,
    mut payload: usize,
) -> Result<Ipv4Fields, Outcome> {
    let mut tags = 0;
    while tags < MAX_VLAN_TAGS && is_vlan(ethertype) {
        ethertype = be16(frame, payload + 2)?;
        payload += VLAN_HLEN;
        tags += 1;
    }
    if is_vlan(ethertype) {
        return Err(Outcome::MalformedVlanDepth);
    }
    if ethertype != ETH_P_IP {
        return Err(Outcome::IgnoredNotIpv4);
    }
    ipv4(frame, payload)
}

/// The first 20 bytes of an IPv4 header at `offset`.
#[inline(always)]
pub fn ipv4<B: Bytes + ?Sized>(frame: &B, offset: usize) -> Result<Ipv4Fields, Outcome> {
    let h = frame
        .array::<IPV4_MIN_HLEN>(offset)
        .ok_or(Outcome::MalformedTruncated)?;
    if h[0] >> 4 != 4 || h[0] & 0x0f < 5 {
        return Err(Outcome::MalformedIpv4Header);
    }
    Ok(Ipv4Fields {
        total_len: u16::from_be_bytes([h[2], h[3]]),
        src: u32::from_be_bytes([h[12], h[13], h[14], h[15]]),
        dst: u32::from_be_bytes([h[16], h[17], h[18], h[19]]),
    })
}

/// A raw IP packet (no link header): IPv4 by its version nibble, anything
/// else (IPv6) ignored.
#[inline(always)]
pub fn raw_ip<B: Bytes + ?Sized>(packet: &B) -> Result<Ipv4Fields, Outcome> {
    let first = packet.array::<1>(0).ok_or(Outcome::MalformedTruncated)?[0];
    if first >> 4 != 4 {
        return Err(Outcome::IgnoredNotIpv4);
    }
    ipv4(packet, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(tags: &[u16], ethertype: u16, ip_first: u8) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        for t in tags {
            f.extend_from_slice(&t.to_be_bytes());
            f.extend_from_slice(&[0, 7]);
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        let mut ip = [0u8; 20];
        ip[0] = ip_first;
        ip[2..4].copy_from_slice(&46u16.to_be_bytes());
        ip[12..16].copy_from_slice(&[192, 168, 1, 10]);
        ip[16..20].copy_from_slice(&[198, 51, 100, 7]);
        f.extend_from_slice(&ip);
        f
    }

    #[test]
    fn vlan_depths() {
        let want = Ipv4Fields {
            src: 0xc0a8_010a,
            dst: 0xc633_6407,
            total_len: 46,
        };
        assert_eq!(ethernet(&frame(&[], ETH_P_IP, 0x45)[..]), Ok(want));
        assert_eq!(
            ethernet(&frame(&[ETH_P_8021Q], ETH_P_IP, 0x45)[..]),
            Ok(want)
        );
        assert_eq!(
            ethernet(&frame(&[ETH_P_8021AD, ETH_P_8021Q, ETH_P_8021Q], ETH_P_IP, 0x45)[..]),
            Ok(want)
        );
        assert_eq!(
            ethernet(&frame(&[ETH_P_8021Q; 4], ETH_P_IP, 0x45)[..]),
            Err(Outcome::MalformedVlanDepth)
        );
        assert_eq!(
            ethernet(&frame(&[ETH_P_8021Q], 0x86dd, 0x60)[..]),
            Err(Outcome::IgnoredNotIpv4)
        );
    }

    #[test]
    fn truncation_and_bad_headers() {
        let f = frame(&[ETH_P_8021Q], ETH_P_IP, 0x45);
        for len in 0..f.len() {
            assert_eq!(
                ethernet(&f[..len]),
                Err(Outcome::MalformedTruncated),
                "{len}"
            );
        }
        for first in [0x44, 0x40, 0x65, 0x05] {
            assert_eq!(
                ethernet(&frame(&[], ETH_P_IP, first)[..]),
                Err(Outcome::MalformedIpv4Header)
            );
        }
        assert_eq!(raw_ip(&[][..]), Err(Outcome::MalformedTruncated));
        assert_eq!(raw_ip(&[0x60; 40][..]), Err(Outcome::IgnoredNotIpv4));
        assert!(raw_ip(&frame(&[], ETH_P_IP, 0x45)[14..]).is_ok());
    }
}
