//! Streaming readers for pcap and pcapng capture files. Memory stays flat:
//! one read buffer, records parsed in place, never grown beyond what the
//! file really holds; every error names the file and the byte offset.

mod pcap;
mod pcapng;
mod source;

use std::{fmt, fs::File, path::Path};

use vpnfp_common::{Outcome, Parsed, parse};

use source::Buffered;
pub use source::Source;

/// The link types replay understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkType {
    Ethernet,
    /// Linux cooked capture v1 (`tcpdump -i any`): 16 bytes, protocol last.
    LinuxSll,
    /// Linux cooked capture v2: 20 bytes, protocol first.
    LinuxSll2,
    /// Raw IP, no link header (IPv4 or IPv6 by the version nibble).
    RawIp,
    /// BSD loopback (NULL, 0) and OpenBSD loopback (LOOP, 108): a 4-byte
    /// address family (host byte order of the capturing machine for NULL,
    /// network order for LOOP), then IP.
    Loopback,
    /// PPP (9): the HDLC-like address and control bytes `ff 03` or none,
    /// then the PPP protocol (RFC 1661, 1662); libpcap also files Cisco
    /// HDLC frames under it.
    Ppp,
    /// Cisco HDLC (104): address, control, then an Ethernet type.
    CiscoHdlc,
    /// Per-Packet Information (192): a header naming the link type of the
    /// packet behind it.
    Ppi,
    /// IEEE 802.11 (105): data frames with an LLC/SNAP header.
    Ieee80211,
    /// Radiotap (127) in front of IEEE 802.11.
    Radiotap,
}

/// PPP protocol numbers of IPv4 and IPv6 (RFC 1332, RFC 5072).
const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;

/// Address family values of IPv4 and IPv6 in NULL/LOOP headers (IPv6 is
/// 10 on Linux, 24, 28 or 30 on the BSDs and macOS).
const LOOPBACK_FAMILIES: [u32; 5] = [2, 10, 24, 28, 30];

impl LinkType {
    pub fn from_code(code: u32) -> Option<Self> {
        match code {
            1 => Some(LinkType::Ethernet),
            113 => Some(LinkType::LinuxSll),
            276 => Some(LinkType::LinuxSll2),
            // LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6, and the DLT_RAW
            // values of some BSDs.
            101 | 228 | 229 | 12 | 14 => Some(LinkType::RawIp),
            0 | 108 => Some(LinkType::Loopback),
            // PPP, and PPP in HDLC-like framing (PPP_SERIAL).
            9 | 50 => Some(LinkType::Ppp),
            104 => Some(LinkType::CiscoHdlc),
            192 => Some(LinkType::Ppi),
            105 => Some(LinkType::Ieee80211),
            127 => Some(LinkType::Radiotap),
            _ => None,
        }
    }

