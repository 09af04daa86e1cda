//! Header parsing shared by every mode: Ethernet (or another link header that
//! ends in an ethertype), 0 to 3 VLAN tags, IPv4 or IPv6 (with a bounded walk
//! over its extension headers), then the transport ports and TCP flags.
//!
//! Written once over [`Bytes`], so the XDP and TC programs (packet pointers
//! checked against `data_end`) and userspace (slices) parse every frame the
//! same way. The research needs only the first 20 bytes of IPv4: a frame whose
//! IP header is complete but whose transport header is cut off (a short
//! capture, NFQUEUE's 20-byte copy range) is still analysed, with
//! [`L4Kind::Truncated`] and ports 0.

use crate::{Outcome, net::addr::V6};

pub const ETH_HLEN: usize = 14;
pub const VLAN_HLEN: usize = 4;
pub const IPV4_MIN_HLEN: usize = 20;
pub const IPV6_HLEN: usize = 40;
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;

/// At most this many IPv6 extension headers are walked (xdp-tools'
/// IPV6_EXT_MAX_CHAIN): a longer chain leaves the transport unknown.
pub const MAX_IPV6_EXT: usize = 6;
/// The research reads up to three stacked VLAN tags.
pub const MAX_VLAN_TAGS: usize = 3;

/// IP protocol numbers the parser and the flows know by name.
pub mod ipproto {
    pub const HOPOPTS: u8 = 0;
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const GRE: u8 = 47;
    pub const ESP: u8 = 50;
    pub const AH: u8 = 51;
    pub const ICMPV6: u8 = 58;
    pub const DSTOPTS: u8 = 60;
    pub const SCTP: u8 = 132;
    pub const UDPLITE: u8 = 136;
}

/// TCP flag bits as they sit in byte 13 of the TCP header.
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

/// Bounds-checked access to a frame.
pub trait Bytes {
    /// The `N` bytes at `offset`, or `None` past the end of the frame.
    fn array<const N: usize>(&self, offset: usize) -> Option<[u8; N]>;

    /// The big-endian u16 at `offset`. (The kernel's frames load it whole:
    /// see vpnfp-ebpf's frame.rs.)
    #[inline(always)]
    fn be16(&self, offset: usize) -> Option<u16> {
        self.array::<2>(offset).map(u16::from_be_bytes)
    }

    /// The big-endian u32 at `offset`.
    #[inline(always)]
    fn be32(&self, offset: usize) -> Option<u32> {
        self.array::<4>(offset).map(u32::from_be_bytes)
    }
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

/// How much of the transport header the frame holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum L4Kind {
    /// Ports (where the protocol has them) and the payload's place are known.
    #[default]
    Complete,
    /// A fragment after the first: no transport header in this packet.
    Fragment,
    /// The frame ends inside the transport header (or an IPv6 extension
    /// header before it).
    Truncated,
    /// More IPv6 extension headers than [`MAX_IPV6_EXT`].
    ChainTooLong,
}

/// The transport layer of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Transport {
    /// The protocol after IPv4's header or IPv6's extension headers.
    pub proto: u8,
    pub kind: L4Kind,
    /// Source and destination port for TCP, UDP, UDP-Lite and SCTP; 0 for
    /// other protocols and when the header is missing.
    pub src_port: u16,
    pub dst_port: u16,
    /// TCP flags (FIN, SYN, RST, PSH, ACK, ...); 0 for other protocols.
    pub tcp_flags: u8,
    /// An authentication header (IPsec AH) was stepped over.
    pub ah: bool,
    /// Where the application payload starts in the frame (for protocols
    /// without ports: where the IP payload starts, so GRE's and ESP's own
    /// headers are "payload"), and its length as the IP header's lengths say
    /// (the frame may hold less: a capture's snap length, a copy range).
    pub payload_offset: u32,
    pub payload_len: u32,
}

/// One IP packet's addresses, size and transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ip<A> {
    pub src: A,
    pub dst: A,
    /// IP bytes as IPFIX counts octets: IPv4's total length, IPv6's 40 +
    /// payload length.
    pub ip_len: u32,
    pub l4: Transport,
}

/// A parsed frame: IPv4 or IPv6.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    V4(Ip<u32>),
    V6(Ip<V6>),
}

