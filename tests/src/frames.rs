//! Ethernet frames built by hand for the XDP program.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;

const DST_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const SRC_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

/// An Ethernet header with `tags` (each the tag's TPID) and then `ethertype`.
pub fn ethernet(tags: &[u16], ethertype: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + 4 * tags.len());
    f.extend_from_slice(&DST_MAC);
    f.extend_from_slice(&SRC_MAC);
    for (i, tpid) in tags.iter().enumerate() {
        f.extend_from_slice(&tpid.to_be_bytes());
        // The TCI (VLAN id i+1), then the next type follows.
        f.extend_from_slice(&((i as u16 + 1) & 0x0fff).to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

/// A 20-byte IPv4 header with a valid checksum, carrying `payload_len` bytes.
pub fn ipv4_header(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, payload_len: u16) -> [u8; 20] {
    let mut h = [0u8; 20];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&(20 + payload_len).to_be_bytes());
    h[8] = 64;
    h[9] = protocol;
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    let sum: u32 = h
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]) as u32)
        .sum();
    let folded = (sum & 0xffff) + (sum >> 16);
    let checksum = !((folded & 0xffff) + (folded >> 16)) as u16;
    h[10..12].copy_from_slice(&checksum.to_be_bytes());
    h
}

/// An IPv4/UDP frame with `tags` VLAN tags and an 18-byte payload (64 bytes
/// untagged, the minimum Ethernet frame without FCS is 60).
pub fn udp(src: Ipv4Addr, dst: Ipv4Addr, tags: &[u16]) -> Vec<u8> {
    let payload = [0u8; 18];
    let udp_len = 8 + payload.len() as u16;
    let mut f = ethernet(tags, ETH_P_IP);
    f.extend_from_slice(&ipv4_header(src, dst, 17, udp_len));
    f.extend_from_slice(&4242u16.to_be_bytes());
    f.extend_from_slice(&9u16.to_be_bytes());
    f.extend_from_slice(&udp_len.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&payload);
    f
}

/// IPv4 carrying `payload` as IP protocol `protocol` (ESP is 50).
pub fn ipv4_with(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = ethernet(&[], ETH_P_IP);
    f.extend_from_slice(&ipv4_header(src, dst, protocol, payload.len() as u16));
    f.extend_from_slice(payload);
    f
}

/// A frame of another ethertype, padded to 60 bytes.
pub fn other(ethertype: u16) -> Vec<u8> {
    let mut f = ethernet(&[], ethertype);
    f.resize(60, 0);
    f
}

/// IPv4/UDP with chosen ports and payload (built with etherparse).
pub fn udp_with(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let builder = etherparse::PacketBuilder::ethernet2(SRC_MAC, DST_MAC)
        .ipv4(src.octets(), dst.octets(), 64)
        .udp(sport, dport);
    let mut out = Vec::with_capacity(builder.size(payload.len()));
    builder.write(&mut out, payload).expect("build frame");
    out
}

/// IPv6/UDP, behind `vlan` (one 802.1Q tag) if given.
pub fn udp6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    sport: u16,
    dport: u16,
    payload: &[u8],
    vlan: Option<u16>,
) -> Vec<u8> {
    let mut out = Vec::new();
    match vlan {
        Some(id) => {
            let b = etherparse::PacketBuilder::ethernet2(SRC_MAC, DST_MAC)
                .single_vlan(etherparse::VlanId::try_new(id).expect("vlan id"))
                .ipv6(src.octets(), dst.octets(), 64)
                .udp(sport, dport);
            b.write(&mut out, payload).expect("build frame");
        }
        None => {
            let b = etherparse::PacketBuilder::ethernet2(SRC_MAC, DST_MAC)
                .ipv6(src.octets(), dst.octets(), 64)
                .udp(sport, dport);
            b.write(&mut out, payload).expect("build frame");
        }
    }
    out
}

/// TCP flags for [`tcp`].
#[derive(Clone, Copy, Default)]
pub struct Flags {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
}

/// IPv4 or IPv6 TCP (by the addresses' family) with `flags`.
pub fn tcp(
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    flags: Flags,
    payload: &[u8],
) -> Vec<u8> {
    let eth = etherparse::PacketBuilder::ethernet2(SRC_MAC, DST_MAC);
    let ip = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => eth.ipv6(s.octets(), d.octets(), 64),
        _ => panic!("mixed families"),
    };
    let mut b = ip.tcp(sport, dport, 1000, 65535);
    if flags.syn {
        b = b.syn();
    }
    if flags.ack {
        b = b.ack(1);
    }
    if flags.fin {
        b = b.fin();
    }
    if flags.rst {
        b = b.rst();
    }
    let mut out = Vec::new();
    b.write(&mut out, payload).expect("build frame");
    out
}

/// IPv6 next-header numbers of the extension headers [`udp6_with_ext`] adds.
pub const HOP_BY_HOP: u8 = 0;
pub const ROUTING: u8 = 43;
pub const FRAGMENT: u8 = 44;
pub const DEST_OPTS: u8 = 60;

/// IPv6/UDP with extension headers (`kinds`, in order; fragment headers
/// say "first fragment"), hand-built: etherparse's builder has none.
pub fn udp6_with_ext(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    kinds: &[u8],
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut l4 = Vec::new();
    l4.extend_from_slice(&sport.to_be_bytes());
    l4.extend_from_slice(&dport.to_be_bytes());
    l4.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    l4.extend_from_slice(&[0, 0]);
    l4.extend_from_slice(payload);
    let mut chain = l4;
    let mut next = 17u8;
    for &kind in kinds.iter().rev() {
        let mut ext = vec![0u8; 8];
        ext[0] = next;
        if kind == FRAGMENT {
            ext[3] = 1; // more fragments, offset 0
        }
        ext.extend_from_slice(&chain);
        chain = ext;
        next = kind;
    }
    let mut f = ethernet(&[], ETH_P_IPV6);
    let mut h = [0u8; 40];
    h[0] = 0x60;
    h[4..6].copy_from_slice(&(chain.len() as u16).to_be_bytes());
    h[6] = next;
    h[7] = 64;
    h[8..24].copy_from_slice(&src.octets());
    h[24..40].copy_from_slice(&dst.octets());
    f.extend_from_slice(&h);
    f.extend_from_slice(&chain);
    f
}
