//! Bounds-checked header parsing: Ethernet, 0 to 3 VLAN tags, the first 20
//! bytes of IPv4. Every read is checked against `data_end` first.

use aya_ebpf::programs::XdpContext;
use vpnfp_common::{Outcome, counters::MAX_VLAN_TAGS};

const ETH_HLEN: usize = 14;
const VLAN_HLEN: usize = 4;
const IPV4_MIN_HLEN: usize = 20;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;

/// The fields of the IPv4 header the fingerprint uses (host byte order).
pub struct Ipv4Fields {
    pub src: u32,
    pub dst: u32,
    pub total_len: u16,
}

/// `ctx.data() + offset .. + N` if it lies inside the frame.
#[inline(always)]
fn bytes_at<const N: usize>(ctx: &XdpContext, offset: usize) -> Result<*const [u8; N], Outcome> {
    let start = ctx.data() + offset;
    if start + N > ctx.data_end() {
        return Err(Outcome::MalformedTruncated);
    }
    Ok(start as *const [u8; N])
}

#[inline(always)]
fn be16_at(ctx: &XdpContext, offset: usize) -> Result<u16, Outcome> {
    // SAFETY: bytes_at checked the range.
    Ok(u16::from_be_bytes(unsafe { *bytes_at::<2>(ctx, offset)? }))
}

#[inline(always)]
pub fn ipv4_header(ctx: &XdpContext) -> Result<Ipv4Fields, Outcome> {
    bytes_at::<ETH_HLEN>(ctx, 0)?;
    let mut ethertype_at = ETH_HLEN - 2;
    let mut ethertype = be16_at(ctx, ethertype_at)?;
    let mut tags = 0;
    while tags < MAX_VLAN_TAGS {
        if ethertype != ETH_P_8021Q && ethertype != ETH_P_8021AD {
            break;
        }
        // The tag is TCI (2 bytes) then the next ethertype.
        ethertype_at += VLAN_HLEN;
        ethertype = be16_at(ctx, ethertype_at)?;
        tags += 1;
    }
    if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
        return Err(Outcome::MalformedVlanDepth);
    }
    if ethertype != ETH_P_IP {
        return Err(Outcome::IgnoredNotIpv4);
    }
    let l3 = ethertype_at + 2;
    // SAFETY: bytes_at checked the range.
    let ip = unsafe { *bytes_at::<IPV4_MIN_HLEN>(ctx, l3)? };
    let version = ip[0] >> 4;
    let ihl = ip[0] & 0x0f;
    if version != 4 || ihl < 5 {
        return Err(Outcome::MalformedIpv4Header);
    }
    Ok(Ipv4Fields {
        total_len: u16::from_be_bytes([ip[2], ip[3]]),
        src: u32::from_be_bytes([ip[12], ip[13], ip[14], ip[15]]),
        dst: u32::from_be_bytes([ip[16], ip[17], ip[18], ip[19]]),
    })
}