impl Parsed {
    /// The same packet parsed from `by` bytes further into the frame (a
    /// link header that wraps another, such as PPI's).
    pub fn shifted(mut self, by: usize) -> Self {
        let l4 = match &mut self {
            Parsed::V4(ip) => &mut ip.l4,
            Parsed::V6(ip) => &mut ip.l4,
        };
        l4.payload_offset = l4.payload_offset.saturating_add(by as u32);
        self
    }

    pub fn l4(&self) -> &Transport {
        match self {
            Parsed::V4(ip) => &ip.l4,
            Parsed::V6(ip) => &ip.l4,
        }
    }
}

#[inline(always)]
fn be16<B: Bytes + ?Sized>(frame: &B, offset: usize) -> Result<u16, Outcome> {
    frame.be16(offset).ok_or(Outcome::MalformedTruncated)
}

#[inline(always)]
const fn is_vlan(ethertype: u16) -> bool {
    ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD
}

/// An Ethernet frame.
#[inline(always)]
pub fn ethernet<B: Bytes + ?Sized>(frame: &B) -> Result<Parsed, Outcome> {
    let ethertype = be16(frame, ETH_HLEN - 2)?;
    after_ethertype(frame, ethertype, ETH_HLEN)
}

/// What follows a link header whose last field was `ethertype` and whose
/// payload starts at `payload`: up to three VLAN tags (TCI, then the next
/// ethertype), then IPv4 or IPv6.
#[inline(always)]
pub fn after_ethertype<B: Bytes + ?Sized>(
    frame: &B,
    mut ethertype: u16,
    mut payload: usize,
) -> Result<Parsed, Outcome> {
    let mut tags = 0;
    while tags < MAX_VLAN_TAGS && is_vlan(ethertype) {
        ethertype = be16(frame, payload + 2)?;
        payload += VLAN_HLEN;
        tags += 1;
    }
    if is_vlan(ethertype) {
        return Err(Outcome::MalformedVlanDepth);
    }
    match ethertype {
        ETH_P_IP => ipv4(frame, payload).map(Parsed::V4),
        ETH_P_IPV6 => ipv6(frame, payload).map(Parsed::V6),
        _ => Err(Outcome::IgnoredNotIp),
    }
}

/// An IPv4 header at `offset`. Only its first 20 bytes must be present.
#[inline(always)]
pub fn ipv4<B: Bytes + ?Sized>(frame: &B, offset: usize) -> Result<Ip<u32>, Outcome> {
    // Field by field, in words: the kernel loads each whole (a 20-byte
    // array is 20 byte loads there). The last word first: it is present
    // only if the whole minimum header is.
    let truncated = Outcome::MalformedTruncated;
    let dst = frame.be32(offset + IPV4_MIN_HLEN - 4).ok_or(truncated)?;
    let src = frame.be32(offset + 12).ok_or(truncated)?;
    let [version_ihl, _, total_hi, total_lo] = frame.be32(offset).ok_or(truncated)?.to_be_bytes();
    let [frag_hi, frag_lo, _ttl, proto] = frame.be32(offset + 6).ok_or(truncated)?.to_be_bytes();
    if version_ihl >> 4 != 4 || version_ihl & 0x0f < 5 {
        return Err(Outcome::MalformedIpHeader);
    }
    let header_len = ((version_ihl & 0x0f) as u32) * 4;
    let total_len = u16::from_be_bytes([total_hi, total_lo]) as u32;
    let fragment_offset = u16::from_be_bytes([frag_hi, frag_lo]) & 0x1fff;
    let mut l4 = Transport {
        proto,
        ..Transport::default()
    };
    let l4_offset = offset + header_len as usize;
    let l4_len = total_len.saturating_sub(header_len);
    if fragment_offset != 0 {
        l4.kind = L4Kind::Fragment;
    } else {
        transport(frame, &mut l4, l4_offset, l4_len, true);
    }
    Ok(Ip {
        src,
        dst,
        ip_len: total_len,
        l4,
    })
}