    /// The packet, parsed as the kernel programs parse. Offsets in the
    /// result are into `data`.
    #[inline]
    pub fn parse(self, data: &[u8]) -> Result<Parsed, Outcome> {
        match self {
            LinkType::Ethernet => parse::ethernet(data),
            LinkType::LinuxSll => {
                let protocol = data.get(14..16).ok_or(Outcome::MalformedTruncated)?;
                parse::after_ethertype(data, u16::from_be_bytes([protocol[0], protocol[1]]), 16)
            }
            LinkType::LinuxSll2 => {
                let protocol = data.get(0..2).ok_or(Outcome::MalformedTruncated)?;
                if data.len() < 20 {
                    return Err(Outcome::MalformedTruncated);
                }
                parse::after_ethertype(data, u16::from_be_bytes([protocol[0], protocol[1]]), 20)
            }
            LinkType::RawIp => parse::raw_ip(data),
            LinkType::Loopback => {
                let family = data.get(0..4).ok_or(Outcome::MalformedTruncated)?;
                let family: [u8; 4] = family.try_into().expect("4 bytes");
                let (le, be) = (u32::from_le_bytes(family), u32::from_be_bytes(family));
                if !LOOPBACK_FAMILIES.contains(&le) && !LOOPBACK_FAMILIES.contains(&be) {
                    return Err(Outcome::IgnoredNotIp);
                }
                parse::ip_at(data, 4)
            }
            LinkType::Ppp => ppp(data),
            LinkType::CiscoHdlc => {
                let ethertype = data.get(2..4).ok_or(Outcome::MalformedTruncated)?;
                after_link_ethertype(data, u16::from_be_bytes([ethertype[0], ethertype[1]]), 4)
            }
            LinkType::Ppi => {
                // version, flags, u16 header length, u32 link type; little endian.
                let header = data.get(0..8).ok_or(Outcome::MalformedTruncated)?;
                let len = u16::from_le_bytes([header[2], header[3]]) as usize;
                let dlt = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
                let inner = data.get(len..).ok_or(Outcome::MalformedTruncated)?;
                match LinkType::from_code(dlt) {
                    Some(LinkType::Ppi) | None => Err(Outcome::IgnoredNotIp),
                    Some(link) => link.parse(inner).map(|p| p.shifted(len)),
                }
            }
            LinkType::Radiotap => {
                let len = data.get(2..4).ok_or(Outcome::MalformedTruncated)?;
                let len = u16::from_le_bytes([len[0], len[1]]) as usize;
                let inner = data.get(len..).ok_or(Outcome::MalformedTruncated)?;
                ieee80211(inner).map(|p| p.shifted(len))
            }
            LinkType::Ieee80211 => ieee80211(data),
        }
    }
}

/// A PPP frame (or a Cisco HDLC frame that libpcap files as PPP).
fn ppp(data: &[u8]) -> Result<Parsed, Outcome> {
    let first = *data.first().ok_or(Outcome::MalformedTruncated)?;
    if first == 0x0f || first == 0x8f {
        let ethertype = data.get(2..4).ok_or(Outcome::MalformedTruncated)?;
        return after_link_ethertype(data, u16::from_be_bytes([ethertype[0], ethertype[1]]), 4);
    }
    let at = if data.get(0..2) == Some(&[0xff, 0x03]) {
        2
    } else {
        0
    };
    let b = data.get(at..).ok_or(Outcome::MalformedTruncated)?;
    // An odd first byte is a protocol field compressed to one byte.
    let (protocol, header) = match b.first() {
        Some(p) if p & 1 == 1 => (*p as u16, 1),
        Some(_) => {
            let p = b.get(0..2).ok_or(Outcome::MalformedTruncated)?;
            (u16::from_be_bytes([p[0], p[1]]), 2)
        }
        None => return Err(Outcome::MalformedTruncated),
    };
    match protocol {
        PPP_IPV4 | PPP_IPV6 => parse::ip_at(data, at + header),
        _ => Err(Outcome::IgnoredNotIp),
    }
}

/// An Ethernet frame (behind up to 3 VLAN tags) carrying PPPoE or MPLS.
fn ethernet_wrapped(data: &[u8]) -> Result<Parsed, Outcome> {
    let mut at = 12;
    for _ in 0..=3 {
        let ethertype = data.get(at..at + 2).ok_or(Outcome::MalformedTruncated)?;
        let ethertype = u16::from_be_bytes([ethertype[0], ethertype[1]]);
        if ethertype != 0x8100 && ethertype != 0x88a8 {
            return match ethertype {
                PPPOE_SESSION | 0x8847 | 0x8848 => after_link_ethertype(data, ethertype, at + 2),
                _ => Err(Outcome::IgnoredNotIp),
            };
        }
        at += 4;
    }
    Err(Outcome::IgnoredNotIp)
}

