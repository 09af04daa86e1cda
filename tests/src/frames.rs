//! Ethernet frames built by hand for the XDP program.

use std::net::Ipv4Addr;

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

/// A frame of another ethertype, padded to 60 bytes.
pub fn other(ethertype: u16) -> Vec<u8> {
    let mut f = ethernet(&[], ethertype);
    f.resize(60, 0);
    f
}