/// An IPv6 header at `offset` and its extension headers: hop-by-hop,
/// routing, fragment, destination options and AH, at most [`MAX_IPV6_EXT`].
#[inline(always)]
pub fn ipv6<B: Bytes + ?Sized>(frame: &B, offset: usize) -> Result<Ip<V6>, Outcome> {
    let h = frame
        .array::<IPV6_HLEN>(offset)
        .ok_or(Outcome::MalformedTruncated)?;
    if h[0] >> 4 != 6 {
        return Err(Outcome::MalformedIpHeader);
    }
    let payload_len = u16::from_be_bytes([h[4], h[5]]) as u32;
    let mut src = [0u8; 16];
    let mut dst = [0u8; 16];
    src.copy_from_slice(&h[8..24]);
    dst.copy_from_slice(&h[24..40]);
    let mut l4 = Transport {
        proto: h[6],
        ..Transport::default()
    };
    let (at, left, mut done) = ipv6_extensions(frame, &mut l4, offset + IPV6_HLEN, payload_len);
    if !done {
        // Still an extension header after the bounded walk?
        if matches!(
            l4.proto,
            ipproto::HOPOPTS
                | ipproto::ROUTING
                | ipproto::DSTOPTS
                | ipproto::FRAGMENT
                | ipproto::AH
        ) {
            l4.kind = L4Kind::ChainTooLong;
        } else {
            done = true;
        }
    }
    if done && l4.kind == L4Kind::Complete {
        transport(frame, &mut l4, at, left, false);
    }
    Ok(Ip {
        src: V6(src),
        dst: V6(dst),
        ip_len: IPV6_HLEN as u32 + payload_len,
        l4,
    })
}

/// IPv6's extension headers from `at`, `left` bytes of payload ahead:
/// hop-by-hop, routing, fragment, destination options and AH, at most
/// [`MAX_IPV6_EXT`] (a bound the verifier sees). Sets the transport's
/// protocol (and `ah`, or a fragment or truncation) in `l4`; returns where
/// the walk stopped, the bytes left from there, and whether it stopped on
/// its own (false: it ran out of its bound).
#[inline(always)]
fn ipv6_extensions<B: Bytes + ?Sized>(
    frame: &B,
    l4: &mut Transport,
    mut at: usize,
    mut left: u32,
) -> (usize, u32, bool) {
    let mut walked = 0;
    let mut done = false;
    while walked < MAX_IPV6_EXT {
        let ext_len = match l4.proto {
            ipproto::HOPOPTS | ipproto::ROUTING | ipproto::DSTOPTS => match frame.array::<2>(at) {
                Some(e) => {
                    l4.proto = e[0];
                    (e[1] as u32 + 1) * 8
                }
                None => {
                    l4.kind = L4Kind::Truncated;
                    done = true;
                    0
                }
            },
            ipproto::FRAGMENT => match frame.array::<4>(at) {
                Some(e) => {
                    l4.proto = e[0];
                    if u16::from_be_bytes([e[2], e[3]]) >> 3 != 0 {
                        l4.kind = L4Kind::Fragment;
                        done = true;
                    }
                    8
                }
                None => {
                    l4.kind = L4Kind::Truncated;
                    done = true;
                    0
                }
            },
            ipproto::AH => match frame.array::<2>(at) {
                Some(e) => {
                    l4.proto = e[0];
                    l4.ah = true;
                    (e[1] as u32 + 2) * 4
                }
                None => {
                    l4.kind = L4Kind::Truncated;
                    done = true;
                    0
                }
            },
            _ => {
                done = true;
                0
            }
        };
        if done {
            break;
        }
        at += ext_len as usize;
        left = left.saturating_sub(ext_len);
        walked += 1;
    }
    (at, left, done)
}

/// The transport header at `offset`, with `len` bytes of IP payload from
/// there on (as the IP header says). IPv4 steps over one AH here (`ipv4`),
/// IPv6 did so in its extension walk.
#[inline(always)]
fn transport<B: Bytes + ?Sized>(
    frame: &B,
    l4: &mut Transport,
    mut offset: usize,
    mut len: u32,
    step_over_ah: bool,
) {
    if step_over_ah && l4.proto == ipproto::AH {
        match frame.array::<2>(offset) {
            Some(e) => {
                let ah_len = (e[1] as u32 + 2) * 4;
                l4.proto = e[0];
                l4.ah = true;
                offset += ah_len as usize;
                len = len.saturating_sub(ah_len);
            }
            None => {
                l4.kind = L4Kind::Truncated;
                return;
            }
        }
    }
    let header_len: u32 = match l4.proto {
        ipproto::TCP => match (frame.be16(offset + 12), frame.be32(offset)) {
            (Some(offset_flags), Some(ports)) => {
                l4.src_port = (ports >> 16) as u16;
                l4.dst_port = ports as u16;
                let [data_offset, flags] = offset_flags.to_be_bytes();
                l4.tcp_flags = flags;
                let data_offset = (data_offset >> 4) as u32 * 4;
                if data_offset < 20 {
                    l4.kind = L4Kind::Truncated;
                    return;
                }
                data_offset
            }
            _ => {
                l4.kind = L4Kind::Truncated;
                return;
            }
        },
        ipproto::UDP | ipproto::UDPLITE | ipproto::SCTP => match frame.be32(offset) {
            Some(ports) => {
                l4.src_port = (ports >> 16) as u16;
                l4.dst_port = ports as u16;
                if l4.proto == ipproto::SCTP { 12 } else { 8 }
            }
            None => {
                l4.kind = L4Kind::Truncated;
                return;
            }
        },
        // ICMP and the rest: no ports; their whole IP payload is "payload"
        // (GRE's and ESP's headers are what identification reads).
        _ => 0,
    };
    l4.payload_offset = offset as u32 + header_len;
    l4.payload_len = len.saturating_sub(header_len);
}