/// The packet inside a UDP tunnel that captures of provider links carry,
/// read inside out as nDPI reads it: GTP-U (mobile cores) and VXLAN (RFC
/// 7348, data centres). A router's LAN carries neither, so the kernel
/// programs do not. (CAPWAP, which nDPI also opens, is not read.)
fn inside_udp_tunnel(data: &[u8], outer: &Parsed) -> Option<Parsed> {
    const VXLAN: u16 = 4789;
    let l4 = outer.l4();
    if l4.proto != parse::ipproto::UDP || l4.kind != parse::L4Kind::Complete {
        return None;
    }
    let port = |p: u16| l4.src_port == p || l4.dst_port == p;
    let at = l4.payload_offset as usize;
    if port(parse::GTP_U_PORT) {
        return parse::inside_gtp_u(data, outer);
    }
    if port(VXLAN) {
        // Flags with the I bit, then 3 reserved bytes, the VNI and one.
        let header = data.get(at..at + 8)?;
        if header[0] & 0x08 == 0 {
            return None;
        }
        return parse::ethernet(data.get(at + 8..)?)
            .ok()
            .map(|p| p.shifted(at + 8));
    }
    None
}

/// PPPoE's session stage (RFC 2516): 6 bytes of header, then PPP.
const PPPOE_SESSION: u16 = 0x8864;

/// MPLS label stacks (RFC 3032), which links between routers carry in
/// front of IP, and PPPoE sessions; then what the shared parser reads
/// after an Ethernet type.
fn after_link_ethertype(data: &[u8], ethertype: u16, at: usize) -> Result<Parsed, Outcome> {
    const MPLS: [u16; 2] = [0x8847, 0x8848];
    const MAX_LABELS: usize = 8;
    if ethertype == PPPOE_SESSION {
        let header = data.get(at..at + 8).ok_or(Outcome::MalformedTruncated)?;
        if header[0] != 0x11 || header[1] != 0 {
            return Err(Outcome::IgnoredNotIp);
        }
        return match u16::from_be_bytes([header[6], header[7]]) {
            PPP_IPV4 | PPP_IPV6 => parse::ip_at(data, at + 8),
            _ => Err(Outcome::IgnoredNotIp),
        };
    }
    if !MPLS.contains(&ethertype) {
        return parse::after_ethertype(data, ethertype, at);
    }
    for label in 0..MAX_LABELS {
        let entry = data
            .get(at + 4 * label..at + 4 * label + 4)
            .ok_or(Outcome::MalformedTruncated)?;
        if entry[2] & 1 == 1 {
            // Bottom of the stack: the payload is IP, by its version.
            return parse::ip_at(data, at + 4 * label + 4);
        }
    }
    Err(Outcome::IgnoredNotIp)
}

/// An 802.11 data frame carrying IP behind LLC/SNAP.
fn ieee80211(data: &[u8]) -> Result<Parsed, Outcome> {
    let fc = data.get(0..2).ok_or(Outcome::MalformedTruncated)?;
    // Type 2 (data); subtypes with bit 0x40 carry no payload.
    if (fc[0] >> 2) & 3 != 2 || fc[0] & 0x40 != 0 {
        return Err(Outcome::IgnoredNotIp);
    }
    let mut header = 24;
    if fc[1] & 3 == 3 {
        header += 6; // a fourth address between two access points
    }
    if fc[0] & 0x80 != 0 {
        header += 2; // QoS control
    }
    if fc[1] & 0x80 != 0 && fc[0] & 0x80 != 0 {
        header += 4; // HT control
    }
    let snap = data
        .get(header..header + 8)
        .ok_or(Outcome::MalformedTruncated)?;
    if snap[0..6] != [0xaa, 0xaa, 0x03, 0, 0, 0] {
        return Err(Outcome::IgnoredNotIp);
    }
    parse::after_ethertype(data, u16::from_be_bytes([snap[6], snap[7]]), header + 8)
}

impl LinkType {
    /// What replay reads: the packet as the kernel programs parse it, and
    /// then what captures of provider links wrap it in, which a router's
    /// LAN never carries (so the kernel programs need not): PPPoE and MPLS
    /// on Ethernet, GTP-U and VXLAN in UDP. nDPI's reader opens the same.
    pub fn parse_capture(self, data: &[u8]) -> Result<Parsed, Outcome> {
        let parsed = match (self, self.parse(data)) {
            (LinkType::Ethernet, Err(Outcome::IgnoredNotIp)) => ethernet_wrapped(data),
            (_, parsed) => parsed,
        };
        parsed.map(|outer| inside_udp_tunnel(data, &outer).unwrap_or(outer))
    }
}

