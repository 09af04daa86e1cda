//! Streaming readers for pcap and pcapng capture files. Memory stays flat:
//! one read buffer, records parsed in place, never grown beyond what the
//! file really holds; every error names the file and the byte offset.

mod pcap;
mod pcapng;
mod source;

use std::{fmt, fs::File, path::Path};

use vpnfp_common::{Outcome, Parsed, parse};

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
}

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
        }
    }
}

/// The message for a link type replay does not read.
fn unsupported_link(code: u32) -> String {
    format!(
        "unsupported link type {code} (supported: Ethernet 1, Linux cooked v1 113 and v2 276, raw IP 101/228/229, BSD loopback 0 and 108)"
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
}

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