/// GTP-U's port (3GPP TS 29.281).
pub const GTP_U_PORT: u16 = 2152;

/// The user's packet inside a GTP-U G-PDU (3GPP TS 29.281 section 5):
/// version 1, protocol type GTP, message type 255, then the optional
/// sequence fields and extension headers. Mobile core links carry every
/// subscriber's traffic this way; a capture of one is read inside out, as
/// nDPI reads it. `None` when `outer` is no G-PDU carrying IP.
pub fn inside_gtp_u<B: Bytes + ?Sized>(frame: &B, outer: &Parsed) -> Option<Parsed> {
    const MAX_EXTENSIONS: usize = 4;
    let l4 = outer.l4();
    if l4.proto != ipproto::UDP
        || l4.kind != L4Kind::Complete
        || (l4.src_port != GTP_U_PORT && l4.dst_port != GTP_U_PORT)
    {
        return None;
    }
    let at = l4.payload_offset as usize;
    let [flags, kind] = frame.array::<2>(at)?;
    if flags >> 5 != 1 || flags & 0x10 == 0 || kind != 0xff {
        return None;
    }
    let mut inner = at + 8;
    if flags & 0x07 != 0 {
        // Sequence number, N-PDU number, next extension header type.
        let [.., mut next] = frame.array::<4>(inner)?;
        inner += 4;
        for _ in 0..MAX_EXTENSIONS {
            if next == 0 {
                break;
            }
            let [units] = frame.array::<1>(inner)?;
            if units == 0 {
                return None;
            }
            inner += units as usize * 4;
            [next] = frame.array::<1>(inner - 1)?;
        }
        if next != 0 {
            return None;
        }
    }
    ip_at(frame, inner).ok()
}

/// A raw IP packet (no link header): IPv4 or IPv6 by its version nibble.
#[inline(always)]
pub fn raw_ip<B: Bytes + ?Sized>(packet: &B) -> Result<Parsed, Outcome> {
    ip_at(packet, 0)
}