/// The message for a link type replay does not read.
fn unsupported_link(code: u32) -> String {
    format!(
        "unsupported link type {code} (supported: Ethernet 1, Linux cooked v1 113 and v2 276, raw IP 101/228/229, BSD loopback 0 and 108, PPP 9 and 50, Cisco HDLC 104, PPI 192, IEEE 802.11 105 and radiotap 127)"
    )
}

/// The byte order a file (pcap) or section (pcapng) was written in.
#[derive(Clone, Copy)]
struct Endian {
    big: bool,
}

impl Endian {
    #[inline]
    fn u16(self, b: &[u8], at: usize) -> u16 {
        let b = [b[at], b[at + 1]];
        if self.big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    }

    #[inline]
    fn u32(self, b: &[u8], at: usize) -> u32 {
        let b = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        if self.big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }
}

/// One captured packet, borrowed from the read buffer.
pub struct Packet<'a> {
    /// Unix time, nanoseconds.
    pub ts_ns: u64,
    pub link: LinkType,
    pub data: &'a [u8],
    /// The record's number in the file, from 0.
    pub number: u64,
    /// The frame of record `number + LOOKAHEAD`, for replay to prefetch
    /// its table entries.
    pub ahead: Ahead<'a>,
}

/// Finds the frame [`LOOKAHEAD`] records on when asked, in what the read
/// buffer holds. Not asking costs nothing: walking the records ahead was
/// 3-4% of a replay that does not prefetch.
pub struct Ahead<'a> {
    walk: Option<Walker<'a>>,
}

/// The format's walk over the records ahead, and what it reads them with.
enum Walker<'a> {
    Pcap(&'a mut pcap::Walk, Buffered<'a>, LinkType),
    Pcapng(&'a mut pcapng::Walk, Buffered<'a>, &'a pcapng::Section),
}

/// A frame read ahead, and the link type to parse it as (a pcapng file's
/// interfaces may differ).
pub struct Frame<'a> {
    pub link: LinkType,
    pub data: &'a [u8],
}

impl<'a> Ahead<'a> {
    /// The frame, if the buffer holds it (once per packet).
    #[inline]
    pub fn frame(&mut self) -> Option<Frame<'a>> {
        match self.walk.take()? {
            Walker::Pcap(walk, buffered, link) => {
                walk.frame(buffered).map(|data| Frame { link, data })
            }
            Walker::Pcapng(walk, buffered, section) => walk.frame(buffered, section),
        }
    }
}

/// How many records ahead [`Packet::ahead`] is. Replay's prefetches take
/// two steps of half this each (a flow's index bucket, then its slot);
/// each must be far enough for memory to answer (about 100 ns when the
/// tables outgrow the caches) and near enough that it is still cached.
pub const LOOKAHEAD: u64 = 16;

