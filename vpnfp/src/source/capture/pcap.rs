//! Classic pcap: a 24-byte file header, then 16-byte record headers.

use std::io::Read;

use super::{Endian, LinkType, Packet, ReadError, Source, to_ns, unsupported_link};

/// Larger records are corruption, not packets (libpcap's largest snap
/// length is 256 KiB).
const MAX_RECORD: u32 = 16 << 20;

#[derive(Clone, Copy)]
pub struct Format {
    endian: Endian,
    /// Fraction units per second: microseconds or nanoseconds.
    per_second: u64,
}

impl Format {
    pub fn from_magic(magic: [u8; 4]) -> Option<Self> {
        let (big, per_second) = match magic {
            [0xd4, 0xc3, 0xb2, 0xa1] => (false, 1_000_000),
            [0xa1, 0xb2, 0xc3, 0xd4] => (true, 1_000_000),
            [0x4d, 0x3c, 0xb2, 0xa1] => (false, 1_000_000_000),
            [0xa1, 0xb2, 0x3c, 0x4d] => (true, 1_000_000_000),
            _ => return None,
        };
        Some(Self {
            endian: Endian { big },
            per_second,
        })
    }
}

pub fn read<R: Read>(
    source: &mut Source<R>,
    format: Format,
    each: &mut impl FnMut(Packet<'_>),
) -> Result<(), ReadError> {
    let io = |source: &Source<R>, e: std::io::Error| (source.offset(), format!("read error: {e}"));
    if source.fill(24).map_err(|e| io(source, e))? < 24 {
        return Err((0, "truncated pcap file header".into()));
    }
    let header = source.peek(24);
    // The low 16 bits are the link type; the high bits may carry FCS info.
    let code = format.endian.u32(header, 20) & 0xffff;
    let link = LinkType::from_code(code).ok_or_else(|| (20, unsupported_link(code)))?;
    source.consume(24);
    loop {
        let at = source.offset();
        let have = source.fill(16).map_err(|e| io(source, e))?;
        if have == 0 {
            return Ok(());
        }
        if have < 16 {
            return Err((at, format!("truncated record header ({have} of 16 bytes)")));
        }
        let h = source.peek(16);
        let (secs, frac, caplen) = (
            format.endian.u32(h, 0),
            format.endian.u32(h, 4),
            format.endian.u32(h, 8),
        );
        if caplen > MAX_RECORD {
            return Err((
                at,
                format!("corrupt record header (captured length {caplen})"),
            ));
        }
        let total = 16 + caplen as usize;
        let have = source.fill(total).map_err(|e| io(source, e))?;
        if have < total {
            return Err((
                at,
                format!(
                    "truncated record: {caplen} bytes announced, {} present",
                    have - 16
                ),
            ));
        }
        let ts_ns =
            (secs as u64 * 1_000_000_000).saturating_add(to_ns(frac as u64, format.per_second));
        each(Packet {
            ts_ns,
            link,
            data: &source.peek(total)[16..],
        });
        source.consume(total);
    }
}