/// An IP packet at `offset`, IPv4 or IPv6 by its version nibble.
#[inline(always)]
pub fn ip_at<B: Bytes + ?Sized>(frame: &B, offset: usize) -> Result<Parsed, Outcome> {
    let first = frame
        .array::<1>(offset)
        .ok_or(Outcome::MalformedTruncated)?[0];
    match first >> 4 {
        4 => ipv4(frame, offset).map(Parsed::V4),
        6 => ipv6(frame, offset).map(Parsed::V6),
        _ => Err(Outcome::IgnoredNotIp),
    }
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
        ip[9] = ipproto::UDP;
        ip[12..16].copy_from_slice(&[192, 168, 1, 10]);
        ip[16..20].copy_from_slice(&[198, 51, 100, 7]);
        f.extend_from_slice(&ip);
        f.extend_from_slice(&[0x10, 0x92, 0, 53, 0, 26, 0, 0]);
        f.extend_from_slice(&[0xab; 18]);
        f
    }

    fn v4(parsed: Result<Parsed, Outcome>) -> Result<Ip<u32>, Outcome> {
        parsed.map(|p| match p {
            Parsed::V4(ip) => ip,
            Parsed::V6(_) => panic!("expected IPv4"),
        })
    }

    #[test]
    fn vlan_depths() {
        let want = Ip {
            src: 0xc0a8_010a,
            dst: 0xc633_6407,
            ip_len: 46,
            l4: Transport {
                proto: ipproto::UDP,
                kind: L4Kind::Complete,
                src_port: 4242,
                dst_port: 53,
                tcp_flags: 0,
                ah: false,
                payload_offset: 14 + 20 + 8,
                payload_len: 18,
            },
        };
        assert_eq!(v4(ethernet(&frame(&[], ETH_P_IP, 0x45)[..])), Ok(want));
        let one = v4(ethernet(&frame(&[ETH_P_8021Q], ETH_P_IP, 0x45)[..])).unwrap();
        assert_eq!(
            (one.src, one.dst, one.l4.payload_offset),
            (want.src, want.dst, 46)
        );
        assert!(
            ethernet(&frame(&[ETH_P_8021AD, ETH_P_8021Q, ETH_P_8021Q], ETH_P_IP, 0x45)[..]).is_ok()
        );
        assert_eq!(
            ethernet(&frame(&[ETH_P_8021Q; 4], ETH_P_IP, 0x45)[..]),
            Err(Outcome::MalformedVlanDepth)
        );
        assert_eq!(
            ethernet(&frame(&[ETH_P_8021Q], 0x0806, 0x60)[..]),
            Err(Outcome::IgnoredNotIp)
        );
    }

    #[test]
    fn truncation_and_bad_headers() {
        let f = frame(&[ETH_P_8021Q], ETH_P_IP, 0x45);
        let ip_end = 14 + 4 + 20;
        for len in 0..ip_end {
            assert_eq!(
                ethernet(&f[..len]),
                Err(Outcome::MalformedTruncated),
                "{len}"
            );
        }
        // The IP header is whole: analysed, the transport marked truncated.
        for len in ip_end..ip_end + 4 {
            let ip = v4(ethernet(&f[..len])).unwrap();
            assert_eq!(ip.l4.kind, L4Kind::Truncated, "{len}");
            assert_eq!((ip.l4.src_port, ip.l4.dst_port), (0, 0));
        }
        assert_eq!(v4(ethernet(&f[..ip_end + 4])).unwrap().l4.dst_port, 53);
        for first in [0x44, 0x40, 0x65, 0x05] {
            assert_eq!(
                ethernet(&frame(&[], ETH_P_IP, first)[..]),
                Err(Outcome::MalformedIpHeader)
            );
        }
        assert_eq!(raw_ip(&[][..]), Err(Outcome::MalformedTruncated));
        assert_eq!(raw_ip(&[0x60; 39][..]), Err(Outcome::MalformedTruncated));
        assert_eq!(raw_ip(&[0x10; 40][..]), Err(Outcome::IgnoredNotIp));
        assert!(raw_ip(&frame(&[], ETH_P_IP, 0x45)[14..]).is_ok());
    }

    #[test]
    fn ipv4_fragments_have_no_ports() {
        let mut f = frame(&[], ETH_P_IP, 0x45);
        f[14 + 6] = 0x00;
        f[14 + 7] = 0x10; // offset 16 * 8 bytes
        let ip = v4(ethernet(&f[..])).unwrap();
        assert_eq!(ip.l4.kind, L4Kind::Fragment);
        assert_eq!(
            (ip.l4.src_port, ip.l4.dst_port, ip.l4.proto),
            (0, 0, ipproto::UDP)
        );
        // The first fragment (MF set, offset 0) has its ports.
        f[14 + 6] = 0x20;
        f[14 + 7] = 0;
        assert_eq!(v4(ethernet(&f[..])).unwrap().l4.dst_port, 53);
    }

    fn ipv6_frame(exts: &[(u8, Vec<u8>)], proto: u8, l4: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&ETH_P_IPV6.to_be_bytes());
        let mut body = Vec::new();
        let mut next = proto;
        // Build from the inside out so each header names the next.
        let mut chain: Vec<u8> = l4.to_vec();
        for (kind, ext) in exts.iter().rev() {
            let mut e = ext.clone();
            e[0] = next;
            e.extend_from_slice(&chain);
            chain = e;
            next = *kind;
        }
        body.extend_from_slice(&chain);
        let mut h = [0u8; 40];
        h[0] = 0x60;
        h[4..6].copy_from_slice(&(body.len() as u16).to_be_bytes());
        h[6] = next;
        h[7] = 64;
        h[8] = 0x20;
        h[9] = 0x01;
        h[10] = 0x0d;
        h[11] = 0xb8;
        h[23] = 1;
        h[24] = 0xfd;
        h[39] = 2;
        f.extend_from_slice(&h);
        f.extend_from_slice(&body);
        f
    }

    fn ext(len8: u8) -> Vec<u8> {
        let mut e = vec![0u8; (len8 as usize + 1) * 8];
        e[1] = len8;
        e
    }

    #[test]
    fn ipv6_walks_every_extension_header() {
        let tcp = {
            let mut t = vec![0u8; 20];
            t[0..2].copy_from_slice(&40000u16.to_be_bytes());
            t[2..4].copy_from_slice(&443u16.to_be_bytes());
            t[12] = 5 << 4;
            t[13] = tcp_flags::SYN;
            t.extend_from_slice(b"hello");
            t
        };
        let mut frag_first = vec![0u8; 8];
        frag_first[3] = 1; // M flag, offset 0
        let mut ah = vec![0u8; 12];
        ah[1] = 1; // (1 + 2) * 4 = 12 bytes
        let f = ipv6_frame(
            &[
                (ipproto::HOPOPTS, ext(0)),
                (ipproto::ROUTING, ext(1)),
                (ipproto::FRAGMENT, frag_first),
                (ipproto::DSTOPTS, ext(0)),
                (ipproto::AH, ah),
            ],
            ipproto::TCP,
            &tcp,
        );
        let Ok(Parsed::V6(ip)) = ethernet(&f[..]) else {
            panic!("IPv6")
        };
        assert_eq!(ip.l4.proto, ipproto::TCP);
        assert_eq!(ip.l4.kind, L4Kind::Complete);
        assert!(ip.l4.ah);
        assert_eq!((ip.l4.src_port, ip.l4.dst_port), (40000, 443));
        assert_eq!(ip.l4.tcp_flags, tcp_flags::SYN);
        assert_eq!(ip.l4.payload_len, 5);
        assert_eq!(
            &f[ip.l4.payload_offset as usize..][..5],
            b"hello",
            "payload offset after every header"
        );
        assert_eq!(ip.ip_len as usize, f.len() - 14);
        // Truncated at every length: never a panic; addresses need all 40,
        // ports and flags the first 14 bytes of TCP.
        let tcp_start = f.len() - 25;
        for len in 0..f.len() {
            match ethernet(&f[..len]) {
                Err(Outcome::MalformedTruncated) => assert!(len < 14 + 40),
                Ok(Parsed::V6(ip)) => {
                    assert!(len >= 54);
                    let want = if len < tcp_start + 14 {
                        L4Kind::Truncated
                    } else {
                        L4Kind::Complete
                    };
                    assert_eq!(ip.l4.kind, want, "{len}");
                }
                other => panic!("{len}: {other:?}"),
            }
        }
    }

    #[test]
    fn ipv6_non_first_fragment_and_long_chains() {
        let mut frag = vec![0u8; 8];
        frag[2] = 0x01; // offset 32 * 8
        let f = ipv6_frame(&[(ipproto::FRAGMENT, frag)], ipproto::UDP, &[0u8; 16]);
        let Ok(Parsed::V6(ip)) = ethernet(&f[..]) else {
            panic!()
        };
        assert_eq!(ip.l4.kind, L4Kind::Fragment);
        assert_eq!((ip.l4.proto, ip.l4.src_port), (ipproto::UDP, 0));
        let long: Vec<(u8, Vec<u8>)> = (0..MAX_IPV6_EXT + 1)
            .map(|_| (ipproto::DSTOPTS, ext(0)))
            .collect();
        let f = ipv6_frame(&long, ipproto::UDP, &[0u8; 8]);
        let Ok(Parsed::V6(ip)) = ethernet(&f[..]) else {
            panic!()
        };
        assert_eq!(ip.l4.kind, L4Kind::ChainTooLong);
        let exact: Vec<(u8, Vec<u8>)> = (0..MAX_IPV6_EXT)
            .map(|_| (ipproto::DSTOPTS, ext(0)))
            .collect();
        let mut udp = vec![0u8; 8];
        udp[3] = 53;
        let f = ipv6_frame(&exact, ipproto::UDP, &udp);
        let Ok(Parsed::V6(ip)) = ethernet(&f[..]) else {
            panic!()
        };
        assert_eq!((ip.l4.kind, ip.l4.dst_port), (L4Kind::Complete, 53));
    }
}