#[derive(Debug)]
pub struct CaptureError {
    pub path: String,
    /// Byte offset in the file where the bad part starts (`None`: the file
    /// could not be opened).
    pub offset: Option<u64>,
    pub message: String,
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.offset {
            Some(offset) => write!(f, "{}: {} at byte offset {offset}", self.path, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

impl std::error::Error for CaptureError {}

/// An opened capture: the format is known from its first bytes.
pub struct Capture {
    path: String,
    source: Source<Box<dyn std::io::Read>>,
}

impl Capture {
    /// A file, or standard input for `-`.
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        if path == Path::new("-") {
            return Ok(Self::from_reader(
                "standard input".into(),
                Box::new(std::io::stdin().lock()),
            ));
        }
        let name = path.display().to_string();
        let file = File::open(path).map_err(|e| CaptureError {
            path: name.clone(),
            offset: None,
            message: format!("cannot open: {e}"),
        })?;
        Ok(Self::from_reader(name, Box::new(file)))
    }

    /// A capture read from anything (`name` is what errors call it).
    pub fn from_reader(name: String, reader: Box<dyn std::io::Read>) -> Self {
        Self {
            path: name,
            source: Source::new(reader),
        }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Calls `each` for every packet in file order. Packets before an error
    /// have been delivered when the error is returned.
    pub fn for_each(mut self, mut each: impl FnMut(Packet<'_>)) -> Result<(), CaptureError> {
        let err = |offset: u64, message: String| CaptureError {
            path: self.path.clone(),
            offset: Some(offset),
            message,
        };
        let magic = match self.source.fill(4) {
            Ok(4..) => self.source.peek(4),
            Ok(_) => return Err(err(0, "too short to be a pcap or pcapng file".into())),
            Err(e) => return Err(err(0, format!("read error: {e}"))),
        };
        let magic = [magic[0], magic[1], magic[2], magic[3]];
        let result = if pcapng::is_pcapng(magic) {
            pcapng::read(&mut self.source, &mut each)
        } else if let Some(format) = pcap::Format::from_magic(magic) {
            pcap::read(&mut self.source, format, &mut each)
        } else {
            Err((
                0,
                format!(
                    "not a pcap or pcapng file (first bytes {:02x}{:02x}{:02x}{:02x})",
                    magic[0], magic[1], magic[2], magic[3]
                ),
            ))
        };
        result.map_err(|(offset, message)| err(offset, message))
    }
}

/// Units per second to nanoseconds, without overflow for any 64-bit count.
#[inline]
fn to_ns(ticks: u64, per_second: u64) -> u64 {
    if per_second == 1_000_000_000 {
        ticks
    } else if per_second == 1_000_000 {
        ticks.saturating_mul(1_000)
    } else {
        (ticks as u128 * 1_000_000_000 / per_second as u128).min(u64::MAX as u128) as u64
    }
}

/// A reader's error: byte offset and message; the caller adds the path.
type ReadError = (u64, String);

/// Capture files written in memory, for the readers' and replay's tests.
#[cfg(test)]
pub(crate) mod test_files {
    use std::io::Read;

    use super::{Capture, LinkType};

    /// Gives at most `step` bytes a read, as a pipe does.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        step: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.step).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    /// A record as delivered: its number, its frame, the frame read ahead.
    pub type Seen = (u64, Vec<u8>, Option<(LinkType, Vec<u8>)>);

    /// Every record as delivered, and the error's offset; the frame ahead
    /// asked for on every `ask_every`th record.
    pub fn read_all(file: Vec<u8>, step: usize, ask_every: u64) -> (Vec<Seen>, Option<u64>) {
        let reader = Trickle {
            data: file,
            at: 0,
            step,
        };
        let mut seen = Vec::new();
        let result = Capture::from_reader("test".into(), Box::new(reader)).for_each(|mut p| {
            let ahead = (p.number % ask_every == 0)
                .then(|| p.ahead.frame())
                .flatten();
            seen.push((
                p.number,
                p.data.to_vec(),
                ahead.map(|f| (f.link, f.data.to_vec())),
            ));
        });
        (seen, result.err().and_then(|e| e.offset))
    }

    /// A classic little-endian microsecond pcap of Ethernet `frames`.
    pub fn pcap(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut out = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&65535u32.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        for (i, f) in frames.iter().enumerate() {
            out.extend_from_slice(&(i as u32).to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&(f.len() as u32).to_le_bytes());
            out.extend_from_slice(&(f.len() as u32).to_le_bytes());
            out.extend_from_slice(f);
        }
        out
    }

    /// One pcapng block (little endian): type, length, body padded to 4.
    fn block(kind: u32, body: &[u8]) -> Vec<u8> {
        let padded = body.len().div_ceil(4) * 4;
        let len = (12 + padded) as u32;
        let mut b = kind.to_le_bytes().to_vec();
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(body);
        b.resize(8 + padded, 0);
        b.extend_from_slice(&len.to_le_bytes());
        b
    }

    /// What a pcapng test file holds, in order.
    pub enum Item<'a> {
        /// An interface of this link type (numbered from 0 as declared).
        Interface(u16),
        /// A packet on interface `.0`.
        Packet(u32, &'a [u8]),
        /// An interface statistics block (skipped by readers).
        Statistics,
    }

    /// A little-endian pcapng file of one section.
    pub fn pcapng(items: &[Item<'_>]) -> Vec<u8> {
        let mut shb = 0x1a2b_3c4du32.to_le_bytes().to_vec();
        shb.extend_from_slice(&[1, 0, 0, 0]);
        shb.extend_from_slice(&u64::MAX.to_le_bytes());
        let mut out = block(0x0a0d_0d0a, &shb);
        for (i, item) in items.iter().enumerate() {
            out.extend(match item {
                Item::Interface(link) => {
                    let mut body = link.to_le_bytes().to_vec();
                    body.extend_from_slice(&[0, 0]);
                    body.extend_from_slice(&65535u32.to_le_bytes());
                    block(1, &body)
                }
                Item::Packet(iface, frame) => {
                    let mut body = iface.to_le_bytes().to_vec();
                    body.extend_from_slice(&0u32.to_le_bytes());
                    body.extend_from_slice(&(i as u32).to_le_bytes());
                    body.extend_from_slice(&(frame.len() as u32).to_le_bytes());
                    body.extend_from_slice(&(frame.len() as u32).to_le_bytes());
                    body.extend_from_slice(frame);
                    block(6, &body)
                }
                Item::Statistics => block(5, &[0; 12]),
            });
        }
        out
    }
}

#[cfg(test)]
mod link_tests {
    use super::*;

    /// IPv4 UDP 192.0.2.1:1000 -> 198.51.100.1:53 with 4 payload bytes.
    fn ipv4_udp() -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 32, 0, 0, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 198, 51, 100, 1,
        ];
        p.extend_from_slice(&[0x03, 0xe8, 0, 53, 0, 12, 0, 0, 1, 2, 3, 4]);
        p
    }

    fn udp_ports(link: LinkType, frame: &[u8]) -> (u16, u16, u32) {
        match link.parse(frame).expect("parses") {
            Parsed::V4(ip) => (ip.l4.src_port, ip.l4.dst_port, ip.l4.payload_offset),
            Parsed::V6(_) => panic!("IPv4 expected"),
        }
    }

    #[test]
    fn serial_and_wireless_links() {
        let ip = ipv4_udp();
        let with = |head: &[u8]| [head, &ip].concat();
        let ppp = LinkType::from_code(9).unwrap();
        assert_eq!(
            udp_ports(ppp, &with(&[0xff, 0x03, 0x00, 0x21])),
            (1000, 53, 32)
        );
        assert_eq!(udp_ports(ppp, &with(&[0x00, 0x21])), (1000, 53, 30));
        assert_eq!(udp_ports(ppp, &with(&[0x21])), (1000, 53, 29));
        // LCP is not IP; Cisco HDLC under PPP's code, through MPLS.
        assert_eq!(ppp.parse(&with(&[0xc0, 0x21])), Err(Outcome::IgnoredNotIp));
        let hdlc_mpls = with(&[0x0f, 0x00, 0x88, 0x47, 0x00, 0x01, 0x2d, 0xfe]);
        assert_eq!(udp_ports(ppp, &hdlc_mpls), (1000, 53, 36));
        let hdlc = LinkType::from_code(104).unwrap();
        assert_eq!(
            udp_ports(hdlc, &with(&[0x0f, 0x00, 0x08, 0x00])),
            (1000, 53, 32)
        );
        // Ethernet with a VLAN tag and PPPoE; Ethernet with MPLS.
        let mut pppoe = vec![0; 12];
        pppoe.extend_from_slice(&[0x81, 0x00, 0, 7, 0x88, 0x64, 0x11, 0, 0, 1, 0, 34, 0, 0x21]);
        let ether = LinkType::from_code(1).unwrap();
        let capture = |frame: &[u8]| match ether.parse_capture(frame).expect("parses") {
            Parsed::V4(ip) => (ip.l4.src_port, ip.l4.dst_port, ip.l4.payload_offset),
            Parsed::V6(_) => panic!("IPv4 expected"),
        };
        // The kernel's parse leaves them alone; replay opens them.
        assert_eq!(ether.parse(&with(&pppoe)), Err(Outcome::IgnoredNotIp));
        assert_eq!(capture(&with(&pppoe)), (1000, 53, 12 + 4 + 2 + 8 + 28));
        let mut mpls = vec![0; 12];
        mpls.extend_from_slice(&[0x88, 0x47, 0x00, 0x01, 0x21, 0x40]);
        assert_eq!(capture(&with(&mpls)), (1000, 53, 12 + 2 + 4 + 28));
        // VXLAN and GTP-U around the packet: the inner one is read.
        let outer_udp = |dport: u16, inner: &[u8]| {
            let total = (28 + inner.len()) as u16;
            let mut f = vec![0; 12];
            f.extend_from_slice(&[0x08, 0x00, 0x45, 0, (total >> 8) as u8, total as u8]);
            f.extend_from_slice(&[0, 0, 0, 0, 64, 17, 0, 0, 203, 0, 113, 1, 203, 0, 113, 2]);
            f.extend_from_slice(&[0x30, 0x39, (dport >> 8) as u8, dport as u8]);
            f.extend_from_slice(&[0, (8 + inner.len()) as u8, 0, 0]);
            f.extend_from_slice(inner);
            f
        };
        let mut vxlan = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
        vxlan.extend_from_slice(&[0; 12]);
        vxlan.extend_from_slice(&[0x08, 0x00]);
        let frame = outer_udp(4789, &with(&vxlan));
        let outer = LinkType::Ethernet.parse(&frame).unwrap();
        assert_eq!(
            outer.l4().dst_port,
            4789,
            "the kernel's parse stays outside"
        );
        let inner = inside_udp_tunnel(&frame, &outer).expect("VXLAN opened");
        assert_eq!(inner.l4().dst_port, 53);
        assert_eq!(LinkType::Ethernet.parse_capture(&frame), Ok(inner));
        assert_eq!(inner.l4().payload_offset as usize, frame.len() - 4);
        let mut gtp = vec![0x30, 0xff, 0, 32, 0, 0, 0, 1];
        gtp.extend_from_slice(&ip);
        let frame = outer_udp(2152, &gtp);
        let outer = LinkType::Ethernet.parse(&frame).unwrap();
        let inner = inside_udp_tunnel(&frame, &outer).expect("GTP-U opened");
        assert_eq!(inner.l4().src_port, 1000);
        // Anything else stays as it is.
        let frame = outer_udp(4790, &vxlan);
        let outer = LinkType::Ethernet.parse(&frame).unwrap();
        assert!(inside_udp_tunnel(&frame, &outer).is_none());
        // PPI (8-byte header, inner link type Ethernet).
        let mut ppi = vec![0, 0, 8, 0, 1, 0, 0, 0];
        ppi.extend_from_slice(&[0; 12]);
        ppi.extend_from_slice(&[0x08, 0x00]);
        let ppi = with(&ppi);
        assert_eq!(
            udp_ports(LinkType::from_code(192).unwrap(), &ppi),
            (1000, 53, 8 + 14 + 28)
        );
        // Radiotap (8 bytes) + 802.11 QoS data (26) + LLC/SNAP.
        let mut wifi = vec![0, 0, 8, 0, 0, 0, 0, 0, 0x88, 0x01];
        wifi.extend_from_slice(&[0; 24]);
        wifi.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00]);
        let wifi = with(&wifi);
        assert_eq!(
            udp_ports(LinkType::from_code(127).unwrap(), &wifi),
            (1000, 53, 8 + 26 + 8 + 28)
        );
    }
}
